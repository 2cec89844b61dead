#pragma once
// Integer-count cells for a target pseudobulk: what the mean baseline writes for its profile, and
// what `lingshu predict --expected` writes for the model's. Scored by pseudobulk metrics, such cells
// carry the profile without sampling noise.
#include <cstdint>
#include <span>

#include "data/count_matrix.h"

namespace lingshu {

// `n_cells` cells of counts whose log1p(counts / total * 1e4) column means reproduce `target`
// (one value per gene, >= 0) as closely as integer counts allow. Each gene's counts are the
// Poisson(lambda) quantiles at the evenly spaced probabilities (i + 0.5) / n_cells, with lambda
// solved so the mean log value hits the target (log1p is concave, so lambda exceeds expm1(target)),
// scattered over cells by a seeded shuffle; a few rounds then correct for the library sizes the
// cells actually end up with, and each gene's counts are finally moved between cells of different
// totals to come nearer its target than whole counts allow. Cells average `library_size` counts.
CsrMatrix counts_for_log_pseudobulk(std::span<const double> target, int64_t n_cells, double library_size,
                                    uint64_t seed, int threads = 0);

}  // namespace lingshu
