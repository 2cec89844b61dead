#pragma once
// Simple perturbation predictors that every model should beat, written as ordinary prediction files
// (counts in an .h5ad) so `lingshu eval perturbation` scores them exactly like any tool's output:
//
//   mean      every perturbed cell of a context gets the mean of the training per-perturbation mean
//             profiles of that context (the Virtual Cell Challenge's baseline); contexts without
//             training perturbations use the mean over all contexts.
//   control   the context's own training control cells, resampled: "the perturbation does nothing".
//   additive  the context's control profile plus the shift the perturbation caused in the other
//             training contexts (averaged; its own context when it was seen nowhere else); a
//             combination "A+B" never seen as such adds the shifts of A and B.
//
// Profiles live in log1p(counts / total * 1e4) space. Counts for a target profile are drawn so that
// their log-normalised pseudobulk reproduces the target (see counts_for_log_pseudobulk). Each
// context's training control cells are copied into the output under the control label, so deltas
// can be computed from the prediction file alone.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/anndata.h"
#include "data/count_matrix.h"
#include "io/pairs.h"

namespace lingshu {

enum class BaselineKind { Mean, Control, Additive };

// Parses "mean" / "control" / "additive"; throws UserError otherwise.
BaselineKind parse_baseline_kind(const std::string& name);
const char* baseline_kind_name(BaselineKind kind);

struct BaselineOptions {
  std::string pert_col = "condition";
  std::string control = "control";
  std::string context_col;  // "" = no contexts
  uint64_t seed = 0;
  double library_size = 0;  // total counts per generated cell; 0 = median of the context's controls
  int threads = 0;
};

struct BaselinePrediction {
  AnnData cells;
  std::vector<std::string> notes;  // fallbacks a user should know about
};

// Predicts every row of `pairs` from the training counts. Throws UserError when a column is missing
// from the training data or a context has no control cells.
BaselinePrediction predict_baseline(BaselineKind kind, const AnnData& train, const PredictionPairs& pairs,
                                    const BaselineOptions& options);

// `n_cells` cells of counts whose log1p(counts / total * 1e4) column means reproduce `target`
// (one value per gene, >= 0) as closely as integer counts allow. Each gene's counts are the
// Poisson(lambda) quantiles at the evenly spaced probabilities (i + 0.5) / n_cells, with lambda
// solved so the mean log value hits the target (log1p is concave, so lambda exceeds expm1(target)),
// scattered over cells by a seeded shuffle; a few rounds then correct for the library sizes the
// cells actually end up with. Cells average `library_size` counts.
CsrMatrix counts_for_log_pseudobulk(std::span<const double> target, int64_t n_cells, double library_size,
                                    uint64_t seed, int threads = 0);

}  // namespace lingshu
