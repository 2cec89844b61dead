#include "eval/perturbation_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "core/error.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "core/random.h"
#include "data/counts_check.h"
#include "data/preprocess.h"
#include "eval/de.h"
#include "eval/population_metrics.h"
#include "eval/stats.h"

namespace lingshu {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- inputs -------------------------------------------------------------------------------

struct GeneMatch {
  std::vector<std::string> names;
  std::vector<int64_t> real_cols;
  std::vector<int64_t> pred_cols;
};

std::string first_names(const std::vector<std::string>& names, size_t n = 3) {
  std::string out;
  for (size_t i = 0; i < std::min(n, names.size()); ++i) out += (i ? ", " : "") + names[i];
  return names.size() > n ? out + ", ..." : out;
}

GeneMatch match_genes(const AnnData& real, const AnnData& pred, std::vector<std::string>& notes) {
  std::unordered_map<std::string, int64_t> pred_index;
  for (int64_t j = 0; j < pred.n_vars(); ++j)
    pred_index.emplace(pred.gene_names()[static_cast<size_t>(j)], j);
  GeneMatch match;
  std::set<std::string> seen;
  for (int64_t j = 0; j < real.n_vars(); ++j) {
    const std::string& name = real.gene_names()[static_cast<size_t>(j)];
    const auto it = pred_index.find(name);
    if (it == pred_index.end() || !seen.insert(name).second) continue;
    match.names.push_back(name);
    match.real_cols.push_back(j);
    match.pred_cols.push_back(it->second);
  }
  if (match.names.empty()) {
    throw UserError(fmt::format(
        "the real and predicted files share no gene names (real: {} genes, e.g. {}; predicted: {} genes, "
        "e.g. "
        "{}); both must name genes the same way in var (symbols or Ensembl IDs)",
        real.n_vars(), first_names(real.gene_names()), pred.n_vars(), first_names(pred.gene_names())));
  }
  if (static_cast<int64_t>(match.names.size()) < std::max(real.n_vars(), pred.n_vars())) {
    notes.push_back(fmt::format("scoring the {} genes both files share (real has {}, predicted has {})",
                                match.names.size(), real.n_vars(), pred.n_vars()));
  }
  return match;
}

// Counts (or expected counts) are required: normalisation of log or scaled values is meaningless.
void require_count_like(const AnnData& data, const std::string& which) {
  const auto bad = find_non_count(data.X);
  if (!bad) return;
  if (bad->problem != NonCountValue::Problem::NonInteger) {
    throw UserError(describe_non_count(*bad, data, which + " X"));
  }
  const float max_value =
      data.X.values.empty() ? 0.0f : *std::max_element(data.X.values.begin(), data.X.values.end());
  if (max_value <= 30.0f) {
    throw UserError(fmt::format(
        "{} X holds small non-integer values (largest {:.3g}): it looks log-normalised, but evaluation needs "
        "counts; write raw (or expected) counts to X",
        which, max_value));
  }
}

CsrMatrix metric_expression(const AnnData& data, const std::vector<int64_t>& cols, const std::string& which) {
  data.X.validate(which.c_str());
  require_count_like(data, which);
  // Library sizes come from all genes of the file, before restricting to the shared ones.
  return log_normalize(data.X).select_cols(cols);
}

const Column& require_obs_column(const AnnData& data, const std::string& name, const std::string& which,
                                 const char* option) {
  if (const Column* column = data.obs.find(name)) return *column;
  std::vector<std::string> available;
  for (const auto& c : data.obs.columns) available.push_back(c.name);
  throw UserError(fmt::format("{} has no obs column '{}' (it has: {}); name an existing column with {}",
                              which, name, available.empty() ? "none" : first_names(available, 12), option));
}

// Per-cell labels; nullopt for missing values.
std::vector<std::optional<std::string>> cell_labels(const Column& column) {
  std::vector<std::optional<std::string>> labels(static_cast<size_t>(column.size()));
  for (int64_t i = 0; i < column.size(); ++i) labels[static_cast<size_t>(i)] = column.label(i);
  return labels;
}

struct FileLabels {
  std::vector<std::optional<std::string>> pert;
  std::vector<std::optional<std::string>> context;  // all "" without a context column
};

FileLabels read_labels(const AnnData& data, const PerturbationEvalOptions& options,
                       const std::string& which) {
  if (options.context_col == options.pert_col) {
    throw UserError(
        fmt::format("--context-col and --pert-col both name '{}'; the context is another column "
                    "(cell type, cell line, donor)",
                    options.pert_col));
  }
  FileLabels labels;
  labels.pert = cell_labels(require_obs_column(data, options.pert_col, which, "--pert-col"));
  if (options.context_col.empty()) {
    labels.context.assign(labels.pert.size(), std::string());
  } else {
    labels.context = cell_labels(require_obs_column(data, options.context_col, which, "--context-col"));
  }
  return labels;
}

// One context: its perturbations (group k + 1 = perts[k], group 0 = control) in both files.
struct ContextPlan {
  std::string name;
  std::vector<std::string> perts;
  CellGroups real;
  CellGroups pred;
};

std::string context_phrase(const std::string& context) {
  return context.empty() ? std::string() : fmt::format(" in context '{}'", context);
}

CellGroups assign_groups(const FileLabels& labels, const std::string& context, const std::string& control,
                         const std::vector<std::string>& perts) {
  std::unordered_map<std::string, int32_t> group_of;
  group_of.emplace(control, 0);
  for (size_t k = 0; k < perts.size(); ++k) group_of.emplace(perts[k], static_cast<int32_t>(k + 1));
  CellGroups groups;
  groups.n_groups = static_cast<int32_t>(perts.size() + 1);
  groups.control = 0;
  groups.group_of_cell.assign(labels.pert.size(), -1);
  for (size_t i = 0; i < labels.pert.size(); ++i) {
    if (!labels.pert[i] || labels.context[i] != context) continue;
    const auto it = group_of.find(*labels.pert[i]);
    if (it != group_of.end()) groups.group_of_cell[i] = it->second;
  }
  return groups;
}

void require_enough_cells(const ContextPlan& plan, const CellGroups& groups, const std::string& which,
                          const std::string& control) {
  const auto sizes = groups.sizes();
  if (sizes[0] == 0) {
    throw UserError(
        fmt::format("{} has no control cells (label '{}'){}; name the control label with --control", which,
                    control, context_phrase(plan.name)));
  }
  for (size_t g = 0; g < sizes.size(); ++g) {
    const std::string& label = g == 0 ? control : plan.perts[g - 1];
    if (sizes[g] == 0) {
      throw UserError(
          fmt::format("{} has no cells of perturbation '{}'{}, which the real file has; predict every "
                      "perturbation of the real file",
                      which, label, context_phrase(plan.name)));
    }
    if (sizes[g] < 2) {
      throw UserError(
          fmt::format("{} has a single cell of '{}'{}: a rank test needs at least 2 cells per group; "
                      "drop that perturbation or add cells",
                      which, label, context_phrase(plan.name)));
    }
  }
}

std::vector<ContextPlan> plan_contexts(const FileLabels& real, const FileLabels& pred,
                                       const PerturbationEvalOptions& options,
                                       std::vector<std::string>& notes) {
  std::map<std::string, std::set<std::string>> real_perts;  // context -> perturbations (sorted)
  std::map<std::string, std::set<std::string>> pred_perts;
  for (size_t i = 0; i < real.pert.size(); ++i) {
    if (real.pert[i] && real.context[i]) real_perts[*real.context[i]].insert(*real.pert[i]);
  }
  for (size_t i = 0; i < pred.pert.size(); ++i) {
    if (pred.pert[i] && pred.context[i]) pred_perts[*pred.context[i]].insert(*pred.pert[i]);
  }
  std::vector<ContextPlan> plans;
  int64_t ignored_pred = 0, unpredicted = 0, without_control = 0;
  for (const auto& [context, perts] : real_perts) {
    ContextPlan plan;
    plan.name = context;
    // Scored: the real perturbations that the prediction covers (a prediction of held-out pairs
    // is scored against the whole real file without subsetting it first).
    const auto& predicted = pred_perts[context];
    for (const auto& p : perts) {
      if (p == options.control) continue;
      if (predicted.contains(p)) {
        plan.perts.push_back(p);
      } else {
        ++unpredicted;
      }
    }
    if (plan.perts.empty()) {
      if (perts.size() == 1)
        notes.push_back(fmt::format("real context '{}' has only control cells; skipped", context));
      continue;
    }
    for (const auto& p : pred_perts[context]) {
      if (p != options.control && !perts.contains(p)) ++ignored_pred;
    }
    plan.real = assign_groups(real, context, options.control, plan.perts);
    if (plan.real.sizes()[0] == 0) {
      notes.push_back(
          fmt::format("context '{}' has no real control cells (label '{}'): its {} pair(s) were "
                      "not scored",
                      context, options.control, plan.perts.size()));
      ++without_control;
      continue;
    }
    plan.pred = assign_groups(pred, context, options.control, plan.perts);
    require_enough_cells(plan, plan.real, "the real file", options.control);
    require_enough_cells(plan, plan.pred, "the predicted file", options.control);
    plans.push_back(std::move(plan));
  }
  if (plans.empty() && without_control > 0) {
    throw UserError(
        fmt::format("the real file has no control cells (label '{}') in any scored context; name "
                    "the control label with --control",
                    options.control));
  }
  if (plans.empty() && unpredicted > 0) {
    throw UserError(
        fmt::format("the predicted file covers none of the real file's {} (context, perturbation) pairs; "
                    "check --pert-col, --context-col and the labels",
                    unpredicted));
  }
  if (plans.empty()) {
    throw UserError(
        fmt::format("the real file has no perturbed cells: every labelled cell in obs '{}' is the "
                    "control '{}'; check --pert-col and --control",
                    options.pert_col, options.control));
  }
  if (unpredicted > 0) {
    notes.push_back(fmt::format(
        "{} real (context, perturbation) pair(s) not in the prediction were not scored", unpredicted));
  }
  if (ignored_pred > 0) {
    notes.push_back(
        fmt::format("{} predicted perturbation(s) absent from the real file were ignored", ignored_pred));
  }
  return plans;
}

// ---- FDR ------------------------------------------------------------------------------------

void apply_fdr(std::vector<DifferentialExpression>& tables, FdrScope scope) {
  if (scope == FdrScope::PerPerturbation) {
    for (auto& de : tables) apply_fdr_per_group(de);
    return;
  }
  // One BH over every (context, perturbation, gene) test of the file.
  std::vector<double> all;
  for (const auto& de : tables) {
    for (int32_t g = 0; g < de.n_groups; ++g) {
      if (g == de.control) continue;
      const auto row = DifferentialExpression::row(de.p_value, g, de.n_genes);
      all.insert(all.end(), row.begin(), row.end());
    }
  }
  const auto q = benjamini_hochberg(all);
  size_t next = 0;
  for (auto& de : tables) {
    de.fdr.assign(de.p_value.size(), 1.0);
    for (int32_t g = 0; g < de.n_groups; ++g) {
      if (g == de.control) continue;
      for (int64_t j = 0; j < de.n_genes; ++j) de.fdr[de.at(g, j)] = q[next++];
    }
  }
}

// ---- per-perturbation metrics ----------------------------------------------------------------

std::vector<int64_t> significant_genes(std::span<const double> fdr, double threshold) {
  std::vector<int64_t> genes;
  for (size_t j = 0; j < fdr.size(); ++j) {
    if (fdr[j] < threshold) genes.push_back(static_cast<int64_t>(j));
  }
  return genes;
}

// Largest |log2 FC| first; equal values keep gene order (cell-eval's ordinal rank).
void sort_by_effect(std::vector<int64_t>& genes, std::span<const double> log2_fc) {
  std::stable_sort(genes.begin(), genes.end(), [&](int64_t a, int64_t b) {
    return std::abs(log2_fc[static_cast<size_t>(a)]) > std::abs(log2_fc[static_cast<size_t>(b)]);
  });
}

}  // namespace

double de_overlap_score(std::vector<int64_t> real_sig, std::vector<int64_t> pred_sig,
                        std::span<const double> real_lfc, std::span<const double> pred_lfc) {
  const size_t k = real_sig.size();
  if (k == 0) return 0.0;
  sort_by_effect(real_sig, real_lfc);
  sort_by_effect(pred_sig, pred_lfc);
  pred_sig.resize(std::min(k, pred_sig.size()));
  std::sort(real_sig.begin(), real_sig.end());
  std::sort(pred_sig.begin(), pred_sig.end());
  std::vector<int64_t> common;
  std::set_intersection(real_sig.begin(), real_sig.end(), pred_sig.begin(), pred_sig.end(),
                        std::back_inserter(common));
  return static_cast<double>(common.size()) / static_cast<double>(k);
}

namespace {

double lfc_spearman(const std::vector<int64_t>& real_sig, std::span<const double> real_lfc,
                    std::span<const double> pred_lfc) {
  if (real_sig.size() < 2) return kNaN;
  std::vector<double> x, y;
  for (const int64_t j : real_sig) {
    x.push_back(real_lfc[static_cast<size_t>(j)]);
    y.push_back(pred_lfc[static_cast<size_t>(j)]);
  }
  return spearman_correlation(x, y);
}

double significance_auprc(std::span<const double> real_fdr, std::span<const double> pred_fdr,
                          double threshold) {
  std::vector<uint8_t> labels(real_fdr.size());
  std::vector<double> scores(real_fdr.size());
  size_t positives = 0;
  for (size_t j = 0; j < real_fdr.size(); ++j) {
    labels[j] = real_fdr[j] < threshold ? 1 : 0;
    positives += labels[j];
    // An FDR that underflowed to 0 is the strongest evidence, not a tie with 1e-10.
    scores[j] = -std::log10(std::max(pred_fdr[j], std::numeric_limits<double>::denorm_min()));
  }
  if (positives == 0 || positives == labels.size()) return kNaN;
  return average_precision(labels, scores);
}

double mean_absolute_error(std::span<const double> a, std::span<const double> b) {
  double sum = 0;
  for (size_t j = 0; j < a.size(); ++j) sum += std::abs(a[j] - b[j]);
  return a.empty() ? kNaN : sum / static_cast<double>(a.size());
}

std::vector<double> delta_of(const DifferentialExpression& de, int32_t group) {
  std::vector<double> delta(static_cast<size_t>(de.n_genes));
  for (int64_t j = 0; j < de.n_genes; ++j)
    delta[static_cast<size_t>(j)] = de.mean[de.at(group, j)] - de.mean[de.at(de.control, j)];
  return delta;
}

double mean_ignoring_nan(const std::vector<double>& values) {
  double sum = 0;
  int64_t n = 0;
  for (const double v : values) {
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  }
  return n == 0 ? kNaN : sum / static_cast<double>(n);
}

// cell-eval: over perturbations with any real significant gene; 1 when there are none.
double deg_count_spearman(const std::vector<PerturbationScore>& scores) {
  std::vector<double> real, pred;
  for (const auto& s : scores) {
    if (s.real_deg == 0) continue;
    real.push_back(static_cast<double>(s.real_deg));
    pred.push_back(static_cast<double>(s.pred_deg));
  }
  if (real.empty()) return 1.0;
  return spearman_correlation(real, pred);
}

// The median over pairs: a ratio whose denominator, for a perturbation that barely moves the cells,
// is near 0 would decide a mean alone.
double median_share(const std::vector<PerturbationScore>& scores) {
  std::vector<double> shares;
  for (const auto& s : scores)
    if (!std::isnan(s.energy_share)) shares.push_back(s.energy_share);
  return median(shares);
}

std::vector<MetricValue> summarize(const std::vector<PerturbationScore>& scores) {
  auto column = [&](double PerturbationScore::*field) {
    std::vector<double> v;
    for (const auto& s : scores) v.push_back(s.*field);
    return mean_ignoring_nan(v);
  };
  return {{"des", column(&PerturbationScore::des)},
          {"pds", column(&PerturbationScore::pds)},
          {"mae", column(&PerturbationScore::mae)},
          {"spearman_deg", deg_count_spearman(scores)},
          {"spearman_lfc", column(&PerturbationScore::spearman_lfc)},
          {"auprc", column(&PerturbationScore::auprc)},
          {"pearson_delta", column(&PerturbationScore::pearson_delta)},
          {"energy_distance", column(&PerturbationScore::energy_distance)},
          {"energy_share", median_share(scores)},
          {"knn_auc", column(&PerturbationScore::knn_auc)}};
}

// The rows of each group: [group][i].
std::vector<std::vector<int64_t>> rows_by_group(const CellGroups& groups) {
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(groups.n_groups));
  for (size_t i = 0; i < groups.group_of_cell.size(); ++i)
    if (const int32_t g = groups.group_of_cell[i]; g >= 0)
      rows[static_cast<size_t>(g)].push_back(static_cast<int64_t>(i));
  return rows;
}

// Each perturbation's population metrics in one context (scores: the context's, in plan order).
void score_populations(const ContextPlan& plan, const CsrMatrix& real_expr, const CsrMatrix& pred_expr,
                       const PerturbationEvalOptions& options, uint64_t stream,
                       std::span<PerturbationScore> scores, std::vector<std::string>& notes) {
  const auto real_rows = rows_by_group(plan.real);
  const auto pred_rows = rows_by_group(plan.pred);
  const std::vector<std::vector<int64_t>> perturbed(real_rows.begin() + 1, real_rows.end());
  const ContextPopulation space(real_expr, real_rows[0], perturbed, rnd::derive_seed(options.seed, stream),
                                options.threads);
  for (size_t k = 0; k < scores.size(); ++k) {
    const auto population = space.score(k, pred_expr, pred_rows[k + 1]);
    scores[k].energy_distance = population.energy_distance;
    scores[k].energy_share = population.energy_share;
    scores[k].knn_auc = population.knn_auc;
    if (std::isnan(population.energy_distance)) {
      notes.push_back(
          fmt::format("'{}'{}: {} real and {} predicted cells; the population metrics need {} "
                      "predicted and {} real cells (half are scored): n/a",
                      plan.perts[k], context_phrase(plan.name), real_rows[k + 1].size(),
                      pred_rows[k + 1].size(), kMinPopulationCells, 2 * kMinPopulationCells));
    }
  }
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// L1 distance over all columns but the (sorted) excluded ones, summed segment by segment so that
// equal inputs give bit-identical distances.
double l1_distance_excluding(const std::vector<double>& a, const std::vector<double>& b,
                             const std::vector<int64_t>& excluded_sorted) {
  double d = 0;
  size_t from = 0;
  auto add_range = [&](size_t begin, size_t end) {
    for (size_t j = begin; j < end; ++j) d += std::abs(a[j] - b[j]);
  };
  for (const int64_t skip : excluded_sorted) {
    add_range(from, static_cast<size_t>(skip));
    from = static_cast<size_t>(skip) + 1;
  }
  add_range(from, a.size());
  return d;
}

}  // namespace

// A knocked-down target is trivially predictable and would dominate the distance, so its columns
// are left out (cell-eval excludes the gene named like the perturbation; pairs name two).
std::vector<int64_t> perturbation_target_columns(const std::string& perturbation,
                                                 const std::vector<std::string>& genes) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= perturbation.size()) {
    const size_t end = std::min(perturbation.find('+', start), perturbation.size());
    parts.push_back(perturbation.substr(start, end - start));
    start = end + 1;
  }
  std::vector<int64_t> cols;
  for (size_t j = 0; j < genes.size(); ++j) {
    if (std::find(parts.begin(), parts.end(), genes[j]) != parts.end())
      cols.push_back(static_cast<int64_t>(j));
  }
  return cols;
}

std::vector<double> discrimination_scores(const std::vector<std::vector<double>>& real_deltas,
                                          const std::vector<std::vector<double>>& pred_deltas,
                                          const std::vector<std::vector<int64_t>>& excluded, int threads) {
  const size_t n = real_deltas.size();
  if (pred_deltas.size() != n || excluded.size() != n) {
    throw std::invalid_argument(
        "discrimination_scores: one real delta, predicted delta and exclusion list each");
  }
  std::vector<double> scores(n, kNaN);
  parallel_for(static_cast<int64_t>(n), threads, 1, [&](int64_t begin, int64_t end, int) {
    for (auto p = static_cast<size_t>(begin); p < static_cast<size_t>(end); ++p) {
      std::vector<int64_t> skip = excluded[p];
      std::sort(skip.begin(), skip.end());
      skip.erase(std::unique(skip.begin(), skip.end()), skip.end());
      std::vector<double> distance(n);
      for (size_t q = 0; q < n; ++q)
        distance[q] = l1_distance_excluding(real_deltas[q], pred_deltas[p], skip);
      // Rank 0 = the true perturbation is the nearest; ties share the middle rank.
      double rank = 0;
      for (size_t q = 0; q < n; ++q) {
        if (q == p) continue;
        if (distance[q] < distance[p]) rank += 1;
        if (distance[q] == distance[p]) rank += 0.5;
      }
      scores[p] = 1.0 - rank / static_cast<double>(n);
    }
  });
  return scores;
}

double PerturbationEvaluation::metric(const std::string& name) const {
  for (const auto& m : summary) {
    if (m.name == name) return m.value;
  }
  throw std::out_of_range("no perturbation metric named " + name);
}

PerturbationEvaluation evaluate_perturbations(const AnnData& real, const AnnData& pred,
                                              const PerturbationEvalOptions& options) {
  PerturbationEvaluation out;
  const FileLabels real_labels = read_labels(real, options, "the real file");
  const FileLabels pred_labels = read_labels(pred, options, "the predicted file");
  const GeneMatch genes = match_genes(real, pred, out.notes);
  out.genes = genes.names;
  const auto plans = plan_contexts(real_labels, pred_labels, options, out.notes);

  const CsrMatrix real_expr = metric_expression(real, genes.real_cols, "the real file");
  const CsrMatrix pred_expr = metric_expression(pred, genes.pred_cols, "the predicted file");
  std::vector<DifferentialExpression> real_de, pred_de;
  Progress progress("DE (Mann-Whitney U)", static_cast<int64_t>(2 * plans.size()), "tables");
  for (const auto& plan : plans) {
    real_de.push_back(differential_expression(real_expr, plan.real, options.threads));
    progress.update(static_cast<int64_t>(real_de.size() + pred_de.size()));
    pred_de.push_back(differential_expression(pred_expr, plan.pred, options.threads));
    progress.update(static_cast<int64_t>(real_de.size() + pred_de.size()));
  }
  progress.finish();
  apply_fdr(real_de, options.fdr_scope);
  apply_fdr(pred_de, options.fdr_scope);

  const int64_t n_genes = static_cast<int64_t>(genes.names.size());
  using Row = DifferentialExpression;
  for (size_t c = 0; c < plans.size(); ++c) {
    const auto& plan = plans[c];
    const auto& rd = real_de[c];
    const auto& pd = pred_de[c];
    std::vector<std::vector<double>> real_deltas, pred_deltas;
    std::vector<std::vector<int64_t>> excluded;
    for (size_t k = 0; k < plan.perts.size(); ++k) {
      real_deltas.push_back(delta_of(rd, static_cast<int32_t>(k + 1)));
      pred_deltas.push_back(delta_of(pd, static_cast<int32_t>(k + 1)));
      excluded.push_back(perturbation_target_columns(plan.perts[k], genes.names));
    }
    const auto pds = discrimination_scores(real_deltas, pred_deltas, excluded, options.threads);
    for (size_t k = 0; k < plan.perts.size(); ++k) {
      const auto g = static_cast<int32_t>(k + 1);
      const auto real_fdr = Row::row(rd.fdr, g, n_genes);
      const auto pred_fdr = Row::row(pd.fdr, g, n_genes);
      const auto real_lfc = Row::row(rd.log2_fold_change, g, n_genes);
      const auto pred_lfc = Row::row(pd.log2_fold_change, g, n_genes);
      const auto real_sig = significant_genes(real_fdr, options.fdr_threshold);
      const auto pred_sig = significant_genes(pred_fdr, options.fdr_threshold);
      PerturbationScore s;
      s.context = plan.name;
      s.perturbation = plan.perts[k];
      s.real_cells = rd.group_sizes[static_cast<size_t>(g)];
      s.pred_cells = pd.group_sizes[static_cast<size_t>(g)];
      s.real_deg = static_cast<int64_t>(real_sig.size());
      s.pred_deg = static_cast<int64_t>(pred_sig.size());
      s.des = de_overlap_score(real_sig, pred_sig, real_lfc, pred_lfc);
      s.pds = pds[k];
      s.mae = mean_absolute_error(Row::row(pd.mean, g, n_genes), Row::row(rd.mean, g, n_genes));
      s.pearson_delta = pearson_correlation(pred_deltas[k], real_deltas[k]);
      s.spearman_lfc = lfc_spearman(real_sig, real_lfc, pred_lfc);
      s.auprc = significance_auprc(real_fdr, pred_fdr, options.fdr_threshold);
      out.scores.push_back(std::move(s));
      if (options.keep_deltas) {
        out.real_delta.emplace_back(real_deltas[k].begin(), real_deltas[k].end());
        out.pred_delta.emplace_back(pred_deltas[k].begin(), pred_deltas[k].end());
      }
    }
    score_populations(plan, real_expr, pred_expr, options, c, std::span(out.scores).last(plan.perts.size()),
                      out.notes);
  }
  out.summary = summarize(out.scores);
  return out;
}

BaselineComparison compare_to_baseline(const PerturbationEvaluation& model,
                                       const PerturbationEvaluation& baseline) {
  BaselineComparison result;
  double sum = 0, vcc_sum = 0;
  for (const auto& def : kPerturbationMetrics) {
    NormalizedMetric m{def.name, model.metric(def.name), baseline.metric(def.name), 0.0};
    m.score = def.higher_is_better ? (m.value - m.baseline) / (1.0 - m.baseline) : 1.0 - m.value / m.baseline;
    if (!std::isfinite(m.score)) m.score = 0.0;  // NaN, or a baseline already at the best value
    m.score = std::max(m.score, 0.0);
    sum += m.score;
    if (m.name == "des" || m.name == "pds" || m.name == "mae") vcc_sum += m.score;
    result.metrics.push_back(m);
  }
  result.average = sum / static_cast<double>(result.metrics.size());
  result.vcc_average = vcc_sum / 3.0;
  const auto value_or_nan = [](const PerturbationEvaluation& e, const std::string& name) {
    const auto it =
        std::find_if(e.summary.begin(), e.summary.end(), [&](const auto& m) { return m.name == name; });
    return it == e.summary.end() ? kNaN : it->value;
  };
  for (const char* name : kPopulationMetrics) {
    if (const double value = value_or_nan(model, name);
        !std::isnan(value) || !std::isnan(value_or_nan(baseline, name)))
      result.metrics.push_back({name, value, value_or_nan(baseline, name), kNaN});
  }
  return result;
}

std::string per_perturbation_csv(const PerturbationEvaluation& evaluation) {
  std::string csv =
      "context,perturbation,real_cells,pred_cells,real_deg,pred_deg,des,pds,mae,pearson_delta,spearman_lfc,"
      "auprc,energy_distance,energy_share,knn_auc\n";
  for (const auto& s : evaluation.scores) {
    csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(s.context),
                       csv_field(s.perturbation), s.real_cells, s.pred_cells, s.real_deg, s.pred_deg, s.des,
                       s.pds, s.mae, s.pearson_delta, s.spearman_lfc, s.auprc, s.energy_distance,
                       s.energy_share, s.knn_auc);
  }
  return csv;
}

std::string summary_json(const PerturbationEvaluation& evaluation, const PerturbationEvalOptions& options,
                         const BaselineComparison* baseline) {
  nlohmann::ordered_json doc;
  doc["options"] = {{"pert_col", options.pert_col},
                    {"control", options.control},
                    {"context_col", options.context_col},
                    {"fdr_scope", options.fdr_scope == FdrScope::Global ? "global" : "per"},
                    {"fdr_threshold", options.fdr_threshold}};
  std::set<std::string> contexts;
  for (const auto& s : evaluation.scores) contexts.insert(s.context);
  doc["genes"] = evaluation.genes.size();
  doc["contexts"] = contexts.size();
  doc["perturbations"] = evaluation.scores.size();
  // NaN (an undefined metric) is written as null.
  for (const auto& m : evaluation.summary) doc["metrics"][m.name] = m.value;
  if (baseline) {
    for (const auto& m : baseline->metrics) {
      doc["baseline"]["metrics"][m.name] = {{"value", m.value}, {"baseline", m.baseline}, {"score", m.score}};
    }
    doc["baseline"]["average"] = baseline->average;
    doc["baseline"]["vcc_average"] = baseline->vcc_average;
  }
  doc["notes"] = evaluation.notes;
  return doc.dump(2) + "\n";
}

}  // namespace lingshu
