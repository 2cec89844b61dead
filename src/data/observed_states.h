#pragma once
// What the training cells of each perturbation state looked like: per state label
// ("A172/control", "A172/perturbed"; data/conditions.h state_label) the mean log1p CP10k of every
// gene over its cells, and their median total count. `lingshu predict --expected` starts from
// these rather than from the model's own rendering of a state: a context's control profile is then
// the one its real cells have (as in every perturbation benchmark, whose deltas are taken against
// the real controls), and a perturbation's prediction is the context's observed perturbed state
// moved by what the model says is specific to the perturbation. Free of LibTorch.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/cell_rows.h"

namespace lingshu {

struct ObservedState {
  std::string label;                 // a state label
  int64_t n_cells = 0;               // training cells it was measured on
  double library_size = 0;           // their median total count
  std::vector<double> log_profile;   // per gene (the matrix's columns): mean log1p CP10k
  std::vector<double> log_variance;  // per gene: the cells' variance of log1p CP10k (0 for one cell)
};

// One entry per distinct non-empty label of `state_of_row` (one per listed row, "" = none), in
// order of first occurrence, from the rows `rows` of `counts`, read a chunk at a time.
std::vector<ObservedState> observed_states(const CellRows& counts, std::span<const int64_t> rows,
                                           std::span<const std::string> state_of_row);

// Every state's profile as the best estimate of its context's population mean (empirical Bayes)
// rather than its cells' mean, from all contexts' states of the same kind (the label's last part:
// "control", "perturbed"). Per gene, a state's mean m carries its cells' noise s2 = variance /
// cells; the kind's contexts differ by tau2 = the variance of their means less the mean s2 (floored
// at 0); the estimate is g + tau2 / (tau2 + s2) (m - g), g the contexts' mean. Why: a prediction
// started from a context's observed controls inherits their noise wherever contexts hardly differ
// (on Kang, 54-278 control cells a cell type, most genes); pulled towards the other contexts there,
// the held-out perturbed means are predicted closer. Kinds with fewer than 3 states keep their
// profiles (too few contexts to tell their spread from noise). Same order and labels as `states`.
std::vector<ObservedState> estimated_across_contexts(const std::vector<ObservedState>& states);

// The entry labelled `label`, or nullptr.
const ObservedState* find_state(const std::vector<ObservedState>& states, const std::string& label);

}  // namespace lingshu
