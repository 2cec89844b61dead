#include "eval/knn.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <stdexcept>

#include "core/parallel.h"

namespace lingshu {

namespace {

// Distances from a block of rows are held as one dense (rows x reference) block of doubles;
// about 64 MB keeps the matrix product efficient without holding the full n x n matrix.
constexpr int64_t kBlockElements = int64_t{8} << 20;

torch::Tensor as_double_tensor(const DenseMatrix& m) {
  // from_blob does not copy; to(kDouble) makes an owned double copy.
  return torch::from_blob(const_cast<float*>(m.data.data()), {m.rows, m.cols}, torch::kFloat32)
      .to(torch::kFloat64);
}

// Runs visit on torch blocks of squared distances; shared by the public visitor and by kNN.
void for_each_distance_tensor(const DenseMatrix& a, const DenseMatrix& b,
                              const std::function<void(int64_t, int64_t, torch::Tensor&)>& visit) {
  if (a.cols != b.cols) throw std::invalid_argument("distance blocks: points differ in dimension");
  if (a.rows == 0 || b.rows == 0) return;
  torch::NoGradGuard no_grad;
  const torch::Tensor ta = as_double_tensor(a);
  const torch::Tensor tb = as_double_tensor(b);
  const torch::Tensor b_norms = tb.square().sum(1).unsqueeze(0);  // 1 x nb
  const int64_t block_rows = std::max<int64_t>(1, kBlockElements / b.rows);
  for (int64_t begin = 0; begin < a.rows; begin += block_rows) {
    const int64_t end = std::min(a.rows, begin + block_rows);
    const torch::Tensor rows = ta.slice(0, begin, end);
    torch::Tensor d = rows.square().sum(1).unsqueeze(1) + b_norms;  // |a|^2 + |b|^2
    d.addmm_(rows, tb.t(), /*beta=*/1.0, /*alpha=*/-2.0);
    d.clamp_min_(0.0);
    visit(begin, end, d);
  }
}

KnnGraph knn_impl(const DenseMatrix& queries, const DenseMatrix& reference, int k, bool exclude_self) {
  KnnGraph graph;
  graph.n = queries.rows;
  graph.k = k;
  graph.neighbors.resize(static_cast<size_t>(queries.rows * k));
  graph.sq_distances.resize(static_cast<size_t>(queries.rows * k));
  for_each_distance_tensor(queries, reference, [&](int64_t begin, int64_t end, torch::Tensor& d) {
    if (exclude_self) {
      // The block's rows are points begin..end-1 of the same set: hide each point from itself.
      d.slice(1, begin, end).diagonal().fill_(std::numeric_limits<double>::infinity());
    }
    const auto [values, indices] = torch::topk(d, k, /*dim=*/1, /*largest=*/false, /*sorted=*/true);
    const torch::Tensor idx = indices.to(torch::kInt32).contiguous();
    const torch::Tensor val = values.contiguous();
    std::copy_n(idx.data_ptr<int32_t>(), (end - begin) * k, graph.neighbors.begin() + begin * k);
    std::copy_n(val.data_ptr<double>(), (end - begin) * k, graph.sq_distances.begin() + begin * k);
  });
  return graph;
}

}  // namespace

KnnGraph knn_within(const DenseMatrix& points, int k) {
  if (k < 1 || k >= points.rows) {
    throw std::invalid_argument("knn_within: need 1 <= k < number of points");
  }
  return knn_impl(points, points, k, /*exclude_self=*/true);
}

KnnGraph knn_between(const DenseMatrix& queries, const DenseMatrix& reference, int k) {
  if (k < 1 || k > reference.rows) {
    throw std::invalid_argument("knn_between: need 1 <= k <= number of reference points");
  }
  return knn_impl(queries, reference, k, /*exclude_self=*/false);
}

void for_each_distance_block(const DenseMatrix& a, const DenseMatrix& b, const DistanceBlockVisitor& visit) {
  for_each_distance_tensor(a, b, [&](int64_t begin, int64_t end, torch::Tensor& d) {
    const torch::Tensor c = d.contiguous();
    visit(begin, end, {c.data_ptr<double>(), static_cast<size_t>(c.numel())});
  });
}

double sum_over_pairs(const DenseMatrix& a, const DenseMatrix& b, const std::function<double(double)>& f,
                      int threads) {
  double total = 0;
  std::mutex mutex;
  for_each_distance_block(a, b, [&](int64_t begin, int64_t end, std::span<const double> block) {
    const auto cols = static_cast<size_t>(b.rows);
    parallel_for(end - begin, threads, 16, [&](int64_t r0, int64_t r1, int) {
      double partial = 0;
      for (auto p = static_cast<size_t>(r0) * cols; p < static_cast<size_t>(r1) * cols; ++p)
        partial += f(block[p]);
      const std::lock_guard lock(mutex);
      total += partial;
    });
  });
  return total;
}

}  // namespace lingshu
