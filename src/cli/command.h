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
#include <functional>
#include <string>

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

// `--threads N` (default: every hardware thread). Call apply_threads() in the callback.
void add_threads_option(CLI::App& command, int& threads);
void apply_threads(int threads);

}  // namespace lingshu::cli
