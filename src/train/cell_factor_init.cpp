#include "train/cell_factor_init.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "train/group_means.h"
#include "train/label_combinations.h"

namespace lingshu {

namespace {
// The tilt that shifts a gene's mean level by d is about d / variance for small d only: a gene
// whose level barely varies would get a tilt that moves its rare large values by orders of
// magnitude. Under the floor the start tilts less than the linear rule; training adds the rest.
constexpr double kVarianceFloor = 0.15;
// The components never take more than this share off a gene's variance: with few cells they fit
// some of the counting noise too.
constexpr double kResidualShareFloor = 0.3;
constexpr int64_t kOversampling = 10;
constexpr int kPowerIterations = 3;

// Evenly spaced rows, all of them when there are few.
std::vector<int64_t> chosen_rows(int64_t n_rows, int64_t max_cells) {
  const int64_t n = std::min(n_rows, max_cells);
  std::vector<int64_t> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rows[static_cast<size_t>(i)] = i * n_rows / n;
  return rows;
}

// Token levels of the chosen rows, dense [rows, n_genes] in sequence order.
torch::Tensor level_matrix(const CsrMatrix& counts, const Tokenizer& tokenizer, const GenePatching& patching,
                           const std::vector<int64_t>& rows, const torch::Tensor& levels) {
  const auto level = levels.to(at::kFloat).contiguous();
  const float* level_of = level.data_ptr<float>();
  const float zero = level_of[tokenizer.encode(0.0F)];
  auto x = at::full({static_cast<int64_t>(rows.size()), patching.n_genes}, zero, at::kFloat);
  auto* out = x.data_ptr<float>();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto genes = counts.row_indices(rows[i]);
    const auto values = counts.row_values(rows[i]);
    for (size_t j = 0; j < genes.size(); ++j)
      out[static_cast<int64_t>(i) * patching.n_genes + genes[j]] = level_of[tokenizer.encode(values[j])];
  }
  const auto order =
      at::tensor(std::vector<int64_t>(patching.order.begin(), patching.order.end()), at::kLong);
  return x.index_select(1, order);
}

// Each row minus the mean of the rows with the same labels in every field.
torch::Tensor centre_within_labels(const torch::Tensor& x, const std::vector<std::vector<int64_t>>& codes,
                                   const std::vector<int64_t>& rows) {
  const auto groups = label_combinations(codes, every_field(codes), rows);
  return minus_group_means(x, at::tensor(groups.of_row, at::kLong),
                           static_cast<int64_t>(groups.labels.size()));
}

// The leading right singular vectors and values of x (randomised range finder with power
// iterations, Halko et al. 2011): [n_genes, R] and [R].
std::pair<torch::Tensor, torch::Tensor> leading_components(const torch::Tensor& x, int64_t R) {
  const int64_t k = std::min({R + kOversampling, x.size(0), x.size(1)});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0x5eedULL);
  auto q = std::get<0>(at::linalg_qr(x.matmul(at::randn({x.size(1), k}, gen, at::kFloat))));
  for (int i = 0; i < kPowerIterations; ++i) {
    const auto z = std::get<0>(at::linalg_qr(x.t().matmul(q)));
    q = std::get<0>(at::linalg_qr(x.matmul(z)));
  }
  const auto [u, s, vt] = at::linalg_svd(q.t().matmul(x), /*full_matrices=*/false);
  const int64_t r = std::min(R, k);
  return {vt.slice(0, 0, r).t(), s.slice(0, 0, r)};
}
}  // namespace

CellFactorStart cell_factor_start(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                  const GenePatching& patching, const torch::Tensor& levels,
                                  const std::vector<std::vector<int64_t>>& codes, int64_t n_factors,
                                  int64_t max_cells) {
  const int64_t L = patching.n_positions(), G = patching.n_genes;
  CellFactorStart out{at::zeros({L, n_factors}, at::kFloat), at::zeros({L, n_factors}, at::kFloat),
                      at::zeros({L}, at::kFloat)};
  const auto rows = chosen_rows(counts.n_rows, max_cells);
  if (rows.size() < 2) return out;
  const auto x = centre_within_labels(level_matrix(counts, tokenizer, patching, rows, levels), codes, rows);
  const auto [v, s] = leading_components(x, n_factors);
  const int64_t r = v.size(1);
  const auto sd = (s / std::sqrt(static_cast<double>(x.size(0) - 1))).clamp_min(1e-6);  // score sd
  const auto variance = x.pow(2).mean(0).clamp_min(kVarianceFloor);                     // [G]
  // What the components leave of each gene's variance: the spread of its levels once the cell's
  // state is known. In a Gaussian picture, narrowing a distribution of variance V by c (level -
  // mean)^2 leaves variance 1 / (1/V + 2c); c is chosen so that this is the residual, and tilting
  // the narrowed levels by t then shifts their mean by about t x the residual.
  const auto explained = (v * sd).pow(2).sum(1);
  const auto residual =
      at::maximum(variance - explained, kResidualShareFloor * variance).clamp_min(kVarianceFloor);
  // Scores s = x v / sd have unit variance; a gene's expected deviation is v sd s.
  out.in_loading.slice(0, 0, G).slice(1, 0, r).copy_(v / sd);
  out.out_loading.slice(0, 0, G).slice(1, 0, r).copy_(v * sd / residual.unsqueeze(1));
  out.narrowing.slice(0, 0, G).copy_((1.0 / residual - 1.0 / variance) / 2.0);
  return out;
}

}  // namespace lingshu
