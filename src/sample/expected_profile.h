#pragma once
// The model's noiseless prediction (`lingshu predict --expected`): for each group of cells, the
// pseudobulk the model expects rather than one draw of it. Each of the group's cells takes its
// drawn state and labels as in `generate`; from the model's predicted distribution of every gene
// (one forward pass, guided as set) comes the expected log1p CP10k of the gene, at the cell's
// expected library size; the group's profile is the mean over its cells. Written as integer counts
// the way the mean baseline writes its profile (data/pseudobulk_cells.h), pseudobulk metrics then
// score the model's predicted shift without its sampling noise. Free of LibTorch.
#include <vector>

#include "data/anndata.h"
#include "sample/generate.h"

namespace lingshu {

struct ExpectedProfile {
  std::vector<double> log_profile;  // per gene, the model's gene order: mean log1p CP10k
  double library_size = 0;          // the median of the cells' expected totals
  // The same cells (states, sizes) with their perturbation NULL: the context's state alone. Filled
  // when asked for (and the model has a perturbation field).
  std::vector<double> state_log_profile;
};

// One profile per group of `groups`.
std::vector<ExpectedProfile> expected_profiles(const LoadedModel& model, const std::vector<CellGroup>& groups,
                                               const SamplingSettings& settings, bool with_state = false);

// expected_profiles, started from what the training cells of each group's perturbation state looked
// like (the model's observed_states) where they measured it: the observed state plus the model's
// shift from that state, taken on the same cells (its profile minus the state's alone, perturbation
// NULL), floored at 0. A control group is then its context's observed controls, and an unknown
// perturbation predicted as its state the observed state. Groups whose state the training never
// measured (a context whose perturbed cells were all held out) keep the model's profile.
std::vector<ExpectedProfile> anchored_profiles(const LoadedModel& model, const std::vector<CellGroup>& groups,
                                               const SamplingSettings& settings);

// Every group's n_cells cells of integer counts for its anchored profile, described as
// generate_groups describes its cells (obs, var, uns with "lingshu_prediction" = "expected profile").
// Only the rows of settings.shard's share are made (to `sink` when given, else into X).
AnnData expected_cells(const LoadedModel& model, const std::vector<CellGroup>& groups,
                       const SamplingSettings& settings, const CellSink& sink = {});

}  // namespace lingshu
