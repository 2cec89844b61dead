#pragma once
// The part of an AnnData object lingshu works with: X (counts), obs and var.
#include <string>
#include <vector>

#include "data/count_matrix.h"
#include "data/frame.h"

namespace lingshu {

struct AnnData {
  CsrMatrix X;
  DataFrame obs;  // one row per cell
  DataFrame var;  // one row per gene; var.index holds gene names
  // Free-form provenance written to uns (key -> string value), e.g. the model that made the cells.
  std::vector<std::pair<std::string, std::string>> uns_strings;

  int64_t n_obs() const { return X.n_rows; }
  int64_t n_vars() const { return X.n_cols; }
  const std::vector<std::string>& gene_names() const { return var.index; }
  // The cells listed, in that order (X and obs).
  AnnData select_cells(const std::vector<int64_t>& rows) const;
};

}  // namespace lingshu
