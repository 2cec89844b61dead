#pragma once
// What `generate` and `predict` do before the sampler runs, shared by the sampled cells
// (generate.cpp) and the expected profiles (expected_profile.cpp):
//   plan_groups     which labels every cell gets: the request's labels completed with the
//                   perturbation state and the cell-size bin, encoded, and the training cells'
//                   states each group draws from;
//   batch_inputs    one batch of cells as the model's input, each cell's state drawn;
//   GuidedDenoiser  the model under classifier-free guidance: every pass in one forward call.
#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "core/balanced_draw.h"
#include "model/precision.h"
#include "sample/generate.h"
#include "sample/guidance.h"

namespace lingshu {

// One cell to make: its group and its index within the group.
struct CellRow {
  size_t group;
  int64_t cell;
};

struct GroupPlan {
  std::vector<CellGroup> groups;  // the request's groups, split by cell-size bin
  std::vector<size_t> request;    // the requested group each came from
  std::vector<EncodedLabels> encoded;
  std::vector<std::pair<double, double>> sizes;  // each group's range of total counts
  // The bank rows (training cells' states) each group's cells draw from; empty without cell factors.
  std::vector<std::vector<int64_t>> candidates;
  std::vector<CellRow> rows;  // every cell, group by group
  int64_t max_targets = 1;
  // Each group's share of its perturbation's own effect: the perturbation's transfer weight for a
  // (context, perturbation) no training cell had, in a context whose perturbed state is known (a
  // perturbation never seen: the mean weight of those seen); else 1.
  std::vector<double> transfer;
};

// The transfer weight (see GroupPlan) of a group with these labels (one per field, state filled).
double transfer_weight(const ModelMetadata& meta, const std::vector<std::string>& labels);

// The bank rows a cell to generate with these labels ([F] codes) draws its state from: the training
// cells whose labels agree most, context fields counting before the perturbation field (an unseen
// (cell type, perturbation) draws the cell type's states). int64, ascending; undefined without
// cell factors. A generated cell's output tilt comes from a drawn state, not from the genes
// generated so far: read from those, a state that came out a little high tilted the next genes up,
// which raised it further, and on Kang a quarter of the CD4T cells sampled in 32 steps became
// monocyte-like (real: 1%).
torch::Tensor cell_state_candidates(const MaskedDiffusionModelImpl& model, const torch::Tensor& labels);

// Each token's representative count per gene, in sequence order: [n_genes, K] float (token 0 is 0).
torch::Tensor representative_counts(const ModelMetadata& meta);

// The logit tilt of cells [begin, begin + n) of the plan: [n, L, K] float, each gene's logits plus
// t_j log1p(representative count x 1e4 / library) of its requested group's GroupTilt (zero at
// padding and for groups without one); undefined when `tilts` is empty.
torch::Tensor tilt_logits(const ModelMetadata& meta, const std::vector<GroupTilt>& tilts,
                          const GroupPlan& plan, const torch::Tensor& representative, int64_t begin,
                          int64_t n);

// The plan of `requested` for `model`. UserError for a group without cells or with a wrong number
// of pre-filled cells, and for labels the model cannot encode.
GroupPlan plan_groups(const LoadedModel& model, const std::vector<CellGroup>& requested);

struct BatchInputs {
  torch::Tensor initial;     // [n, L] MASK, or the pre-filled token
  torch::Tensor conditions;  // [n, F]
  torch::Tensor targets;     // [n, T] target positions, -1 = none
  torch::Tensor states;      // [n, R] each cell's state (undefined without cell factors)
  torch::Tensor transfer;    // [n] each cell's transfer weight; undefined when every one is 1
};

// The stratum of each row of the plan, for StratumQuantiles: each requested group's cells by size
// bin (alike cells, whose quantiles stratified together even out their pseudobulk most), with
// neighbouring bins of one request taken together until a stratum holds kMinStratum cells (a
// handful of strata evens out little). A request smaller than that is one stratum.
constexpr int64_t kMinStratum = 32;
std::vector<int64_t> strata_of_rows(const GroupPlan& plan);

// Cells [begin, begin + n) of the plan. A group's cells take its candidate states evenly (`states`).
BatchInputs batch_inputs(const GroupPlan& plan, const MaskedDiffusionModelImpl& model, int64_t begin,
                         int64_t n, BalancedDraw& states);

// UserError when `settings` asks for guidance that `meta`'s model cannot give.
void check_guidance(const ModelMetadata& meta, const SamplingSettings& settings);

// A cell with transfer weight b < 1 gets, in every pass that sees its perturbation,
// b x those logits + (1 - b) x the logits without the perturbation (its context's perturbed state).
class GuidedDenoiser {
 public:
  // library_field: the cell-size field, which every pass keeps (-1: none).
  GuidedDenoiser(MaskedDiffusionModelImpl& model, const BatchInputs& inputs, const SamplingSettings& settings,
                 int64_t library_field, const c10::Device& device, Precision precision);
  // Guided logits [n, L, K] of the tokens z [n, L].
  torch::Tensor operator()(const torch::Tensor& z) const;
  // Guided logits [M, K] at (rows[m], positions[m]).
  torch::Tensor at(const torch::Tensor& z, const torch::Tensor& rows, const torch::Tensor& positions) const;

 private:
  // rows: the cell of each of the m rows of a pass (cells, or (cell, position) pairs).
  torch::Tensor combine(const torch::Tensor& stacked, const torch::Tensor& rows) const;

  MaskedDiffusionModelImpl& model_;
  std::vector<torch::Tensor> weights_;           // per pass, per cell [n]
  torch::Tensor conditions_, targets_, states_;  // every pass stacked
  int64_t n_;
  c10::Device device_;
  Precision precision_;
};

}  // namespace lingshu
