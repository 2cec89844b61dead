#include "eval/pca.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/parallel.h"

namespace lingshu {

namespace {

// Below this many matrix entries the dense SVD is cheap and exact.
constexpr int64_t kExactMaxEntries = int64_t{2} << 20;

// The same matrix by columns (CSC), so that X^T Y can run in parallel over genes without write
// conflicts.
struct ColumnMajor {
  std::vector<int64_t> indptr;
  std::vector<int32_t> rows;
  std::vector<float> values;
};

ColumnMajor transpose(const CsrMatrix& x) {
  ColumnMajor t;
  t.indptr.assign(static_cast<size_t>(x.n_cols + 1), 0);
  for (const int32_t c : x.indices) ++t.indptr[static_cast<size_t>(c) + 1];
  for (int64_t c = 0; c < x.n_cols; ++c) t.indptr[c + 1] += t.indptr[c];
  t.rows.resize(x.indices.size());
  t.values.resize(x.values.size());
  std::vector<int64_t> fill(t.indptr.begin(), t.indptr.end() - 1);
  for (int64_t r = 0; r < x.n_rows; ++r) {
    for (int64_t p = x.indptr[r]; p < x.indptr[r + 1]; ++p) {
      const auto slot = static_cast<size_t>(fill[static_cast<size_t>(x.indices[p])]++);
      t.rows[slot] = static_cast<int32_t>(r);
      t.values[slot] = x.values[p];
    }
  }
  return t;
}

// out[r] += sum over stored p of row r: values[p] * m[indices[p]] (rows of m have l floats), for
// rows [begin, end): the inner loop of both sparse products. Compiled for AVX2+FMA and for the
// baseline x86-64, the best picked when the program loads, since the build targets any x86-64.
__attribute__((target_clones("arch=haswell", "default"))) void accumulate_sparse_rows(
    const int64_t* indptr, const int32_t* indices, const float* values, int64_t begin, int64_t end,
    const float* m, int64_t l, float* out) {
  for (int64_t r = begin; r < end; ++r) {
    float* row = out + r * l;
    for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
      const float v = values[p];
      const float* src = m + static_cast<int64_t>(indices[p]) * l;
      for (int64_t j = 0; j < l; ++j) row[j] += v * src[j];
    }
  }
}

// The centred matrix A = X - 1 mean^T as an operator: A M and A^T M for dense double M. The sparse
// products run in float (twice the SIMD lanes of double; the rounding is far below what the metrics
// can resolve) on std::threads (lingshu::parallel_for) rather than OpenMP, whose spinning workers
// slow everything down on a shared machine; corrections and results are double.
class CentredOperator {
 public:
  CentredOperator(const CsrMatrix& x, const torch::Tensor& mean) : x_(x), xt_(transpose(x)), mean_(mean) {}

  // (n x g) times (g x l).
  torch::Tensor times(const torch::Tensor& m) const {
    const torch::Tensor mf = m.to(torch::kFloat32).contiguous();
    const int64_t l = mf.size(1);
    torch::Tensor out = torch::zeros({x_.n_rows, l}, torch::kFloat32);
    parallel_for(x_.n_rows, at::get_num_threads(), 64, [&](int64_t begin, int64_t end, int) {
      accumulate_sparse_rows(x_.indptr.data(), x_.indices.data(), x_.values.data(), begin, end,
                             mf.data_ptr<float>(), l, out.data_ptr<float>());
    });
    return out.to(torch::kFloat64) - torch::matmul(mean_.unsqueeze(0), m);  // subtract 1 (mean^T M)
  }

  // (g x n) times (n x l).
  torch::Tensor transpose_times(const torch::Tensor& m) const {
    const torch::Tensor mf = m.to(torch::kFloat32).contiguous();
    const int64_t l = mf.size(1);
    torch::Tensor out = torch::zeros({x_.n_cols, l}, torch::kFloat32);
    parallel_for(x_.n_cols, at::get_num_threads(), 256, [&](int64_t begin, int64_t end, int) {
      accumulate_sparse_rows(xt_.indptr.data(), xt_.rows.data(), xt_.values.data(), begin, end,
                             mf.data_ptr<float>(), l, out.data_ptr<float>());
    });
    return out.to(torch::kFloat64) - torch::outer(mean_, m.sum(0));  // subtract mean (1^T M)
  }

 private:
  const CsrMatrix& x_;
  ColumnMajor xt_;
  torch::Tensor mean_;
};

std::vector<double> column_means_of(const CsrMatrix& x) {
  std::vector<double> mean(static_cast<size_t>(x.n_cols), 0.0);
  for (int64_t p = 0; p < x.nnz(); ++p) mean[static_cast<size_t>(x.indices[p])] += x.values[p];
  for (double& m : mean) m /= static_cast<double>(x.n_rows);
  return mean;
}

// Sum over genes of the per-gene variance (ddof = 1), from the sparse values.
double total_variance(const CsrMatrix& x, const std::vector<double>& mean) {
  std::vector<double> sum_sq(mean.size(), 0.0);
  for (int64_t p = 0; p < x.nnz(); ++p) {
    sum_sq[static_cast<size_t>(x.indices[p])] += static_cast<double>(x.values[p]) * x.values[p];
  }
  const auto n = static_cast<double>(x.n_rows);
  double total = 0.0;
  for (size_t g = 0; g < mean.size(); ++g) total += std::max(0.0, sum_sq[g] - n * mean[g] * mean[g]);
  return total / (n - 1.0);
}

torch::Tensor dense_centred(const CsrMatrix& x, const torch::Tensor& mean) {
  torch::Tensor dense = torch::zeros({x.n_rows, x.n_cols}, torch::kFloat64);
  double* d = dense.data_ptr<double>();
  for (int64_t r = 0; r < x.n_rows; ++r) {
    for (int64_t p = x.indptr[r]; p < x.indptr[r + 1]; ++p) d[r * x.n_cols + x.indices[p]] = x.values[p];
  }
  return dense - mean.unsqueeze(0);
}

struct Svd {
  torch::Tensor u;   // n x k
  torch::Tensor s;   // k
  torch::Tensor vt;  // k x g
};

Svd exact_svd(const CsrMatrix& x, const torch::Tensor& mean, int64_t k) {
  auto [u, s, vt] =
      torch::linalg::svd(dense_centred(x, mean), /*full_matrices=*/false, /*driver=*/c10::nullopt);
  return {u.slice(1, 0, k), s.slice(0, 0, k), vt.slice(0, 0, k)};
}

// Orthonormal columns spanning those of `m` (n x l, l small) by modified Gram-Schmidt, run twice so
// that orthogonality holds to rounding error; numerically dependent columns become zero. The
// fallback for rank-deficient inputs (see orthonormal_basis).
torch::Tensor gram_schmidt(const torch::Tensor& m) {
  torch::Tensor columns = m.t().contiguous();  // l x n: each column contiguous
  const int64_t l = columns.size(0);
  const int64_t n = columns.size(1);
  double* c = columns.data_ptr<double>();
  const auto dot = [n](const double* a, const double* b) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
  };
  std::vector<double> original_norm(static_cast<size_t>(l));
  for (int64_t j = 0; j < l; ++j)
    original_norm[static_cast<size_t>(j)] = std::sqrt(dot(c + j * n, c + j * n));
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t j = 0; j < l; ++j) {
      double* cj = c + j * n;
      for (int64_t i = 0; i < j; ++i) {
        const double* ci = c + i * n;
        const double projection = dot(ci, cj);
        for (int64_t r = 0; r < n; ++r) cj[r] -= projection * ci[r];
      }
      const double norm = std::sqrt(dot(cj, cj));
      const double scale =
          norm > 1e-12 * std::max(1e-300, original_norm[static_cast<size_t>(j)]) ? 1.0 / norm : 0.0;
      for (int64_t r = 0; r < n; ++r) cj[r] *= scale;
    }
  }
  return columns.t().contiguous();
}

// Orthonormal columns spanning those of `m` (n x l, l small): Cholesky QR applied twice (CholQR2),
// which is as accurate as Householder QR for the well-conditioned blocks of a randomized SVD and
// runs as matrix products. LAPACK's geqrf is avoided on purpose: its unblocked path issues one
// threaded gemv per column and crawls on a busy machine. Rank-deficient blocks fall back to
// Gram-Schmidt.
torch::Tensor orthonormal_basis(const torch::Tensor& m) {
  torch::Tensor q = m;
  for (int pass = 0; pass < 2; ++pass) {
    const auto [r, info] =
        torch::linalg_cholesky_ex(torch::matmul(q.t(), q), /*upper=*/true, /*check_errors=*/false);
    if (info.item<int64_t>() != 0) return gram_schmidt(m);
    q = torch::linalg::solve_triangular(r, q, /*upper=*/true, /*left=*/false, /*unitriangular=*/false);
    if (!torch::isfinite(q).all().item<bool>()) return gram_schmidt(m);
  }
  return q;
}

// SVD of a wide l x g matrix (l small) through the eigendecomposition of the l x l matrix B B^T =
// U S^2 U^T, then V^T = S^-1 U^T B: only an l x l LAPACK call, which stays fast on any machine.
// Squaring the singular values costs precision only for components far below the leading ones,
// which are never reported.
Svd wide_svd(const torch::Tensor& b) {
  const auto [eigenvalues, eigenvectors] = torch::linalg::eigh(torch::matmul(b, b.t()), "L");
  const torch::Tensor order = torch::argsort(eigenvalues, /*dim=*/0, /*descending=*/true);
  const torch::Tensor s = eigenvalues.index_select(0, order).clamp_min(0.0).sqrt();
  const torch::Tensor u = eigenvectors.index_select(1, order);
  const torch::Tensor inverse_s = torch::where(s > s[0] * 1e-12, 1.0 / s, torch::zeros_like(s));
  const torch::Tensor vt = torch::matmul(u.t(), b) * inverse_s.unsqueeze(1);
  return {u, s, vt};
}

Svd randomized_svd(const CsrMatrix& x, const torch::Tensor& mean, int64_t k, const PcaOptions& options) {
  const CentredOperator a(x, mean);
  const int64_t l = std::min<int64_t>(k + options.oversamples, std::min(x.n_rows, x.n_cols));
  at::Generator generator = at::detail::createCPUGenerator(options.seed);
  const torch::Tensor omega =
      at::randn({x.n_cols, l}, generator, torch::TensorOptions().dtype(torch::kFloat64));
  torch::Tensor q = orthonormal_basis(a.times(omega));
  for (int i = 0; i < options.power_iterations; ++i) {
    q = orthonormal_basis(a.transpose_times(q));
    q = orthonormal_basis(a.times(q));
  }
  const torch::Tensor b = a.transpose_times(q).t().contiguous();  // l x g: Q^T A
  const Svd small = wide_svd(b);
  const torch::Tensor u = torch::matmul(q, small.u);
  return {u.slice(1, 0, k), small.s.slice(0, 0, k), small.vt.slice(0, 0, k)};
}

// sklearn's svd_flip (u-based): the largest-magnitude entry of each column of U becomes positive.
void flip_signs(Svd& svd) {
  const torch::Tensor rows = svd.u.abs().argmax(0);
  const torch::Tensor signs = svd.u.gather(0, rows.unsqueeze(0)).squeeze(0).sign();
  const torch::Tensor safe = torch::where(signs == 0, torch::ones_like(signs), signs);
  svd.u = svd.u * safe.unsqueeze(0);
  svd.vt = svd.vt * safe.unsqueeze(1);
}

DenseMatrix to_dense_matrix(const torch::Tensor& t) {
  const torch::Tensor f = t.to(torch::kFloat32).contiguous();
  DenseMatrix m(f.size(0), f.size(1));
  std::copy_n(f.data_ptr<float>(), f.numel(), m.data.begin());
  return m;
}

}  // namespace

PcaResult pca(const CsrMatrix& matrix, const PcaOptions& options) {
  if (matrix.n_rows < 2 || matrix.n_cols < 1) {
    throw std::invalid_argument("pca: need at least 2 rows and 1 column");
  }
  const int64_t k = std::min<int64_t>({options.n_components, matrix.n_rows - 1, matrix.n_cols});
  if (k < 1) throw std::invalid_argument("pca: n_components must be positive");
  torch::NoGradGuard no_grad;

  PcaResult result;
  result.mean = column_means_of(matrix);
  const torch::Tensor mean = torch::from_blob(result.mean.data(), {matrix.n_cols}, torch::kFloat64).clone();
  const bool small = matrix.n_rows * matrix.n_cols <= kExactMaxEntries ||
                     k + options.oversamples >= std::min(matrix.n_rows, matrix.n_cols);
  result.exact =
      options.method == PcaOptions::Method::Exact || (options.method == PcaOptions::Method::Auto && small);
  Svd svd = result.exact ? exact_svd(matrix, mean, k) : randomized_svd(matrix, mean, k, options);
  flip_signs(svd);

  result.scores = to_dense_matrix(svd.u * svd.s.unsqueeze(0));
  result.components = to_dense_matrix(svd.vt);
  const double total = total_variance(matrix, result.mean);
  const torch::Tensor variance = (svd.s.square() / static_cast<double>(matrix.n_rows - 1)).contiguous();
  result.explained_variance.assign(variance.data_ptr<double>(), variance.data_ptr<double>() + k);
  for (const double v : result.explained_variance) {
    result.explained_variance_ratio.push_back(total > 0 ? v / total : 0.0);
  }
  return result;
}

DenseMatrix pca_project(const PcaResult& fitted, const CsrMatrix& matrix) {
  const int64_t R = fitted.n_components(), G = fitted.components.cols;
  if (matrix.n_cols != G) throw std::invalid_argument("pca_project: the matrix has other genes than the fit");
  std::vector<double> centre(static_cast<size_t>(R), 0.0);  // mean . component, subtracted from every row
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t g = 0; g < G; ++g)
      centre[static_cast<size_t>(r)] += fitted.mean[static_cast<size_t>(g)] * fitted.components.at(r, g);
  }
  DenseMatrix out(matrix.n_rows, R);
  parallel_for(matrix.n_rows, at::get_num_threads(), 64, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const auto cols = matrix.row_indices(i);
      const auto vals = matrix.row_values(i);
      for (int64_t r = 0; r < R; ++r) {
        double s = -centre[static_cast<size_t>(r)];
        const float* component = fitted.components.data.data() + r * G;
        for (size_t p = 0; p < cols.size(); ++p) s += static_cast<double>(vals[p]) * component[cols[p]];
        out.at(i, r) = static_cast<float>(s);
      }
    }
  });
  return out;
}

}  // namespace lingshu
