#include "report/perturbation_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "report/svg.h"

namespace lingshu::report {

namespace {

// NaN marks a metric with nothing to score (e.g. Spearman LFC with under two DE genes).
std::string format_value(double v) {
  return std::isnan(v) ? std::string("n/a") : fmt::format("{:.4f}", v);
}

constexpr size_t kMaxPanels = 48;        // small multiples shown
constexpr size_t kGenesPerPanel = 1000;  // the genes that move most, real or predicted

std::string delta_panel(const PerturbationScore& score, const std::vector<float>& real,
                        const std::vector<float>& pred) {
  std::vector<size_t> order(real.size());
  for (size_t j = 0; j < order.size(); ++j) order[j] = j;
  const size_t shown = std::min(kGenesPerPanel, order.size());
  auto moved = [&](size_t j) { return std::max(std::abs(real[j]), std::abs(pred[j])); };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shown), order.end(),
                    [&](size_t a, size_t b) { return moved(a) > moved(b); });
  ScatterSeries series{"", palette_color(0), {}, {}};
  for (size_t i = 0; i < shown; ++i) {
    series.x.push_back(real[order[i]]);
    series.y.push_back(pred[order[i]]);
  }
  ScatterOptions options;
  options.title =
      fmt::format("{}{} (r = {})", score.perturbation, score.context.empty() ? "" : " / " + score.context,
                  format_value(score.pearson_delta));
  options.x_label = "real delta";
  options.y_label = "predicted delta";
  options.width = 250;
  options.height = 250;
  options.point_radius = 1.5;
  options.diagonal = true;
  options.show_legend = false;
  return scatter_svg({series}, options);
}

}  // namespace

std::string perturbation_metrics_table(const PerturbationEvaluation& eval,
                                       const BaselineComparison* baseline) {
  std::string text = baseline
                         ? fmt::format("{:<15}{:>10}{:>10}{:>10}\n", "metric", "value", "baseline", "score")
                         : fmt::format("{:<15}{:>10}\n", "metric", "value");
  for (size_t i = 0; i < eval.summary.size(); ++i) {
    const auto& m = eval.summary[i];
    if (baseline) {
      const auto& b = baseline->metrics[i];
      text += fmt::format("{:<15}{:>10}{:>10}{:>10}\n", m.name, format_value(m.value),
                          format_value(b.baseline), format_value(b.score));
    } else {
      text += fmt::format("{:<15}{:>10}\n", m.name, format_value(m.value));
    }
  }
  if (baseline) {
    text += fmt::format("{:<15}{:>30}\n{:<15}{:>30}\n", "average score", format_value(baseline->average),
                        "VCC score", format_value(baseline->vcc_average));
  }
  return text;
}

std::string perturbation_report_html(const PerturbationEvaluation& eval, const BaselineComparison* baseline,
                                     const PerturbationReportInfo& info) {
  HtmlPage page("lingshu perturbation evaluation");
  page.add_paragraph(fmt::format(
      "Real: {}. Predicted: {}.{} {} perturbations, {} genes. Significant: FDR < {} ({}). {:.1f} s.",
      info.real_file, info.pred_file,
      info.baseline_file.empty() ? "" : " Baseline: " + info.baseline_file + ".", eval.scores.size(),
      eval.genes.size(), info.fdr_threshold,
      info.fdr_scope == FdrScope::Global ? "BH over the whole table" : "BH within each perturbation",
      info.seconds));
  for (const auto& note : eval.notes) page.add_note(note);

  page.add_section("Summary");
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < eval.summary.size(); ++i) {
    std::vector<std::string> row{eval.summary[i].name, format_value(eval.summary[i].value)};
    if (baseline) {
      row.push_back(format_value(baseline->metrics[i].baseline));
      row.push_back(format_value(baseline->metrics[i].score));
    }
    rows.push_back(std::move(row));
  }
  std::vector<std::string> header{"metric", "value"};
  if (baseline) {
    header.insert(header.end(), {"baseline", "score vs baseline"});
    rows.push_back({"average score", "", "", format_value(baseline->average)});
    rows.push_back({"VCC score (DES, PDS, MAE)", "", "", format_value(baseline->vcc_average)});
  }
  page.add_table(header, rows);
  page.add_paragraph(
      "DES: overlap of the top real and predicted DE genes; PDS: how uniquely the predicted effect points to "
      "its own perturbation (1 = nearest); MAE: pseudobulk error (lower is better); Spearman #DEG / LFC: "
      "agreement in the number of DE genes and in fold changes; AUPRC: recovery of the real DE genes from "
      "predicted FDRs; Pearson-delta: correlation of the predicted and real change from control.");

  page.add_section("Predicted vs real change from control");
  // Most affected perturbations (real DE genes) first: their panels say the most.
  std::vector<size_t> order(eval.scores.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return eval.scores[a].real_deg > eval.scores[b].real_deg; });
  std::vector<std::string> panels;
  for (size_t i = 0; i < std::min(kMaxPanels, order.size()); ++i) {
    const size_t k = order[i];
    panels.push_back(delta_panel(eval.scores[k], eval.real_delta[k], eval.pred_delta[k]));
  }
  page.add_figures(
      panels,
      fmt::format(
          "Most affected first. Each panel: the {} genes that move most, mean log1p-normalised expression "
          "minus the control mean of the same file; the line is y = x.{}",
          kGenesPerPanel,
          eval.scores.size() > kMaxPanels
              ? fmt::format(" {} of {} perturbations shown.", kMaxPanels, eval.scores.size())
              : std::string()));

  page.add_section("Per perturbation");
  std::vector<std::vector<std::string>> per;
  for (const auto& s : eval.scores) {
    per.push_back({s.context.empty() ? s.perturbation : s.perturbation + " / " + s.context,
                   fmt::format("{} / {}", s.real_cells, s.pred_cells),
                   fmt::format("{} / {}", s.real_deg, s.pred_deg), format_value(s.des), format_value(s.pds),
                   format_value(s.mae), format_value(s.pearson_delta), format_value(s.spearman_lfc),
                   format_value(s.auprc)});
  }
  page.add_table({"perturbation", "cells real / pred", "DE genes real / pred", "DES", "PDS", "MAE",
                  "Pearson-delta", "Spearman LFC", "AUPRC"},
                 per);
  return page.render();
}

}  // namespace lingshu::report
