#pragma once
// Marginal initialisation: starting values of the model's output biases, from token frequencies of
// the training cells. A fresh model then predicts each gene's marginal (and, with
// condition_logit_bias, each label's) from the first step: the biases would otherwise move about lr
// per step from uniform, far too slowly to learn that a rare gene's large counts have probability
// ~1e-7 rather than 1/K; that leftover mass, summed over ten thousand genes, inflates every
// generated cell. (The biological prior of `lingshu predict --prior` is data/perturbation_prior.h.)
#include <torch/types.h>

#include <cstdint>
#include <span>
#include <vector>

#include "data/count_matrix.h"
#include "data/tokenizer.h"

namespace lingshu {

// Token counts of the rows of each group (group_of_row[r] in [0, n_groups)): [n_groups,
// n_positions, K] float64 in sequence order; padding positions count nothing.
torch::Tensor token_counts(const CsrMatrix& counts, const Tokenizer& tokenizer, const GenePatching& patching,
                           std::span<const int64_t> group_of_row, int64_t n_groups);

// Each gene's token distribution over all rows, smoothed by one pseudo-cell spread as the tokens
// of all genes together, floored at 1e-7: log-probabilities [n_positions, K] float (padding rows:
// the all-gene distribution).
torch::Tensor token_log_marginals(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                  const GenePatching& patching);

// Per condition field, each label's shift of the log-marginals: [vocab_f, n_positions, K] float,
// NULL (0) and labels without cells at zero. The shifts of a cell's labels add up (least squares,
// weighted by cells) to its label combination's log-marginals, shrunk towards the overall ones by
// `prior_cells` pseudo-cells: with one field exactly each label's own log-marginals; with a
// context and a perturbation field, the context's marginals plus the perturbation's average
// effect within contexts, so an unseen combination starts as the additive prediction.
// The cell-size field (`library_field`, -1 if none) is left out of those combinations: it is
// fitted by maximum likelihood jointly with each combination's own marginals (per size bin and
// per combination, the expected token counts of its cells match the observed ones plus the
// combination's pseudo-cells of the overall marginals, spread over its bins by cells), and
// the least squares then start from those combination marginals.
// codes[f][r]: label of row r in field f.
std::vector<torch::Tensor> label_log_shifts(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                            const GenePatching& patching,
                                            const std::vector<std::vector<int64_t>>& codes,
                                            const std::vector<int64_t>& vocab_sizes, int library_field = -1,
                                            double prior_cells = 10);

}  // namespace lingshu
