#pragma once
// The biological prior of `lingshu predict --prior` (README "Prior injection"): genes that the same
// perturbation consistently down-regulated in the other contexts of the training data. The sampler
// pre-fills them (and, for knock-downs, the target genes) and never re-masks them. Not to be
// confused with the marginal initialisation of the output biases (train/marginal_init.h).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/count_matrix.h"
#include "data/frame.h"

namespace lingshu {

struct PerturbationPriorOptions {
  // A gene is down in a context when mean(perturbed) / mean(control) of library-size-normalised
  // counts is at most this ratio (0.5 = halved) ...
  double max_ratio = 0.5;
  // ... and its control mean (counts per 10,000) is at least this, so rare genes' noise is ignored.
  double min_control_mean = 0.5;
  // Contexts need this many perturbed and control cells to count.
  int64_t min_cells = 10;
};

struct DownRegulatedGene {
  int32_t gene = 0;
  double ratio = 1.0;      // geometric mean over contexts of mean(perturbed) / mean(control)
  int64_t n_contexts = 0;  // contexts where it was measured (all of them showed it)
};

// Genes down-regulated by `perturbation` (vs `control`) in every other context that has enough
// cells of both. A context is a combination of labels of `context_cols` (cell type, or cell type x
// donor); the other contexts are those whose labels differ from `target_context` (one label per
// column) in any column. Empty when no other context measured the perturbation. Sorted by gene.
std::vector<DownRegulatedGene> consistently_down_genes(
    const CsrMatrix& counts, const DataFrame& obs, const std::vector<std::string>& context_cols,
    const std::string& pert_col, const std::string& control, const std::string& perturbation,
    const std::vector<std::string>& target_context, const PerturbationPriorOptions& options = {});

// The context of each row of `obs`: its labels of `context_cols`, or nothing where one is missing.
std::vector<std::optional<std::vector<std::string>>> contexts_of_rows(
    const DataFrame& obs, const std::vector<std::string>& context_cols);

}  // namespace lingshu
