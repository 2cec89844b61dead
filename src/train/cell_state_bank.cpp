#include "train/cell_state_bank.h"

#include <ATen/ATen.h>

#include <tuple>

namespace lingshu {

namespace {
// Each row minus the mean of the rows in its group: [N, R].
torch::Tensor within_group(const torch::Tensor& x, const torch::Tensor& group, int64_t n_groups) {
  const auto sums = at::zeros({n_groups, x.size(1)}, x.options()).index_add_(0, group, x);
  const auto sizes =
      at::zeros({n_groups}, x.options()).index_add_(0, group, at::ones({x.size(0)}, x.options()));
  return x - (sums / sizes.unsqueeze(1)).index_select(0, group);
}
}  // namespace

ReliableCellStates reliable_cell_states(const torch::Tensor& scores, const torch::Tensor& half_a,
                                        const torch::Tensor& half_b, const torch::Tensor& labels) {
  TORCH_CHECK(scores.dim() == 2 && half_a.sizes() == scores.sizes() && half_b.sizes() == scores.sizes() &&
                  labels.dim() == 2 && labels.size(0) == scores.size(0),
              "reliable_cell_states: need [N, R] scores and halves and [N, F] labels, got ", scores.sizes(),
              ", ", half_a.sizes(), ", ", half_b.sizes(), " and ", labels.sizes());
  const auto x = scores.to(at::kDouble);
  const auto key = labels.size(1) > 0 ? labels.to(at::kLong) : at::zeros({scores.size(0), 1}, at::kLong);
  const auto [distinct, group, unused] = at::unique_dim(key, 0, false, true, false);
  const int64_t n_groups = distinct.size(0);
  const auto deviation = within_group(x, group, n_groups);
  const auto a = within_group(half_a.to(at::kDouble), group, n_groups);
  const auto b = within_group(half_b.to(at::kDouble), group, n_groups);
  const auto r = (a * b).sum(0) / ((a * a).sum(0) * (b * b).sum(0)).sqrt();
  // A factor that never varies within a combination has no deviation to scale: any value will do.
  const auto reliability = (2 * r / (1 + r)).nan_to_num(1.0).clamp(0.0, 1.0);
  const auto states = x - deviation + deviation * reliability.sqrt().unsqueeze(0);
  return {states.to(scores.scalar_type()), reliability.to(at::kFloat)};
}

}  // namespace lingshu
