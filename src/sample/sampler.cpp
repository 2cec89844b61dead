#include "sample/sampler.h"

#include <ATen/ATen.h>

#include <limits>

namespace lingshu {

std::vector<int64_t> unmask_schedule(int64_t n_masked, int steps) {
  std::vector<int64_t> counts(static_cast<size_t>(std::max(steps, 1)));
  const auto S = static_cast<int64_t>(counts.size());
  for (int64_t s = 0; s < S; ++s) counts[s] = n_masked * (s + 1) / S - n_masked * s / S;
  return counts;
}

namespace {
std::pair<torch::Tensor, torch::Tensor> propose_rows(const torch::Tensor& logits, double temperature,
                                                     at::Generator& generator) {
  const auto logits64 = logits.to(at::kDouble);
  const auto log_probs = at::log_softmax(logits64, -1);
  torch::Tensor tokens;
  if (temperature <= 0) {
    tokens = logits64.argmax(-1);
  } else {
    // Gumbel-max: argmax(l / tau + g) with g = -log(-log u) draws from softmax(l / tau). Float64
    // keeps the noise's tail exact (float32 Gumbel noise biases low-probability values).
    const auto u = at::rand(logits64.sizes(), generator, at::kDouble)
                       .to(logits64.device())
                       .clamp(std::numeric_limits<double>::min(), 1.0 - 1e-16);
    tokens = (logits64 / temperature - at::log(-at::log(u))).argmax(-1);
  }
  return {tokens, log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)};
}
}  // namespace

std::pair<torch::Tensor, torch::Tensor> propose_values(const torch::Tensor& logits, double temperature,
                                                       at::Generator& generator) {
  // A few cells at a time: float64 noise for every (gene, value) of a whole batch is large.
  constexpr int64_t kRowsPerChunk = 4;
  std::vector<torch::Tensor> tokens, log_p;
  for (int64_t begin = 0; begin < logits.size(0); begin += kRowsPerChunk) {
    auto [t, l] = propose_rows(logits.slice(0, begin, begin + kRowsPerChunk), temperature, generator);
    tokens.push_back(std::move(t));
    log_p.push_back(std::move(l));
  }
  return {at::cat(tokens), at::cat(log_p)};
}

std::pair<torch::Tensor, torch::Tensor> commit_highest(const torch::Tensor& tokens, const torch::Tensor& proposals,
                                                       const torch::Tensor& masked, const torch::Tensor& score,
                                                       const torch::Tensor& n_commit) {
  // Rank of each position by score within its row (masked positions first), then keep ranks < k.
  const auto ranked = score.masked_fill(masked.logical_not(), -std::numeric_limits<double>::infinity());
  const auto order = at::argsort(ranked, /*stable=*/true, /*dim=*/1, /*descending=*/true);
  const auto positions = at::arange(ranked.size(1), order.options()).expand_as(order);
  const auto rank = at::empty_like(order).scatter_(1, order, positions);
  const auto commit = (rank < n_commit.unsqueeze(1)).logical_and(masked);
  return {at::where(commit, proposals, tokens), masked.logical_and(commit.logical_not())};
}

torch::Tensor sample_tokens(const Denoiser& denoiser, const torch::Tensor& initial, const torch::Tensor& is_gene,
                            int64_t mask_token, const SamplerOptions& options, at::Generator& generator) {
  auto tokens = initial.clone();
  auto masked = (tokens == mask_token).logical_and(is_gene.unsqueeze(0).to(tokens.device()));
  const auto n_masked = masked.sum(1);  // [B]: rows may differ when genes are pre-filled
  const int64_t S = std::max(options.steps, 1);
  for (int64_t s = 0; s < S; ++s) {
    // Per row, the linear schedule's share for this step (see unmask_schedule).
    const auto n_commit = at::div(n_masked * (s + 1), S, "floor") - at::div(n_masked * s, S, "floor");
    if (n_commit.max().item<int64_t>() == 0) continue;
    const auto logits = denoiser(tokens);
    auto [proposals, log_p] = propose_values(logits, options.temperature, generator);
    const auto score = options.order == UnmaskOrder::Confidence
                           ? log_p
                           : at::rand(log_p.sizes(), generator, at::kDouble).to(log_p.device());
    std::tie(tokens, masked) = commit_highest(tokens, proposals, masked, score, n_commit);
  }
  return tokens;
}

}  // namespace lingshu
