// `lingshu simulate --cells N --genes G ... --out FILE.h5ad`: Splatter-style counts with known truth.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "data/simulator.h"
#include "data/summary.h"
#include "io/h5ad.h"

namespace lingshu::cli {

namespace {

struct SimulateArgs {
  SimulatorConfig config;
  double library_size = 0.0;  // median UMIs per cell; 0 keeps the configured default
  std::string out;
  std::string truth_out;
  int threads = 0;
  bool quiet = false;
};

std::string cell_type_sentence(const Simulation& sim) {
  const auto& truth = sim.truth;
  const size_t k = truth.de_genes.size();
  std::vector<int64_t> cells(k, 0);
  for (const int32_t t : truth.cell_type) ++cells[static_cast<size_t>(t)];
  const auto [fewest, most] = std::minmax_element(cells.begin(), cells.end());
  size_t de_min = truth.de_genes.front().size();
  size_t de_max = de_min;
  for (const auto& genes : truth.de_genes) {
    de_min = std::min(de_min, genes.size());
    de_max = std::max(de_max, genes.size());
  }
  const auto range = [](auto lo, auto hi) {
    return lo == hi ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi);
  };
  return fmt::format("{} cell type{} (type_0{}; {} cells each) with {} DE genes each", k, k == 1 ? "" : "s",
                     k > 1 ? fmt::format("..type_{}", k - 1) : "", range(*fewest, *most),
                     range(de_min, de_max));
}

std::string perturbation_sentence(const Simulation& sim, const SimulatorConfig& config) {
  const auto& truth = sim.truth;
  if (truth.perturbations.empty()) return "no perturbations (condition = control for every cell)";
  const auto controls = std::count(truth.condition.begin(), truth.condition.end(), 0);
  std::string names;
  constexpr size_t kShown = 6;
  for (size_t i = 0; i < std::min(kShown, truth.perturbations.size()); ++i) {
    names += (i ? ", " : "") + truth.perturbations[i].name;
  }
  if (truth.perturbations.size() > kShown) names += ", ...";
  return fmt::format(
      "{} perturbation{} ({}) that knock their target gene down to {:g}% and shift {} downstream genes each, "
      "plus {} control cells",
      truth.perturbations.size(), truth.perturbations.size() == 1 ? "" : "s", names,
      100.0 * config.knockdown_factor, config.n_downstream, controls);
}

std::string program_sentence(const Simulation& sim) {
  const auto& programs = sim.truth.programs;
  if (programs.empty()) return "no gene programs";
  const size_t n = programs.size();
  const size_t switches = static_cast<size_t>(
      std::count_if(programs.begin(), programs.end(), [](const ProgramTruth& p) { return p.is_switch; }));
  std::string kinds = fmt::format("{} graded", n - switches);
  if (switches > 0) kinds += fmt::format(", {} switch", switches);
  std::string active;
  for (size_t p = 0; p < n; ++p) {
    active += fmt::format("{}{}",
                          p == 0       ? ""
                          : p + 1 == n ? " and "
                                       : ", ",
                          std::count(programs[p].active.begin(), programs[p].active.end(), 1));
  }
  const size_t genes = programs.front().genes.size();
  return fmt::format(
      "{} gene program{} ({}; {} genes each; active in {} of {} cell types) whose activity varies from cell "
      "to cell",
      n, n == 1 ? "" : "s", kinds, genes, active, sim.truth.de_genes.size());
}

std::string obs_columns(const Simulation& sim) {
  const auto& programs = sim.truth.programs;
  std::string out = "cell_type, condition";
  if (programs.size() == 1) out += ", " + programs.front().name;
  if (programs.size() > 1) out += fmt::format(", {}..{}", programs.front().name, programs.back().name);
  return out;
}

void run_simulate(SimulateArgs& args) {
  start_run(args.threads, args.quiet);
  if (std::filesystem::path(args.out).extension() != ".h5ad") {
    throw UserError(fmt::format("--out {} must end in .h5ad", args.out));
  }
  if (args.library_size > 0) args.config.lib_loc = std::log(args.library_size);
  const Simulation sim = simulate(args.config, args.threads);
  write_h5ad(args.out, sim.data);
  if (!args.truth_out.empty()) write_text_atomically(args.truth_out, truth_json(sim).dump(2) + "\n");
  if (args.quiet) return;
  const auto totals = sim.data.X.row_sums();
  const double cells = static_cast<double>(sim.data.n_obs()) * static_cast<double>(sim.data.n_vars());
  fmt::print(
      "simulate: wrote {} cells x {} genes of counts to {} (seed {}): {}; {}; {}. Median library size {} "
      "UMIs (configured {}), {:.1f}% zeros{}. obs columns: {}; genes are named {}..{}{}.\n",
      sim.data.n_obs(), sim.data.n_vars(), args.out, args.config.seed, cell_type_sentence(sim),
      perturbation_sentence(sim, args.config), program_sentence(sim), with_commas(quantile(totals, 0.5)),
      with_commas(std::exp(args.config.lib_loc)),
      100.0 * (1.0 - static_cast<double>(sim.data.X.nnz()) / cells),
      args.config.dropout ? " (with dropout)" : "", obs_columns(sim), sim.data.var.index.front(),
      sim.data.var.index.back(),
      args.truth_out.empty() ? "" : fmt::format("; the truth is in {}", args.truth_out));
}

void setup_simulate(CLI::App& cmd) {
  auto args = std::make_shared<SimulateArgs>();
  auto& c = args->config;
  cmd.footer(
      "A Splatter-style gamma-Poisson simulator: gene means from a gamma distribution with outliers,\n"
      "log-normal library sizes, cell types with up- and down-regulated genes, optional perturbations\n"
      "(condition named after the knocked-down target gene, plus shifted downstream genes), gene programs,\n"
      "biological variation and Poisson counts. Gene programs are co-expressed modules whose activity "
      "varies\n"
      "from cell to cell within a type (graded like a differentiation axis, or a switch like the cell "
      "cycle):\n"
      "the gene-gene structure that an independent-genes model misses. Each cell's activities are obs\n"
      "columns program_0, ...; --truth lists each program's genes, loadings and cell types.\n"
      "The same --seed gives the same file.\n"
      "Example: lingshu simulate --cells 2000 --genes 3000 --cell-types 4 --perturbations 5 --out sim.h5ad");
  cmd.add_option("--cells", c.n_cells, "number of cells")->capture_default_str();
  cmd.add_option("--genes", c.n_genes, "number of genes")->capture_default_str();
  cmd.add_option("--cell-types", c.n_cell_types, "number of cell types (obs cell_type)")
      ->capture_default_str();
  cmd.add_option("--perturbations", c.n_perturbations, "perturbed conditions besides control (obs condition)")
      ->capture_default_str();
  add_seed_option(cmd, c.seed);
  cmd.add_option("--out,-o", args->out, ".h5ad file to write")->required();
  cmd.add_option("--library-size", args->library_size, "median UMIs per cell (default about 3,000)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--de-prob", c.de_prob, "share of genes differentially expressed per cell type")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--downstream", c.n_downstream, "genes shifted by each perturbation besides its target")
      ->capture_default_str();
  cmd.add_option("--programs", c.n_programs,
                 "gene programs: co-expressed modules whose activity varies from cell to cell within a type "
                 "(obs program_0, ...); 0 for none")
      ->capture_default_str()
      ->check(CLI::Range(0, 10'000));
  cmd.add_option(
         "--program-genes", c.program_genes,
         "member genes per program; 0: 4% of the genes, between 2 and 40 (fewer if the genes run out)")
      ->capture_default_str()
      ->check(CLI::Range(0, 10'000'000));
  cmd.add_option("--program-scale", c.program_scale,
                 "program effect size: log-fold change per unit of activity (sd about 1) for a loading of 1")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  cmd.add_flag("--dropout", c.dropout, "add logistic dropout of low-expressed values");
  cmd.add_option("--truth", args->truth_out,
                 "also write the truth (DE genes, perturbation effects, programs) as JSON");
  add_quiet_and_threads(cmd, args->quiet, args->threads, "no progress or summary output");
  cmd.callback([args] { run_simulate(*args); });
}

}  // namespace

static const bool registered = register_command(
    {"simulate", "Simulate counts with known cell types and perturbations", 14, &setup_simulate});

}  // namespace lingshu::cli
