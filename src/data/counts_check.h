#pragma once
// lingshu models raw UMI counts. Files often hold normalised, log-transformed or scaled values in X
// (with the counts kept in a layer); these checks catch that before a model learns nonsense.
#include <cstdint>
#include <optional>
#include <string>

#include "data/anndata.h"
#include "data/count_matrix.h"

namespace lingshu {

// The first stored value that is not a finite non-negative integer.
struct NonCountValue {
  enum class Problem { NotANumber, Infinite, Negative, NonInteger };
  Problem problem = Problem::NonInteger;
  int64_t row = 0;
  int32_t col = 0;
  float value = 0.0f;
};

// Scans the stored values in row order; nullopt when every value is a count.
std::optional<NonCountValue> find_non_count(const CsrMatrix& matrix);

inline bool holds_counts(const CsrMatrix& matrix) {
  return !find_non_count(matrix).has_value();
}

// One line naming the problem, the first example (value, cell and gene names) and the cure.
// `source` names the matrix ("X", "layers/counts", or a file and matrix).
std::string describe_non_count(const NonCountValue& bad, const AnnData& data, const std::string& source);

// How messages name the matrix a `--layer` option selects: "X", "raw/X" or "layers/NAME".
std::string layer_source_name(const std::string& layer);

// Throws UserError (the line above) unless data.X holds raw counts.
void require_counts(const AnnData& data, const std::string& source = "X");

}  // namespace lingshu
