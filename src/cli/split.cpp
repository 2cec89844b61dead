// `lingshu split IN.h5ad --out A.h5ad --rest B.h5ad`: random halves (or any share) of the cells, so
// that a model is trained on one part and scored against cells it never saw.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/expression.h"
#include "io/h5ad.h"

namespace lingshu::cli {

namespace {

struct SplitArgs {
  std::string input;
  std::string out;
  std::string rest;
  double fraction = 0.5;
  uint64_t seed = 0;
  bool quiet = false;
};

void run_split(const SplitArgs& args) {
  require_writable_parent(args.out, "--out");
  require_writable_parent(args.rest, "--rest");
  if (std::filesystem::absolute(args.out) == std::filesystem::absolute(args.rest))
    throw UserError(fmt::format("--out and --rest are the same file ({}); name two files", args.out));
  const AnnData data = read_h5ad(args.input);
  const int64_t n = data.n_obs();
  const auto k = static_cast<int64_t>(std::floor(args.fraction * static_cast<double>(n)));
  if (k < 1 || k >= n) {
    throw UserError(
        fmt::format("--fraction {} of {} cells leaves a part empty; need at least 1 cell on each side",
                    args.fraction, n));
  }
  const std::vector<int64_t> chosen = subsample_indices(n, k, args.seed);
  std::vector<int64_t> others;
  size_t next = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (next < chosen.size() && chosen[next] == i) {
      ++next;
    } else {
      others.push_back(i);
    }
  }
  write_h5ad(args.out, data.select_cells(chosen));
  write_h5ad(args.rest, data.select_cells(others));
  if (!args.quiet) {
    fmt::print("split: {} of {} cells to {}, the other {} to {} (seed {})\n", k, n, args.out, n - k,
               args.rest, args.seed);
  }
}

void setup_split(CLI::App& cmd) {
  auto args = std::make_shared<SplitArgs>();
  cmd.footer(
      "Draws --fraction of the cells at random (with --seed) into --out and writes the rest to --rest,\n"
      "keeping obs, var and the matrix as they are. Train on one part and score against the other:\n"
      "cells a model was trained on say nothing about whether it learned the distribution.\n"
      "Example: lingshu split pbmc.h5ad --out train.h5ad --rest heldout.h5ad\n"
      "         lingshu train train.h5ad --out model --condition cell_type\n"
      "         lingshu generate model --n 1000 --out generated.h5ad\n"
      "         lingshu eval generation heldout.h5ad generated.h5ad --train train.h5ad --label cell_type");
  cmd.add_option("input", args->input, ".h5ad file to split")->required()->check(CLI::ExistingFile);
  cmd.add_option("--out,-o", args->out, ".h5ad file for the drawn share")->required();
  cmd.add_option("--rest", args->rest, ".h5ad file for the other cells")->required();
  cmd.add_option("--fraction", args->fraction, "share of the cells drawn into --out")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  add_seed_option(cmd, args->seed);
  cmd.add_flag("--quiet,-q", args->quiet, "print nothing on success");
  cmd.callback([args] { run_split(*args); });
}

}  // namespace

static const bool registered = register_command(
    {"split", "Split the cells of an .h5ad at random (train on one part, score on the other)", 13,
     &setup_split});

}  // namespace lingshu::cli
