// `lingshu predict MODEL --pairs pairs.csv --out pred.h5ad [--cfg W] [--prior TRAIN.h5ad]`:
// perturbed and control cells for (context, perturbation) rows, ready for `lingshu eval perturbation`.
#include "sample/predict.h"

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/sampling_options.h"
#include "core/atomic_file.h"

namespace lingshu::cli {

namespace {

using PredictArgs = SamplingCommandArgs<PredictOptions>;

void run_predict(const PredictArgs& args) {
  require_writable_parent(args.out, "--out");
  write_sampled_cells("predict", args.out, args.nproc, args.threads, args.options.sampling,
                      [&](const SamplingSettings& settings, const CellSink& sink) {
                        PredictOptions options = args.options;
                        options.sampling = settings;
                        Prediction prediction = predict_perturbations(options, sink);
                        if (!settings.quiet) {
                          fmt::print(stderr, "predict: {}\n", prediction.start);
                          for (const auto& note : prediction.notes) fmt::print(stderr, "predict: {}\n", note);
                        }
                        return std::move(prediction.cells);
                      });
}

void setup_predict(CLI::App& cmd) {
  auto args = std::make_shared<PredictArgs>();
  auto& p = args->options;
  cmd.footer(
      "pairs.csv names condition columns exactly as in the training obs, plus n_cells, one row per\n"
      "(context, perturbation) to predict, e.g.\n"
      "  cell_type,condition,n_cells\n"
      "  CD4T,stimulated,356\n"
      "Control cells of every context are generated too (labelled with the control label), so the\n"
      "output goes straight into: lingshu eval perturbation real.h5ad pred.h5ad --context-col cell_type\n"
      "--prior TRAIN.h5ad pre-fills, and never re-masks, genes that the same perturbation consistently\n"
      "down-regulated in the other contexts of TRAIN (thinned from a real control cell of the context),\n"
      "and the targets of a perturbation no other context measured (set to 0, a knock-down); see README.\n"
      "Example: lingshu predict kang_model --pairs heldout.csv --cfg 1 --out pred.h5ad");
  cmd.add_option("model_dir", p.model_dir, "model directory trained with --perturbation")->required();
  cmd.add_option("--pairs", p.pairs, "CSV of condition columns plus n_cells")->required();
  cmd.add_option("--out,-o", args->out, ".h5ad file to write (counts, obs = condition columns)")->required();
  cmd.add_option("--prior", p.prior_data, "training counts (.h5ad) for biological prior injection");
  cmd.add_option("--layer", p.prior_layer, "read the --prior counts from layers/NAME (or 'raw')");
  cmd.add_option("--prior-max-ratio", p.prior.max_ratio,
                 "a gene counts as down when perturbed/control mean is at most this in every other context")
      ->capture_default_str();
  cmd.add_option("--n-control", p.n_control,
                 "control cells per context (default: the largest n_cells of its rows)");
  cmd.add_flag("--allow-unknown", p.allow_unknown,
               "predict a perturbation the model never saw, whose label names no gene of the model, as its "
               "context's perturbed state (said so in the output's uns) instead of refusing the pairs file");
  cmd.add_flag(
      "--expected", p.expected,
      "write each pair's expected profile instead of sampled cells: the model's expected log1p CP10k "
      "over the pair's drawn cell states (no sampling noise), as integer counts the way `baseline "
      "mean` writes its profile (uns lingshu_prediction says which)");
  add_sampling_options(cmd, p.sampling, args->threads, args->nproc);
  cmd.callback([args] { run_predict(*args); });
}

}  // namespace

static const bool registered = register_command(
    {"predict", "Predict perturbed and control cells for (context, perturbation) pairs", 35, &setup_predict});

}  // namespace lingshu::cli
