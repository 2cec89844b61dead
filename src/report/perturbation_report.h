#pragma once
// What `lingshu eval perturbation` shows: the metrics table printed on stdout and the HTML report
// (one self-contained file, inline SVG): the summary metrics (and their scores against a baseline
// prediction), a predicted-vs-real delta scatter per perturbation, most affected first, and one
// row of metrics per perturbation.
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
std::string perturbation_report_html(const PerturbationEvaluation& evaluation,
                                     const BaselineComparison* baseline, const PerturbationReportInfo& info);

}  // namespace lingshu::report
