#include "cli/command.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "core/progress.h"
#include "data/counts_check.h"
#include "io/h5ad.h"
#include "io/read_counts.h"

namespace lingshu::cli {

namespace {
std::vector<CommandSpec>& registry() {
  static std::vector<CommandSpec> specs;
  return specs;
}

CLI::App& find_or_add(CLI::App& parent, const std::string& name, const std::string& description) {
  for (CLI::App* sub : parent.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_name() == name) return *sub;
  }
  CLI::App* sub = parent.add_subcommand(name, description);
  return *sub;
}
}  // namespace

bool register_command(CommandSpec spec) {
  registry().push_back(std::move(spec));
  return true;
}

void install_commands(CLI::App& app) {
  auto specs = registry();
  std::stable_sort(specs.begin(), specs.end(),
                   [](const CommandSpec& a, const CommandSpec& b) { return a.order < b.order; });
  for (const auto& spec : specs) {
    const auto space = spec.name.find(' ');
    if (space == std::string::npos) {
      spec.setup(find_or_add(app, spec.name, spec.description));
    } else {
      const std::string parent_name = spec.name.substr(0, space);
      CLI::App& parent = find_or_add(app, parent_name, "");
      parent.require_subcommand(1);
      if (parent.get_description().empty()) {
        parent.description(parent_name == "eval"       ? "Score cells against real ones (reads .h5ad only)"
                           : parent_name == "baseline" ? "Simple reference predictors to compare against"
                                                       : "");
      }
      spec.setup(find_or_add(parent, spec.name.substr(space + 1), spec.description));
    }
  }
}

void add_threads_option(CLI::App& command, int& threads) {
  command.add_option("--threads", threads, "CPU threads (default: all hardware threads)")
      ->check(CLI::Range(1, 1024));
}

void apply_threads(int threads) {
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

void add_quiet_and_threads(CLI::App& command, bool& quiet, int& threads, const std::string& quiet_help) {
  command.add_flag("--quiet,-q", quiet, quiet_help);
  add_threads_option(command, threads);
}

void add_seed_option(CLI::App& command, uint64_t& seed) {
  command.add_option("--seed", seed, "random seed")->capture_default_str();
}

void start_run(int threads, bool quiet) {
  apply_threads(threads);
  if (quiet) Progress::set_enabled(false);
}

void report_written(const std::string& command, int64_t n_cells, int64_t n_genes, const std::string& path,
                    bool quiet, const std::string& detail) {
  if (!quiet)
    fmt::print(stderr, "{}: wrote {} cells x {} genes{} to {}\n", command, n_cells, n_genes, detail, path);
}

AnnData read_counts_input(const std::string& path, const std::string& layer) {
  AnnData data = read_counts_file(path, layer);
  require_counts(data, fmt::format("{}: {}", path, layer_source_name(layer)));
  return data;
}

void write_cells(const std::string& path, const AnnData& cells, const std::string& command, bool quiet,
                 const std::string& detail) {
  write_h5ad(path, cells);
  report_written(command, cells.n_obs(), cells.n_vars(), path, quiet, detail);
}

}  // namespace lingshu::cli
