#include "data/count_matrix.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace lingshu {

void CsrMatrix::append_row(std::span<const int32_t> cols, std::span<const float> vals) {
  for (size_t i = 0; i < cols.size(); ++i) {
    if (vals[i] == 0.0f) continue;
    indices.push_back(cols[i]);
    values.push_back(vals[i]);
  }
  indptr.push_back(static_cast<int64_t>(values.size()));
  ++n_rows;
}

void CsrMatrix::append_dense_row(std::span<const float> dense) {
  for (size_t j = 0; j < dense.size(); ++j) {
    if (dense[j] == 0.0f) continue;
    indices.push_back(static_cast<int32_t>(j));
    values.push_back(dense[j]);
  }
  indptr.push_back(static_cast<int64_t>(values.size()));
  ++n_rows;
}

void CsrMatrix::append_rows(const CsrMatrix& rows) {
  const int64_t offset = nnz();
  indices.insert(indices.end(), rows.indices.begin(), rows.indices.end());
  values.insert(values.end(), rows.values.begin(), rows.values.end());
  for (size_t r = 1; r < rows.indptr.size(); ++r) indptr.push_back(offset + rows.indptr[r]);
  n_rows += rows.n_rows;
}

std::vector<float> CsrMatrix::dense_row(int64_t row) const {
  std::vector<float> out(static_cast<size_t>(n_cols), 0.0f);
  const auto cols = row_indices(row);
  const auto vals = row_values(row);
  for (size_t i = 0; i < cols.size(); ++i) out[static_cast<size_t>(cols[i])] = vals[i];
  return out;
}

CsrMatrix CsrMatrix::select_rows(std::span<const int64_t> rows) const {
  CsrMatrix out;
  out.n_cols = n_cols;
  out.indptr.reserve(rows.size() + 1);
  for (const int64_t r : rows) out.append_row(row_indices(r), row_values(r));
  return out;
}

CsrMatrix CsrMatrix::select_cols(std::span<const int64_t> cols) const {
  // Map old column -> new position(s); a column may be selected more than once.
  std::vector<std::vector<int32_t>> targets(static_cast<size_t>(n_cols));
  for (size_t j = 0; j < cols.size(); ++j) {
    if (cols[j] >= 0) targets[static_cast<size_t>(cols[j])].push_back(static_cast<int32_t>(j));
  }
  CsrMatrix out;
  out.n_cols = static_cast<int64_t>(cols.size());
  std::vector<std::pair<int32_t, float>> row;
  std::vector<int32_t> c;
  std::vector<float> v;
  for (int64_t r = 0; r < n_rows; ++r) {
    row.clear();
    const auto ri = row_indices(r);
    const auto rv = row_values(r);
    for (size_t i = 0; i < ri.size(); ++i) {
      for (const int32_t t : targets[static_cast<size_t>(ri[i])]) row.emplace_back(t, rv[i]);
    }
    std::sort(row.begin(), row.end());
    c.clear();
    v.clear();
    for (const auto& [col, val] : row) {
      c.push_back(col);
      v.push_back(val);
    }
    out.append_row(c, v);
  }
  return out;
}

std::vector<double> CsrMatrix::row_sums() const {
  std::vector<double> out(static_cast<size_t>(n_rows), 0.0);
  for (int64_t r = 0; r < n_rows; ++r) {
    for (const float v : row_values(r)) out[static_cast<size_t>(r)] += v;
  }
  return out;
}

std::vector<double> CsrMatrix::col_sums() const {
  std::vector<double> out(static_cast<size_t>(n_cols), 0.0);
  for (size_t i = 0; i < values.size(); ++i) out[static_cast<size_t>(indices[i])] += values[i];
  return out;
}

void CsrMatrix::validate(const char* what) const {
  if (n_rows < 0 || n_cols < 0) throw UserError(fmt::format("{}: negative shape", what));
  if (static_cast<int64_t>(indptr.size()) != n_rows + 1) {
    throw UserError(fmt::format("{}: indptr has {} entries but the matrix has {} rows (expected {})", what,
                                indptr.size(), n_rows, n_rows + 1));
  }
  if (indices.size() != values.size()) {
    throw UserError(fmt::format("{}: {} indices but {} values; the file is inconsistent", what,
                                indices.size(), values.size()));
  }
  if (indptr.front() != 0 || indptr.back() != nnz()) {
    throw UserError(fmt::format("{}: indptr must run from 0 to {} (the number of values), found {} .. {}",
                                what, nnz(), indptr.front(), indptr.back()));
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    if (indptr[r + 1] < indptr[r]) {
      throw UserError(fmt::format("{}: indptr decreases at row {} ({} -> {}); the file is corrupt", what, r,
                                  indptr[r], indptr[r + 1]));
    }
  }
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= n_cols) {
      throw UserError(fmt::format("{}: column index {} at position {} is outside 0..{}", what, indices[i], i,
                                  n_cols - 1));
    }
  }
}

}  // namespace lingshu
