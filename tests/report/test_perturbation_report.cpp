// The perturbation report and metrics table as library functions: every section, one delta panel
// per perturbation (most affected first), the baseline columns only with a baseline, and the
// settings the evaluation ran with.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/progress.h"
#include "eval/perturbation_metrics.h"
#include "report/perturbation_report.h"
#include "test_perturbation_data.h"

namespace lingshu::report {
namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

PerturbationEvaluation evaluate_screen(bool keep_deltas) {
  Progress::set_enabled(false);
  testing::ScreenSpec spec;
  spec.perts = {"P0", "P1", "P2", "P3"};
  const AnnData real = testing::simulate_screen(spec);
  spec.seed = 2;
  const AnnData pred = testing::simulate_screen(spec);
  PerturbationEvalOptions options;
  options.threads = 1;
  options.keep_deltas = keep_deltas;
  return evaluate_perturbations(real, pred, options);
}

TEST(PerturbationReport, HasEverySectionAndOnePanelPerPerturbation) {
  const PerturbationEvaluation eval = evaluate_screen(true);
  const PerturbationReportInfo info{"real.h5ad", "pred.h5ad", "", 0.05, FdrScope::Global, 1.5};
  const std::string html = perturbation_report_html(eval, nullptr, info);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* part :
       {"<h2>Summary</h2>", "<h2>Predicted vs real change from control</h2>", "<h2>Per perturbation</h2>",
        "Real: real.h5ad. Predicted: pred.h5ad.", "BH over the whole table"}) {
    EXPECT_NE(html.find(part), std::string::npos) << part;
  }
  EXPECT_EQ(html.find("Baseline:"), std::string::npos);
  EXPECT_EQ(html.find("score vs baseline"), std::string::npos);
  EXPECT_EQ(count(html, "<svg"), eval.scores.size());
}

TEST(PerturbationReport, BaselineAddsItsColumnsToTheReportAndTheTable) {
  const PerturbationEvaluation eval = evaluate_screen(true);
  const BaselineComparison baseline = compare_to_baseline(eval, evaluate_screen(false));
  const PerturbationReportInfo info{
      "real.h5ad", "pred.h5ad", "mean.h5ad", 0.05, FdrScope::PerPerturbation, 1};
  const std::string html = perturbation_report_html(eval, &baseline, info);
  EXPECT_NE(html.find("Baseline: mean.h5ad."), std::string::npos);
  EXPECT_NE(html.find("score vs baseline"), std::string::npos);
  EXPECT_NE(html.find("BH within each perturbation"), std::string::npos);

  EXPECT_EQ(html.find("model vs baseline"), std::string::npos) << "needs the baseline's own evaluation";

  const std::string plain = perturbation_metrics_table(eval, nullptr);
  const std::string scored = perturbation_metrics_table(eval, &baseline);
  EXPECT_EQ(count(plain, "\n"), eval.summary.size() + 1);   // header + one line per metric
  EXPECT_EQ(count(scored, "\n"), eval.summary.size() + 3);  // and the two averages
  EXPECT_EQ(plain.find("VCC score"), std::string::npos);
  EXPECT_NE(scored.find("VCC score"), std::string::npos);
}

TEST(PerturbationReport, WithTheBaselinesEvaluationEachPerturbationShowsItsLargestChangesAgainstIt) {
  const PerturbationEvaluation eval = evaluate_screen(true);
  const PerturbationEvaluation base_eval = evaluate_screen(true);
  const BaselineComparison baseline = compare_to_baseline(eval, base_eval);
  const PerturbationReportInfo info{
      "real.h5ad", "pred.h5ad", "mean.h5ad", 0.05, FdrScope::PerPerturbation, 1};
  const std::string html = perturbation_report_html(eval, &baseline, info, &base_eval);
  EXPECT_NE(html.find("<h2>Largest real changes: model vs baseline</h2>"), std::string::npos);
  EXPECT_NE(html.find("Pearson-delta (baseline)"), std::string::npos);
  // One row per gene listed: 10 genes of each perturbation, each naming who is nearer.
  EXPECT_EQ(count(html, "<td>model</td>") + count(html, "<td>baseline</td>"), 10 * eval.scores.size());
  // The largest real change of the first perturbation shown is listed with its three values.
  const auto& real = eval.real_delta[0];
  size_t top = 0;
  for (size_t j = 1; j < real.size(); ++j) top = std::abs(real[j]) > std::abs(real[top]) ? j : top;
  EXPECT_NE(html.find(fmt::format("<td>{}</td><td class=\"num\">{:+.3f}</td><td class=\"num\">{:+.3f}</td>"
                                  "<td class=\"num\">{:+.3f}</td>",
                                  eval.genes[top], real[top], eval.pred_delta[0][top],
                                  base_eval.pred_delta[0][top])),
            std::string::npos);
  EXPECT_EQ(count(html, "<svg"), eval.scores.size());
}

}  // namespace
}  // namespace lingshu::report
