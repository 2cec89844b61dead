#pragma once
// Subcommands register themselves from their own file (one file per subcommand), so adding a
// command never touches main.cpp:
//
//   static const bool registered = lingshu::cli::register_command(
//       {"eval generation", "Score generated cells against real ones", 40, &setup_eval_generation});
//
// A name with a space ("eval generation") nests under a parent command created on demand.
// `setup` adds options to the subcommand and sets its callback; errors a user can fix are thrown
// as lingshu::UserError and reported by main as one line with a non-zero exit.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "data/anndata.h"

namespace lingshu::cli {

struct CommandSpec {
  std::string name;         // "info" or "parent child"
  std::string description;  // one line for --help
  int order = 100;          // position in --help (lower first)
  std::function<void(CLI::App& command)> setup;
};

bool register_command(CommandSpec spec);

// Adds every registered command to `app`.
void install_commands(CLI::App& app);

// `--threads N` (default: every hardware thread); apply_threads() (or start_run) sets it in the callback.
void add_threads_option(CLI::App& command, int& threads);
void apply_threads(int threads);

// The scaffolding most commands share, so that they read alike:
// `--quiet,-q` (`quiet_help` says what it silences) and then `--threads`, as --help lists them;
void add_quiet_and_threads(CLI::App& command, bool& quiet, int& threads, const std::string& quiet_help);
// `--seed` with its default shown;
void add_seed_option(CLI::App& command, uint64_t& seed);
// at the start of the callback, the thread count for LibTorch and no progress bars under --quiet;
void start_run(int threads, bool quiet);
// A user's counts file (.h5ad, with --layer, or a 10x folder); UserError when the matrix does not
// hold raw counts, naming the file and the matrix.
AnnData read_counts_input(const std::string& path, const std::string& layer);
// at the end, the cells written to `path` (.h5ad) and, unless quiet, one line on stderr:
// "<command>: wrote N cells x G genes<detail> to PATH".
void write_cells(const std::string& path, const AnnData& cells, const std::string& command, bool quiet,
                 const std::string& detail = "");

// The options the generation baselines share (`baseline independent`, `baseline factor`): TRAIN,
// --label, --n and --out, then `extra` (the baseline's own), then --seed, --layer, -q and --threads;
// into args.train, out, layer, quiet, threads and args.options.label, n_cells, seed.
template <class Args, class Extra>
void add_generation_baseline_options(CLI::App& cmd, Args& args, Extra&& extra) {
  cmd.add_option("train", args.train, "training cells (.h5ad of raw counts)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--label", args.options.label, "obs column of cell types (omit: all cells one group)");
  cmd.add_option("--n,-n", args.options.n_cells, "cells to generate (0: as many as the training file)")
      ->check(CLI::NonNegativeNumber);
  extra();
  cmd.add_option("--out,-o", args.out, ".h5ad file to write")->required();
  add_seed_option(cmd, args.options.seed);
  cmd.add_option("--layer", args.layer, "read counts from this layer (raw: raw/X)");
  add_quiet_and_threads(cmd, args.quiet, args.threads, "no progress or summary line");
}

// The line write_cells prints, for a file written another way (chunk by chunk).
void report_written(const std::string& command, int64_t n_cells, int64_t n_genes, const std::string& path,
                    bool quiet, const std::string& detail = "");

}  // namespace lingshu::cli
