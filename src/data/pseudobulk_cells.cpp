#include "data/pseudobulk_cells.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/parallel.h"
#include "core/random.h"
#include "data/preprocess.h"

namespace lingshu {

namespace {

constexpr double kTargetSum = 1e4;

// Poisson(lambda) evaluated at n evenly spaced probabilities, as (count, how many) pairs: the
// number of points with value <= k is #{i : (i + 0.5) / n <= CDF(k)}.
void stratified_poisson(double lambda, int64_t n, std::vector<std::pair<int64_t, int64_t>>& out) {
  out.clear();
  if (!(lambda > 0)) {
    out.emplace_back(0, n);
    return;
  }
  const double spread = std::sqrt(lambda);
  // Start far enough below the mean that the mass left out is negligible (< 1e-30).
  auto k = static_cast<int64_t>(std::max(0.0, std::floor(lambda - 12.0 * spread - 5.0)));
  double pmf = std::exp(static_cast<double>(k) * std::log(lambda) - lambda -
                        std::lgamma(static_cast<double>(k) + 1.0));
  double cdf = pmf;
  const auto k_max = static_cast<int64_t>(lambda + 40.0 * spread + 100.0);
  const double dn = static_cast<double>(n);
  int64_t below = 0;  // points with value < k
  while (below < n) {
    int64_t upto = k >= k_max ? n : static_cast<int64_t>(std::floor(dn * cdf - 0.5)) + 1;
    upto = std::clamp<int64_t>(upto, below, n);
    if (upto > below) out.emplace_back(k, upto - below);
    below = upto;
    ++k;
    pmf *= lambda / static_cast<double>(k);
    cdf += pmf;
  }
}

double mean_log_value(const std::vector<std::pair<int64_t, int64_t>>& counts, int64_t n, double scale) {
  double sum = 0;
  for (const auto& [k, m] : counts)
    sum += static_cast<double>(m) * std::log1p(static_cast<double>(k) * scale);
  return sum / static_cast<double>(n);
}

// The Poisson rate whose stratified draws have mean log1p(k * scale) closest to `target`.
// `lambda` carries the previous round's rate in (0 = none) and this round's out: rounds move it a
// little, so the search starts from a tight bracket around it.
std::vector<std::pair<int64_t, int64_t>> solve_gene_counts(
    double target, int64_t n, double scale, double& lambda,
    std::vector<std::pair<int64_t, int64_t>>& scratch) {
  std::vector<std::pair<int64_t, int64_t>> best;
  if (!(target > 0)) {
    lambda = 0;
    stratified_poisson(0, n, best);
    return best;
  }
  auto mean_at = [&](double rate) {
    stratified_poisson(rate, n, scratch);
    return mean_log_value(scratch, n, scale);
  };
  const double start = lambda > 0 ? lambda : std::max(std::expm1(target) / scale, 1e-6);
  double lo = start / 1.25, hi = start * 1.25;
  for (int i = 0; i < 80 && mean_at(hi) < target; ++i) {
    lo = hi;
    hi *= 2;
  }
  for (int i = 0; i < 80 && lo > 1e-12 && mean_at(lo) >= target; ++i) {
    hi = lo;
    lo /= 2;
  }
  // Bisect in log space down to a relative width of 1e-7: finer than any step of the mean.
  for (int i = 0; i < 60 && hi - lo > 1e-7 * hi; ++i) {
    const double mid = lo > 0 ? std::sqrt(lo * hi) : 0.5 * hi;
    (mean_at(mid) < target ? lo : hi) = mid;
  }
  // The mean is a step function of lambda: take whichever side of the step lands closer.
  std::vector<std::pair<int64_t, int64_t>> low;
  stratified_poisson(lo, n, low);
  stratified_poisson(hi, n, best);
  if (std::abs(mean_log_value(low, n, scale) - target) < std::abs(mean_log_value(best, n, scale) - target)) {
    lambda = lo;
    return low;
  }
  lambda = hi;
  return best;
}

struct GeneCells {
  std::vector<std::pair<int32_t, float>> nonzero;  // (cell, count)
};

// Gene `gene`'s counts spread over cells by a shuffle that depends only on (seed, gene), so rounds
// with slightly different rates move the same cells.
void scatter_counts(const std::vector<std::pair<int64_t, int64_t>>& counts, int64_t n, uint64_t seed,
                    int64_t gene, std::vector<int32_t>& order, GeneCells& out) {
  order.resize(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(rnd::derive_seed(seed, static_cast<uint64_t>(gene)));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rnd::uniform_below(rng, i)]);
  out.nonzero.clear();
  size_t next = 0;
  for (const auto& [k, m] : counts) {
    for (int64_t r = 0; r < m; ++r, ++next) {
      if (k > 0) out.nonzero.emplace_back(order[next], static_cast<float>(k));
    }
  }
}

CsrMatrix assemble_rows(const std::vector<GeneCells>& genes, int64_t n_cells) {
  CsrMatrix m;
  m.n_rows = n_cells;
  m.n_cols = static_cast<int64_t>(genes.size());
  m.indptr.assign(static_cast<size_t>(n_cells) + 1, 0);
  for (const auto& g : genes) {
    for (const auto& [cell, v] : g.nonzero) ++m.indptr[static_cast<size_t>(cell) + 1];
  }
  for (size_t r = 1; r < m.indptr.size(); ++r) m.indptr[r] += m.indptr[r - 1];
  m.indices.resize(static_cast<size_t>(m.indptr.back()));
  m.values.resize(m.indices.size());
  std::vector<int64_t> fill(m.indptr.begin(), m.indptr.end() - 1);
  for (size_t j = 0; j < genes.size(); ++j) {  // genes in order: each row's columns come out sorted
    for (const auto& [cell, v] : genes[j].nonzero) {
      const auto at = static_cast<size_t>(fill[static_cast<size_t>(cell)]++);
      m.indices[at] = static_cast<int32_t>(j);
      m.values[at] = v;
    }
  }
  return m;
}

// Each gene's nonzero (cell, count) pairs of `m`.
std::vector<GeneCells> gene_columns(const CsrMatrix& m) {
  std::vector<GeneCells> genes(static_cast<size_t>(m.n_cols));
  for (int64_t r = 0; r < m.n_rows; ++r) {
    const auto cols = m.row_indices(r);
    const auto vals = m.row_values(r);
    for (size_t k = 0; k < cols.size(); ++k)
      genes[static_cast<size_t>(cols[k])].nonzero.emplace_back(static_cast<int32_t>(r), vals[k]);
  }
  return genes;
}

// Integer counts reach a gene's mean log value only in steps of about log1p(1e4 / total) / n_cells
// (0.04 for 100 cells of 120 counts). Finer steps come from where the counts sit: a count moved
// from cell a to a cell b that holds one count less keeps the gene's counts as they are and changes
// its mean by [g(T_b) - g(T_a)] / n, g(T) = log1p(k 1e4 / T) - log1p((k - 1) 1e4 / T), which is
// small when the cells' totals T are close. Each gene takes the moves that bring it nearest its
// target, a few at most, and the two cells' totals change by one count each. Gene after gene: in
// cells of a hundred counts the totals move enough over all genes that placing every gene against
// the same totals (in parallel) left the error half as large again (0.014 against 0.0096 per gene).
void refine_placement(std::vector<GeneCells>& genes, std::span<const double> target, int64_t n_cells,
                      std::vector<double> totals) {
  constexpr int kMovesPerGene = 8;
  constexpr double kCloseEnough = 1e-4;  // per gene, in log1p CP10k: far below what any metric sees
  const double n = static_cast<double>(n_cells);
  const auto f = [](double k, double total) { return std::log1p(k * kTargetSum / total); };
  std::vector<double> count(static_cast<size_t>(n_cells), 0.0);
  std::vector<std::pair<double, int32_t>> receivers;  // (g, cell) of the cells holding k - 1
  std::vector<double> levels;                         // the distinct counts k held
  for (int64_t j = 0; j < std::ssize(genes); ++j) {
    auto& nonzero = genes[static_cast<size_t>(j)].nonzero;
    if (nonzero.empty()) continue;
    double achieved = 0;
    for (const auto& [cell, v] : nonzero) {
      count[static_cast<size_t>(cell)] = v;
      achieved += f(v, totals[static_cast<size_t>(cell)]) / n;
    }
    for (int move = 0; move < kMovesPerGene; ++move) {
      if (std::abs(target[static_cast<size_t>(j)] - achieved) < kCloseEnough) break;
      const double want = (target[static_cast<size_t>(j)] - achieved) * n;  // change of the sum wanted
      double best_change = 0, best_miss = std::abs(want);
      int32_t best_from = -1, best_to = -1;
      levels.clear();
      for (const auto& [cell, v] : nonzero) {
        if (count[static_cast<size_t>(cell)] > 0) levels.push_back(count[static_cast<size_t>(cell)]);
      }
      std::sort(levels.begin(), levels.end());
      levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
      for (const double k : levels) {
        const auto g = [&](int32_t cell) {
          const double t = totals[static_cast<size_t>(cell)];
          return f(k, t) - f(k - 1, t);
        };
        receivers.clear();  // for k = 1, every cell without the gene
        for (int32_t c = 0; c < n_cells; ++c) {
          if (count[static_cast<size_t>(c)] == k - 1) receivers.emplace_back(g(c), c);
        }
        std::sort(receivers.begin(), receivers.end());
        for (const auto& [from, v] : nonzero) {
          if (count[static_cast<size_t>(from)] != k) continue;
          const double from_g = g(from);
          // The receivers whose g lies either side of the one that would hit the target exactly.
          const auto at = std::lower_bound(receivers.begin(), receivers.end(),
                                           std::pair{want + from_g, std::numeric_limits<int32_t>::min()});
          for (const auto it : {at == receivers.begin() ? receivers.end() : at - 1, at}) {
            if (it == receivers.end()) continue;
            const double change = it->first - from_g;
            if (std::abs(want - change) < best_miss) {
              best_miss = std::abs(want - change);
              best_change = change;
              best_from = from;
              best_to = it->second;
            }
          }
        }
      }
      if (best_from < 0) break;
      const double k = count[static_cast<size_t>(best_from)];
      count[static_cast<size_t>(best_from)] = k - 1;
      count[static_cast<size_t>(best_to)] = k;
      totals[static_cast<size_t>(best_from)] -= 1;
      totals[static_cast<size_t>(best_to)] += 1;
      achieved += best_change / n;
    }
    nonzero.clear();
    for (int32_t c = 0; c < n_cells; ++c) {
      if (count[static_cast<size_t>(c)] > 0)
        nonzero.emplace_back(c, static_cast<float>(count[static_cast<size_t>(c)]));
      count[static_cast<size_t>(c)] = 0;
    }
  }
}

}  // namespace

CsrMatrix counts_for_log_pseudobulk(std::span<const double> target, int64_t n_cells, double library_size,
                                    uint64_t seed, int threads) {
  if (n_cells < 1) throw std::invalid_argument("counts_for_log_pseudobulk: n_cells must be positive");
  if (!(library_size > 0))
    throw std::invalid_argument("counts_for_log_pseudobulk: library_size must be positive");
  const int64_t n_genes = static_cast<int64_t>(target.size());
  double scale = kTargetSum / library_size;
  const int workers = resolve_thread_count(threads);
  std::vector<double> aim(target.begin(), target.end());
  std::vector<GeneCells> genes(static_cast<size_t>(n_genes));
  std::vector<double> lambda(static_cast<size_t>(n_genes), 0.0);
  CsrMatrix best;
  double best_error = std::numeric_limits<double>::infinity();
  constexpr int kMaxRounds = 8;
  int stalled = 0;
  for (int round = 0; round < kMaxRounds; ++round) {
    parallel_for(n_genes, workers, 64, [&](int64_t begin, int64_t end, int) {
      std::vector<std::pair<int64_t, int64_t>> scratch;
      std::vector<int32_t> order;
      for (int64_t j = begin; j < end; ++j) {
        const auto counts = solve_gene_counts(aim[static_cast<size_t>(j)], n_cells, scale,
                                              lambda[static_cast<size_t>(j)], scratch);
        scatter_counts(counts, n_cells, seed, j, order, genes[static_cast<size_t>(j)]);
      }
    });
    CsrMatrix cells = assemble_rows(genes, n_cells);
    // Normalisation divides by the totals the cells actually have: solve the next round at that scale.
    const auto totals = cells.row_sums();
    const double mean_total =
        std::accumulate(totals.begin(), totals.end(), 0.0) / static_cast<double>(n_cells);
    if (mean_total > 0) scale = kTargetSum / mean_total;
    const auto achieved = column_means(log_normalize(cells, kTargetSum));
    double error = 0;
    for (size_t j = 0; j < aim.size(); ++j) {
      const double miss = target[j] - achieved[j];
      error += std::abs(miss);
      // Aim past the target by what the real library sizes took away.
      aim[j] = std::max(0.0, aim[j] + miss);
    }
    // Stop after two rounds without a real gain: converged, or at the floor integer counts allow.
    if (error < 0.98 * best_error) {
      stalled = 0;
    } else if (++stalled == 2) {
      break;
    }
    if (error < best_error) {
      best_error = error;
      best = std::move(cells);
    }
  }
  auto placed = gene_columns(best);
  refine_placement(placed, target, n_cells, best.row_sums());
  return assemble_rows(placed, n_cells);
}

}  // namespace lingshu
