#pragma once
// Starting values of the model's cell factors (ModelConfig::gene_factors): the leading principal
// components of the training cells' token levels within their label combination. A factor model
// fitted in closed form in seconds gives the network, from its first step, a cell state that
// says how this cell differs from its type and how each gene follows that difference; learning the
// same loadings by gradient from zero took more steps than a CPU budget allows on 13,714 genes.
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "data/count_matrix.h"
#include "data/tokenizer.h"

namespace lingshu {

struct CellFactorStart {
  torch::Tensor in_loading;   // [n_positions, R]: a cell's level deviations -> unit-variance scores
  torch::Tensor out_loading;  // [n_positions, R]: scores -> each gene's exponential tilt of its levels
  torch::Tensor narrowing;    // [n_positions]: how much narrower a gene's levels are given the state
};

// `levels` [K]: the level of each token (the model's value levels). codes[f][r]: label of row r in
// field f; rows are centred within their combination of labels. At most `max_cells` rows (evenly
// spaced) enter the decomposition. Padding positions get zero loadings.
CellFactorStart cell_factor_start(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                  const GenePatching& patching, const torch::Tensor& levels,
                                  const std::vector<std::vector<int64_t>>& codes, int64_t n_factors,
                                  int64_t max_cells = 3000);

}  // namespace lingshu
