#pragma once
// The factor baseline: a linear model of each cell type's log1p CP10k expression, the anchor for
// gene-gene structure. Within each label it keeps the mean and R principal components of the
// residuals; every new cell takes a training cell's scores and library size (each training cell
// once, in a seeded random order, before any is taken again), its expected counts are
// expm1(label mean + components x scores) x size / 1e4, rescaled per (label, gene) so that the label's
// expected total of each gene matches its training cells, and its counts are drawn Poisson.
// It has the right structure and the wrong marginals (Poisson noise on a smooth mean); the
// independent baseline has the opposite. A generative model must beat both.
#include <cstdint>
#include <string>
#include <vector>

#include "data/anndata.h"

namespace lingshu {

struct FactorBaselineOptions {
  std::string label;    // obs column of cell types; "" = all training cells form one group
  int64_t n_cells = 0;  // 0 = as many as the training data has
  int factors = 16;     // principal components per label
  uint64_t seed = 0;
  int threads = 0;  // 0 = all hardware threads; the result does not depend on it
};

struct FactorBaseline {
  AnnData cells;                   // training genes, the drawn label in obs, provenance in uns
  std::vector<std::string> notes;  // labels whose factors were reduced to fit their cells
};

// Cells are shared among labels in training proportions (largest remainders). UserError if the
// label column is missing or holds no labels, or the training data holds no cells.
FactorBaseline sample_factor_baseline(const AnnData& train, const FactorBaselineOptions& options);

}  // namespace lingshu
