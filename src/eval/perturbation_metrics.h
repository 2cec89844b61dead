#pragma once
// Perturbation-prediction metrics with the Virtual Cell Challenge's cell-eval definitions
// (README "Evaluation"): each file (real, predicted) is log1p(counts / total * 1e4)-normalised and
// compared with its own control cells, per context when there is a context column.
//
//   DES            overlap of the top-k real and predicted significant genes by |log2 FC|, / k,
//                  k = number of real significant genes (0 when the real set is empty).
//   PDS            1 - rank / N of the true perturbation when all N real deltas of the context are
//                  ordered by L1 distance to the predicted delta (target genes left out; ties
//                  share the middle rank).
//   MAE            mean |predicted - real| pseudobulk over genes.
//   Pearson-delta  Pearson of predicted vs real delta (pseudobulk minus control pseudobulk).
//   Spearman LFC   Spearman of predicted vs real log2 FC over the real significant genes.
//   AUPRC          average precision of -log10(predicted FDR) for the real significant genes.
//   Spearman #DEG  across perturbations with any real significant gene: real vs predicted counts.
// And, beyond cell-eval, the population metrics of eval/population_metrics.h (energy distance, its
// share of the control's, kNN AUC): whether the predicted cells look like the real ones, not only
// their mean.
//
// DE is the two-sided tie-corrected Mann-Whitney U with continuity correction (eval/de.h) and
// Benjamini-Hochberg FDR, per perturbation or over the whole table; significant = FDR < 0.05.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/anndata.h"

namespace lingshu {

enum class FdrScope { PerPerturbation, Global };

struct PerturbationEvalOptions {
  std::string pert_col = "condition";
  std::string control = "control";
  std::string context_col;  // "" = every cell in one context
  FdrScope fdr_scope = FdrScope::PerPerturbation;
  double fdr_threshold = 0.05;
  int threads = 0;           // 0 = all hardware threads
  uint64_t seed = 0;         // subsamples and PCA of the population metrics
  bool keep_deltas = false;  // keep each perturbation's real and predicted delta (for plots)
};

// One (context, perturbation).
struct PerturbationScore {
  std::string context;  // "" without a context column
  std::string perturbation;
  int64_t real_cells = 0;
  int64_t pred_cells = 0;
  int64_t real_deg = 0;  // significant genes
  int64_t pred_deg = 0;
  double des = 0;
  double pds = 0;
  double mae = 0;
  double pearson_delta = 0;
  double spearman_lfc = 0;  // NaN with fewer than 2 real significant genes
  double auprc = 0;         // NaN when every gene or no gene is really significant
  // Population metrics: NaN with fewer than kMinPopulationCells cells on either side.
  double energy_distance = 0;
  double energy_share = 0;
  double knn_auc = 0;
};

// Summary metrics, in the order reported.
struct MetricDefinition {
  const char* name;
  bool higher_is_better;
};
inline constexpr MetricDefinition kPerturbationMetrics[] = {
    {"des", true},          {"pds", true},   {"mae", false},          {"spearman_deg", true},
    {"spearman_lfc", true}, {"auprc", true}, {"pearson_delta", true},
};
// Reported after them, not part of cell-eval's baseline scores (lower is better; the AUC's best is 0.5).
inline constexpr const char* kPopulationMetrics[] = {"energy_distance", "energy_share", "knn_auc"};

struct MetricValue {
  std::string name;
  double value = 0;  // mean over perturbations (NaN ones skipped); spearman_deg is one number,
                     // energy_share the median
};

struct PerturbationEvaluation {
  std::vector<std::string> genes;  // the genes both files share, in the real file's order
  std::vector<PerturbationScore> scores;
  std::vector<MetricValue> summary;  // kPerturbationMetrics, then kPopulationMetrics
  // Per score, when keep_deltas: pseudobulk minus control pseudobulk over `genes`.
  std::vector<std::vector<float>> real_delta;
  std::vector<std::vector<float>> pred_delta;
  std::vector<std::string> notes;  // things a user should know (genes or perturbations left out)

  double metric(const std::string& name) const;
};

// Scores `pred` against `real`. Both hold counts; genes are matched by name. Throws UserError
// for inputs that cannot be scored (no shared genes, a missing column or control, a perturbation
// of the real file missing from the prediction or with a single cell).
PerturbationEvaluation evaluate_perturbations(const AnnData& real, const AnnData& pred,
                                              const PerturbationEvalOptions& options);

// cell-eval's comparison with a baseline prediction: (x - b) / (1 - b) for metrics where 1 is best,
// 1 - x / b for MAE; NaN becomes 0, negatives are clipped to 0; then averaged. One entry per summary
// metric; the population metrics carry the baseline's value and a NaN score, outside the averages.
struct NormalizedMetric {
  std::string name;
  double value = 0;
  double baseline = 0;
  double score = 0;
};
struct BaselineComparison {
  std::vector<NormalizedMetric> metrics;
  double average = 0;      // over all metrics
  double vcc_average = 0;  // over DES, PDS and MAE: the 2025 challenge's score
};
BaselineComparison compare_to_baseline(const PerturbationEvaluation& model,
                                       const PerturbationEvaluation& baseline);

// The pieces, for callers with their own DE tables (and for tests).
//
// DES of one perturbation: `real_sig` / `pred_sig` are the significant genes (column indices),
// `*_lfc` the log2 fold changes of every gene.
double de_overlap_score(std::vector<int64_t> real_sig, std::vector<int64_t> pred_sig,
                        std::span<const double> real_lfc, std::span<const double> pred_lfc);
// PDS of every perturbation of one context: deltas[k] over genes; excluded[k] are the gene columns
// left out of perturbation k's distances (its targets).
std::vector<double> discrimination_scores(const std::vector<std::vector<double>>& real_deltas,
                                          const std::vector<std::vector<double>>& pred_deltas,
                                          const std::vector<std::vector<int64_t>>& excluded, int threads = 0);
// Gene columns a perturbation names ("KLF1", or "KLF1+MAP2K6" for a pair).
std::vector<int64_t> perturbation_target_columns(const std::string& perturbation,
                                                 const std::vector<std::string>& genes);

// Output tables: one CSV row per (context, perturbation), and a JSON document of the summary (with
// the baseline comparison when given).
std::string per_perturbation_csv(const PerturbationEvaluation& evaluation);
std::string summary_json(const PerturbationEvaluation& evaluation, const PerturbationEvalOptions& options,
                         const BaselineComparison* baseline);

}  // namespace lingshu
