// `lingshu baseline {mean|control|additive} TRAIN.h5ad --pairs PAIRS.csv --out PRED.h5ad`: the
// perturbation predictors every model should beat, written as ordinary prediction files.
#include <fmt/format.h>

#include "baselines/perturbation_baselines.h"
#include "cli/command.h"
#include "core/error.h"
#include "data/conditions.h"
#include "io/h5ad.h"

namespace lingshu::cli {

namespace {

struct BaselineArgs {
  BaselineKind kind = BaselineKind::Mean;
  std::string train;
  std::string pairs;
  std::string out;
  std::vector<std::string> holdouts;
  bool quiet = false;
  int threads = 0;
  BaselineOptions options;
  CLI::Option* context_option = nullptr;
};

void run_baseline(BaselineArgs& args) {
  start_run(args.threads, args.quiet);
  args.options.threads = args.threads;
  const PredictionPairs pairs = read_prediction_pairs(args.pairs);
  // The default context column applies only when the pairs file has it (and it is not the
  // perturbation column): a file listing just perturbations predicts without contexts.
  if (args.context_option->count() == 0 &&
      (pairs.column(args.options.context_col) < 0 || args.options.context_col == args.options.pert_col)) {
    args.options.context_col.clear();
  }
  const AnnData train = remove_holdouts(read_h5ad(args.train), args.holdouts);
  const BaselinePrediction prediction = predict_baseline(args.kind, train, pairs, args.options);
  if (!args.quiet) {
    for (const auto& note : prediction.notes) fmt::print(stderr, "note: {}\n", note);
  }
  write_cells(args.out, prediction.cells, fmt::format("baseline {}", baseline_kind_name(args.kind)),
              args.quiet, fmt::format(" ({} rows of {})", pairs.rows.size(), args.pairs));
}

const char* explanation(BaselineKind kind) {
  switch (kind) {
    case BaselineKind::Mean:
      return "Every perturbed cell of a context gets the mean of the training per-perturbation mean\n"
             "profiles of that context (the Virtual Cell Challenge's baseline).\n";
    case BaselineKind::Control:
      return "Predicted cells are the context's training control cells, resampled: \"no effect\".\n";
    case BaselineKind::Additive:
      return "Context control profile + the shift the perturbation caused in the other training contexts\n"
             "(its own context if seen nowhere else); an unseen pair A+B adds the shifts of A and B.\n";
  }
  return "";
}

void setup_baseline(CLI::App& cmd, BaselineKind kind) {
  auto args = std::make_shared<BaselineArgs>();
  args->kind = kind;
  args->options.context_col = "cell_type";
  cmd.footer(fmt::format(
      "{}PAIRS.csv has a header naming obs columns plus n_cells and one row per prediction, e.g.\n"
      "  cell_type,condition,n_cells\n  K562,KLF1,100\n"
      "Profiles are mean log1p(counts / total * 1e4); each is turned into integer counts whose\n"
      "log-normalised pseudobulk reproduces it. The training control cells of each context are copied\n"
      "into the output under the control label, so `lingshu eval perturbation` can take deltas from it.\n"
      "Example: lingshu baseline {} train.h5ad --pairs heldout_pairs.csv --out {}.h5ad",
      explanation(kind), baseline_kind_name(kind), baseline_kind_name(kind)));
  cmd.add_option("train", args->train, "training cells (.h5ad of raw counts)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--pairs", args->pairs, "CSV of (context, perturbation, n_cells) rows to predict")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option(
         "--holdout", args->holdouts,
         "leave out training cells matching col=value[,col=value] (repeatable; as in `lingshu train`)")
      ->expected(1)
      ->take_all();
  cmd.add_option("--out,-o", args->out, ".h5ad file to write (counts in X, obs columns as in PAIRS.csv)")
      ->required();
  cmd.add_option("--pert-col", args->options.pert_col, "obs column naming each cell's perturbation")
      ->capture_default_str();
  cmd.add_option("--control", args->options.control, "label of control cells")->capture_default_str();
  args->context_option = cmd.add_option("--context-col", args->options.context_col,
                                        "obs column of contexts (used when PAIRS.csv has it; '' for none)")
                             ->capture_default_str();
  add_seed_option(cmd, args->options.seed);
  cmd.add_option("--library-size", args->options.library_size,
                 "counts per generated cell (0: median of the context's control cells)")
      ->check(CLI::NonNegativeNumber);
  add_quiet_and_threads(cmd, args->quiet, args->threads, "no progress or notes");
  cmd.callback([args] { run_baseline(*args); });
}

}  // namespace

static const bool registered_mean =
    register_command({"baseline mean", "Perturbation baseline: the mean perturbation profile of the context",
                      61, [](CLI::App& cmd) { setup_baseline(cmd, BaselineKind::Mean); }});
static const bool registered_control =
    register_command({"baseline control", "Perturbation baseline: the context's control cells (no effect)",
                      62, [](CLI::App& cmd) { setup_baseline(cmd, BaselineKind::Control); }});
static const bool registered_additive = register_command(
    {"baseline additive", "Perturbation baseline: context control + the effect seen in other contexts", 63,
     [](CLI::App& cmd) { setup_baseline(cmd, BaselineKind::Additive); }});

}  // namespace lingshu::cli
