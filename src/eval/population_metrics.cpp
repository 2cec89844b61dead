#include "eval/population_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "core/random.h"
#include "eval/expression.h"
#include "eval/generation_metrics.h"
#include "eval/knn.h"

namespace lingshu {

namespace {
constexpr int kComponents = 50;
constexpr int64_t kMaxCells = 1000;  // per set: pairwise distances stay a few million
constexpr int kNeighbors = 30;       // as eval generation's kNN AUC
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// `rows` in a seeded random order.
std::vector<int64_t> shuffled(std::span<const int64_t> rows, uint64_t seed) {
  std::vector<int64_t> out(rows.begin(), rows.end());
  std::mt19937_64 rng(seed);
  for (size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[rnd::uniform_below(rng, i)]);
  return out;
}

// A seeded random half of `rows` (the larger one with `second`), at most `cap` of them, in order.
std::vector<int64_t> half(std::span<const int64_t> rows, bool second, int64_t cap, uint64_t seed) {
  const auto order = shuffled(rows, seed);
  const auto middle = order.begin() + static_cast<std::ptrdiff_t>(order.size() / 2);
  std::vector<int64_t> out =
      second ? std::vector<int64_t>(middle, order.end()) : std::vector<int64_t>(order.begin(), middle);
  if (static_cast<int64_t>(out.size()) > cap) out.resize(static_cast<size_t>(cap));
  std::sort(out.begin(), out.end());
  return out;
}

// At most `n` of `rows`, a seeded random choice, in order.
std::vector<int64_t> subsample(std::span<const int64_t> rows, int64_t n, uint64_t seed) {
  std::vector<int64_t> out;
  for (const int64_t i : subsample_indices(static_cast<int64_t>(rows.size()), n, seed))
    out.push_back(rows[static_cast<size_t>(i)]);
  return out;
}

// Mean Euclidean distance over the pairs of a and b; with `distinct`, a and b are one set and only
// its distinct pairs count.
double mean_distance(const DenseMatrix& a, const DenseMatrix& b, bool distinct, int threads) {
  // The diagonal of a set with itself adds 0.
  const double total = sum_over_pairs(
      a, b, [](double d2) { return std::sqrt(d2); }, threads);
  return total / (static_cast<double>(a.rows) * static_cast<double>(distinct ? a.rows - 1 : b.rows));
}

}  // namespace

double energy_distance(const DenseMatrix& x, const DenseMatrix& y, int threads) {
  return 2 * mean_distance(x, y, false, threads) - mean_distance(x, x, true, threads) -
         mean_distance(y, y, true, threads);
}

ContextPopulation::ContextPopulation(const CsrMatrix& expression, std::span<const int64_t> control,
                                     const std::vector<std::vector<int64_t>>& perturbed, uint64_t seed,
                                     int threads)
    : expression_(expression), seed_(seed), threads_(threads) {
  // The components see as many control cells as cells of a few perturbations at most, so a large
  // control group does not decide alone which directions are kept.
  std::vector<int64_t> fit = half(control, false, 2 * kMaxCells, rnd::derive_seed(seed, 0));
  for (size_t k = 0; k < perturbed.size(); ++k) {
    const auto stream = rnd::derive_seed(seed, k + 1);
    const auto fitted = half(perturbed[k], false, kMaxCells, stream);
    fit.insert(fit.end(), fitted.begin(), fitted.end());
    scored_.push_back(half(perturbed[k], true, kMaxCells, stream));
  }
  std::sort(fit.begin(), fit.end());
  PcaOptions options;
  options.n_components = kComponents;
  options.seed = seed;
  pcs_ = pca(expression.select_rows(fit), options);
  control_ =
      pca_project(pcs_, expression.select_rows(half(control, true, kMaxCells, rnd::derive_seed(seed, 0))));
}

PopulationScore ContextPopulation::score(size_t k, const CsrMatrix& predicted_expression,
                                         std::span<const int64_t> predicted) const {
  const auto& real = scored_[k];
  const auto n_real = static_cast<int64_t>(real.size()), n_pred = static_cast<int64_t>(predicted.size());
  if (n_real < kMinPopulationCells || n_pred < kMinPopulationCells || control_.rows < 2)
    return {kNaN, kNaN, kNaN};
  // Equal numbers of each, as eval generation's AUC wants them.
  const int64_t m = std::min(n_real, n_pred);
  const auto stream = rnd::derive_seed(seed_, 1000003 + k);
  const DenseMatrix x = pca_project(pcs_, expression_.select_rows(subsample(real, m, stream)));
  const DenseMatrix y =
      pca_project(pcs_, predicted_expression.select_rows(subsample(predicted, m, stream + 1)));
  PopulationScore s{};
  s.energy_distance = energy_distance(y, x, threads_);
  // A perturbation that moves the cells less than the estimate's noise has no distance to share.
  const double control_distance = energy_distance(control_, x, threads_);
  s.energy_share = control_distance > 0 ? s.energy_distance / control_distance : kNaN;
  std::vector<uint8_t> is_predicted(static_cast<size_t>(2 * m), 0);
  std::fill(is_predicted.begin() + m, is_predicted.end(), 1);
  const KnnGraph graph =
      knn_within(stack_rows(x, y), static_cast<int>(std::min<int64_t>(kNeighbors, 2 * m - 1)));
  s.knn_auc = roc_auc(is_predicted, marked_neighbour_fraction(graph, is_predicted));
  return s;
}

}  // namespace lingshu
