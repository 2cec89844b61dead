#include "eval/sample_statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

#include "core/parallel.h"
#include "core/random.h"
#include "eval/expression.h"
#include "eval/pca.h"
#include "eval/stats.h"

namespace lingshu {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------
// Wasserstein-1 on sorted samples whose first `zeros` values are implicit zeros (sparse columns).

struct SortedSample {
  std::span<const double> stored;  // sorted, all >= 0
  int64_t zeros = 0;               // implicit zeros before them

  int64_t size() const { return zeros + static_cast<int64_t>(stored.size()); }
  double operator[](int64_t i) const { return i < zeros ? 0.0 : stored[static_cast<size_t>(i - zeros)]; }
};

// The integral of |F_u - F_v| over the real line, walking both sorted samples once.
double wasserstein1_sorted(const SortedSample& u, const SortedSample& v) {
  const int64_t nu = u.size();
  const int64_t nv = v.size();
  if (nu == 0 || nv == 0) return kNaN;
  int64_t i = 0;
  int64_t j = 0;
  double previous = std::min(u[0], v[0]);
  double distance = 0.0;
  while (i < nu || j < nv) {
    const double next = std::min(i < nu ? u[i] : std::numeric_limits<double>::infinity(),
                                 j < nv ? v[j] : std::numeric_limits<double>::infinity());
    const double gap = std::abs(static_cast<double>(i) / static_cast<double>(nu) -
                                static_cast<double>(j) / static_cast<double>(nv));
    distance += gap * (next - previous);
    while (i < nu && u[i] == next) ++i;
    while (j < nv && v[j] == next) ++j;
    previous = next;
  }
  return distance;
}

// Values of each column, sorted (zeros left implicit).
struct SortedColumns {
  std::vector<int64_t> offsets;
  std::vector<double> values;

  std::span<const double> column(int64_t c) const {
    return {values.data() + offsets[static_cast<size_t>(c)],
            static_cast<size_t>(offsets[static_cast<size_t>(c) + 1] - offsets[static_cast<size_t>(c)])};
  }
};

SortedColumns sorted_columns(const CsrMatrix& m, int threads) {
  SortedColumns out;
  out.offsets.assign(static_cast<size_t>(m.n_cols) + 1, 0);
  for (const int32_t c : m.indices) ++out.offsets[static_cast<size_t>(c) + 1];
  std::partial_sum(out.offsets.begin(), out.offsets.end(), out.offsets.begin());
  out.values.resize(m.values.size());
  std::vector<int64_t> fill(out.offsets.begin(), out.offsets.end() - 1);
  for (int64_t p = 0; p < m.nnz(); ++p) {
    out.values[static_cast<size_t>(fill[static_cast<size_t>(m.indices[p])]++)] = m.values[p];
  }
  parallel_for(m.n_cols, threads, 256, [&](int64_t begin, int64_t end, int) {
    for (int64_t c = begin; c < end; ++c) {
      std::sort(out.values.begin() + out.offsets[static_cast<size_t>(c)],
                out.values.begin() + out.offsets[static_cast<size_t>(c) + 1]);
    }
  });
  return out;
}

}  // namespace

double wasserstein1(std::span<const double> u, std::span<const double> v) {
  std::vector<double> su(u.begin(), u.end());
  std::vector<double> sv(v.begin(), v.end());
  std::sort(su.begin(), su.end());
  std::sort(sv.begin(), sv.end());
  return wasserstein1_sorted({su, 0}, {sv, 0});
}

double mean_column_wasserstein1(const CsrMatrix& a, const CsrMatrix& b, int threads) {
  if (a.n_cols != b.n_cols) throw std::invalid_argument("mean_column_wasserstein1: column counts differ");
  if (a.n_cols == 0) return kNaN;
  const SortedColumns ca = sorted_columns(a, threads);
  const SortedColumns cb = sorted_columns(b, threads);
  std::vector<double> per_column(static_cast<size_t>(a.n_cols));
  parallel_for(a.n_cols, threads, 256, [&](int64_t begin, int64_t end, int) {
    for (int64_t c = begin; c < end; ++c) {
      const auto va = ca.column(c);
      const auto vb = cb.column(c);
      per_column[static_cast<size_t>(c)] = wasserstein1_sorted(
          {va, a.n_rows - static_cast<int64_t>(va.size())}, {vb, b.n_rows - static_cast<int64_t>(vb.size())});
    }
  });
  return std::accumulate(per_column.begin(), per_column.end(), 0.0) / static_cast<double>(a.n_cols);
}

double mmd_gaussian(const DenseMatrix& x, const DenseMatrix& y, int n_kernels, double multiplier,
                    int threads) {
  if (x.cols != y.cols) throw std::invalid_argument("mmd_gaussian: dimensions differ");
  if (x.rows == 0 || y.rows == 0 || n_kernels < 1) return kNaN;
  // Sum over all ordered pairs of |z_i - z_j|^2 = 2 N sum |z_i|^2 - 2 |sum z_i|^2.
  const int64_t n_total = x.rows + y.rows;
  double sum_sq = 0;
  std::vector<double> sum(static_cast<size_t>(x.cols), 0.0);
  for (const DenseMatrix* m : {&x, &y}) {
    for (int64_t r = 0; r < m->rows; ++r) {
      for (int64_t c = 0; c < m->cols; ++c) {
        const double v = m->at(r, c);
        sum_sq += v * v;
        sum[static_cast<size_t>(c)] += v;
      }
    }
  }
  const double sum_norm = std::inner_product(sum.begin(), sum.end(), sum.begin(), 0.0);
  const double pair_sum = 2.0 * static_cast<double>(n_total) * sum_sq - 2.0 * sum_norm;
  const double mean_distance = pair_sum / static_cast<double>(n_total * n_total - n_total);
  if (!(mean_distance > 0)) return 0.0;  // every point identical
  std::vector<double> inverse_bandwidths;
  const double base = mean_distance / std::pow(multiplier, n_kernels / 2);
  for (int i = 0; i < n_kernels; ++i) inverse_bandwidths.push_back(1.0 / (base * std::pow(multiplier, i)));
  // With multiplier 2 each kernel is the square of the next wider one: one exp per pair instead of five.
  const bool doubling = multiplier == 2.0;
  const double widest = inverse_bandwidths.back();
  const auto kernel_sum = [&](double d) {
    if (!doubling) {
      double k = 0;
      for (const double inv : inverse_bandwidths) k += std::exp(-d * inv);
      return k;
    }
    double e = std::exp(-d * widest);
    double k = e;
    for (int i = 1; i < n_kernels; ++i) {
      e *= e;
      k += e;
    }
    return k;
  };

  const auto kernel_mean = [&](const DenseMatrix& a, const DenseMatrix& b) {
    return sum_over_pairs(a, b, kernel_sum, threads) /
           (static_cast<double>(a.rows) * static_cast<double>(b.rows));
  };
  // A squared distance in the kernel's feature space: never negative except by rounding.
  return std::max(0.0, kernel_mean(x, x) + kernel_mean(y, y) - 2.0 * kernel_mean(x, y));
}

std::vector<double> marked_neighbour_fraction(const KnnGraph& graph, std::span<const uint8_t> is_marked) {
  std::vector<double> out(static_cast<size_t>(graph.n));
  for (int64_t i = 0; i < graph.n; ++i) {
    int marked = 0;
    for (const int32_t j : graph.neighbors_of(i)) marked += is_marked[static_cast<size_t>(j)] ? 1 : 0;
    out[static_cast<size_t>(i)] = static_cast<double>(marked) / graph.k;
  }
  return out;
}

double roc_auc(std::span<const uint8_t> labels, std::span<const double> scores) {
  const std::vector<double> ranks = average_ranks(scores);
  double positives = 0;
  double rank_sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i]) {
      positives += 1;
      rank_sum += ranks[i];
    }
  }
  const double negatives = static_cast<double>(labels.size()) - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

double knn_classifier_auc(const DenseMatrix& points, std::span<const uint8_t> is_marked, int k,
                          double test_share, uint64_t seed) {
  const auto n_test = static_cast<int64_t>(std::llround(test_share * static_cast<double>(points.rows)));
  const std::vector<int64_t> test = subsample_indices(points.rows, n_test, seed);
  std::vector<uint8_t> in_test(static_cast<size_t>(points.rows), 0);
  for (const int64_t i : test) in_test[static_cast<size_t>(i)] = 1;
  std::vector<int64_t> fit;
  for (int64_t i = 0; i < points.rows; ++i) {
    if (!in_test[static_cast<size_t>(i)]) fit.push_back(i);
  }
  if (test.empty() || static_cast<int64_t>(fit.size()) < k) return kNaN;
  const auto rows_of = [&](const std::vector<int64_t>& rows) {
    DenseMatrix out(static_cast<int64_t>(rows.size()), points.cols);
    for (size_t r = 0; r < rows.size(); ++r) {
      const auto src = points.row(rows[r]);
      std::copy(src.begin(), src.end(), out.data.begin() + static_cast<int64_t>(r) * points.cols);
    }
    return out;
  };
  const KnnGraph graph = knn_between(rows_of(test), rows_of(fit), k);
  std::vector<uint8_t> fit_marked, test_marked;
  for (const int64_t i : fit) fit_marked.push_back(is_marked[static_cast<size_t>(i)]);
  for (const int64_t i : test) test_marked.push_back(is_marked[static_cast<size_t>(i)]);
  return roc_auc(test_marked, marked_neighbour_fraction(graph, fit_marked));
}

CopyCheck copy_check(const CsrMatrix& train, const CsrMatrix& real, const CsrMatrix& generated, int n_pcs,
                     uint64_t seed) {
  PcaOptions options;
  options.n_components = n_pcs;
  options.seed = seed;
  const PcaResult fitted = pca(train, options);
  // The training cells projected like the others (a randomized fit's own scores differ slightly, so
  // a copy of a training cell would not sit at distance 0 from it).
  const DenseMatrix reference = pca_project(fitted, train);
  const auto median_nearest = [&](const CsrMatrix& cells) {
    const KnnGraph graph = knn_between(pca_project(fitted, cells), reference, 1);
    std::vector<double> d(graph.sq_distances.begin(), graph.sq_distances.end());
    return std::sqrt(median(d));
  };
  return {median_nearest(generated), median_nearest(real)};
}

double scaled_ilisi(const KnnGraph& graph, std::span<const int32_t> source, int n_sources) {
  if (graph.n == 0 || n_sources < 2) return kNaN;
  std::vector<int> counts(static_cast<size_t>(n_sources));
  double total = 0;
  for (int64_t i = 0; i < graph.n; ++i) {
    std::fill(counts.begin(), counts.end(), 0);
    for (const int32_t j : graph.neighbors_of(i))
      ++counts[static_cast<size_t>(source[static_cast<size_t>(j)])];
    double simpson = 0;
    for (const int c : counts)
      simpson += (static_cast<double>(c) / graph.k) * (static_cast<double>(c) / graph.k);
    total += 1.0 / simpson;
  }
  return (total / static_cast<double>(graph.n) - 1.0) / (n_sources - 1);
}

std::vector<int32_t> transfer_labels(const KnnGraph& graph, std::span<const int32_t> reference_labels,
                                     int n_labels) {
  std::vector<int32_t> out(static_cast<size_t>(graph.n));
  std::vector<int> votes(static_cast<size_t>(n_labels));
  for (int64_t i = 0; i < graph.n; ++i) {
    std::fill(votes.begin(), votes.end(), 0);
    const auto neighbours = graph.neighbors_of(i);
    for (const int32_t j : neighbours) ++votes[static_cast<size_t>(reference_labels[static_cast<size_t>(j)])];
    const int best = *std::max_element(votes.begin(), votes.end());
    // Neighbours come nearest first: the first whose label has the top vote breaks the tie.
    for (const int32_t j : neighbours) {
      const int32_t label = reference_labels[static_cast<size_t>(j)];
      if (votes[static_cast<size_t>(label)] == best) {
        out[static_cast<size_t>(i)] = label;
        break;
      }
    }
  }
  return out;
}

}  // namespace lingshu
