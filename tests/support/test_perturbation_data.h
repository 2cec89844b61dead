#pragma once
// Small simulated perturbation screens for the perturbation metric and baseline tests: Poisson
// counts around per-gene base rates, each perturbation scaling its own few genes, per-cell library
// size factors, optional contexts with their own base shifts.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "data/anndata.h"

namespace lingshu::testing {

struct ScreenSpec {
  std::vector<std::string> contexts{""};  // "" = no context column
  std::vector<std::string> perts{"P0", "P1", "P2"};
  int cells_per_group = 30;
  int genes = 40;
  int affected_genes = 5;  // per perturbation
  double effect = 4.0;     // fold change (up for even perturbations, down for odd)
  unsigned seed = 1;
};

inline AnnData simulate_screen(const ScreenSpec& spec) {
  std::mt19937 rng(spec.seed);
  std::lognormal_distribution<double> base_rate(0.5, 1.0);
  std::uniform_real_distribution<double> library(0.7, 1.3);
  std::vector<double> base(static_cast<size_t>(spec.genes));
  for (auto& b : base) b = base_rate(rng);
  AnnData data;
  data.X.n_cols = spec.genes;
  for (int j = 0; j < spec.genes; ++j) data.var.index.push_back(fmt::format("G{}", j));
  std::vector<std::string> pert_labels, context_labels;
  std::vector<std::string> groups{"control"};
  groups.insert(groups.end(), spec.perts.begin(), spec.perts.end());
  for (size_t c = 0; c < spec.contexts.size(); ++c) {
    for (size_t k = 0; k < groups.size(); ++k) {
      for (int cell = 0; cell < spec.cells_per_group; ++cell) {
        const double size_factor = library(rng);
        std::vector<float> row(static_cast<size_t>(spec.genes));
        for (int j = 0; j < spec.genes; ++j) {
          double rate =
              base[static_cast<size_t>(j)] * size_factor * (1.0 + 0.5 * static_cast<double>(c) * (j % 2));
          // Perturbation k (1-based among groups) moves its own block of genes (wrapping).
          if (k > 0) {
            const int first =
                static_cast<int>((k - 1) * static_cast<size_t>(spec.affected_genes)) % spec.genes;
            const int offset = (j - first + spec.genes) % spec.genes;
            if (offset < spec.affected_genes) rate *= (k % 2 == 0) ? spec.effect : 1.0 / spec.effect;
          }
          row[static_cast<size_t>(j)] = static_cast<float>(std::poisson_distribution<int>(rate)(rng));
        }
        data.X.append_dense_row(row);
        pert_labels.push_back(groups[k]);
        context_labels.push_back(spec.contexts[c]);
        data.obs.index.push_back(fmt::format("cell{}", data.obs.index.size()));
      }
    }
  }
  data.obs.set(Column::categorical("condition", pert_labels));
  if (!(spec.contexts.size() == 1 && spec.contexts[0].empty())) {
    data.obs.set(Column::categorical("cell_type", context_labels));
  }
  return data;
}

// The cells whose `column` label is one of `labels`, or the complement.
inline std::vector<int64_t> cells_where(const AnnData& data, const std::string& column,
                                        const std::vector<std::string>& labels, bool keep = true) {
  std::vector<int64_t> rows;
  const Column* c = data.obs.find(column);
  for (int64_t i = 0; i < data.n_obs(); ++i) {
    const auto label = c->label(i);
    const bool hit = label && std::find(labels.begin(), labels.end(), *label) != labels.end();
    if (hit == keep) rows.push_back(i);
  }
  return rows;
}

}  // namespace lingshu::testing
