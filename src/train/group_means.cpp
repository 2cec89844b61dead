#include "train/group_means.h"

#include <ATen/ATen.h>

namespace lingshu {

torch::Tensor minus_group_means(const torch::Tensor& x, const torch::Tensor& group, int64_t n_groups) {
  const auto sums = at::zeros({n_groups, x.size(1)}, x.options()).index_add_(0, group, x);
  const auto sizes =
      at::zeros({n_groups}, x.options()).index_add_(0, group, at::ones({x.size(0)}, x.options()));
  return x - (sums / sizes.unsqueeze(1)).index_select(0, group);
}

}  // namespace lingshu
