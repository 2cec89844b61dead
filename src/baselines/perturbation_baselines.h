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
// their log-normalised pseudobulk reproduces the target (data/pseudobulk_cells.h). Each
// context's training control cells are copied into the output under the control label, so deltas
// can be computed from the prediction file alone.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/anndata.h"
#include "data/count_matrix.h"
#include "data/pseudobulk_cells.h"
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

}  // namespace lingshu
