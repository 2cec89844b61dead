#pragma once
// What `lingshu eval perturbation` shows: the metrics table printed on stdout and the HTML report
// (one self-contained file, inline SVG): the summary metrics (and their scores against a baseline
// prediction), a predicted-vs-real delta scatter per perturbation, most affected first, and one
// row of metrics per perturbation. With the baseline's own evaluation, each perturbation also shows
// the baseline's deltas in its panel, its Pearson-delta and MAE next to the model's, and the genes
// that change most with their real, predicted and baseline changes: where the model beats the
// baseline and where it does not.
#include <string>

#include "eval/perturbation_metrics.h"

namespace lingshu::report {

struct PerturbationReportInfo {
  std::string real_file;  // as named on the command line
  std::string pred_file;
  std::string baseline_file;  // "" without a baseline
  double fdr_threshold = 0.05;
  FdrScope fdr_scope = FdrScope::PerPerturbation;
  double seconds = 0;  // wall time of the evaluation
};

// The summary as a text table; with `baseline` (may be null) also each metric's baseline value and
// score, and the averages.
std::string perturbation_metrics_table(const PerturbationEvaluation& evaluation,
                                       const BaselineComparison* baseline);

// The HTML report; the scatter panels need evaluation.real_delta / pred_delta (keep_deltas).
// `baseline_evaluation` (may be null; keep_deltas for its panels and genes) is the baseline file's
// evaluation against the same real cells: perturbations are matched by (context, perturbation).
std::string perturbation_report_html(const PerturbationEvaluation& evaluation,
                                     const BaselineComparison* baseline, const PerturbationReportInfo& info,
                                     const PerturbationEvaluation* baseline_evaluation = nullptr);

}  // namespace lingshu::report
