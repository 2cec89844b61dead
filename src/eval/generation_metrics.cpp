#include "eval/generation_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "core/random.h"
#include "data/preprocess.h"
#include "eval/de.h"
#include "eval/expression.h"
#include "eval/pca.h"
#include "eval/stats.h"

namespace lingshu {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The held-out classifier of the papers: 5 neighbours, fitted on 70% of the pooled cells.
constexpr int kClassifierNeighbors = 5;
constexpr double kClassifierTestShare = 0.3;

// ---------------------------------------------------------------------------------------------
// Pieces of evaluate_generation.

CsrMatrix stack_rows(const CsrMatrix& a, const CsrMatrix& b) {
  CsrMatrix out;
  out.n_rows = a.n_rows + b.n_rows;
  out.n_cols = a.n_cols;
  out.indices = a.indices;
  out.indices.insert(out.indices.end(), b.indices.begin(), b.indices.end());
  out.values = a.values;
  out.values.insert(out.values.end(), b.values.begin(), b.values.end());
  out.indptr = a.indptr;
  for (int64_t r = 1; r <= b.n_rows; ++r) out.indptr.push_back(a.nnz() + b.indptr[r]);
  return out;
}

// The labels of a column as indices into `names`; -1 where missing or unknown.
std::vector<int32_t> label_codes(const Column& column, const std::vector<std::string>& names) {
  std::map<std::string, int32_t> index;
  for (size_t i = 0; i < names.size(); ++i) index.emplace(names[i], static_cast<int32_t>(i));
  std::vector<int32_t> codes(static_cast<size_t>(column.size()), -1);
  for (int64_t i = 0; i < column.size(); ++i) {
    if (const auto label = column.label(i)) {
      const auto it = index.find(*label);
      if (it != index.end()) codes[static_cast<size_t>(i)] = it->second;
    }
  }
  return codes;
}

// Cell types present among the real cells, in the column's category order (sorted for text columns).
std::vector<std::string> present_types(const Column& column) {
  std::vector<std::string> seen;
  std::map<std::string, bool> present;
  for (int64_t i = 0; i < column.size(); ++i) {
    if (const auto label = column.label(i)) present[*label] = true;
  }
  if (column.kind == Column::Kind::Categorical) {
    for (const auto& c : column.categories) {
      if (present.count(c)) seen.push_back(c);
    }
  } else {
    for (const auto& [name, unused] : present) seen.push_back(name);
  }
  return seen;
}

std::vector<double> fractions(const std::vector<int32_t>& codes, size_t n_types) {
  std::vector<double> counts(n_types, 0.0);
  double total = 0;
  for (const int32_t c : codes) {
    if (c < 0) continue;
    counts[static_cast<size_t>(c)] += 1;
    total += 1;
  }
  for (double& c : counts) c = total > 0 ? c / total : 0.0;
  return counts;
}

// Per-type means (types x genes) of the cells with a code; rows of empty types are NaN.
std::vector<double> type_means(const CsrMatrix& values, const std::vector<int32_t>& codes, int32_t n_types) {
  CellGroups groups;
  groups.group_of_cell = codes;
  groups.n_groups = n_types;
  groups.control = 0;
  return group_column_means(values, groups);
}

// The genes whose mean in the type most exceeds their mean over the other labelled real cells.
std::vector<int64_t> marker_genes(const std::vector<double>& means, const std::vector<int64_t>& sizes,
                                  int32_t type, int64_t n_genes, int n_markers) {
  const auto t = static_cast<size_t>(type);
  const int64_t n_rest = std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) - sizes[t];
  std::vector<double> score(static_cast<size_t>(n_genes));
  for (int64_t g = 0; g < n_genes; ++g) {
    double rest_sum = 0;
    for (size_t u = 0; u < sizes.size(); ++u) {
      if (u != t && sizes[u] > 0)
        rest_sum +=
            means[u * static_cast<size_t>(n_genes) + static_cast<size_t>(g)] * static_cast<double>(sizes[u]);
    }
    const double own = means[t * static_cast<size_t>(n_genes) + static_cast<size_t>(g)];
    // With a single type there is no "rest": the most expressed genes stand in for markers.
    score[static_cast<size_t>(g)] = n_rest > 0 ? own - rest_sum / static_cast<double>(n_rest) : own;
  }
  std::vector<int64_t> order(static_cast<size_t>(n_genes));
  std::iota(order.begin(), order.end(), 0);
  const auto k = std::min<size_t>(static_cast<size_t>(n_markers), order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](int64_t a, int64_t b) {
                      return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)] ||
                             (score[static_cast<size_t>(a)] == score[static_cast<size_t>(b)] && a < b);
                    });
  order.resize(k);
  return order;
}

// The real cells' label column and the types present in it; checked before any long computation.
std::pair<const Column*, std::vector<std::string>> require_labels(const ExpressionPair& pair,
                                                                  const std::string& label) {
  const Column* column = pair.real_obs.find(label);
  if (column == nullptr) {
    std::string names;
    for (const auto& c : pair.real_obs.columns) names += (names.empty() ? "" : ", ") + c.name;
    throw UserError(fmt::format("--label {}: {} has no obs column '{}'; available: {}", label, pair.real_name,
                                label, names.empty() ? "(none)" : names));
  }
  std::vector<std::string> types = present_types(*column);
  if (types.empty()) {
    throw UserError(
        fmt::format("--label {}: the column '{}' of {} holds no labels", label, label, pair.real_name));
  }
  return {column, std::move(types)};
}

// Returns the grouping of the generated cells for the per-type metrics: declared labels when the
// generated file has them, else the transferred ones (-1 = no type).
// Label transfer: each generated cell (rows n.. of `points`) takes the vote of its `k` nearest
// labelled real cells (rows ..n, labels `real_types`, -1 = none); `unlabelled` counts those left out.
std::vector<int32_t> transferred_labels(const DenseMatrix& points, const std::vector<int32_t>& real_types,
                                        int64_t n, int k, int32_t n_types, int64_t& unlabelled) {
  std::vector<int64_t> labelled;
  for (int64_t i = 0; i < n; ++i) {
    if (real_types[static_cast<size_t>(i)] >= 0) labelled.push_back(i);
  }
  unlabelled = n - static_cast<int64_t>(labelled.size());
  DenseMatrix reference(static_cast<int64_t>(labelled.size()), points.cols);
  std::vector<int32_t> reference_labels;
  for (size_t r = 0; r < labelled.size(); ++r) {
    const auto row = points.row(labelled[r]);
    std::copy(row.begin(), row.end(), reference.data.begin() + static_cast<int64_t>(r) * reference.cols);
    reference_labels.push_back(real_types[static_cast<size_t>(labelled[r])]);
  }
  const int label_k = std::min<int>(k, static_cast<int>(labelled.size()));
  return transfer_labels(knn_between(points.slice_rows(n, 2 * n), reference, label_k), reference_labels,
                         n_types);
}

std::vector<int32_t> evaluate_cell_types(const ExpressionPair& pair, const GenerationOptions& options,
                                         const PcaResult& pcs, GenerationEvaluation& out) {
  GenerationMetrics& m = out.metrics;
  const auto [real_column, types] = require_labels(pair, options.label);
  const auto n_types = static_cast<int32_t>(types.size());
  const int64_t n = pair.n_cells();
  out.real_types = label_codes(*real_column, types);

  out.generated_types =
      transferred_labels(pcs.scores, out.real_types, n, options.label_k, n_types, m.unlabelled_real_cells);

  // Declared labels (conditional generation) group the generated cells for marker means when present.
  std::vector<int32_t> grouping = out.generated_types;
  m.generated_grouping = "transferred";
  m.label_agreement = kNaN;
  std::vector<int64_t> declared_of_type(types.size(), 0), agreed_of_type(types.size(), 0);
  if (const Column* declared_column = pair.generated_obs.find(options.label)) {
    const auto declared = label_codes(*declared_column, types);
    int64_t known = 0;
    int64_t agree = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t d = declared[static_cast<size_t>(i)];
      if (d < 0) continue;
      ++known;
      const bool same = d == out.generated_types[static_cast<size_t>(i)];
      agree += same ? 1 : 0;
      ++declared_of_type[static_cast<size_t>(d)];
      agreed_of_type[static_cast<size_t>(d)] += same ? 1 : 0;
    }
    if (known > 0) {
      grouping = declared;
      m.generated_grouping = "declared";
      m.label_agreement = static_cast<double>(agree) / static_cast<double>(known);
    }
  }

  const auto real_fraction = fractions(out.real_types, types.size());
  const auto generated_fraction = fractions(out.generated_types, types.size());
  m.proportion_tv = total_variation(real_fraction, generated_fraction);

  const auto real_means = type_means(pair.real, out.real_types, n_types);
  const auto generated_means = type_means(pair.generated, grouping, n_types);
  std::vector<int64_t> real_sizes(types.size(), 0);
  std::vector<int64_t> generated_sizes(types.size(), 0);
  std::vector<int64_t> grouped_sizes(types.size(), 0);
  for (const int32_t c : out.real_types) real_sizes[static_cast<size_t>(std::max(c, 0))] += c >= 0 ? 1 : 0;
  for (const int32_t c : out.generated_types) generated_sizes[static_cast<size_t>(c)] += 1;
  for (const int32_t c : grouping) grouped_sizes[static_cast<size_t>(std::max(c, 0))] += c >= 0 ? 1 : 0;

  const int64_t n_genes = pair.n_genes();
  double marker_sum = 0;
  int marker_count = 0;
  for (int32_t t = 0; t < n_types; ++t) {
    const auto ts = static_cast<size_t>(t);
    CellTypeResult row;
    row.name = types[ts];
    row.n_real = real_sizes[ts];
    row.n_generated = generated_sizes[ts];
    row.n_grouped_generated = grouped_sizes[ts];
    row.real_fraction = real_fraction[ts];
    row.generated_fraction = generated_fraction[ts];
    row.marker_pearson = kNaN;
    row.agreement = declared_of_type[ts] > 0
                        ? static_cast<double>(agreed_of_type[ts]) / static_cast<double>(declared_of_type[ts])
                        : kNaN;
    const auto markers = marker_genes(real_means, real_sizes, t, n_genes, options.n_markers);
    for (const int64_t g : markers) row.markers.push_back(pair.genes[static_cast<size_t>(g)]);
    if (row.n_grouped_generated >= options.min_group_cells && !markers.empty()) {
      std::vector<double> real_marker_means;
      std::vector<double> generated_marker_means;
      for (const int64_t g : markers) {
        const size_t at = ts * static_cast<size_t>(n_genes) + static_cast<size_t>(g);
        real_marker_means.push_back(real_means[at]);
        generated_marker_means.push_back(generated_means[at]);
      }
      row.marker_pearson = pearson_correlation(real_marker_means, generated_marker_means);
      if (std::isfinite(row.marker_pearson)) {
        marker_sum += row.marker_pearson;
        ++marker_count;
      }
    }
    m.cell_types.push_back(std::move(row));
  }
  m.marker_pearson_mean = marker_count > 0 ? marker_sum / marker_count : kNaN;
  if (m.unlabelled_real_cells > 0) {
    m.notes.push_back(
        fmt::format("{} real cells have no '{}' label and are left out of the cell-type metrics",
                    m.unlabelled_real_cells, options.label));
  }
  return grouping;
}

// Sum of squared deviations from the mean of each column of a dense rows x cols matrix, and the
// means; two passes, so that a constant column gives exactly 0.
void column_moments(const std::vector<double>& dense, size_t rows, size_t cols, std::vector<double>& means,
                    std::vector<double>& squares) {
  means.assign(cols, 0.0);
  squares.assign(cols, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) means[c] += dense[r * cols + c];
  }
  for (double& v : means) v /= static_cast<double>(rows);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      const double d = dense[r * cols + c] - means[c];
      squares[c] += d * d;
    }
  }
}

// The listed rows of `m`, restricted to `genes`, as a dense rows x genes matrix (double).
std::vector<double> dense_block(const CsrMatrix& m, std::span<const int64_t> rows,
                                const std::vector<int64_t>& genes) {
  std::vector<int32_t> position(static_cast<size_t>(m.n_cols), -1);
  for (size_t i = 0; i < genes.size(); ++i) position[static_cast<size_t>(genes[i])] = static_cast<int32_t>(i);
  std::vector<double> out(rows.size() * genes.size(), 0.0);
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto cols = m.row_indices(rows[r]);
    const auto vals = m.row_values(rows[r]);
    for (size_t p = 0; p < cols.size(); ++p) {
      const int32_t at = position[static_cast<size_t>(cols[p])];
      if (at >= 0) out[r * genes.size() + static_cast<size_t>(at)] = vals[p];
    }
  }
  return out;
}

// Pearson correlations between the columns of a dense rows x cols matrix; a constant column
// correlates 0 with everything (itself included). `varying` counts the non-constant columns.
std::vector<double> correlation_matrix(const std::vector<double>& dense, size_t rows, size_t cols,
                                       int64_t& varying) {
  std::vector<double> means, squares;
  column_moments(dense, rows, cols, means, squares);
  std::vector<double> centred(dense.size());
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) centred[r * cols + c] = dense[r * cols + c] - means[c];
  }
  varying = std::count_if(squares.begin(), squares.end(), [](double s) { return s > 0; });
  std::vector<double> corr(cols * cols, 0.0);
  for (size_t i = 0; i < cols; ++i) {
    if (!(squares[i] > 0)) continue;
    corr[i * cols + i] = 1.0;
    for (size_t j = i + 1; j < cols; ++j) {
      if (!(squares[j] > 0)) continue;
      double cross = 0;
      for (size_t r = 0; r < rows; ++r) cross += centred[r * cols + i] * centred[r * cols + j];
      // Rounding can step just past +-1 for (anti)collinear columns.
      const double r_ij = std::clamp(cross / std::sqrt(squares[i] * squares[j]), -1.0, 1.0);
      corr[i * cols + j] = r_ij;
      corr[j * cols + i] = r_ij;
    }
  }
  return corr;
}

// Gene-gene structure per cell type (real cells by their label, generated cells by `grouping`), the
// real-cell-weighted means, and the matrices of the largest scored type for the report.
void evaluate_gene_gene(const ExpressionPair& pair, const GenerationOptions& options,
                        const std::vector<int32_t>& grouping, GenerationEvaluation& out) {
  GenerationMetrics& m = out.metrics;
  const size_t n_types = m.cell_types.size();
  std::vector<std::vector<int64_t>> real_rows(n_types), generated_rows(n_types);
  for (size_t i = 0; i < out.real_types.size(); ++i) {
    if (out.real_types[i] >= 0)
      real_rows[static_cast<size_t>(out.real_types[i])].push_back(static_cast<int64_t>(i));
  }
  for (size_t i = 0; i < grouping.size(); ++i) {
    if (grouping[i] >= 0) generated_rows[static_cast<size_t>(grouping[i])].push_back(static_cast<int64_t>(i));
  }
  double corr_sum = 0, corr_weight = 0, mad_sum = 0, mad_weight = 0;
  int64_t large_enough = 0;
  int64_t largest_cells = -1;
  for (size_t t = 0; t < n_types; ++t) {
    CellTypeResult& row = m.cell_types[t];
    row.gene_gene_corr = kNaN;
    row.gene_gene_mad = kNaN;
    row.gene_gene_genes = 0;
    const auto min_cells = static_cast<size_t>(std::max(2, options.gene_gene_min_cells));
    if (real_rows[t].size() < min_cells || generated_rows[t].size() < min_cells) continue;
    ++large_enough;
    GeneGeneStructure s = gene_gene_structure(pair.real, real_rows[t], pair.generated, generated_rows[t],
                                              options.gene_gene_genes);
    if (s.genes.empty()) continue;
    row.gene_gene_corr = s.corr;
    row.gene_gene_mad = s.mad;
    row.gene_gene_genes = static_cast<int64_t>(s.genes.size());
    ++m.gene_gene_types;
    const auto weight = static_cast<double>(real_rows[t].size());
    if (std::isfinite(s.corr)) {
      corr_sum += weight * s.corr;
      corr_weight += weight;
    }
    mad_sum += weight * s.mad;
    mad_weight += weight;
    if (static_cast<int64_t>(real_rows[t].size()) > largest_cells) {
      largest_cells = static_cast<int64_t>(real_rows[t].size());
      out.gene_gene_type = static_cast<int32_t>(t);
      out.gene_gene_genes.clear();
      for (const int64_t g : s.genes) out.gene_gene_genes.push_back(pair.genes[static_cast<size_t>(g)]);
      out.gene_gene_real = std::move(s.real_corr);
      out.gene_gene_generated = std::move(s.generated_corr);
    }
  }
  m.gene_gene_corr = corr_weight > 0 ? corr_sum / corr_weight : kNaN;
  m.gene_gene_mad = mad_weight > 0 ? mad_sum / mad_weight : kNaN;
  if (large_enough == 0) {
    m.notes.push_back(fmt::format(
        "gene-gene structure not computed: no '{}' type has at least {} real and {} generated cells "
        "(generated cells grouped by {} labels)",
        options.label, options.gene_gene_min_cells, options.gene_gene_min_cells, m.generated_grouping));
  } else if (m.gene_gene_types == 0) {
    m.notes.push_back(
        "gene-gene structure not computed: in every type with enough cells, fewer than 3 of the real type's "
        "most variable genes vary among the generated cells");
  } else if (m.gene_gene_types < static_cast<int64_t>(n_types)) {
    int64_t scored_cells = 0, labelled_cells = 0;
    for (const auto& t : m.cell_types) {
      labelled_cells += t.n_real;
      scored_cells += t.gene_gene_genes > 0 ? t.n_real : 0;
    }
    const int64_t too_small = static_cast<int64_t>(n_types) - large_enough;
    const int64_t too_flat = large_enough - m.gene_gene_types;
    std::string why;
    if (too_small > 0)
      why = fmt::format("{} with fewer than {} cells on a side", too_small, options.gene_gene_min_cells);
    if (too_flat > 0) {
      why += fmt::format("{}{} with fewer than 3 of their most variable genes varying in the generated cells",
                         why.empty() ? "" : ", ", too_flat);
    }
    m.notes.push_back(fmt::format(
        "gene-gene structure scored on {} of {} '{}' types ({:.0f}% of labelled real cells); not scored: {}",
        m.gene_gene_types, n_types, options.label,
        100.0 * static_cast<double>(scored_cells) / static_cast<double>(std::max<int64_t>(1, labelled_cells)),
        why));
  }
}

nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

GeneGeneStructure gene_gene_structure(const CsrMatrix& real, std::span<const int64_t> real_rows,
                                      const CsrMatrix& generated, std::span<const int64_t> generated_rows,
                                      int n_genes) {
  if (real.n_cols != generated.n_cols)
    throw std::invalid_argument("gene_gene_structure: column counts differ");
  GeneGeneStructure out;
  out.corr = kNaN;
  out.mad = kNaN;
  if (real_rows.size() < 2 || generated_rows.size() < 2 || n_genes < 3) return out;

  // Variance of every column over the real rows, from the stored values (two passes: the sum of
  // squared deviations of an all-zero or constant column is exactly 0).
  const auto n_cols = static_cast<size_t>(real.n_cols);
  const auto n = static_cast<double>(real_rows.size());
  std::vector<double> mean(n_cols, 0.0);
  std::vector<double> squares(n_cols, 0.0);
  std::vector<int64_t> stored(n_cols, 0);
  for (const int64_t r : real_rows) {
    const auto cols = real.row_indices(r);
    const auto vals = real.row_values(r);
    for (size_t p = 0; p < cols.size(); ++p) mean[static_cast<size_t>(cols[p])] += vals[p];
  }
  for (double& v : mean) v /= n;
  for (const int64_t r : real_rows) {
    const auto cols = real.row_indices(r);
    const auto vals = real.row_values(r);
    for (size_t p = 0; p < cols.size(); ++p) {
      const auto c = static_cast<size_t>(cols[p]);
      const double d = vals[p] - mean[c];
      squares[c] += d * d;
      ++stored[c];
    }
  }
  std::vector<int64_t> candidates;
  for (size_t c = 0; c < n_cols; ++c) {
    squares[c] += (n - static_cast<double>(stored[c])) * mean[c] * mean[c];  // the implicit zeros
    if (squares[c] > 0) candidates.push_back(static_cast<int64_t>(c));
  }
  const auto k = std::min<size_t>(static_cast<size_t>(n_genes), candidates.size());
  if (k < 3) return out;
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(k), candidates.end(),
                    [&](int64_t a, int64_t b) {
                      const double va = squares[static_cast<size_t>(a)];
                      const double vb = squares[static_cast<size_t>(b)];
                      return va > vb || (va == vb && a < b);
                    });
  candidates.resize(k);

  int64_t real_varying = 0;
  int64_t generated_varying = 0;
  std::vector<double> real_corr =
      correlation_matrix(dense_block(real, real_rows, candidates), real_rows.size(), k, real_varying);
  std::vector<double> generated_corr = correlation_matrix(dense_block(generated, generated_rows, candidates),
                                                          generated_rows.size(), k, generated_varying);
  if (real_varying < 3 || generated_varying < 3) return out;

  std::vector<double> real_upper, generated_upper;
  double abs_sum = 0;
  for (size_t i = 0; i < k; ++i) {
    for (size_t j = i + 1; j < k; ++j) {
      real_upper.push_back(real_corr[i * k + j]);
      generated_upper.push_back(generated_corr[i * k + j]);
      abs_sum += std::abs(real_corr[i * k + j] - generated_corr[i * k + j]);
    }
  }
  out.genes = std::move(candidates);
  out.real_corr = std::move(real_corr);
  out.generated_corr = std::move(generated_corr);
  out.corr = pearson_correlation(real_upper, generated_upper);
  out.mad = abs_sum / static_cast<double>(real_upper.size());
  return out;
}

double total_variation(std::span<const double> p, std::span<const double> q) {
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += std::abs(p[i] - q[i]);
  return sum / 2;
}

GenerationEvaluation evaluate_generation(const ExpressionPair& pair, const GenerationOptions& options) {
  const int64_t n = pair.n_cells();
  if (n < 2 || pair.generated.n_rows != n) {
    throw UserError(fmt::format("need at least 2 cells on each side to compare (have {} real, {} generated)",
                                n, pair.generated.n_rows));
  }
  if (!options.label.empty()) require_labels(pair, options.label);  // fail before the long part
  GenerationEvaluation out;
  out.options = options;
  GenerationMetrics& m = out.metrics;
  m.n_cells = n;
  m.n_genes = pair.n_genes();
  m.notes = pair.notes;
  m.label = options.label;
  out.genes = pair.genes;
  Progress progress("eval generation", 5, "steps");
  // Wall time per stage, for the JSON output and benchmarks.
  auto stage_start = std::chrono::steady_clock::now();
  std::string stage;
  const auto begin_stage = [&](int index, const std::string& name) {
    const auto now = std::chrono::steady_clock::now();
    if (!stage.empty())
      out.stage_seconds.emplace_back(stage, std::chrono::duration<double>(now - stage_start).count());
    stage = name;
    stage_start = now;
    if (index >= 0) progress.update(index, name);
  };

  begin_stage(0, "gene means");
  out.real_gene_means = column_means(pair.real);
  out.generated_gene_means = column_means(pair.generated);
  m.mean_pearson = pearson_correlation(out.real_gene_means, out.generated_gene_means);
  m.mean_spearman = spearman_correlation(out.real_gene_means, out.generated_gene_means);

  begin_stage(1, "1-D Wasserstein");
  m.wasserstein1 = mean_column_wasserstein1(pair.real, pair.generated, options.threads);

  begin_stage(2, "PCA");
  PcaOptions pca_options;
  pca_options.n_components = options.n_pcs;
  pca_options.seed = options.seed;
  const PcaResult pcs = pca(stack_rows(pair.real, pair.generated), pca_options);
  m.n_pcs = pcs.n_components();
  out.embedding = pcs.scores.first_cols(std::min<int64_t>(2, pcs.scores.cols));
  out.explained_variance_ratio = pcs.explained_variance_ratio;

  begin_stage(3, "MMD");
  m.mmd = mmd_gaussian(pcs.scores.slice_rows(0, n), pcs.scores.slice_rows(n, 2 * n), 5, 2.0, options.threads);

  begin_stage(4, "kNN");
  const int k = std::min<int>(options.k_neighbors, static_cast<int>(2 * n - 1));
  const KnnGraph graph = knn_within(pcs.scores, k);
  std::vector<uint8_t> is_generated(static_cast<size_t>(2 * n), 0);
  std::fill(is_generated.begin() + n, is_generated.end(), 1);
  out.generated_neighbour_fraction = marked_neighbour_fraction(graph, is_generated);
  m.knn_auc = roc_auc(is_generated, out.generated_neighbour_fraction);
  const std::vector<int32_t> source(is_generated.begin(), is_generated.end());
  m.ilisi = scaled_ilisi(graph, source, 2);
  m.classifier_auc = knn_classifier_auc(pcs.scores, is_generated, kClassifierNeighbors, kClassifierTestShare,
                                        rnd::derive_seed(options.seed, 4));

  m.copy_ratio = m.copy_generated_distance = m.copy_real_distance = kNaN;
  if (pair.train.n_rows > 0) {
    begin_stage(-1, "copy check");
    const CopyCheck copies =
        copy_check(pair.train, pair.real.select_cols(pair.train_columns),
                   pair.generated.select_cols(pair.train_columns), options.n_pcs, options.seed);
    m.copy_generated_distance = copies.generated_median;
    m.copy_real_distance = copies.real_median;
    m.copy_ratio = copies.ratio();
    m.copy_train_cells = pair.train.n_rows;
  }

  m.gene_gene_corr = kNaN;
  m.gene_gene_mad = kNaN;
  if (!options.label.empty()) {
    begin_stage(-1, "cell types");
    const std::vector<int32_t> grouping = evaluate_cell_types(pair, options, pcs, out);
    begin_stage(-1, "gene-gene structure");
    evaluate_gene_gene(pair, options, grouping, out);
  } else {
    m.notes.push_back(
        "gene-gene structure not computed: it compares gene-gene correlations within cell types; pass "
        "--label with the real file's cell-type column");
  }
  begin_stage(-1, "");
  progress.finish();
  return out;
}

nlohmann::json to_json(const GenerationMetrics& m) {
  nlohmann::json j;
  j["n_cells_per_side"] = m.n_cells;
  j["n_genes"] = m.n_genes;
  j["n_pcs"] = m.n_pcs;
  j["knn_auc"] = number(m.knn_auc);
  j["classifier_auc"] = number(m.classifier_auc);
  j["copy_ratio"] = number(m.copy_ratio);
  j["copy_generated_distance"] = number(m.copy_generated_distance);
  j["copy_real_distance"] = number(m.copy_real_distance);
  j["copy_train_cells"] = m.copy_train_cells;
  j["mmd"] = number(m.mmd);
  j["ilisi"] = number(m.ilisi);
  j["wasserstein1"] = number(m.wasserstein1);
  j["mean_pearson"] = number(m.mean_pearson);
  j["mean_spearman"] = number(m.mean_spearman);
  j["gene_gene_corr"] = number(m.gene_gene_corr);
  j["gene_gene_mad"] = number(m.gene_gene_mad);
  if (!m.label.empty()) {
    nlohmann::json types = nlohmann::json::array();
    for (const auto& t : m.cell_types) {
      types.push_back({{"cell_type", t.name},
                       {"n_real", t.n_real},
                       {"n_generated", t.n_generated},
                       {"real_fraction", number(t.real_fraction)},
                       {"generated_fraction", number(t.generated_fraction)},
                       {"n_grouped_generated", t.n_grouped_generated},
                       {"marker_pearson", number(t.marker_pearson)},
                       {"agreement", number(t.agreement)},
                       {"markers", t.markers},
                       {"gene_gene_corr", number(t.gene_gene_corr)},
                       {"gene_gene_mad", number(t.gene_gene_mad)},
                       {"gene_gene_genes", t.gene_gene_genes}});
    }
    j["cell_types"] = {{"label", m.label},
                       {"generated_grouping", m.generated_grouping},
                       {"proportion_tv", number(m.proportion_tv)},
                       {"label_agreement", number(m.label_agreement)},
                       {"marker_pearson_mean", number(m.marker_pearson_mean)},
                       {"gene_gene_types", m.gene_gene_types},
                       {"unlabelled_real_cells", m.unlabelled_real_cells},
                       {"per_type", types}};
  }
  j["notes"] = m.notes;
  return j;
}

std::string format_metrics_table(const GenerationMetrics& m) {
  const auto value = [](double v) {
    return std::isfinite(v) ? fmt::format("{:.4f}", v) : std::string("n/a");
  };
  std::string out =
      fmt::format("Generation metrics: {} real vs {} generated cells, {} shared genes, {} PCs\n\n", m.n_cells,
                  m.n_cells, m.n_genes, m.n_pcs);
  out += fmt::format("  {:<40} {:>9}   {}\n", "metric", "value", "indistinguishable from real");
  const auto row = [&](const std::string& name, double v, const std::string& ideal) {
    out += fmt::format("  {:<40} {:>9}   {}\n", name, value(v), ideal);
  };
  row("kNN real-vs-generated AUC", m.knn_auc, "0.5 (1 = separable; well below 0.5 = copies)");
  row("5-NN classifier AUC (held-out 30%)", m.classifier_auc, "0.5 (1 = separable)");
  if (std::isfinite(m.copy_ratio))
    row("copy check (nearest training cell)", m.copy_ratio, "1 (well below 1 = copies of training cells)");
  row("MMD (5 Gaussian kernels, PCs)", m.mmd, "near 0 (real halves ~0.01)");
  row("iLISI (scaled)", m.ilisi, "~0.93 at k=30 (0 = separate)");
  row("1-WD (mean per-gene Wasserstein-1)", m.wasserstein1, "near 0");
  row("gene-gene corr. of correlations", m.gene_gene_corr, "~real halves (independent genes ~0)");
  row("gene-gene correlation mean |diff|", m.gene_gene_mad, "~real halves (lower = closer)");
  row("Pearson of per-gene means", m.mean_pearson, "1");
  row("Spearman of per-gene means", m.mean_spearman, "1");
  if (!m.label.empty()) {
    row("cell-type proportion TV distance", m.proportion_tv, "0");
    row("marker-gene mean Pearson (avg)", m.marker_pearson_mean, "1");
    if (std::isfinite(m.label_agreement))
      row("declared vs transferred label agreement", m.label_agreement, "1");
    const bool declared = m.generated_grouping == "declared";
    out +=
        fmt::format("\n  {:<28} {:>8} {:>8} {:>10} {:>10} {:>9} {:>9} {:>9}{}\n", m.label, "real", "gen",
                    "real %", "gen %", "markers r", "gene-gene", "gg |diff|", declared ? "  agreement" : "");
    for (const auto& t : m.cell_types) {
      out += fmt::format("  {:<28} {:>8} {:>8} {:>9.1f}% {:>9.1f}% {:>9} {:>9} {:>9}{}\n", t.name, t.n_real,
                         t.n_generated, 100 * t.real_fraction, 100 * t.generated_fraction,
                         value(t.marker_pearson), value(t.gene_gene_corr), value(t.gene_gene_mad),
                         declared ? fmt::format("  {:>9}", value(t.agreement)) : "");
    }
    out += fmt::format(
        "  (generated cells labelled by kNN transfer from real cells; marker means and gene-gene structure "
        "grouped by {} labels)\n",
        m.generated_grouping);
  }
  for (const auto& note : m.notes) out += fmt::format("\nnote: {}", note);
  if (!m.notes.empty()) out += "\n";
  return out;
}

}  // namespace lingshu
