#pragma once
// AnnData .h5ad files through the HDF5 C API: read X (CSR, CSC or dense; any int/float width),
// a layer or raw/X, and the obs/var dataframes; stream rows in chunks; write counts files that
// anndata reads back with identical values.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/anndata.h"

namespace lingshu {

struct H5adReadOptions {
  // "" or "X": X; "raw": raw/X with raw/var; any other name: layers/NAME.
  std::string layer;
  bool read_obs = true;
  bool read_var = true;
};

// Reads the whole file. Throws UserError with one clear line for anything malformed.
AnnData read_h5ad(const std::filesystem::path& path, const H5adReadOptions& options = {});

// Streams rows in chunks (HDF5 hyperslabs over indptr) for files larger than memory.
class H5adRowReader {
 public:
  H5adRowReader(const std::filesystem::path& path, const H5adReadOptions& options = {});
  ~H5adRowReader();
  H5adRowReader(const H5adRowReader&) = delete;
  H5adRowReader& operator=(const H5adRowReader&) = delete;

  int64_t n_rows() const;
  int64_t n_cols() const;
  const DataFrame& obs() const;
  const DataFrame& var() const;
  // Moves obs out (it can be large), leaving obs() empty.
  DataFrame take_obs();
  // Rows [begin, end) as CSR with all columns (sorted indices, duplicates summed, zeros dropped).
  CsrMatrix read_rows(int64_t begin, int64_t end);
  // A row count per read_rows call that keeps each chunk near 4M stored values.
  int64_t suggested_chunk_rows() const;
  // Scalar string entries of uns (e.g. provenance written by write_h5ad).
  const std::vector<std::pair<std::string, std::string>>& uns_strings() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes X as CSR (int32 values when all are whole numbers, else float32; indices and indptr both
// int32, or both int64 past 2^31 stored values), obs and var (index, categorical,
// string, numeric, boolean columns) and uns string entries. Written to a temporary name and renamed.
void write_h5ad(const std::filesystem::path& path, const AnnData& data);

// Writes an .h5ad a chunk of rows at a time, so memory holds one chunk whatever the number of
// cells (`lingshu generate` of 200,000 cells): X as CSR with int32 counts and int64 indices and
// indptr, then obs, var and uns at finish(). The file appears under its name only once finish()
// returns; a writer destroyed before that leaves nothing behind.
class H5adRowWriter {
 public:
  // UserError when the destination folder does not exist.
  explicit H5adRowWriter(const std::filesystem::path& path);
  ~H5adRowWriter();
  H5adRowWriter(const H5adRowWriter&) = delete;
  H5adRowWriter& operator=(const H5adRowWriter&) = delete;

  // Appends rows of counts (whole numbers; UserError otherwise), all with the same columns.
  void append_rows(const CsrMatrix& rows);
  int64_t n_rows() const;
  // obs (one row per appended row), var (one per column) and uns; then renames the file into place.
  void finish(const DataFrame& obs, const DataFrame& var,
              const std::vector<std::pair<std::string, std::string>>& uns);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lingshu
