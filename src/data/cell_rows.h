#pragma once
// Where training reads its cells' counts: from a matrix in memory, or from files a few thousand
// rows at a time (io/h5ad_cells.h), so that training memory does not grow with the number of cells.
#include <cstdint>
#include <memory>
#include <span>

#include "data/count_matrix.h"

namespace lingshu {

class CellRows {
 public:
  virtual ~CellRows() = default;
  virtual int64_t n_rows() const = 0;
  virtual int64_t n_cols() const = 0;
  // The listed rows (ascending, without repeats), in that order, all columns. Safe to call from
  // several threads.
  virtual CsrMatrix read(std::span<const int64_t> rows) const = 0;
};

// A matrix held in memory.
class MatrixRows final : public CellRows {
 public:
  explicit MatrixRows(std::shared_ptr<const CsrMatrix> counts) : counts_(std::move(counts)) {}
  int64_t n_rows() const override { return counts_->n_rows; }
  int64_t n_cols() const override { return counts_->n_cols; }
  CsrMatrix read(std::span<const int64_t> rows) const override { return counts_->select_rows(rows); }

 private:
  std::shared_ptr<const CsrMatrix> counts_;
};

}  // namespace lingshu
