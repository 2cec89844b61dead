#include "train/objective.h"

#include <ATen/ATen.h>

namespace lingshu {

torch::Tensor sample_diffusion_times(int64_t batch, at::Generator& generator, double eps) {
  const auto u = at::rand({1}, generator, at::kDouble);
  const auto stratum = at::arange(batch, at::kDouble) / static_cast<double>(batch);
  const auto frac = at::remainder(u + stratum, 1.0);
  return (eps + (1.0 - eps) * frac).to(at::kFloat);
}

torch::Tensor forward_mask(const torch::Tensor& t, const torch::Tensor& is_gene, at::Generator& generator) {
  const auto u = at::rand({t.size(0), is_gene.size(0)}, generator, at::kFloat);
  return (u < t.unsqueeze(1)).logical_and(is_gene.unsqueeze(0));
}

torch::Tensor apply_mask(const torch::Tensor& tokens, const torch::Tensor& mask, int64_t mask_token) {
  return tokens.masked_fill(mask, mask_token);
}

namespace {
// -log p(target) at every position: [B, L].
torch::Tensor token_nll(const torch::Tensor& logits, const torch::Tensor& targets) {
  const auto log_probs = at::log_softmax(logits.to(at::kFloat), -1);
  return -log_probs.gather(-1, targets.clamp(0, logits.size(-1) - 1).unsqueeze(-1)).squeeze(-1);
}
}  // namespace

torch::Tensor masked_diffusion_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                    const torch::Tensor& mask, const torch::Tensor& t, int64_t n_genes) {
  const auto nll = token_nll(logits, targets).masked_fill(mask.logical_not(), 0.0);
  const auto per_cell = nll.sum(1) / t.to(nll.device(), at::kFloat) / static_cast<double>(n_genes);
  return per_cell.mean();
}

torch::Tensor masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                   const torch::Tensor& mask) {
  const auto nll = token_nll(logits, targets).masked_fill(mask.logical_not(), 0.0);
  return nll.sum() / mask.sum().clamp_min(1).to(at::kFloat);
}

}  // namespace lingshu

namespace lingshu {

torch::Tensor drop_conditions(const torch::Tensor& conditions, double p, at::Generator& generator) {
  if (conditions.numel() == 0 || p <= 0) return conditions;
  const auto u = at::rand(conditions.sizes(), generator, at::kFloat);
  return conditions.masked_fill(u < p, 0);
}

}  // namespace lingshu
