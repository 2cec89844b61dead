#pragma once
// Rows centred within their group: the cell factors' start and the cell-state bank both take a
// cell's deviation from the mean of the cells with its labels.
#include <torch/types.h>

#include <cstdint>

namespace lingshu {

// Each row of x [N, D] minus the mean of the rows in its group; group [N] int64 in [0, n_groups).
torch::Tensor minus_group_means(const torch::Tensor& x, const torch::Tensor& group, int64_t n_groups);

}  // namespace lingshu
