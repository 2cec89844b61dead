#pragma once
// Cells x genes count matrix in compressed sparse row form: the in-memory unit every module
// exchanges. Values are float (UMI counts are exact integers in float up to 2^24).
#include <cstdint>
#include <span>
#include <vector>

namespace lingshu {

struct CsrMatrix {
  int64_t n_rows = 0;              // cells
  int64_t n_cols = 0;              // genes
  std::vector<int64_t> indptr{0};  // n_rows + 1 entries
  std::vector<int32_t> indices;    // column of each stored value, sorted within a row
  std::vector<float> values;

  int64_t nnz() const { return static_cast<int64_t>(values.size()); }
  std::span<const int32_t> row_indices(int64_t row) const {
    return {indices.data() + indptr[row], static_cast<size_t>(indptr[row + 1] - indptr[row])};
  }
  std::span<const float> row_values(int64_t row) const {
    return {values.data() + indptr[row], static_cast<size_t>(indptr[row + 1] - indptr[row])};
  }
  // Appends one row given as (column, value) pairs sorted by column; zeros are dropped.
  void append_row(std::span<const int32_t> cols, std::span<const float> vals);
  // Appends a dense row of n_cols values.
  void append_dense_row(std::span<const float> dense);
  // Appends the rows of another matrix with the same columns.
  void append_rows(const CsrMatrix& rows);
  // Dense copy of one row (n_cols values).
  std::vector<float> dense_row(int64_t row) const;

  // The rows listed (in that order), all columns.
  CsrMatrix select_rows(std::span<const int64_t> rows) const;
  // The columns listed (in that order); -1 gives an all-zero column.
  CsrMatrix select_cols(std::span<const int64_t> cols) const;
  // Per-row totals (library sizes) and per-column sums.
  std::vector<double> row_sums() const;
  std::vector<double> col_sums() const;

  // Throws UserError if the structure is inconsistent (indptr not monotone, index out of range,
  // sizes disagree). `what` names the source in the message.
  void validate(const char* what) const;
};

}  // namespace lingshu
