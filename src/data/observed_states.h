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
  std::string label;                // a state label
  int64_t n_cells = 0;              // training cells it was measured on
  double library_size = 0;          // their median total count
  std::vector<double> log_profile;  // per gene (the matrix's columns): mean log1p CP10k
};

// One entry per distinct non-empty label of `state_of_row` (one per listed row, "" = none), in
// order of first occurrence, from the rows `rows` of `counts`, read a chunk at a time.
std::vector<ObservedState> observed_states(const CellRows& counts, std::span<const int64_t> rows,
                                           std::span<const std::string> state_of_row);

// The entry labelled `label`, or nullptr.
const ObservedState* find_state(const std::vector<ObservedState>& states, const std::string& label);

}  // namespace lingshu
