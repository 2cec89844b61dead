#include "data/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "core/random.h"

namespace lingshu {

namespace {

// Independent random streams, so that e.g. adding perturbations does not change the gene means.
enum Stream : uint64_t {
  kGenes = 1,
  kCellTypes,
  kPerturbations,
  kCellLabels,
  kPrograms,
  kProgramActivity,
  kFirstCell = 1000
};

// Program loadings are +-U(kLoadingMin, kLoadingMax): no member so weak that it only adds noise.
constexpr double kLoadingMin = 0.5;
constexpr double kLoadingMax = 1.5;
// Switch programs: the on share per type ~ U(kOnShareMin, kOnShareMax), on activity kSwitchOn +
// kSwitchSd * unit_activity. Their variance (about 0.4-1.1) is then close to a graded program's (1).
constexpr double kOnShareMin = 0.1;
constexpr double kOnShareMax = 0.4;
constexpr double kSwitchOn = 2.0;
constexpr double kSwitchSd = 0.5;

void require(bool ok, const std::string& what) {
  if (!ok) throw UserError(fmt::format("simulator: {}", what));
}

int32_t draw_category(std::mt19937_64& rng, const std::vector<double>& cumulative) {
  return static_cast<int32_t>(rnd::draw_index(rng, cumulative));
}

// `count` distinct entries of `pool`, in increasing order.
std::vector<int32_t> draw_distinct(std::mt19937_64& rng, std::vector<int32_t> pool, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const auto left = static_cast<uint64_t>(pool.size()) - static_cast<uint64_t>(i);
    const auto j = static_cast<size_t>(i) + static_cast<size_t>(rnd::uniform_below(rng, left));
    std::swap(pool[static_cast<size_t>(i)], pool[j]);
  }
  pool.resize(static_cast<size_t>(count));
  std::sort(pool.begin(), pool.end());
  return pool;
}

double median_of(std::vector<double> values) {
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  return (*std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid)) + upper) / 2.0;
}

struct GeneParams {
  std::vector<double> base_means;
  std::vector<uint8_t> is_outlier;
  std::vector<double> bcv_chi_factor;  // sqrt(df / ChiSq(df)) per gene
};

GeneParams draw_gene_params(const SimulatorConfig& c) {
  std::mt19937_64 rng(rnd::derive_seed(c.seed, kGenes));
  GeneParams p;
  const auto n = static_cast<size_t>(c.n_genes);
  p.base_means.resize(n);
  p.is_outlier.resize(n);
  p.bcv_chi_factor.resize(n);
  for (double& m : p.base_means) m = rnd::gamma(rng, c.mean_shape, 1.0 / c.mean_rate);
  const double median = median_of(p.base_means);
  for (size_t g = 0; g < n; ++g) {
    if (!rnd::bernoulli(rng, c.outlier_prob)) continue;
    p.is_outlier[g] = 1;
    p.base_means[g] = median * rnd::lognormal(rng, c.outlier_loc, c.outlier_scale);
  }
  for (double& f : p.bcv_chi_factor) f = std::sqrt(c.bcv_df / rnd::chi_squared(rng, c.bcv_df));
  return p;
}

// Multiplicative factors per cell type and gene (1 where not DE); fills the truth's DE lists.
std::vector<std::vector<double>> draw_cell_type_factors(const SimulatorConfig& c, SimulationTruth& truth) {
  std::mt19937_64 rng(rnd::derive_seed(c.seed, kCellTypes));
  std::vector<std::vector<double>> factors(static_cast<size_t>(c.n_cell_types),
                                           std::vector<double>(static_cast<size_t>(c.n_genes), 1.0));
  truth.de_genes.assign(factors.size(), {});
  truth.de_factors.assign(factors.size(), {});
  for (size_t k = 0; k < factors.size(); ++k) {
    for (int64_t g = 0; g < c.n_genes; ++g) {
      if (!rnd::bernoulli(rng, c.de_prob)) continue;
      double f = rnd::lognormal(rng, c.de_fac_loc, c.de_fac_scale);
      if (rnd::bernoulli(rng, c.de_down_prob)) f = 1.0 / f;
      factors[k][static_cast<size_t>(g)] = f;
      truth.de_genes[k].push_back(static_cast<int32_t>(g));
      truth.de_factors[k].push_back(f);
    }
  }
  return factors;
}

// Genes expressed well enough that a knock-down or shift shows: base mean at or above the median.
std::vector<int32_t> expressed_genes(const std::vector<double>& base_means) {
  const double median = median_of(base_means);
  std::vector<int32_t> out;
  for (size_t g = 0; g < base_means.size(); ++g) {
    if (base_means[g] >= median) out.push_back(static_cast<int32_t>(g));
  }
  return out;
}

// Factors per condition (row 0 = control, all ones); fills the truth's perturbation list.
std::vector<std::vector<double>> draw_perturbations(const SimulatorConfig& c,
                                                    const std::vector<double>& base_means,
                                                    SimulationTruth& truth) {
  std::mt19937_64 rng(rnd::derive_seed(c.seed, kPerturbations));
  std::vector<std::vector<double>> factors(static_cast<size_t>(c.n_perturbations) + 1,
                                           std::vector<double>(static_cast<size_t>(c.n_genes), 1.0));
  if (c.n_perturbations == 0) return factors;
  const std::vector<int32_t> candidates = expressed_genes(base_means);
  require(static_cast<int64_t>(candidates.size()) >= c.n_perturbations + c.n_downstream,
          fmt::format("{} perturbations with {} downstream genes each need more genes than the {} simulated",
                      c.n_perturbations, c.n_downstream, c.n_genes));
  // Targets are drawn in random order (not sorted) so condition names do not follow gene order.
  std::vector<int32_t> targets = candidates;
  for (int i = 0; i < c.n_perturbations; ++i) {
    const auto j =
        static_cast<size_t>(i) + static_cast<size_t>(rnd::uniform_below(
                                     rng, static_cast<uint64_t>(targets.size() - static_cast<size_t>(i))));
    std::swap(targets[static_cast<size_t>(i)], targets[j]);
  }
  targets.resize(static_cast<size_t>(c.n_perturbations));
  for (int i = 0; i < c.n_perturbations; ++i) {
    PerturbationTruth p;
    p.target = targets[static_cast<size_t>(i)];
    p.name = simulated_gene_name(p.target, c.n_genes);
    p.target_factor = c.knockdown_factor;
    std::vector<int32_t> pool;
    for (const int32_t g : candidates) {
      if (g != p.target) pool.push_back(g);
    }
    p.downstream = draw_distinct(rng, std::move(pool), c.n_downstream);
    auto& row = factors[static_cast<size_t>(i) + 1];
    row[static_cast<size_t>(p.target)] = p.target_factor;
    for (const int32_t g : p.downstream) {
      double f = rnd::lognormal(rng, c.downstream_fac_loc, c.downstream_fac_scale);
      if (rnd::bernoulli(rng, c.downstream_down_prob)) f = 1.0 / f;
      p.downstream_factors.push_back(f);
      row[static_cast<size_t>(g)] = f;
    }
    truth.perturbations.push_back(std::move(p));
  }
  return factors;
}

// The programs' members, loadings and activity per cell type, into the truth.
void draw_programs(const SimulatorConfig& c, const GeneParams& genes, SimulationTruth& truth) {
  if (c.n_programs == 0) return;
  std::mt19937_64 rng(rnd::derive_seed(c.seed, kPrograms));
  // Members are genes expressed well enough for their co-variation to show through Poisson noise,
  // but not outliers: a program of very highly expressed genes would move every other gene's share
  // of the library, and with it correlate genes outside the program.
  const double median = median_of(genes.base_means);
  std::vector<int32_t> candidates;
  for (size_t g = 0; g < genes.base_means.size(); ++g) {
    if (!genes.is_outlier[g] && genes.base_means[g] >= median) candidates.push_back(static_cast<int32_t>(g));
  }
  const auto n_candidates = static_cast<int64_t>(candidates.size());
  int64_t n_programs = c.n_programs;
  // By default a program is a small share of the genes, as in real data, so that in small
  // simulations the programs do not take over the library.
  const int64_t wanted = c.program_genes > 0 ? c.program_genes : std::clamp<int64_t>(c.n_genes / 25, 2, 40);
  int64_t per_program = std::min(wanted, n_candidates / n_programs);
  if (per_program < 2) {  // too few genes for every program: fewer programs of two genes
    per_program = 2;
    n_programs = n_candidates / 2;
  }
  // One shuffle; program p takes the next per_program genes, so no gene is in two programs.
  for (int64_t i = 0; i + 1 < n_candidates; ++i) {
    const auto j = static_cast<size_t>(i) +
                   static_cast<size_t>(rnd::uniform_below(rng, static_cast<uint64_t>(n_candidates - i)));
    std::swap(candidates[static_cast<size_t>(i)], candidates[j]);
  }
  const auto n_types = static_cast<size_t>(c.n_cell_types);
  for (int64_t p = 0; p < n_programs; ++p) {
    ProgramTruth program;
    program.name = fmt::format("program_{}", p);
    program.is_switch = p % 3 == 2;
    program.scale = c.program_scale;
    const auto first = candidates.begin() + static_cast<std::ptrdiff_t>(p * per_program);
    program.genes.assign(first, first + static_cast<std::ptrdiff_t>(per_program));
    std::sort(program.genes.begin(), program.genes.end());
    for (size_t i = 0; i < program.genes.size(); ++i) {
      const double loading = kLoadingMin + (kLoadingMax - kLoadingMin) * rnd::uniform01(rng);
      program.loadings.push_back(rnd::bernoulli(rng, c.program_down_prob) ? -loading : loading);
    }
    program.active.assign(n_types, 0);
    for (size_t k = 0; k < n_types; ++k)
      program.active[k] = p == 0 || rnd::bernoulli(rng, c.program_type_prob);
    if (std::none_of(program.active.begin(), program.active.end(), [](uint8_t a) { return a != 0; }))
      program.active[static_cast<size_t>(rnd::uniform_below(rng, n_types))] = 1;
    program.type_mean.assign(n_types, 0.0);
    program.type_on_share.assign(n_types, 0.0);
    for (size_t k = 0; k < n_types; ++k) {
      if (!program.active[k]) continue;
      if (program.is_switch) {
        program.type_on_share[k] = kOnShareMin + (kOnShareMax - kOnShareMin) * rnd::uniform01(rng);
      } else {
        program.type_mean[k] = c.program_mean_sd * rnd::normal(rng);
      }
    }
    truth.programs.push_back(std::move(program));
  }
}

// A cell's deviation from its type's activity: mean 0, sd 1, triangular on +-sqrt(6). Bounded on
// purpose: with a normal's tails a few cells have a program so far up that its genes take most of
// their library, which pushes every other gene down together (a spurious correlation among genes
// outside the programs once counts are normalised by library size).
double unit_activity(std::mt19937_64& rng) {
  const double u = rnd::uniform01(rng);
  const double v = rnd::uniform01(rng);
  return (u + v - 1.0) * std::sqrt(6.0);
}

// Every cell's activity of every program (0 in types where the program is not active).
void draw_program_activity(const SimulatorConfig& c, SimulationTruth& truth) {
  std::mt19937_64 rng(rnd::derive_seed(c.seed, kProgramActivity));
  const auto n = static_cast<size_t>(c.n_cells);
  truth.program_activity.assign(truth.programs.size(), std::vector<double>(n, 0.0));
  for (size_t i = 0; i < n; ++i) {
    const auto type = static_cast<size_t>(truth.cell_type[i]);
    for (size_t p = 0; p < truth.programs.size(); ++p) {
      const ProgramTruth& program = truth.programs[p];
      if (!program.active[type]) continue;
      double& a = truth.program_activity[p][i];
      if (!program.is_switch) {
        a = program.type_mean[type] + unit_activity(rng);
      } else if (rnd::bernoulli(rng, program.type_on_share[type])) {
        a = kSwitchOn + kSwitchSd * unit_activity(rng);
      }
    }
  }
}

void draw_cell_labels(const SimulatorConfig& c, SimulationTruth& truth) {
  std::mt19937_64 rng(rnd::derive_seed(c.seed, kCellLabels));
  std::vector<double> type_cum(static_cast<size_t>(c.n_cell_types), 1.0);
  if (!c.cell_type_probs.empty()) type_cum = c.cell_type_probs;
  std::partial_sum(type_cum.begin(), type_cum.end(), type_cum.begin());
  std::vector<double> cond_cum(static_cast<size_t>(c.n_perturbations) + 1, 1.0);
  if (c.control_fraction >= 0.0 && c.n_perturbations > 0) {
    cond_cum[0] = c.control_fraction;
    for (size_t i = 1; i < cond_cum.size(); ++i) cond_cum[i] = (1.0 - c.control_fraction) / c.n_perturbations;
  }
  std::partial_sum(cond_cum.begin(), cond_cum.end(), cond_cum.begin());
  const auto n = static_cast<size_t>(c.n_cells);
  truth.cell_type.resize(n);
  truth.condition.resize(n);
  truth.library_sizes.resize(n);
  for (size_t i = 0; i < n; ++i) {
    truth.cell_type[i] = draw_category(rng, type_cum);
    truth.condition[i] = draw_category(rng, cond_cum);
    truth.library_sizes[i] = rnd::lognormal(rng, c.lib_loc, c.lib_scale);
  }
}

// Gene proportions of every (cell type, condition) pair that occurs: base means times both
// factors, scaled to sum to one, so that the library size alone sets a cell's expected total.
// Indexed type * n_conditions + condition; pairs without cells stay empty.
std::vector<std::vector<double>> combination_proportions(
    const std::vector<double>& base_means, const std::vector<std::vector<double>>& type_factors,
    const std::vector<std::vector<double>>& condition_factors, const SimulationTruth& truth) {
  const size_t n_conditions = condition_factors.size();
  std::vector<std::vector<double>> proportions(type_factors.size() * n_conditions);
  for (size_t i = 0; i < truth.cell_type.size(); ++i) {
    const auto type = static_cast<size_t>(truth.cell_type[i]);
    const auto condition = static_cast<size_t>(truth.condition[i]);
    auto& p = proportions[type * n_conditions + condition];
    if (!p.empty()) continue;
    p.resize(base_means.size());
    for (size_t g = 0; g < p.size(); ++g)
      p[g] = base_means[g] * type_factors[type][g] * condition_factors[condition][g];
    const double total = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& v : p) v = total > 0 ? v / total : 0.0;
  }
  return proportions;
}

// A member gene of some program, in the table of all members sorted by gene.
struct ProgramGene {
  size_t gene;
  size_t program;
  double loading;
};

std::vector<ProgramGene> program_gene_table(const SimulationTruth& truth) {
  std::vector<ProgramGene> table;
  for (size_t p = 0; p < truth.programs.size(); ++p) {
    const ProgramTruth& program = truth.programs[p];
    for (size_t i = 0; i < program.genes.size(); ++i)
      table.push_back({static_cast<size_t>(program.genes[i]), p, program.loadings[i]});
  }
  std::sort(table.begin(), table.end(), [](const auto& a, const auto& b) { return a.gene < b.gene; });
  return table;
}

// One cell's counts from its own random stream (so results do not depend on threading).
void draw_cell(const SimulatorConfig& c, const GeneParams& genes, const std::vector<double>& proportions,
               const std::vector<ProgramGene>& program_genes, const SimulationTruth& truth, uint64_t cell,
               std::vector<int32_t>& cols, std::vector<float>& vals) {
  std::mt19937_64 rng(rnd::derive_seed(c.seed, kFirstCell + cell));
  cols.clear();
  vals.clear();
  // The programs' factors on this cell's member genes, and the rescaling that keeps its expected
  // total at its library size. Without active programs every factor is exactly 1 and `scale` the
  // library size, so such cells come out bit for bit as from a simulator without programs.
  std::vector<double> factors(program_genes.size());
  double total = 1.0;
  for (size_t j = 0; j < program_genes.size(); ++j) {
    const ProgramGene& member = program_genes[j];
    const double activity = truth.program_activity[member.program][cell];
    factors[j] = std::exp(truth.programs[member.program].scale * member.loading * activity);
    total += proportions[member.gene] * (factors[j] - 1.0);
  }
  const double scale = truth.library_sizes[cell] / total;
  size_t next_member = 0;
  for (size_t g = 0; g < proportions.size(); ++g) {
    double factor = 1.0;
    if (next_member < program_genes.size() && program_genes[next_member].gene == g)
      factor = factors[next_member++];
    const double mean = proportions[g] * factor * scale;
    if (!(mean > 0.0)) continue;
    const double bcv = (c.bcv_common + 1.0 / std::sqrt(mean)) * genes.bcv_chi_factor[g];
    const double trended = bcv > 0 ? rnd::gamma(rng, 1.0 / (bcv * bcv), mean * bcv * bcv) : mean;
    if (c.dropout) {
      const double drop = 1.0 / (1.0 + std::exp(-c.dropout_shape * (std::log(trended) - c.dropout_mid)));
      if (rnd::bernoulli(rng, drop)) continue;
    }
    const int64_t count = rnd::poisson(rng, trended);
    if (count == 0) continue;
    cols.push_back(static_cast<int32_t>(g));
    vals.push_back(static_cast<float>(count));
  }
}

CsrMatrix draw_counts(const SimulatorConfig& c, const GeneParams& genes,
                      const std::vector<std::vector<double>>& proportions, size_t n_conditions,
                      const SimulationTruth& truth, int threads) {
  CsrMatrix X;
  X.n_cols = c.n_genes;
  constexpr int64_t kBlock = 1024;  // cells per parallel block; progress is reported between blocks
  std::vector<std::vector<int32_t>> cols(kBlock);
  std::vector<std::vector<float>> vals(kBlock);
  const std::vector<ProgramGene> program_genes = program_gene_table(truth);
  Progress progress("simulate", c.n_cells, "cells");
  for (int64_t begin = 0; begin < c.n_cells; begin += kBlock) {
    const int64_t n = std::min(kBlock, c.n_cells - begin);
    parallel_for(n, resolve_thread_count(threads), 16, [&](int64_t lo, int64_t hi, int) {
      for (int64_t k = lo; k < hi; ++k) {
        const auto cell = static_cast<size_t>(begin + k);
        const auto& p = proportions[static_cast<size_t>(truth.cell_type[cell]) * n_conditions +
                                    static_cast<size_t>(truth.condition[cell])];
        draw_cell(c, genes, p, program_genes, truth, cell, cols[static_cast<size_t>(k)],
                  vals[static_cast<size_t>(k)]);
      }
    });
    for (int64_t k = 0; k < n; ++k) X.append_row(cols[static_cast<size_t>(k)], vals[static_cast<size_t>(k)]);
    progress.update(begin + n);
  }
  progress.finish();
  return X;
}

nlohmann::json config_json(const SimulatorConfig& c) {
  nlohmann::json j{{"n_cells", c.n_cells},
                   {"n_genes", c.n_genes},
                   {"seed", c.seed},
                   {"mean_shape", c.mean_shape},
                   {"mean_rate", c.mean_rate},
                   {"outlier_prob", c.outlier_prob},
                   {"outlier_loc", c.outlier_loc},
                   {"outlier_scale", c.outlier_scale},
                   {"lib_loc", c.lib_loc},
                   {"lib_scale", c.lib_scale},
                   {"n_cell_types", c.n_cell_types},
                   {"cell_type_probs", c.cell_type_probs},
                   {"de_prob", c.de_prob},
                   {"de_down_prob", c.de_down_prob},
                   {"de_fac_loc", c.de_fac_loc},
                   {"de_fac_scale", c.de_fac_scale},
                   {"n_perturbations", c.n_perturbations},
                   {"control_fraction", c.control_fraction},
                   {"knockdown_factor", c.knockdown_factor},
                   {"n_downstream", c.n_downstream},
                   {"downstream_fac_loc", c.downstream_fac_loc},
                   {"downstream_fac_scale", c.downstream_fac_scale},
                   {"downstream_down_prob", c.downstream_down_prob},
                   {"bcv_common", c.bcv_common},
                   {"bcv_df", c.bcv_df},
                   {"dropout", c.dropout},
                   {"dropout_mid", c.dropout_mid},
                   {"dropout_shape", c.dropout_shape}};
  // Without programs the record stays as before programs existed: such a file is the same file.
  if (c.n_programs > 0) {
    j["n_programs"] = c.n_programs;
    j["program_genes"] = c.program_genes;
    j["program_scale"] = c.program_scale;
    j["program_down_prob"] = c.program_down_prob;
    j["program_type_prob"] = c.program_type_prob;
    j["program_mean_sd"] = c.program_mean_sd;
  }
  return j;
}

Column categorical_in_order(std::string name, std::vector<std::string> categories,
                            std::vector<int32_t> codes) {
  Column col;
  col.name = std::move(name);
  col.kind = Column::Kind::Categorical;
  col.categories = std::move(categories);
  col.codes = std::move(codes);
  return col;
}

}  // namespace

void SimulatorConfig::validate() const {
  const auto probability = [](double p) { return p >= 0.0 && p <= 1.0; };
  require(n_cells >= 1, fmt::format("--cells must be at least 1 (got {})", n_cells));
  require(n_genes >= 1 && n_genes <= 10'000'000,
          fmt::format("--genes must be 1..10,000,000 (got {})", n_genes));
  require(mean_shape > 0 && mean_rate > 0, "mean_shape and mean_rate must be positive");
  require(probability(outlier_prob), "outlier_prob must be in [0, 1]");
  require(outlier_scale >= 0 && lib_scale >= 0 && de_fac_scale >= 0 && downstream_fac_scale >= 0,
          "log-normal scales must be non-negative");
  require(n_cell_types >= 1 && n_cell_types <= 10'000,
          fmt::format("--cell-types must be 1..10,000 (got {})", n_cell_types));
  require(cell_type_probs.empty() || static_cast<int>(cell_type_probs.size()) == n_cell_types,
          fmt::format("{} cell-type probabilities given for {} cell types", cell_type_probs.size(),
                      n_cell_types));
  require(std::all_of(cell_type_probs.begin(), cell_type_probs.end(), [](double p) { return p >= 0; }) &&
              (cell_type_probs.empty() ||
               std::accumulate(cell_type_probs.begin(), cell_type_probs.end(), 0.0) > 0),
          "cell-type probabilities must be non-negative with a positive sum");
  require(probability(de_prob) && probability(de_down_prob) && probability(downstream_down_prob),
          "de_prob, de_down_prob and downstream_down_prob must be in [0, 1]");
  require(n_perturbations >= 0, fmt::format("--perturbations must be >= 0 (got {})", n_perturbations));
  require(n_downstream >= 0, "n_downstream must be >= 0");
  require(control_fraction < 1.0, "control_fraction must be below 1 (or negative for an equal share)");
  require(knockdown_factor >= 0.0 && knockdown_factor <= 1.0, "knockdown_factor must be in [0, 1]");
  require(bcv_common >= 0 && bcv_df > 0, "bcv_common must be >= 0 and bcv_df > 0");
  require(n_programs >= 0 && n_programs <= 10'000,
          fmt::format("--programs must be 0..10,000 (got {})", n_programs));
  require(program_genes == 0 || program_genes >= 2,
          fmt::format("--program-genes must be 0 (automatic) or at least 2 (got {})", program_genes));
  require(program_scale >= 0 && program_scale <= 10,
          fmt::format("--program-scale must be 0..10 (got {:g})", program_scale));
  require(probability(program_down_prob) && probability(program_type_prob),
          "program_down_prob and program_type_prob must be in [0, 1]");
  require(program_mean_sd >= 0, "program_mean_sd must be >= 0");
}

std::string simulated_gene_name(int64_t i, int64_t n_genes) {
  const int width = std::max(4, static_cast<int>(std::to_string(n_genes).size()));
  return fmt::format("Gene{:0{}}", i + 1, width);
}

Simulation simulate(const SimulatorConfig& config, int threads) {
  config.validate();
  Simulation sim;
  SimulationTruth& truth = sim.truth;
  const GeneParams genes = draw_gene_params(config);
  truth.base_means = genes.base_means;
  truth.is_outlier = genes.is_outlier;
  const auto type_factors = draw_cell_type_factors(config, truth);
  const auto condition_factors = draw_perturbations(config, genes.base_means, truth);
  draw_cell_labels(config, truth);
  draw_programs(config, genes, truth);
  draw_program_activity(config, truth);

  const auto proportions = combination_proportions(genes.base_means, type_factors, condition_factors, truth);
  sim.data.X = draw_counts(config, genes, proportions, condition_factors.size(), truth, threads);

  auto& obs = sim.data.obs;
  obs.index.reserve(static_cast<size_t>(config.n_cells));
  const int cell_width = std::max(5, static_cast<int>(std::to_string(config.n_cells).size()));
  for (int64_t cell = 0; cell < config.n_cells; ++cell)
    obs.index.push_back(fmt::format("Cell{:0{}}", cell + 1, cell_width));
  std::vector<std::string> type_names;
  for (int k = 0; k < config.n_cell_types; ++k) type_names.push_back(fmt::format("type_{}", k));
  std::vector<std::string> condition_names{"control"};
  for (const auto& pert : truth.perturbations) condition_names.push_back(pert.name);
  obs.set(categorical_in_order("cell_type", std::move(type_names), truth.cell_type));
  obs.set(categorical_in_order("condition", std::move(condition_names), truth.condition));
  for (size_t p = 0; p < truth.programs.size(); ++p)
    obs.set(Column::numeric(truth.programs[p].name, truth.program_activity[p]));

  auto& var = sim.data.var;
  var.index.reserve(static_cast<size_t>(config.n_genes));
  for (int64_t g = 0; g < config.n_genes; ++g) var.index.push_back(simulated_gene_name(g, config.n_genes));
  sim.data.uns_strings.emplace_back("lingshu_simulator", config_json(config).dump());
  return sim;
}

nlohmann::json truth_json(const Simulation& simulation) {
  const SimulationTruth& truth = simulation.truth;
  const auto& names = simulation.data.var.index;
  const auto gene_factors = [&](const std::vector<int32_t>& genes, const std::vector<double>& factors) {
    nlohmann::json out = nlohmann::json::object();
    for (size_t i = 0; i < genes.size(); ++i) out[names[static_cast<size_t>(genes[i])]] = factors[i];
    return out;
  };
  nlohmann::json types = nlohmann::json::object();
  for (size_t k = 0; k < truth.de_genes.size(); ++k) {
    types[fmt::format("type_{}", k)] = {
        {"de_gene_factors", gene_factors(truth.de_genes[k], truth.de_factors[k])}};
  }
  nlohmann::json perturbations = nlohmann::json::object();
  for (const auto& p : truth.perturbations) {
    perturbations[p.name] = {{"target", names[static_cast<size_t>(p.target)]},
                             {"target_factor", p.target_factor},
                             {"downstream_gene_factors", gene_factors(p.downstream, p.downstream_factors)}};
  }
  std::vector<std::string> type_names;
  for (size_t k = 0; k < truth.de_genes.size(); ++k) type_names.push_back(fmt::format("type_{}", k));
  nlohmann::json programs = nlohmann::json::object();
  for (const auto& p : truth.programs) {
    nlohmann::json active_in = nlohmann::json::array();
    nlohmann::json per_type = nlohmann::json::object();
    for (size_t k = 0; k < p.active.size(); ++k) {
      if (!p.active[k]) continue;
      active_in.push_back(type_names[k]);
      per_type[type_names[k]] = p.is_switch ? p.type_on_share[k] : p.type_mean[k];
    }
    nlohmann::json entry{{"kind", p.is_switch ? "switch" : "graded"},
                         {"obs_column", p.name},
                         {"scale", p.scale},
                         {"gene_loadings", gene_factors(p.genes, p.loadings)},
                         {"active_in", active_in}};
    if (p.is_switch) {
      entry["on_share"] = per_type;
      entry["on_activity"] = {{"mean", kSwitchOn}, {"sd", kSwitchSd}};
    } else {
      entry["mean_activity"] = per_type;
      entry["activity_sd"] = 1.0;
    }
    programs[p.name] = std::move(entry);
  }
  return nlohmann::json{{"cell_types", types}, {"perturbations", perturbations}, {"programs", programs}};
}

}  // namespace lingshu
