#pragma once
// The pairs CSV that names what to predict or generate, one row per label combination: a header
// naming obs (condition) columns plus `n_cells`, e.g. "cell_type,condition,n_cells\nK562,KLF1,100".
// Read by `lingshu predict --pairs`, `lingshu generate --plan` and the perturbation baselines.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lingshu {

struct PredictionPairs {
  std::vector<std::string> columns;            // header without n_cells
  std::vector<std::vector<std::string>> rows;  // one value per column
  std::vector<int64_t> n_cells;                // per row

  // Index of a column, or -1.
  int column(const std::string& name) const;
};

// Throws UserError naming the line for malformed input (missing n_cells, wrong field count,
// n_cells not a positive integer, two rows with the same labels, no rows).
PredictionPairs parse_prediction_pairs(const std::string& csv_text, const std::string& source);
PredictionPairs read_prediction_pairs(const std::filesystem::path& path);

}  // namespace lingshu
