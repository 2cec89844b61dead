#pragma once
// A Splatter-style gamma-Poisson simulator of UMI counts (Zappia et al. 2017), seeded and
// deterministic: data whose truth is known (cell types with their marker genes, perturbations
// with their target and downstream genes) for testing the model, the metrics and the CLI.
//
// Per gene: base mean ~ Gamma(mean_shape, mean_rate); with probability outlier_prob the mean is
// replaced by median * LogNormal(outlier_loc, outlier_scale). Per cell type: each gene is DE with
// probability de_prob, its mean multiplied by LogNormal(de_fac_loc, de_fac_scale) or divided by it
// (down with probability de_down_prob). Per perturbation: the target gene's mean is multiplied by
// knockdown_factor and n_downstream other genes by LogNormal(downstream_fac_loc, ..) up or down.
// Per cell: library size ~ LogNormal(lib_loc, lib_scale); the cell's gene means are scaled to sum
// to it; biological variation Gamma(1/bcv^2, mean*bcv^2) with bcv = (bcv_common + 1/sqrt(mean)) *
// sqrt(bcv_df / ChiSq(bcv_df)) (one chi-square per gene); optional dropout keeps a gene with
// probability 1 - logistic(dropout_shape * (log mean - dropout_mid)); counts ~ Poisson.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "data/anndata.h"

namespace lingshu {

struct SimulatorConfig {
  int64_t n_cells = 1000;
  int64_t n_genes = 2000;
  uint64_t seed = 0;

  double mean_shape = 0.6;
  double mean_rate = 0.3;
  double outlier_prob = 0.05;
  double outlier_loc = 4.0;
  double outlier_scale = 0.5;

  double lib_loc = 8.0;  // median library size e^8 ~ 2,981 UMIs (10x-like)
  double lib_scale = 0.3;

  int n_cell_types = 3;
  std::vector<double> cell_type_probs;  // empty: equal
  double de_prob = 0.1;
  double de_down_prob = 0.5;
  double de_fac_loc = 0.5;
  double de_fac_scale = 0.4;

  int n_perturbations = 0;         // conditions besides "control"
  double control_fraction = -1.0;  // share of control cells; < 0: an equal share for every condition
  double knockdown_factor = 0.05;  // multiplies the target gene's mean
  int n_downstream = 20;           // genes shifted by each perturbation (besides the target)
  double downstream_fac_loc = 0.8;
  double downstream_fac_scale = 0.3;
  double downstream_down_prob = 0.5;

  double bcv_common = 0.1;
  double bcv_df = 60.0;

  bool dropout = false;
  double dropout_mid = 0.0;
  double dropout_shape = -1.0;

  // Throws UserError naming the first bad setting.
  void validate() const;
};

// What one perturbation does (the truth tests compare against).
struct PerturbationTruth {
  std::string name;  // the condition label: the target gene's name
  int32_t target = -1;
  double target_factor = 1.0;
  std::vector<int32_t> downstream;         // gene indices, increasing
  std::vector<double> downstream_factors;  // aligned with downstream (> 1 up, < 1 down)
};

struct SimulationTruth {
  std::vector<double> base_means;  // per gene, before cell-type / perturbation factors
  std::vector<uint8_t> is_outlier;
  std::vector<std::vector<int32_t>> de_genes;    // per cell type, increasing
  std::vector<std::vector<double>> de_factors;   // per cell type, aligned with de_genes
  std::vector<PerturbationTruth> perturbations;  // condition code i + 1 is perturbation i
  std::vector<int32_t> cell_type;                // per cell, 0 .. n_cell_types-1
  std::vector<int32_t> condition;                // per cell, 0 = control
  std::vector<double> library_sizes;             // per cell, as drawn (expected total before noise)
};

struct Simulation {
  // X: counts; obs: `cell_type` ("type_0", ...) and `condition` ("control", gene names) as
  // categoricals; var index: "Gene0001", ...; uns: the configuration as JSON.
  AnnData data;
  SimulationTruth truth;
};

// `threads` <= 0: all hardware threads. The result does not depend on the thread count.
Simulation simulate(const SimulatorConfig& config, int threads = 0);

// The truth as JSON (per cell type: DE genes by name with factors; per perturbation: target and
// downstream genes with factors), for users who want to check a method against it.
nlohmann::json truth_json(const Simulation& simulation);

// "Gene0001"-style name of gene i (0-based), zero-padded to the width `n_genes` needs (>= 4).
std::string simulated_gene_name(int64_t i, int64_t n_genes);

}  // namespace lingshu
