#include "baselines/factor_baseline.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "baselines/label_groups.h"
#include "core/balanced_draw.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/random.h"
#include "data/preprocess.h"
#include "eval/pca.h"

namespace lingshu {

namespace {

// One label's linear model: mean + components x scores in log1p CP10k, and per gene the factor
// that makes the label's expected counts add up to its real ones.
struct LabelModel {
  std::vector<double> mean;     // per gene
  PcaResult pca;                // scores: one row per training cell of the label
  std::vector<double> sizes;    // library size of each training cell
  std::vector<double> rescale;  // per gene
};

// The expected counts of a cell with `scores` and library size `size`, before the rescaling.
void expected_counts(const LabelModel& m, std::span<const float> scores, double size,
                     std::vector<double>& out) {
  const int64_t G = static_cast<int64_t>(m.mean.size());
  out.assign(m.mean.begin(), m.mean.end());
  for (int64_t r = 0; r < m.pca.n_components(); ++r) {
    const double s = scores[static_cast<size_t>(r)];
    const auto component = m.pca.components.row(r);
    for (int64_t g = 0; g < G; ++g) out[static_cast<size_t>(g)] += s * component[static_cast<size_t>(g)];
  }
  for (auto& v : out) v = std::max(std::expm1(v), 0.0) * size / kDefaultTargetSum;
}

LabelModel fit_label(const CsrMatrix& counts, const std::vector<int64_t>& rows, int factors, uint64_t seed) {
  const CsrMatrix label_counts = counts.select_rows(rows);
  const CsrMatrix expression = log_normalize(label_counts);
  LabelModel m;
  m.mean = column_means(expression);
  m.sizes = label_counts.row_sums();
  if (factors > 0) {
    PcaOptions options;
    options.n_components = factors;
    options.seed = seed;
    m.pca = pca(expression, options);
  } else {
    m.pca.scores = DenseMatrix(label_counts.n_rows, 0);
  }
  // Per gene: real total over expected total of the label's own cells, whose scores and sizes are
  // those the generated cells take.
  std::vector<double> expected_total(m.mean.size(), 0.0), row;
  for (int64_t i = 0; i < label_counts.n_rows; ++i) {
    expected_counts(m, m.pca.scores.row(i), m.sizes[static_cast<size_t>(i)], row);
    for (size_t g = 0; g < row.size(); ++g) expected_total[g] += row[g];
  }
  const std::vector<double> real_total = label_counts.col_sums();
  m.rescale.resize(m.mean.size());
  for (size_t g = 0; g < m.rescale.size(); ++g)
    m.rescale[g] = expected_total[g] > 0 ? real_total[g] / expected_total[g] : 0.0;
  return m;
}

// n shared among groups in proportion to their sizes, by largest remainders.
std::vector<int64_t> share_cells(const std::vector<std::vector<int64_t>>& groups, int64_t n) {
  double total = 0;
  for (const auto& g : groups) total += static_cast<double>(g.size());
  std::vector<int64_t> counts(groups.size());
  std::vector<std::pair<double, size_t>> remainders;
  int64_t given = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    const double exact = static_cast<double>(n) * static_cast<double>(groups[i].size()) / total;
    counts[i] = static_cast<int64_t>(std::floor(exact));
    given += counts[i];
    remainders.emplace_back(exact - static_cast<double>(counts[i]), i);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int64_t k = 0; k < n - given; ++k) ++counts[remainders[static_cast<size_t>(k)].second];
  return counts;
}

}  // namespace

FactorBaseline sample_factor_baseline(const AnnData& train, const FactorBaselineOptions& options) {
  if (train.n_obs() == 0) throw UserError("the training data holds no cells");
  if (options.factors < 1) throw UserError(fmt::format("--factors {}: need at least 1", options.factors));
  const LabelGroups groups = group_cells(train, options.label);
  const int64_t n_cells = options.n_cells > 0 ? options.n_cells : train.n_obs();
  const int64_t n_genes = train.n_vars();
  FactorBaseline result;

  // Per generated cell: its group and the training cell (within the group) whose state it takes.
  const auto per_group = share_cells(groups.rows, n_cells);
  std::vector<LabelModel> models;
  std::vector<int32_t> group_of_cell;
  std::vector<int64_t> source_of_cell;
  BalancedDraw draw(options.seed);  // every training cell's state once before any again
  for (size_t k = 0; k < groups.rows.size(); ++k) {
    const auto m = static_cast<int64_t>(groups.rows[k].size());
    int factors = options.factors;
    if (factors >= m) {
      factors = static_cast<int>(std::max<int64_t>(m - 2, 0));  // PCA of m cells has m - 1 directions
      const std::string name = groups.category_of_group[k] >= 0
                                   ? groups.categories[static_cast<size_t>(groups.category_of_group[k])]
                                   : "all cells";
      result.notes.push_back(fmt::format("label '{}' has {} training cells: {} factors instead of {}", name,
                                         m, factors, options.factors));
    }
    models.push_back(fit_label(train.X, groups.rows[k], factors, rnd::derive_seed(options.seed, k)));
    for (int64_t cell = 0; cell < per_group[k]; ++cell) {
      group_of_cell.push_back(static_cast<int32_t>(k));
      source_of_cell.push_back(draw.pick(k, cell, m));
    }
  }

  // Each cell has its own random stream, so the output does not depend on the threads.
  constexpr int64_t kGrain = 64;
  std::vector<CsrMatrix> chunks(static_cast<size_t>((n_cells + kGrain - 1) / kGrain));
  parallel_for(n_cells, options.threads, kGrain, [&](int64_t begin, int64_t end, int) {
    CsrMatrix& chunk = chunks[static_cast<size_t>(begin / kGrain)];
    chunk.n_cols = n_genes;
    std::vector<double> mean;
    std::vector<int32_t> cols;
    std::vector<float> vals;
    for (int64_t i = begin; i < end; ++i) {
      const LabelModel& m = models[static_cast<size_t>(group_of_cell[static_cast<size_t>(i)])];
      const int64_t source = source_of_cell[static_cast<size_t>(i)];
      expected_counts(m, m.pca.scores.row(source), m.sizes[static_cast<size_t>(source)], mean);
      std::mt19937_64 rng(rnd::derive_seed(options.seed, static_cast<uint64_t>(i)));
      cols.clear();
      vals.clear();
      for (int64_t g = 0; g < n_genes; ++g) {
        const double lambda = mean[static_cast<size_t>(g)] * m.rescale[static_cast<size_t>(g)];
        if (lambda <= 0) continue;
        if (const int64_t count = rnd::poisson(rng, lambda); count > 0) {
          cols.push_back(static_cast<int32_t>(g));
          vals.push_back(static_cast<float>(count));
        }
      }
      chunk.append_row(cols, vals);
    }
  });

  AnnData& out = result.cells;
  out.X.n_cols = n_genes;
  for (const auto& chunk : chunks) out.X.append_rows(chunk);
  out.var = train.var;
  for (int64_t i = 0; i < n_cells; ++i) out.obs.index.push_back(fmt::format("factor_{}", i));
  if (!options.label.empty()) out.obs.set(label_column(groups, options.label, group_of_cell));
  out.uns_strings = {{"lingshu_generator", "baseline factor"},
                     {"lingshu_seed", std::to_string(options.seed)},
                     {"lingshu_label", options.label},
                     {"lingshu_factors", std::to_string(options.factors)}};
  return result;
}

}  // namespace lingshu
