// Generation metrics on real data: two random halves of a dataset against the independent baseline
// (trained on one half, scored against the other), and the wall time of each evaluation stage.
//
//   ./build/bench/bench_generation [--threads N] [--data-dir ../shared/data] [--seed S]
//
// For each of pbmc3k and paul15_mouse (skipped when missing): split the cells into random halves A
// and B; score B against A (what real cells look like to the metrics), the independent baseline
// sampled from A within cell types and without them against B, and a copy of A with its gene names
// shuffled (what failure looks like). Then time `eval generation` of the whole of pbmc3k against
// itself, stage by stage, with the randomized PCA at 7 (default) and 4 power iterations.
// Prints Markdown tables; BENCHMARKS.md keeps the results.
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "baselines/independent_baseline.h"
#include "core/progress.h"
#include "eval/expression.h"
#include "eval/generation_metrics.h"
#include "eval/pca.h"
#include "io/h5ad.h"

namespace {

using namespace lingshu;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Args {
  int threads = 0;
  fs::path data_dir = "../shared/data";
  uint64_t seed = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--threads") a.threads = std::atoi(argv[i + 1]);
    if (key == "--data-dir") a.data_dir = argv[i + 1];
    if (key == "--seed") a.seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (a.threads <= 0) a.threads = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  return a;
}

std::string cell(double v, int digits = 4) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : "n/a";
}

void print_row(const std::string& dataset, const std::string& comparison, const GenerationMetrics& m) {
  fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", dataset, comparison, cell(m.knn_auc),
             cell(m.mmd), cell(m.ilisi), cell(m.wasserstein1), cell(m.mean_pearson), cell(m.mean_spearman),
             cell(m.proportion_tv), cell(m.marker_pearson_mean));
}

GenerationOptions options_for(const Args& args) {
  GenerationOptions o;
  o.label = "cell_type";
  o.seed = args.seed;
  o.threads = args.threads;
  return o;
}

void compare_on(const std::string& name, const Args& args) {
  const fs::path path = args.data_dir / (name + ".h5ad");
  if (!fs::exists(path)) {
    fmt::print("| {} | (missing: {}) | | | | | | | | |\n", name, path.string());
    return;
  }
  const AnnData data = read_h5ad(path);
  const auto half_a = subsample_indices(data.n_obs(), data.n_obs() / 2, args.seed + 1);
  std::vector<int64_t> half_b;  // the other cells
  for (int64_t i = 0, j = 0; i < data.n_obs(); ++i) {
    if (j < static_cast<int64_t>(half_a.size()) && half_a[static_cast<size_t>(j)] == i) {
      ++j;
    } else {
      half_b.push_back(i);
    }
  }
  const AnnData a = data.select_cells(half_a);
  const AnnData b = data.select_cells(half_b);
  const auto score = [&](const AnnData& generated) {
    return evaluate_generation(match_expression(b, generated, {}), options_for(args)).metrics;
  };
  print_row(name, "real half A vs real half B", score(a));

  IndependentBaselineOptions baseline;
  baseline.label = "cell_type";
  baseline.n_cells = b.n_obs();
  baseline.seed = args.seed;
  baseline.threads = args.threads;
  print_row(name, "independent baseline (per cell type) vs B",
            score(sample_independent_baseline(a, baseline)));
  baseline.label = "";
  print_row(name, "independent baseline (all cells pooled) vs B",
            score(sample_independent_baseline(a, baseline)));

  AnnData shuffled = a;
  std::shuffle(shuffled.var.index.begin(), shuffled.var.index.end(), std::mt19937_64(args.seed + 7));
  print_row(name, "half A with gene names shuffled vs B", score(shuffled));
}

void time_stages(const Args& args, int power_iterations) {
  const fs::path path = args.data_dir / "pbmc3k.h5ad";
  if (!fs::exists(path)) return;
  const auto start = Clock::now();
  const AnnData real = read_h5ad(path);
  const AnnData generated = read_h5ad(path);
  const ExpressionPair pair = match_expression(real, generated, {});
  const double load = seconds_since(start);
  GenerationOptions o = options_for(args);
  const auto eval_start = Clock::now();
  GenerationEvaluation e;
  if (power_iterations == 7) {
    e = evaluate_generation(pair, o);
  } else {
    // The same stages with a cheaper PCA, timed on its own for comparison.
    PcaOptions p;
    p.power_iterations = power_iterations;
    const auto pca_start = Clock::now();
    CsrMatrix both = pair.real;
    for (int64_t r = 0; r < pair.generated.n_rows; ++r)
      both.append_row(pair.generated.row_indices(r), pair.generated.row_values(r));
    const PcaResult result = pca(both, p);
    fmt::print(
        "| pbmc3k vs itself | PCA with {} power iterations only | {:.2f} s | PC50 variance ratio {:.5f} |\n",
        power_iterations, seconds_since(pca_start), result.explained_variance_ratio.back());
    return;
  }
  const double total = seconds_since(eval_start);
  std::string stages;
  for (const auto& [stage, s] : e.stage_seconds) stages += fmt::format("{} {:.2f} s; ", stage, s);
  fmt::print(
      "| pbmc3k vs itself (2,700 + 2,700 cells, 13,714 genes) | read + normalise {:.2f} s, metrics {:.2f} s "
      "| "
      "{} | PC50 variance ratio {:.5f} |\n",
      load, total, stages, e.explained_variance_ratio.back());
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  at::set_num_threads(args.threads);
  Progress::set_enabled(false);
  fmt::print("Generation metrics, {} threads, seed {}\n\n", args.threads, args.seed);
  fmt::print(
      "| dataset | comparison | kNN AUC | MMD | iLISI | 1-WD | Pearson | Spearman | type TV | marker r |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string name : {"pbmc3k", "paul15_mouse"}) compare_on(name, args);
  fmt::print("\n| run | time | stages | note |\n|---|---|---|---|\n");
  time_stages(args, 7);
  time_stages(args, 4);
  return 0;
}
