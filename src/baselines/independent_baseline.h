#pragma once
// The independent baseline generator: every gene of a new cell is drawn on its own from that gene's
// empirical distribution among training cells of the same type, with cell types drawn in training
// proportions. It keeps every per-type marginal (so per-gene means and 1-WD look excellent) and
// none of the gene-gene structure (so MMD and the kNN AUC expose it). A generative model must beat
// it on the distribution-level metrics to have learned anything beyond marginals.
#include <cstdint>
#include <string>

#include "data/anndata.h"

namespace lingshu {

struct IndependentBaselineOptions {
  std::string label;    // obs column of cell types; "" = all training cells form one group
  int64_t n_cells = 0;  // 0 = as many as the training data has
  uint64_t seed = 0;
  int threads = 0;  // 0 = all hardware threads; the result does not depend on it
};

// New cells with the training file's genes (var copied), obs holding the drawn type under the same
// column name (categorical, training categories), and provenance in uns. Training cells without a
// label are not used. Throws UserError if the label column is missing or holds no labels.
AnnData sample_independent_baseline(const AnnData& train, const IndependentBaselineOptions& options);

}  // namespace lingshu
