#include "sample/perturbation_prior.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "data/preprocess.h"

namespace lingshu {

namespace {

// Mean counts-per-10k of every gene over the given cells.
std::vector<double> mean_normalised(const CsrMatrix& counts, const std::vector<int64_t>& cells) {
  const CsrMatrix normalised = normalize_total(counts.select_rows(cells));
  return column_means(normalised);
}

}  // namespace

std::vector<std::optional<std::vector<std::string>>> contexts_of_rows(
    const DataFrame& obs, const std::vector<std::string>& context_cols) {
  std::vector<const Column*> columns;
  for (const auto& name : context_cols) columns.push_back(&obs.require(name, "obs"));
  std::vector<std::optional<std::vector<std::string>>> out(static_cast<size_t>(obs.size()));
  for (int64_t i = 0; i < obs.size(); ++i) {
    std::vector<std::string> labels;
    for (const Column* column : columns) {
      const auto label = column->label(i);
      if (!label) break;
      labels.push_back(*label);
    }
    if (labels.size() == columns.size()) out[static_cast<size_t>(i)] = std::move(labels);
  }
  return out;
}

std::vector<DownRegulatedGene> consistently_down_genes(
    const CsrMatrix& counts, const DataFrame& obs, const std::vector<std::string>& context_cols,
    const std::string& pert_col, const std::string& control, const std::string& perturbation,
    const std::vector<std::string>& target_context, const PerturbationPriorOptions& options) {
  const auto contexts = contexts_of_rows(obs, context_cols);
  const Column& pert = obs.require(pert_col, "obs");
  std::map<std::vector<std::string>, std::vector<int64_t>> perturbed, controls;
  for (int64_t i = 0; i < obs.size(); ++i) {
    const auto& c = contexts[static_cast<size_t>(i)];
    const auto p = pert.label(i);
    if (!c || !p || *c == target_context) continue;
    if (*p == perturbation) perturbed[*c].push_back(i);
    if (*p == control) controls[*c].push_back(i);
  }

  const auto n_genes = static_cast<size_t>(counts.n_cols);
  std::vector<double> log_ratio_sum(n_genes, 0.0);
  std::vector<bool> down_everywhere(n_genes, true);
  int64_t n_contexts = 0;
  for (const auto& [name, cells] : perturbed) {
    const auto ctrl = controls.find(name);
    if (ctrl == controls.end() || static_cast<int64_t>(cells.size()) < options.min_cells ||
        static_cast<int64_t>(ctrl->second.size()) < options.min_cells) {
      continue;
    }
    ++n_contexts;
    const auto pert_mean = mean_normalised(counts, cells);
    const auto ctrl_mean = mean_normalised(counts, ctrl->second);
    for (size_t g = 0; g < n_genes; ++g) {
      if (ctrl_mean[g] < options.min_control_mean) {
        down_everywhere[g] = false;
        continue;
      }
      const double ratio = pert_mean[g] / ctrl_mean[g];
      if (ratio > options.max_ratio) down_everywhere[g] = false;
      // A gene silenced completely still gets a finite ratio: half a count below the floor.
      log_ratio_sum[g] += std::log(std::max(ratio, 0.5 / static_cast<double>(cells.size()) / ctrl_mean[g]));
    }
  }

  std::vector<DownRegulatedGene> out;
  if (n_contexts == 0) return out;
  for (size_t g = 0; g < n_genes; ++g) {
    if (!down_everywhere[g]) continue;
    out.push_back(
        {static_cast<int32_t>(g), std::exp(log_ratio_sum[g] / static_cast<double>(n_contexts)), n_contexts});
  }
  return out;
}

}  // namespace lingshu
