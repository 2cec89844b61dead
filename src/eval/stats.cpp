#include "eval/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace lingshu {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void require_same_size(std::span<const double> x, std::span<const double> y, const char* what) {
  if (x.size() != y.size()) throw std::invalid_argument(std::string(what) + ": inputs differ in length");
}

// Indices of x sorted by value (stable, so equal values keep their order).
std::vector<size_t> sorted_order(std::span<const double> x) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  return order;
}

}  // namespace

double median(std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  const auto mid = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), mid, values.end());
  if (values.size() % 2 == 1) return *mid;
  return 0.5 * (*mid + *std::max_element(values.begin(), mid));
}

double pearson_correlation(std::span<const double> x, std::span<const double> y) {
  require_same_size(x, y, "pearson_correlation");
  const size_t n = x.size();
  if (n < 2) return kNaN;
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(n);
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(n);
  // Centred sums (two passes) keep precision when the means are large relative to the spread.
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    const double dx = x[i] - mx;
    const double dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx <= 0 || syy <= 0) return kNaN;
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

std::vector<double> average_ranks(std::span<const double> x) {
  const auto order = sorted_order(x);
  std::vector<double> ranks(x.size());
  size_t i = 0;
  while (i < order.size()) {
    size_t j = i + 1;
    while (j < order.size() && x[order[j]] == x[order[i]]) ++j;
    // Positions i..j-1 (0-based) share the mean of ranks i+1..j.
    const double rank = 0.5 * static_cast<double>(i + 1 + j);
    for (size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    i = j;
  }
  return ranks;
}

double spearman_correlation(std::span<const double> x, std::span<const double> y) {
  require_same_size(x, y, "spearman_correlation");
  const auto rx = average_ranks(x);
  const auto ry = average_ranks(y);
  return pearson_correlation(rx, ry);
}

std::vector<double> benjamini_hochberg(std::span<const double> p_values) {
  std::vector<size_t> finite;
  finite.reserve(p_values.size());
  for (size_t i = 0; i < p_values.size(); ++i) {
    if (!std::isnan(p_values[i])) finite.push_back(i);
  }
  std::stable_sort(finite.begin(), finite.end(),
                   [&](size_t a, size_t b) { return p_values[a] < p_values[b]; });
  std::vector<double> q(p_values.size(), kNaN);
  const double m = static_cast<double>(finite.size());
  double running_min = 1.0;
  // Walk from the largest p down so each q is the minimum over all larger ranks.
  for (size_t r = finite.size(); r-- > 0;) {
    const size_t i = finite[r];
    running_min = std::min(running_min, p_values[i] * m / static_cast<double>(r + 1));
    q[i] = running_min;
  }
  return q;
}

double average_precision(std::span<const uint8_t> labels, std::span<const double> scores) {
  if (labels.size() != scores.size())
    throw std::invalid_argument("average_precision: inputs differ in length");
  const double positives =
      static_cast<double>(std::count_if(labels.begin(), labels.end(), [](uint8_t v) { return v != 0; }));
  if (positives == 0) return kNaN;
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  double true_pos = 0, seen = 0, previous_recall = 0, ap = 0;
  size_t i = 0;
  while (i < order.size()) {
    // All items sharing a score enter together: one threshold.
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) {
      true_pos += labels[order[j]] != 0 ? 1.0 : 0.0;
      ++j;
    }
    seen += static_cast<double>(j - i);
    const double recall = true_pos / positives;
    ap += (recall - previous_recall) * (true_pos / seen);
    previous_recall = recall;
    i = j;
  }
  return ap;
}

double normal_survival(double z) {
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

double mann_whitney_p_value(double u1, double n1, double n2, double tie_term) {
  if (n1 <= 0 || n2 <= 0) return 1.0;
  const double n = n1 + n2;
  const double mean = n1 * n2 / 2.0;
  const double variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
  if (!(variance > 0)) return 1.0;  // every value tied: no evidence either way
  // Two-sided: use the larger of U1, U2 so the continuity correction moves towards the mean.
  const double u = std::max(u1, n1 * n2 - u1);
  const double z = (u - mean - 0.5) / std::sqrt(variance);
  return std::clamp(2.0 * normal_survival(z), 0.0, 1.0);
}

MannWhitneyResult mann_whitney_u(std::span<const double> x, std::span<const double> y) {
  const size_t n1 = x.size();
  const size_t n2 = y.size();
  if (n1 == 0 || n2 == 0) return {0.0, 1.0};
  std::vector<double> pooled(x.begin(), x.end());
  pooled.insert(pooled.end(), y.begin(), y.end());
  const auto order = sorted_order(pooled);
  double rank_sum_x = 0, tie_term = 0;
  size_t i = 0;
  while (i < order.size()) {
    size_t j = i + 1;
    while (j < order.size() && pooled[order[j]] == pooled[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + 1 + j);
    const double t = static_cast<double>(j - i);
    tie_term += t * t * t - t;
    for (size_t k = i; k < j; ++k) {
      if (order[k] < n1) rank_sum_x += rank;
    }
    i = j;
  }
  const double dn1 = static_cast<double>(n1);
  const double u1 = rank_sum_x - dn1 * (dn1 + 1.0) / 2.0;
  return {u1, mann_whitney_p_value(u1, dn1, static_cast<double>(n2), tie_term)};
}

}  // namespace lingshu
