#include "report/perturbation_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "report/svg.h"

namespace lingshu::report {

namespace {

// NaN marks a metric with nothing to score (e.g. Spearman LFC with under two DE genes).
std::string format_value(double v) {
  return std::isnan(v) ? std::string("n/a") : fmt::format("{:.4f}", v);
}

constexpr size_t kMaxPanels = 48;        // small multiples shown
constexpr size_t kGenesPerPanel = 1000;  // the genes that move most, real or predicted
constexpr size_t kTopGenes = 10;         // genes listed per perturbation against the baseline

// The `n` indices of largest key(j) over [0, size), largest first.
template <typename Key>
std::vector<size_t> largest(size_t size, size_t n, Key&& key) {
  std::vector<size_t> order(size);
  for (size_t j = 0; j < size; ++j) order[j] = j;
  n = std::min(n, size);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                    [&](size_t a, size_t b) { return key(a) > key(b); });
  order.resize(n);
  return order;
}

// The baseline's score and deltas of each of the model's perturbations (null where the baseline
// file lacks it).
struct BaselineRow {
  const PerturbationScore* score = nullptr;
  const std::vector<float>* delta = nullptr;
};

std::vector<BaselineRow> match_baseline(const PerturbationEvaluation& eval,
                                        const PerturbationEvaluation* base) {
  std::vector<BaselineRow> rows(eval.scores.size());
  if (base == nullptr) return rows;
  std::map<std::pair<std::string, std::string>, size_t> index;
  for (size_t k = 0; k < base->scores.size(); ++k)
    index.emplace(std::pair{base->scores[k].context, base->scores[k].perturbation}, k);
  const bool same_genes = base->genes == eval.genes;
  for (size_t k = 0; k < eval.scores.size(); ++k) {
    const auto it = index.find({eval.scores[k].context, eval.scores[k].perturbation});
    if (it == index.end()) continue;
    rows[k].score = &base->scores[it->second];
    if (same_genes && it->second < base->pred_delta.size()) rows[k].delta = &base->pred_delta[it->second];
  }
  return rows;
}

std::string pair_name(const PerturbationScore& s) {
  return s.context.empty() ? s.perturbation : s.perturbation + " / " + s.context;
}

std::string delta_panel(const PerturbationScore& score, const std::vector<float>& real,
                        const std::vector<float>& pred, const BaselineRow& base) {
  const auto order = largest(real.size(), kGenesPerPanel,
                             [&](size_t j) { return std::max(std::abs(real[j]), std::abs(pred[j])); });
  ScatterSeries series{"model", palette_color(0), {}, {}};
  ScatterSeries baseline{"baseline", "#9a9a9a", {}, {}};
  for (const size_t j : order) {
    series.x.push_back(real[j]);
    series.y.push_back(pred[j]);
    if (base.delta != nullptr) {
      baseline.x.push_back(real[j]);
      baseline.y.push_back((*base.delta)[j]);
    }
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
  options.show_legend = base.delta != nullptr;
  if (base.delta == nullptr) return scatter_svg({series}, options);
  return scatter_svg({baseline, series}, options);
}

// The genes whose real change is largest, with the model's and the baseline's change, and who is
// nearer: a table row per gene.
std::vector<std::vector<std::string>> top_gene_rows(const PerturbationEvaluation& eval, size_t k,
                                                    const BaselineRow& base) {
  const auto& real = eval.real_delta[k];
  const auto& pred = eval.pred_delta[k];
  std::vector<std::vector<std::string>> rows;
  for (const size_t j : largest(real.size(), kTopGenes, [&](size_t g) { return std::abs(real[g]); })) {
    const double model_error = std::abs(pred[j] - real[j]);
    const double base_error = std::abs((*base.delta)[j] - real[j]);
    rows.push_back({pair_name(eval.scores[k]), eval.genes[j], fmt::format("{:+.3f}", real[j]),
                    fmt::format("{:+.3f}", pred[j]), fmt::format("{:+.3f}", (*base.delta)[j]),
                    model_error < base_error ? "model" : "baseline"});
  }
  return rows;
}

// One table row per perturbation, with the baseline's value in brackets where it has the pair.
std::vector<std::vector<std::string>> per_perturbation_rows(const PerturbationEvaluation& eval,
                                                            const std::vector<BaselineRow>& base_rows) {
  std::vector<std::vector<std::string>> rows;
  for (size_t k = 0; k < eval.scores.size(); ++k) {
    const auto& s = eval.scores[k];
    const auto* b = base_rows[k].score;
    const auto versus = [&](double model, double base) {
      return b ? fmt::format("{} ({})", format_value(model), format_value(base)) : format_value(model);
    };
    rows.push_back({pair_name(s), fmt::format("{} / {}", s.real_cells, s.pred_cells),
                    fmt::format("{} / {}", s.real_deg, s.pred_deg), format_value(s.des), format_value(s.pds),
                    versus(s.mae, b ? b->mae : 0), versus(s.pearson_delta, b ? b->pearson_delta : 0),
                    format_value(s.spearman_lfc), format_value(s.auprc),
                    versus(s.energy_share, b ? b->energy_share : 0), versus(s.knn_auc, b ? b->knn_auc : 0)});
  }
  return rows;
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
                                     const PerturbationReportInfo& info,
                                     const PerturbationEvaluation* baseline_evaluation) {
  const auto base_rows = match_baseline(eval, baseline_evaluation);
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
      "predicted FDRs; Pearson-delta: correlation of the predicted and real change from control. "
      "Populations (not in the scores): energy distance between the predicted and real perturbed cells in 50 "
      "principal components of the context's real cells (0 = same distribution), its share of the real "
      "control's distance (1 = no nearer than unperturbed cells), and the kNN AUC of predicted against real "
      "perturbed cells (0.5 = indistinguishable).");

  page.add_section("Predicted vs real change from control");
  // Most affected perturbations (real DE genes) first: their panels say the most.
  std::vector<size_t> order(eval.scores.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return eval.scores[a].real_deg > eval.scores[b].real_deg; });
  std::vector<std::string> panels;
  for (size_t i = 0; i < std::min(kMaxPanels, order.size()); ++i) {
    const size_t k = order[i];
    panels.push_back(delta_panel(eval.scores[k], eval.real_delta[k], eval.pred_delta[k], base_rows[k]));
  }
  page.add_figures(
      panels,
      fmt::format(
          "Most affected first. Each panel: the {} genes that move most, mean log1p-normalised expression "
          "minus the control mean of the same file; the line is y = x.{}{}",
          kGenesPerPanel, baseline_evaluation ? " Grey: the baseline's change of the same genes." : "",
          eval.scores.size() > kMaxPanels
              ? fmt::format(" {} of {} perturbations shown.", kMaxPanels, eval.scores.size())
              : std::string()));

  page.add_section("Per perturbation");
  const bool with_base = baseline_evaluation != nullptr;
  page.add_table(
      {"perturbation", "cells real / pred", "DE genes real / pred", "DES", "PDS",
       with_base ? "MAE (baseline)" : "MAE", with_base ? "Pearson-delta (baseline)" : "Pearson-delta",
       "Spearman LFC", "AUPRC", with_base ? "energy share (baseline)" : "energy share",
       with_base ? "kNN AUC (baseline)" : "kNN AUC"},
      per_perturbation_rows(eval, base_rows));
  if (!with_base || eval.real_delta.empty()) return page.render();

  page.add_section("Largest real changes: model vs baseline");
  std::vector<std::vector<std::string>> genes;
  for (size_t i = 0; i < std::min(kMaxPanels, order.size()); ++i) {
    const size_t k = order[i];
    if (base_rows[k].delta == nullptr) continue;
    const auto rows = top_gene_rows(eval, k, base_rows[k]);
    genes.insert(genes.end(), rows.begin(), rows.end());
  }
  page.add_table({"perturbation", "gene", "real", "model", "baseline", "nearer"}, genes);
  page.add_paragraph(fmt::format(
      "Per perturbation (most affected first), the {} genes whose real change from control is largest: "
      "the change in mean log1p-normalised expression in the real cells, the prediction and the baseline, "
      "and which of the two is nearer the real change.",
      kTopGenes));
  return page.render();
}

}  // namespace lingshu::report
