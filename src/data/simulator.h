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
//
// Gene programs give cells of one type gene-gene structure (without them every gene varies
// independently within a type, and a model that draws genes independently looks as good as the
// data): co-expressed modules, such as a differentiation axis, an activation state or the cell
// cycle, whose activity varies from cell to cell. Each program has member genes with signed
// loadings; a cell's member-gene means are multiplied by exp(program_scale * loading * activity)
// and its means rescaled to its library size, before the biological-variation step.
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

  // Gene programs (on by default, so that plain simulated data has within-type structure). Members
  // are drawn from the genes expressed at or above the median base mean, outliers excluded (so a
  // program does not swing the library composition), and no gene is in two programs; when the
  // genes do not suffice, programs get fewer members (at least 2) or are left out.
  int n_programs = 3;
  int program_genes = 0;       // members per program; 0: 4% of the genes, between 2 and 40
  double program_scale = 1.0;  // log-fold change per unit of activity (sd 1) for a loading of 1
  // Loadings are +-U(0.5, 1.5): mostly up, negative (genes the program turns down) with this probability.
  double program_down_prob = 0.2;
  // Program 0 is active in every cell type; the others in each type with this probability (at
  // least one type). In a type where a program is not active its activity is 0.
  double program_type_prob = 0.5;
  // Programs 2, 5, 8, ... are switches (like the cell cycle): in each active type a share of the
  // cells ~ U(0.1, 0.4) is on, with activity 2 + 0.5 T, the rest at 0. The others are graded:
  // activity = the type's mean activity ~ N(0, program_mean_sd) + T. T is a bounded bell-shaped
  // draw with mean 0 and sd 1 (triangular on +-sqrt(6)).
  double program_mean_sd = 0.5;

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

// One gene program: its members and how active it is in each cell type.
struct ProgramTruth {
  std::string name;                   // "program_0", ...: also the obs column of the per-cell activity
  bool is_switch = false;             // a share of the cells on (else graded around the type's mean)
  double scale = 0.0;                 // member means are multiplied by exp(scale * loading * activity)
  std::vector<int32_t> genes;         // gene indices, increasing
  std::vector<double> loadings;       // aligned with genes (> 0 up with the activity, < 0 down)
  std::vector<uint8_t> active;        // per cell type
  std::vector<double> type_mean;      // graded: mean activity per type (0 where not active)
  std::vector<double> type_on_share;  // switch: share of the cells on per type (0 where not active)
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
  std::vector<ProgramTruth> programs;
  std::vector<std::vector<double>> program_activity;  // per program, per cell (an obs column each)
};

struct Simulation {
  // X: counts; obs: `cell_type` ("type_0", ...) and `condition` ("control", gene names) as
  // categoricals, then one numeric column of activities per program (`program_0`, ...); var
  // index: "Gene0001", ...; uns: the configuration as JSON.
  AnnData data;
  SimulationTruth truth;
};

// `threads` <= 0: all hardware threads. The result does not depend on the thread count.
Simulation simulate(const SimulatorConfig& config, int threads = 0);

// The truth as JSON (per cell type: DE genes by name with factors; per perturbation: target and
// downstream genes with factors; per program: member genes by name with loadings, the types it is
// active in and its activity there), for users who want to check a method against it.
nlohmann::json truth_json(const Simulation& simulation);

// "Gene0001"-style name of gene i (0-based), zero-padded to the width `n_genes` needs (>= 4).
std::string simulated_gene_name(int64_t i, int64_t n_genes);

}  // namespace lingshu
