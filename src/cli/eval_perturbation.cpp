// `lingshu eval perturbation REAL.h5ad PRED.h5ad --pert-col COL --control NAME`: score predicted
// perturbation effects with the Virtual Cell Challenge's cell-eval metrics.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "eval/perturbation_metrics.h"
#include "io/h5ad.h"
#include "report/svg.h"

namespace lingshu::cli {

namespace {

struct EvalPerturbationArgs {
  std::string real;
  std::string pred;
  std::string baseline;
  std::string fdr_scope = "per";
  std::string out;
  std::string csv;
  std::string report;
  bool quiet = false;
  int threads = 0;
  PerturbationEvalOptions options;
};

std::string format_value(double v) {
  return std::isnan(v) ? std::string("n/a") : fmt::format("{:.4f}", v);
}

std::string metrics_table(const PerturbationEvaluation& eval, const BaselineComparison* baseline) {
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

// ---- HTML report ---------------------------------------------------------------------------

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
  report::ScatterSeries series{"", report::palette_color(0), {}, {}};
  for (size_t i = 0; i < shown; ++i) {
    series.x.push_back(real[order[i]]);
    series.y.push_back(pred[order[i]]);
  }
  report::ScatterOptions options;
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
  return report::scatter_svg({series}, options);
}

std::string report_html(const EvalPerturbationArgs& args, const PerturbationEvaluation& eval,
                        const BaselineComparison* baseline, double seconds) {
  report::HtmlPage page("lingshu perturbation evaluation");
  page.add_paragraph(fmt::format(
      "Real: {}. Predicted: {}.{} {} perturbations, {} genes. Significant: FDR < {} ({}). {:.1f} s.",
      args.real, args.pred, args.baseline.empty() ? "" : " Baseline: " + args.baseline + ".",
      eval.scores.size(), eval.genes.size(), args.options.fdr_threshold,
      args.fdr_scope == "global" ? "BH over the whole table" : "BH within each perturbation", seconds));
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

// ---- the command ---------------------------------------------------------------------------

AnnData read_file(const std::string& path) {
  return read_h5ad(path);
}

void run_eval_perturbation(EvalPerturbationArgs& args) {
  apply_threads(args.threads);
  if (args.quiet) Progress::set_enabled(false);
  require_writable_parent(args.out, "--out");
  require_writable_parent(args.csv, "--csv");
  require_writable_parent(args.report, "--report");
  args.options.fdr_scope = args.fdr_scope == "global" ? FdrScope::Global : FdrScope::PerPerturbation;
  args.options.threads = args.threads;
  args.options.keep_deltas = !args.report.empty();
  const auto start = std::chrono::steady_clock::now();

  const AnnData real = read_file(args.real);
  const AnnData pred = read_file(args.pred);
  const PerturbationEvaluation eval = evaluate_perturbations(real, pred, args.options);
  std::optional<BaselineComparison> baseline;
  if (!args.baseline.empty()) {
    PerturbationEvalOptions base_options = args.options;
    base_options.keep_deltas = false;
    const auto base_eval = evaluate_perturbations(real, read_file(args.baseline), base_options);
    baseline = compare_to_baseline(eval, base_eval);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const BaselineComparison* base = baseline ? &*baseline : nullptr;

  fmt::print("{}", metrics_table(eval, base));
  if (!args.quiet) {
    for (const auto& note : eval.notes) fmt::print(stderr, "note: {}\n", note);
  }
  if (!args.out.empty()) write_text_atomically(args.out, summary_json(eval, args.options, base));
  if (!args.csv.empty()) write_text_atomically(args.csv, per_perturbation_csv(eval));
  if (!args.report.empty()) write_text_atomically(args.report, report_html(args, eval, base, seconds));
  if (!args.quiet) {
    fmt::print(stderr, "eval perturbation: {} perturbations x {} genes in {:.1f} s{}{}{}\n",
               eval.scores.size(), eval.genes.size(), seconds,
               args.out.empty() ? "" : "; summary in " + args.out,
               args.csv.empty() ? "" : "; per perturbation in " + args.csv,
               args.report.empty() ? "" : "; report in " + args.report);
  }
}

void setup_eval_perturbation(CLI::App& cmd) {
  auto args = std::make_shared<EvalPerturbationArgs>();
  cmd.footer(
      "Both files hold counts; each is log1p(counts / total * 1e4)-normalised and compared with its own\n"
      "control cells (per context with --context-col). Genes are matched by name. DE is a two-sided,\n"
      "tie-corrected Mann-Whitney U with continuity correction and Benjamini-Hochberg FDR < 0.05.\n"
      "Metrics (cell-eval / Virtual Cell Challenge): DES, PDS, MAE, Spearman #DEG, Spearman LFC, AUPRC,\n"
      "Pearson-delta. With --baseline (e.g. from `lingshu baseline mean`), each metric is also scored\n"
      "against the baseline: (x - b) / (1 - b), MAE 1 - x / b, clipped at 0, and averaged.\n"
      "Example: lingshu eval perturbation heldout.h5ad predicted.h5ad --pert-col condition \\\n"
      "           --control control --baseline mean.h5ad --out metrics.json --csv per_pert.csv");
  cmd.add_option("real", args->real, "real cells (.h5ad of raw counts)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("pred", args->pred, "predicted cells (.h5ad of counts, with control cells)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--pert-col", args->options.pert_col, "obs column naming each cell's perturbation")
      ->capture_default_str();
  cmd.add_option("--control", args->options.control, "label of control cells in --pert-col")
      ->capture_default_str();
  cmd.add_option("--context-col", args->options.context_col,
                 "obs column of contexts (cell type / line); each is scored against its own controls");
  cmd.add_option("--baseline", args->baseline, "a baseline prediction to normalise the scores against")
      ->check(CLI::ExistingFile);
  cmd.add_option("--fdr-scope", args->fdr_scope,
                 "per: BH within each perturbation (cell-eval); global: over the whole table (VCC 2025)")
      ->check(CLI::IsMember({"per", "global"}))
      ->capture_default_str();
  cmd.add_option("--fdr", args->options.fdr_threshold, "FDR below which a gene is significant")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd.add_option("--out,-o", args->out, "write the summary (and baseline scores) as JSON");
  cmd.add_option("--csv", args->csv, "write one row of metrics per perturbation");
  cmd.add_option("--report", args->report, "write an HTML report (delta scatter plots and tables)");
  cmd.add_flag("--quiet,-q", args->quiet, "no progress or notes");
  add_threads_option(cmd, args->threads);
  cmd.callback([args] { run_eval_perturbation(*args); });
}

}  // namespace

static const bool registered = register_command(
    {"eval perturbation", "Score predicted perturbation effects (cell-eval metrics, baseline scores)", 41,
     &setup_eval_perturbation});

}  // namespace lingshu::cli
