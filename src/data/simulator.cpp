#include "data/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "data/random.h"

namespace lingshu {

namespace {

// Independent random streams, so that e.g. adding perturbations does not change the gene means.
enum Stream : uint64_t { kGenes = 1, kCellTypes, kPerturbations, kCellLabels, kFirstCell = 1000 };

void require(bool ok, const std::string& what) {
  if (!ok) throw UserError(fmt::format("simulator: {}", what));
}

int32_t draw_category(std::mt19937_64& rng, const std::vector<double>& cumulative) {
  const double u = rnd::uniform01(rng) * cumulative.back();
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
  return static_cast<int32_t>(
      std::min<std::ptrdiff_t>(it - cumulative.begin(), static_cast<std::ptrdiff_t>(cumulative.size()) - 1));
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

// One cell's counts from its own random stream (so results do not depend on threading).
void draw_cell(const SimulatorConfig& c, const GeneParams& genes, const std::vector<double>& proportions,
               double library_size, uint64_t cell, std::vector<int32_t>& cols, std::vector<float>& vals) {
  std::mt19937_64 rng(rnd::derive_seed(c.seed, kFirstCell + cell));
  cols.clear();
  vals.clear();
  for (size_t g = 0; g < proportions.size(); ++g) {
    const double mean = proportions[g] * library_size;
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
  Progress progress("simulate", c.n_cells, "cells");
  for (int64_t begin = 0; begin < c.n_cells; begin += kBlock) {
    const int64_t n = std::min(kBlock, c.n_cells - begin);
    parallel_for(n, resolve_thread_count(threads), 16, [&](int64_t lo, int64_t hi, int) {
      for (int64_t k = lo; k < hi; ++k) {
        const auto cell = static_cast<size_t>(begin + k);
        const auto& p = proportions[static_cast<size_t>(truth.cell_type[cell]) * n_conditions +
                                    static_cast<size_t>(truth.condition[cell])];
        draw_cell(c, genes, p, truth.library_sizes[cell], cell, cols[static_cast<size_t>(k)],
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
  return nlohmann::json{{"n_cells", c.n_cells},
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
  return nlohmann::json{{"cell_types", types}, {"perturbations", perturbations}};
}

}  // namespace lingshu
