#pragma once
// The HTML report of `lingshu eval generation`: one self-contained file (inline SVG, no scripts,
// nothing fetched) that opens with the metrics that separate real from generated cells, then shows
// the 2-D embedding by source and by cell type, cell-type proportions, marker agreement and gene-gene
// structure per type (with heat maps of the real and generated gene-gene correlations of the largest
// type), and per-gene means.
#include <string>

#include "eval/generation_metrics.h"

namespace lingshu::report {

struct GenerationReportInfo {
  std::string real_file;
  std::string generated_file;
  std::string command_line;  // how the report was made, shown at the end
  std::string version;       // lingshu version
  double seconds = 0;        // wall time of the evaluation
};

std::string generation_report_html(const GenerationEvaluation& evaluation, const GenerationReportInfo& info);

}  // namespace lingshu::report
