#pragma once
// A small row-major float matrix (cells x components): what PCA returns and what kNN, MMD and the
// report's embedding read. Kept free of LibTorch so that headers stay cheap to include.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace lingshu {

struct DenseMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;  // rows * cols, row-major

  DenseMatrix() = default;
  DenseMatrix(int64_t n_rows, int64_t n_cols)
      : rows(n_rows), cols(n_cols), data(static_cast<size_t>(n_rows * n_cols), 0.0f) {}

  float& at(int64_t r, int64_t c) { return data[static_cast<size_t>(r * cols + c)]; }
  float at(int64_t r, int64_t c) const { return data[static_cast<size_t>(r * cols + c)]; }
  std::span<const float> row(int64_t r) const { return {data.data() + r * cols, static_cast<size_t>(cols)}; }

  // The rows [begin, end) as a new matrix.
  DenseMatrix slice_rows(int64_t begin, int64_t end) const {
    DenseMatrix out(end - begin, cols);
    std::copy(data.begin() + begin * cols, data.begin() + end * cols, out.data.begin());
    return out;
  }
  // The first `n` columns of every row.
  DenseMatrix first_cols(int64_t n) const {
    DenseMatrix out(rows, n);
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(data.begin() + r * cols, n, out.data.begin() + r * n);
    }
    return out;
  }
};

// Rows of `a` followed by rows of `b` (same number of columns).
inline DenseMatrix stack_rows(const DenseMatrix& a, const DenseMatrix& b) {
  DenseMatrix out(a.rows + b.rows, a.cols);
  std::copy(a.data.begin(), a.data.end(), out.data.begin());
  std::copy(b.data.begin(), b.data.end(), out.data.begin() + a.rows * a.cols);
  return out;
}

}  // namespace lingshu
