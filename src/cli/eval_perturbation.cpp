// `lingshu eval perturbation REAL.h5ad PRED.h5ad --pert-col COL --control NAME`: score predicted
// perturbation effects with the Virtual Cell Challenge's cell-eval metrics.
#include <fmt/format.h>

#include <chrono>
#include <optional>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/perturbation_metrics.h"
#include "io/h5ad.h"
#include "report/perturbation_report.h"

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

AnnData read_file(const std::string& path) {
  return read_h5ad(path);
}

void run_eval_perturbation(EvalPerturbationArgs& args) {
  start_run(args.threads, args.quiet);
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
  std::optional<PerturbationEvaluation> base_eval;
  if (!args.baseline.empty()) {
    base_eval = evaluate_perturbations(real, read_file(args.baseline), args.options);
    baseline = compare_to_baseline(eval, *base_eval);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const BaselineComparison* base = baseline ? &*baseline : nullptr;

  fmt::print("{}", report::perturbation_metrics_table(eval, base));
  if (!args.quiet) {
    for (const auto& note : eval.notes) fmt::print(stderr, "note: {}\n", note);
  }
  if (!args.out.empty()) write_text_atomically(args.out, summary_json(eval, args.options, base));
  if (!args.csv.empty()) write_text_atomically(args.csv, per_perturbation_csv(eval));
  if (!args.report.empty()) {
    const report::PerturbationReportInfo info{
        args.real, args.pred, args.baseline, args.options.fdr_threshold, args.options.fdr_scope, seconds};
    write_text_atomically(
        args.report, report::perturbation_report_html(eval, base, info, base_eval ? &*base_eval : nullptr));
  }
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
      "Populations (beside cell-eval, not in its scores): per pair, the energy distance between predicted\n"
      "and real perturbed cells in 50 PCs of the context's real cells, its share of the real control's\n"
      "distance, and the kNN AUC of predicted vs real perturbed cells (0.5 = indistinguishable).\n"
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
  cmd.add_option("--seed", args->options.seed, "seed of the population metrics' subsamples and PCA")
      ->capture_default_str();
  cmd.add_option("--out,-o", args->out, "write the summary (and baseline scores) as JSON");
  cmd.add_option("--csv", args->csv, "write one row of metrics per perturbation");
  cmd.add_option("--report", args->report, "write an HTML report (delta scatter plots and tables)");
  add_quiet_and_threads(cmd, args->quiet, args->threads, "no progress or notes");
  cmd.callback([args] { run_eval_perturbation(*args); });
}

}  // namespace

static const bool registered = register_command(
    {"eval perturbation", "Score predicted perturbation effects (cell-eval metrics, baseline scores)", 41,
     &setup_eval_perturbation});

}  // namespace lingshu::cli
