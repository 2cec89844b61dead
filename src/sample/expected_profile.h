#pragma once
// The model's noiseless prediction (`lingshu predict --expected`): for each group of cells, the
// pseudobulk the model expects rather than one draw of it. Each of the group's cells takes its
// drawn state and labels as in `generate`; from the model's predicted distribution of every gene
// (one forward pass, guided as set) comes the expected log1p CP10k of the gene, at the cell's
// expected library size; the group's profile is the mean over its cells. Written as integer counts
// the way the mean baseline writes its profile (data/pseudobulk_cells.h), pseudobulk metrics then
// score the model's predicted shift without its sampling noise. Free of LibTorch.
#include <string>
#include <vector>

#include "data/anndata.h"
#include "sample/generate.h"

namespace lingshu {

struct ExpectedProfile {
  std::vector<double> log_profile;  // per gene, the model's gene order: mean log1p CP10k
  double library_size = 0;          // the median of the cells' expected totals
  // The same cells (drawn states, sizes) under the group's reference labels, when it has them.
  std::vector<double> reference_log_profile;
  std::vector<double> log_variance;  // per gene: the cells' mean variance of their log1p CP10k
};

// One profile per group of `groups`. `references` (empty, or one per group: empty, or labels that
// differ from the group's in the perturbation and state fields only) adds each such group's
// reference_log_profile, from the same cells; `tilts` (empty, or one per group) tilts the model's
// distributions as generate_groups does.
std::vector<ExpectedProfile> expected_profiles(const LoadedModel& model, const std::vector<CellGroup>& groups,
                                               const SamplingSettings& settings,
                                               const std::vector<std::vector<std::string>>& references = {},
                                               const std::vector<GroupTilt>& tilts = {});

// expected_profiles, started from what the training cells of each group's context looked like (the
// model's observed_states) where they measured it, plus the model's shift from there taken on the
// same cells (so that the shift carries no noise of the drawn states; a rise is added, a fall
// scales the start by the model's ratio, so no gene falls below 0):
// - a control group: its context's observed controls;
// - a perturbed group whose context's perturbed state was measured: that state plus the model's
//   shift from it (its profile minus the state's alone, perturbation NULL); an unknown perturbation
//   is predicted as its state;
// - a perturbed group whose state was not (all its perturbed cells held out, or a model of one
//   perturbation and no state field): the context's controls plus the model's shift from its own
//   controls, so the predicted delta is the model's;
// - a pair measured in training by a model without a state field: its observed cells.
// A predicted (perturbed) group starts from its state or controls as estimated across contexts
// (estimated_across_contexts), not from their cells' mean: what it predicts is a population's
// mean, and the context's measured one carries its cells' noise. Groups with nothing observed keep
// the model's profile.
std::vector<ExpectedProfile> anchored_profiles(const LoadedModel& model, const std::vector<CellGroup>& groups,
                                               const SamplingSettings& settings);

// One line saying what each kind of group starts from (as anchored_profiles decides), for the
// output's notes.
std::string describe_anchors(const ModelMetadata& meta, const std::vector<CellGroup>& groups);

// The tilts (generate_groups) under which each group's sampled cells have its anchored profile as
// their expected profile: the model's cell-to-cell variation around the anchored mean. Empty when
// no group has anything observed to start from; a group without has no tilt.
std::vector<GroupTilt> anchor_tilts(const LoadedModel& model, const std::vector<CellGroup>& groups,
                                    const SamplingSettings& settings);

// Every group's n_cells cells of integer counts for its anchored profile, described as
// generate_groups describes its cells (obs, var, uns with "lingshu_prediction" = "expected profile").
// Only the rows of settings.shard's share are made (to `sink` when given, else into X).
AnnData expected_cells(const LoadedModel& model, const std::vector<CellGroup>& groups,
                       const SamplingSettings& settings, const CellSink& sink = {});

}  // namespace lingshu
