// Differential expression and perturbation metrics: lingshu's one-pass sparse Mann-Whitney U against
// scipy.stats.mannwhitneyu doing the same test on the same data, timed in one run, plus the whole
// `eval perturbation` computation (DE of both files and every metric).
//
//   ./build/bench/bench_de [--threads N] [--data-dir ../shared/data] [--skip-python]
//
// Datasets: a simulated screen (50 perturbations x 5,000 genes x 20,000 cells) and pbmc3k with all
// 13,714 genes, its cell types as pseudo-perturbations against Naive CD4 T cells. scipy runs
// per perturbation on dense slices (mannwhitneyu(X_pert, X_control, axis=0, method='asymptotic')),
// its fastest form; its p-values come back through a binary file and are compared with ours.
// Prints one Markdown table; BENCHMARKS.md keeps the results.
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/parallel.h"
#include "core/progress.h"
#include "core/random.h"
#include "data/preprocess.h"
#include "eval/de.h"
#include "eval/perturbation_metrics.h"
#include "io/h5ad.h"

namespace {

using namespace lingshu;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// CPU seconds used by this process (all threads): steadier than wall time on a shared machine.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// A CRISPR-screen-like dataset: log-normal gene rates, per-cell library factors, each perturbation
// moving 50 random genes by 0.3x-3x. `seed` changes the cells, not the effects.
AnnData simulate_screen(int perts, int genes, int cells, uint64_t seed) {
  std::mt19937_64 effects_rng(99);
  std::vector<double> rate(static_cast<size_t>(genes));
  for (auto& r : rate) r = rnd::lognormal(effects_rng, -1.2, 1.5);
  std::vector<std::vector<std::pair<int, double>>> effects(static_cast<size_t>(perts));
  for (auto& e : effects) {
    for (int k = 0; k < 50; ++k) {
      e.emplace_back(static_cast<int>(rnd::uniform_below(effects_rng, static_cast<uint64_t>(genes))),
                     std::exp(rnd::uniform01(effects_rng) * 2.4 - 1.2));
    }
  }
  const int controls = cells / 8;
  const int per_pert = (cells - controls) / perts;
  AnnData data;
  data.X.n_cols = genes;
  std::vector<std::string> labels;
  std::vector<double> cell_rate(static_cast<size_t>(genes));
  std::vector<int32_t> cols;
  std::vector<float> vals;
  std::mt19937_64 rng(rnd::derive_seed(seed, 1));
  for (int c = 0; c < controls + per_pert * perts; ++c) {
    const int p = c < controls ? -1 : (c - controls) / per_pert;
    cell_rate = rate;
    if (p >= 0) {
      for (const auto& [g, fold] : effects[static_cast<size_t>(p)]) cell_rate[static_cast<size_t>(g)] *= fold;
    }
    const double library = rnd::lognormal(rng, 0.0, 0.3);
    cols.clear();
    vals.clear();
    for (int g = 0; g < genes; ++g) {
      const int64_t k = rnd::poisson(rng, cell_rate[static_cast<size_t>(g)] * library);
      if (k > 0) {
        cols.push_back(g);
        vals.push_back(static_cast<float>(k));
      }
    }
    data.X.append_row(cols, vals);
    labels.push_back(p < 0 ? "control" : fmt::format("P{}", p));
    data.obs.index.push_back(fmt::format("c{}", c));
  }
  for (int g = 0; g < genes; ++g) data.var.index.push_back(fmt::format("G{}", g));
  data.obs.set(Column::categorical("condition", labels));
  return data;
}

struct Dataset {
  std::string name;
  AnnData real;
  AnnData pred;  // another sample of the same screen, for the full metric run
  std::string pert_col;
  std::string control;
};

// Groups for the DE: control 0, then every other label in sorted order; unlabelled cells left out.
CellGroups groups_of(const AnnData& data, const std::string& column, const std::string& control,
                     std::vector<std::string>& perts) {
  const Column& c = *data.obs.find(column);
  std::vector<std::string> labels;
  for (int64_t i = 0; i < data.n_obs(); ++i) {
    if (const auto l = c.label(i); l && *l != control) labels.push_back(*l);
  }
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  perts = labels;
  CellGroups groups;
  groups.n_groups = static_cast<int32_t>(perts.size() + 1);
  for (int64_t i = 0; i < data.n_obs(); ++i) {
    const auto l = c.label(i);
    int32_t g = -1;
    if (l && *l == control) g = 0;
    if (l && *l != control)
      g = 1 + static_cast<int32_t>(std::lower_bound(perts.begin(), perts.end(), *l) - perts.begin());
    groups.group_of_cell.push_back(g);
  }
  return groups;
}

constexpr const char* kScipyScript = R"PY(
import sys, time, warnings
warnings.simplefilter('ignore')
import numpy as np, anndata, scipy.stats as st
a = anndata.read_h5ad(sys.argv[1])
col, control = sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
X = a.X.tocsr().astype(np.float64)
X = X.multiply(1e4 / np.asarray(X.sum(1))).tocsr()
X.data = np.log1p(X.data).astype(np.float32)
t_norm = time.perf_counter() - t0
lab = a.obs[col].astype(str).values
valid = a.obs[col].notna().values
perts = sorted(set(lab[valid]) - {control})
t0 = time.perf_counter(); c0 = time.process_time()
ctrl = X[(lab == control) & valid].toarray()
out = []
for p in perts:
    r = st.mannwhitneyu(X[(lab == p) & valid].toarray(), ctrl, alternative='two-sided', method='asymptotic', axis=0)
    out.append(np.nan_to_num(r.pvalue, nan=1.0))
t_test = time.perf_counter() - t0; c_test = time.process_time() - c0
np.asarray(out, dtype=np.float64).tofile(sys.argv[4])
print(t_norm, t_test, c_test)
)PY";

struct ScipyResult {
  bool ran = false;
  double normalize_s = 0, test_s = 0, test_cpu_s = 0;
  std::vector<double> p_values;  // [pert][gene]
  std::string error;
};

ScipyResult run_scipy(const Dataset& d, const fs::path& work) {
  ScipyResult result;
  const fs::path h5ad = work / (d.name + ".h5ad"), script = work / "mwu.py", pvals = work / (d.name + ".p");
  write_h5ad(h5ad, d.real);
  std::ofstream(script) << kScipyScript;
  const std::string cmd = fmt::format("/usr/bin/python3 '{}' '{}' '{}' '{}' '{}' 2>&1", script.string(),
                                      h5ad.string(), d.pert_col, d.control, pvals.string());
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = pipe ? ::pclose(pipe) : -1;
  if (status != 0 || std::sscanf(output.c_str(), "%lf %lf %lf", &result.normalize_s, &result.test_s,
                                 &result.test_cpu_s) != 3) {
    result.error = output.empty() ? "python failed" : output;
    return result;
  }
  std::ifstream in(pvals, std::ios::binary);
  result.p_values.resize(fs::file_size(pvals) / sizeof(double));
  in.read(reinterpret_cast<char*>(result.p_values.data()),
          static_cast<std::streamsize>(fs::file_size(pvals)));
  result.ran = true;
  return result;
}

struct Timing {
  double wall = 1e300;
  double cpu = 0;  // of the run with the best wall time
};

// Best of `reps` runs of `work`.
template <class Work>
Timing best_time(int reps, Work&& work) {
  Timing best;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    work();
    const double wall = seconds_since(t0);
    if (wall < best.wall) best = Timing{wall, process_cpu_seconds() - c0};
  }
  return best;
}

void bench(const Dataset& d, int threads, bool python, const fs::path& work) {
  std::vector<std::string> perts;
  const CellGroups groups = groups_of(d.real, d.pert_col, d.control, perts);
  CsrMatrix expr;
  const Timing normalize = best_time(3, [&] { expr = log_normalize(d.real.X); });
  RankTestResult ours;
  const Timing one_thread = best_time(3, [&] { ours = mann_whitney_vs_control(expr, groups, 1); });
  const Timing all_threads = best_time(3, [&] { ours = mann_whitney_vs_control(expr, groups, threads); });
  PerturbationEvalOptions options;
  options.pert_col = d.pert_col;
  options.control = d.control;
  options.threads = threads;
  PerturbationEvaluation eval;
  const Timing full = best_time(2, [&] { eval = evaluate_perturbations(d.real, d.pred, options); });

  std::string scipy_cell = "n/a", ratio_cell = "n/a", agree_cell = "n/a";
  if (python) {
    const ScipyResult scipy = run_scipy(d, work);
    if (!scipy.ran) {
      fmt::print(stderr, "scipy run failed: {}\n", scipy.error);
    } else {
      scipy_cell = fmt::format("{:.1f} s ({:.1f} s)", scipy.test_s, scipy.test_cpu_s);
      ratio_cell = fmt::format("{:.0f}x / {:.0f}x", scipy.test_cpu_s / one_thread.cpu,
                               scipy.test_s / all_threads.wall);
      double worst = 0;
      const size_t n_genes = static_cast<size_t>(expr.n_cols);
      for (size_t k = 0; k < perts.size() && (k + 1) * n_genes <= scipy.p_values.size(); ++k) {
        for (size_t j = 0; j < n_genes; ++j) {
          const double a = ours.p_value[(k + 1) * n_genes + j], b = scipy.p_values[k * n_genes + j];
          if (b > 1e-250) worst = std::max(worst, std::abs(a - b) / b);
        }
      }
      agree_cell = fmt::format("{:.1e}", worst);
    }
  }
  fmt::print(
      "| {} | {} x {} | {} | {:.2f} s | {:.2f} s ({:.2f} s) | {:.2f} s | {} | {} | {:.2f} s ({:.2f} s) | {} "
      "|\n",
      d.name, d.real.n_obs(), d.real.n_vars(), perts.size(), normalize.wall, one_thread.wall, one_thread.cpu,
      all_threads.wall, scipy_cell, ratio_cell, full.wall, full.cpu, agree_cell);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  bool python = true;
  fs::path data_dir = std::getenv("LINGSHU_DATA") ? std::getenv("LINGSHU_DATA") : "../shared/data";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (arg == "--data-dir" && i + 1 < argc)
      data_dir = argv[++i];
    else if (arg == "--skip-python")
      python = false;
    else {
      fmt::print(stderr, "usage: bench_de [--threads N] [--data-dir DIR] [--skip-python]\n");
      return 2;
    }
  }
  threads = resolve_thread_count(threads);
  python = python && std::system("/usr/bin/python3 -c 'import scipy, anndata' >/dev/null 2>&1") == 0;
  Progress::set_enabled(false);
  const fs::path work = fs::temp_directory_path() / fmt::format("lingshu-bench-de-{}", ::getpid());
  fs::create_directories(work);

  fmt::print(
      "DE = Mann-Whitney U of every perturbation vs control on every gene (one file); {} threads here.\n",
      threads);
  fmt::print(
      "| dataset | cells x genes | perts | log-normalise | lingshu DE, 1 thread | lingshu DE, {} threads | "
      "scipy mannwhitneyu | speed-up (1 / {} threads) | lingshu DE of both files + all metrics | "
      "max rel. p difference |\n|---|---|---|---|---|---|---|---|---|---|\n",
      threads, threads);
  {
    Dataset d{"simulated", simulate_screen(50, 5000, 20000, 1), simulate_screen(50, 5000, 20000, 2),
              "condition", "control"};
    bench(d, threads, python, work);
  }
  const fs::path pbmc = data_dir / "pbmc3k.h5ad";
  if (fs::exists(pbmc)) {
    const AnnData all = read_h5ad(pbmc);
    // Halves of pbmc3k as real and "predicted" cells; cell types act as perturbations.
    std::vector<int64_t> first, second;
    for (int64_t i = 0; i < all.n_obs(); ++i) (i % 2 == 0 ? first : second).push_back(i);
    Dataset d{"pbmc3k", all, all.select_cells(second), "cell_type", "Naive CD4 T"};
    bench(d, threads, python, work);
  } else {
    fmt::print("(pbmc3k not found in {}; skipped)\n", data_dir.string());
  }
  std::error_code ec;
  fs::remove_all(work, ec);
  return 0;
}
