// `lingshu baseline factor TRAIN.h5ad --label cell_type --n N --out GEN.h5ad`: the linear anchor
// for gene-gene structure that a generative model must beat.
#include <fmt/format.h>

#include "baselines/factor_baseline.h"
#include "cli/command.h"

namespace lingshu::cli {

namespace {

struct FactorBaselineArgs {
  std::string train;
  std::string out;
  std::string layer;
  bool quiet = false;
  int threads = 0;
  FactorBaselineOptions options;
};

void run_factor_baseline(FactorBaselineArgs& args) {
  start_run(args.threads, args.quiet);
  args.options.threads = args.threads;
  const FactorBaseline baseline =
      sample_factor_baseline(read_counts_input(args.train, args.layer), args.options);
  if (!args.quiet) {
    for (const auto& note : baseline.notes) fmt::print(stderr, "baseline factor: note: {}\n", note);
  }
  write_cells(args.out, baseline.cells, "baseline factor", args.quiet);
}

void setup_factor_baseline(CLI::App& cmd) {
  auto args = std::make_shared<FactorBaselineArgs>();
  cmd.footer(
      "A linear model per cell type in log1p CP10k: the type's mean plus R principal components of its\n"
      "cells' residuals. Each new cell takes a training cell's scores and library size (every training\n"
      "cell once before any again), its expected counts are expm1(mean + components x scores) scaled to\n"
      "its size and rescaled per (type, gene) to the type's real totals, and counts are drawn Poisson.\n"
      "It keeps within-type gene-gene structure and gets the marginals wrong; `baseline independent` does\n"
      "the opposite. A model must beat both.\n"
      "Example: lingshu baseline factor train.h5ad --label cell_type --n 2700 --out factor.h5ad");
  add_generation_baseline_options(cmd, *args, [&] {
    cmd.add_option("--factors", args->options.factors,
                   "principal components per cell type (fewer for a type with too few cells, with a note)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000));
  });
  cmd.callback([args] { run_factor_baseline(*args); });
}

}  // namespace

static const bool registered = register_command(
    {"baseline factor", "A linear factor model within cell types (the gene-gene baseline to beat)", 61,
     &setup_factor_baseline});

}  // namespace lingshu::cli
