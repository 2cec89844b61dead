#pragma once
// The reverse process of masked diffusion (MDLM / LLaDA / MaskGIT-style unmasking). Starting from
// all-MASK (or partly pre-filled) cells, each of S steps runs the denoiser once, proposes a value
// for every masked gene by sampling its predicted distribution (random order: at a quantile
// stratified across its group of cells; confidence order: Gumbel-max in float64), and
// commits the share of masked genes that the unmasking schedule (linear or cosine) allows: the
// most confident ones, or a random share. Committed and pre-filled genes are never re-masked; after the last
// step no gene is left masked.
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <functional>
#include <vector>

namespace lingshu {

enum class UnmaskOrder { Confidence, Random };

// How many genes each step commits. Linear: the same share every step. Cosine (MaskGIT): few genes
// first, many last. Genes committed in the same step are drawn independently given what is already
// committed, so a large first step fixes cell-level latents (sequencing depth, cell state) at their
// average; small early steps let them vary as they do in real cells.
enum class UnmaskSchedule { Linear, Cosine };

// The defaults are `lingshu generate`'s (SamplingSettings in generate.h): the ancestral sampler.
struct SamplerOptions {
  int steps = 1;
  double temperature = 1.0;  // 0: always the most likely value
  UnmaskOrder order = UnmaskOrder::Random;
  UnmaskSchedule schedule = UnmaskSchedule::Cosine;
};

// Maps the current tokens z [B, L] to float logits [B, L, K]: the plain model, or a guided
// combination of conditional and unconditional passes.
using Denoiser = std::function<torch::Tensor(const torch::Tensor& z)>;

// The same logits at chosen genes only: (z, rows [M], positions [M]) -> float logits [M, K]. With
// random unmasking the genes to commit are chosen before the model runs, so only they need logits.
using PositionDenoiser = std::function<torch::Tensor(const torch::Tensor& z, const torch::Tensor& rows,
                                                     const torch::Tensor& positions)>;

// Share of the initially masked genes committed after `s` of `steps` steps: s/S (linear) or
// 1 - cos(pi/2 s/S) (cosine); 0 at s = 0 and 1 at s = S.
double committed_share(UnmaskSchedule schedule, int64_t s, int64_t steps);

// Genes committed at each of `steps` steps when `n_masked` start masked: after step s,
// floor(n_masked * committed_share(s)) are committed. Sums to n_masked.
std::vector<int64_t> unmask_schedule(int64_t n_masked, int steps,
                                     UnmaskSchedule schedule = UnmaskSchedule::Linear);

// Proposed values and their log-probabilities: argmax(logits / temperature + Gumbel noise),
// computed in float64. Returns {tokens int64 [B, L], log p(token) float64 [B, L]}.
std::pair<torch::Tensor, torch::Tensor> propose_values(const torch::Tensor& logits, double temperature,
                                                       at::Generator& generator);

// The value at quantile u [M] of each softmax(logits [M, K] / temperature) (inverse CDF, float64):
// with u uniform, a draw from that distribution, the values ordered as the count bins are.
torch::Tensor values_at_quantiles(const torch::Tensor& logits, const torch::Tensor& u, double temperature);

// The `n_commit[row]` masked positions of highest `score` in each row (ties by position): bool [B, L].
torch::Tensor select_highest(const torch::Tensor& masked, const torch::Tensor& score,
                             const torch::Tensor& n_commit);

// Commits, in each row, the `n_commit[row]` masked positions of highest `score` (ties by
// position). tokens, proposals: [B, L] int64; masked: [B, L] bool; score: [B, L] float64.
// Returns {new tokens, new masked}.
std::pair<torch::Tensor, torch::Tensor> commit_highest(const torch::Tensor& tokens,
                                                       const torch::Tensor& proposals,
                                                       const torch::Tensor& masked,
                                                       const torch::Tensor& score,
                                                       const torch::Tensor& n_commit);

// Runs the reverse process. `initial` [B, L] int64 holds MASK (= mask_token) where values are to
// be generated and fixed values elsewhere (pre-filled genes, padding); `is_gene` [L] bool marks
// real gene positions (padding is left as it is). Returns tokens [B, L] with no MASK at genes.
// `at_positions`, when given, serves the random order (same cells for the same seed up to float
// rounding of the logits). `quantiles` [B, L] (random order): the quantile each gene is drawn at
// (StratumQuantiles); without them, quantiles stratified over the batch's rows.
torch::Tensor sample_tokens(const Denoiser& denoiser, const torch::Tensor& initial,
                            const torch::Tensor& is_gene, int64_t mask_token, const SamplerOptions& options,
                            at::Generator& generator, const PositionDenoiser& at_positions = {},
                            const torch::Tensor& quantiles = {});

}  // namespace lingshu
