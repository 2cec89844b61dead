#pragma once
// lingshu models raw UMI counts. Files often hold normalised, log-transformed or scaled values in X
// (with the counts kept in a layer); these checks catch that before a model learns nonsense.
#include <cstdint>
#include <optional>
#include <string>

#include "data/anndata.h"
#include "data/cell_rows.h"
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

// Reads through another CellRows and throws require_counts's UserError at the first value that is
// not a count: a file read a chunk at a time is checked as it is read. obs and var (for the names
// in the message) and `inner` must outlive it.
class CountCheckedRows final : public CellRows {
 public:
  CountCheckedRows(const CellRows& inner, const DataFrame& obs, const DataFrame& var, std::string source)
      : inner_(inner), obs_(obs), var_(var), source_(std::move(source)) {}
  int64_t n_rows() const override { return inner_.n_rows(); }
  int64_t n_cols() const override { return inner_.n_cols(); }
  CsrMatrix read(std::span<const int64_t> rows) const override;

 private:
  const CellRows& inner_;
  const DataFrame& obs_;
  const DataFrame& var_;
  std::string source_;
};

}  // namespace lingshu
