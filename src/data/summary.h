#pragma once
// What `lingshu info` reports about a dataset: shape, whether X holds counts, sparsity, library
// sizes and the obs / var columns. Computed here (no I/O) so that it can be tested on its own.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/anndata.h"

namespace lingshu {

// Quantile q in [0, 1] of `values` with linear interpolation between order statistics (numpy's
// default); NaN for an empty input. Sorts its copy.
double quantile(std::vector<double> values, double q);

struct ColumnSummary {
  std::string name;
  std::string kind;  // "categorical", "string", "numeric", "boolean"
  int64_t n_missing = 0;
  // Categorical: every category with its count, most frequent first (ties in category order).
  std::vector<std::pair<std::string, int64_t>> category_counts;
  int64_t n_unique = 0;                 // string: distinct values
  int64_t n_true = 0;                   // boolean
  double min = 0, median = 0, max = 0;  // numeric (over non-missing values)
};

struct DatasetSummary {
  int64_t n_obs = 0;
  int64_t n_vars = 0;
  int64_t nnz = 0;
  double zero_fraction = 0.0;
  bool is_counts = true;
  std::string counts_problem;  // one line when !is_counts
  // Library size (total counts per cell) at min, 5%, 25%, 50%, 75%, 95%, max.
  std::vector<std::pair<std::string, double>> library_size;
  double median_genes_per_cell = 0.0;
  std::vector<ColumnSummary> obs;
  std::vector<ColumnSummary> var;
};

// `source` names the matrix in the counts message ("X", "layers/counts").
DatasetSummary summarize(const AnnData& data, const std::string& source = "X");
ColumnSummary summarize_column(const Column& column);

nlohmann::json to_json(const DatasetSummary& summary);
// 12345.6 -> "12,346" (whole numbers with thousands separators); small fractions keep 2 decimals.
std::string with_commas(double value);
// Human-readable report, a few lines; categoricals list their `top_categories` most frequent.
std::string format_summary(const DatasetSummary& summary, int top_categories = 8);

}  // namespace lingshu
