#pragma once
// The cells of one or more .h5ad files with the same genes (the shards a large corpus comes in),
// read a few thousand rows at a time: obs and var are held in memory, X stays on disk. Training
// reads its cells through this, so its memory does not grow with the number of cells.
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "data/anndata.h"
#include "data/cell_rows.h"
#include "io/h5ad.h"

namespace lingshu {

// The files named, with every folder replaced by its *.h5ad files in name order. UserError for a
// path that does not exist, a folder without .h5ad files, or a file named twice.
std::vector<std::filesystem::path> expand_h5ad_paths(const std::vector<std::filesystem::path>& paths);

class H5adCells final : public CellRows {
 public:
  // UserError naming the file and the first differing gene when the files' genes differ.
  H5adCells(const std::vector<std::filesystem::path>& files, const H5adReadOptions& options = {});
  ~H5adCells() override;

  int64_t n_rows() const override { return n_rows_; }
  int64_t n_cols() const override;
  CsrMatrix read(std::span<const int64_t> rows) const override;

  // Every cell's obs (the files' rows one after another) and the genes. take_obs() moves obs out
  // (a corpus's obs can be large), leaving obs() empty.
  const DataFrame& obs() const { return obs_; }
  DataFrame take_obs() { return std::move(obs_); }
  const DataFrame& var() const { return var_; }
  int64_t n_files() const { return static_cast<int64_t>(shards_.size()); }

  // From now on only these columns, in this order (`train --genes`).
  void keep_columns(std::vector<int64_t> columns);

 private:
  struct Shard {
    std::filesystem::path path;
    std::unique_ptr<H5adRowReader> reader;
    int64_t first_row = 0;  // of this file among all rows
  };
  void read_from_shard(const Shard& shard, std::span<const int64_t> local_rows, CsrMatrix& out) const;

  std::vector<Shard> shards_;
  int64_t n_rows_ = 0;
  DataFrame obs_, var_;
  std::vector<int64_t> columns_;  // empty: all
  mutable std::mutex mutex_;      // one HDF5 read at a time
};

}  // namespace lingshu
