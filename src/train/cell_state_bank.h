#pragma once
// The cell states generation draws from (MaskedDiffusionModel's bank), without the counting noise
// of the training cells they were read from.
//
// A training cell's 16 scores are read off its observed counts, so each holds the cell's state plus
// the noise of counting a few thousand molecules. A generated cell that takes those scores adds its
// own counting noise on top: on pbmc3k the generated cells had up to 40% more variance than real
// ones on the minor principal components. Each factor's share of signal is estimated the classical
// way, from split halves: the scores read from two disjoint halves of the genes agree only in their
// signal, so the correlation of their deviations within a label combination, stepped up to the
// full gene set (Spearman-Brown, 2r / (1 + r)), is the factor's reliability. Deviations from the
// combination's mean are then scaled by its square root, so the banked states vary as much as the
// states do, not as much as their noisy readings.
//
// The bank is refreshed from the training cells before each save of the weights, so that the
// states generation draws from are those of the weights it is given.
#include <torch/types.h>

#include <vector>

namespace lingshu {

class MaskedDiffusionModel;  // model/model.h, kept out of this header (tests include it)
struct PreparedRun;          // train/prepare_run.h

struct ReliableCellStates {
  torch::Tensor states;       // [N, R] the scores with each factor's noise share taken out
  torch::Tensor reliability;  // [R] in [0, 1]: each factor's estimated share of signal
};

// scores, half_a, half_b: [N, R] scores of N cells read from all genes and from two disjoint
// halves of them; labels: [N, F] label codes (cells with equal rows share a combination).
ReliableCellStates reliable_cell_states(const torch::Tensor& scores, const torch::Tensor& half_a,
                                        const torch::Tensor& half_b, const torch::Tensor& labels);

// Sets the model's bank to the states of up to kCellStateBank training cells (read from every
// gene, their noise share taken out as above) and their labels. Returns each factor's reliability
// (empty without cell factors, when nothing is banked).
std::vector<float> refresh_cell_state_bank(MaskedDiffusionModel& model, const PreparedRun& run,
                                           const torch::Device& device);

}  // namespace lingshu
