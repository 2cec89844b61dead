#pragma once
// Marginal initialisation: starting values of the model's output biases, from token frequencies of
// the training cells. A fresh model then predicts each gene's marginal (and, with
// condition_logit_bias_F, each label's) from the first step: the biases would otherwise move about lr
// per step from uniform, far too slowly to learn that a rare gene's large counts have probability
// ~1e-7 rather than 1/K; that leftover mass, summed over ten thousand genes, inflates every
// generated cell. (The biological prior of `lingshu predict --prior` is sample/perturbation_prior.h.)
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

// What each condition field is to the smoothing (indices into the fields; -1: none).
struct MarginalFieldRoles {
  int library = -1;       // cell size: fitted jointly with the label combinations (below)
  int perturbation = -1;  // the perturbation label: its groups are smoothed towards their state
  int state = -1;         // the perturbation state (context + control/perturbed)
};

// Per condition field, each label's shift of the log-marginals: [vocab_f, n_positions, K] float,
// NULL (0) and labels without cells at zero. The shifts of a cell's labels add up (least squares,
// each combination weighted by its reliability cells / (cells + prior_cells)) to its label
// combination's log-marginals: with one field exactly each label's own log-marginals; with a
// context and a perturbation field, the context's marginals plus the perturbation's effect
// averaged over the contexts (not dominated by the one with the most cells), so an unseen
// combination starts as the additive prediction.
// Each combination's marginals are shrunk by `prior_cells` pseudo-cells of the overall marginals,
// or, with a perturbation state, of the group it nests in: the context (the fields that are
// neither perturbation nor state) towards the overall marginals, the context's state towards its
// context, and a (context, perturbation) group towards its state. A small group's
// log-frequencies then deviate from its parent's only where its own cells say so; pseudo-cells of
// the overall marginals left every small group's share of the difference between its context and
// the average cell in its shifts (a perturbation's "effect").
// The cell-size field is left out of those combinations: it is fitted by maximum likelihood jointly
// with each combination's own marginals (per size bin and per combination, the expected token
// counts of its cells match the observed ones plus the combination's pseudo-cells, spread over its
// bins by cells), and the least squares then start from those combination marginals.
// codes[f][r]: label of row r in field f.
std::vector<torch::Tensor> label_log_shifts(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                            const GenePatching& patching,
                                            const std::vector<std::vector<int64_t>>& codes,
                                            const std::vector<int64_t>& vocab_sizes,
                                            const MarginalFieldRoles& roles, double prior_cells);

// The pseudo-cells a model's label combinations are shrunk by. Cell types differ by far more than
// their cells' sampling noise: 10 pseudo-cells of the overall marginals blended a type of 40-100
// training cells a tenth of the way into the average cell, so generated cells showed 8-16% weaker
// type contrasts than real ones (pbmc3k, log1p CP10k) and were told apart by it; 1 pseudo-cell (as
// the gene marginals take) keeps rare values smoothed without that blend (pbmc3k and paul15: lower
// MMD and kNN AUC). A perturbation's effect is a difference of small groups, mostly noise beyond
// its shared part, and there the 10 pseudo-cells measured better (Kang's held-out CD4T cells:
// Pearson-delta 0.845 against 0.825 with 1). BENCHMARKS.md, commit 3cc3209.
inline double label_prior_cells(bool has_perturbation) {
  return has_perturbation ? 10.0 : 1.0;
}

}  // namespace lingshu
