#pragma once
// The masked diffusion objective (MDLM, Sahoo et al. 2024; LLaDA), one short function per
// equation. With the linear schedule alpha_t = 1 - t, each gene is masked independently with
// probability t, and the negative ELBO is
//     L = E_t [ 1/t * sum_{masked genes} -log p_theta(x_gene | z_t) ] / n_genes,
// averaged over cells. Sampling (the reverse process) lives in sample/sampler.h.
#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace lingshu {

// Smallest diffusion time: t ~ U(eps, 1) keeps the 1/t weight bounded.
inline constexpr double kMinDiffusionTime = 1e-3;

// One t per cell, low-discrepancy across the batch (MDLM's antithetic sampling): one uniform
// offset u and t_i = eps + (1 - eps) * frac(u + i / B), so a batch always spans (eps, 1).
// Returns float32 [batch].
torch::Tensor sample_diffusion_times(int64_t batch, at::Generator& generator,
                                     double eps = kMinDiffusionTime);

// The forward process q(z_t | x): each real gene position is masked with probability t of its
// cell. t: [B]; is_gene: [L] bool (false at padding, which is never masked). Returns bool [B, L].
torch::Tensor forward_mask(const torch::Tensor& t, const torch::Tensor& is_gene, at::Generator& generator);

// z_t: the tokens with masked positions replaced by `mask_token`.
torch::Tensor apply_mask(const torch::Tensor& tokens, const torch::Tensor& mask, int64_t mask_token);

// The loss weighting: cross-entropy of each masked gene, weighted by 1/t of its cell, summed
// over genes, divided by n_genes and averaged over cells. logits: [B, L, K] float; targets: [B, L]
// int64; mask: [B, L] bool (only these positions count); t: [B].
torch::Tensor masked_diffusion_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                    const torch::Tensor& mask, const torch::Tensor& t, int64_t n_genes);

// Plain mean cross-entropy over the masked genes (no 1/t weight): a readable accuracy figure.
torch::Tensor masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                   const torch::Tensor& mask);

}  // namespace lingshu

namespace lingshu {

// Classifier-free guidance training: each condition token becomes NULL (0) with probability p.
torch::Tensor drop_conditions(const torch::Tensor& conditions, double p, at::Generator& generator);

}  // namespace lingshu
