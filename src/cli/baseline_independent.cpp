// `lingshu baseline independent TRAIN.h5ad --label cell_type --n N --out GEN.h5ad`: the baseline
// every generative model must beat.

#include "baselines/independent_baseline.h"
#include "cli/command.h"

namespace lingshu::cli {

namespace {

struct BaselineArgs {
  std::string train;
  std::string out;
  std::string layer;
  bool quiet = false;
  int threads = 0;
  IndependentBaselineOptions options;
};

void run_baseline(BaselineArgs& args) {
  start_run(args.threads, args.quiet);
  args.options.threads = args.threads;
  write_cells(args.out, sample_independent_baseline(read_counts_input(args.train, args.layer), args.options),
              "baseline independent", args.quiet);
}

void setup_baseline(CLI::App& cmd) {
  auto args = std::make_shared<BaselineArgs>();
  cmd.footer(
      "Each new cell gets a cell type drawn in training proportions; then every gene is drawn on its\n"
      "own from that gene's values in a random training cell of the type. Every per-type marginal is\n"
      "kept and all gene-gene structure is lost: mean-expression correlations cannot tell these cells\n"
      "from real ones, MMD and the kNN AUC of `lingshu eval generation` can. A model must beat it.\n"
      "Example: lingshu baseline independent train.h5ad --label cell_type --n 2700 --out independent.h5ad");
  add_generation_baseline_options(cmd, *args, [] {});
  cmd.callback([args] { run_baseline(*args); });
}

}  // namespace

static const bool registered = register_command(
    {"baseline independent", "Sample every gene independently within cell types (a baseline to beat)", 60,
     &setup_baseline});

}  // namespace lingshu::cli
