#pragma once
// Rows grouped by their combination of condition labels: what the output biases, the cell factors'
// centring and the cell-state bank each take per combination.
#include <cstdint>
#include <span>
#include <vector>

namespace lingshu {

struct LabelCombinations {
  std::vector<int64_t> of_row;               // per row: its combination
  std::vector<std::vector<int64_t>> labels;  // per combination, in sorted order: its label per field
};

// The combinations of the labels in `fields` (codes[f][r]: label of row r in field f) of `rows`;
// of_row follows `rows`.
LabelCombinations label_combinations(const std::vector<std::vector<int64_t>>& codes,
                                     const std::vector<size_t>& fields, std::span<const int64_t> rows);
// The same over rows 0 .. n_rows - 1.
LabelCombinations label_combinations(const std::vector<std::vector<int64_t>>& codes,
                                     const std::vector<size_t>& fields, int64_t n_rows);

// Every field index of `codes`.
std::vector<size_t> every_field(const std::vector<std::vector<int64_t>>& codes);

}  // namespace lingshu
