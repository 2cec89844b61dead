#include "sample/sampler.h"

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>

#include <cmath>
#include <limits>
#include <numbers>

#include "sample/stratum_quantiles.h"

namespace lingshu {

double committed_share(UnmaskSchedule schedule, int64_t s, int64_t steps) {
  if (s >= steps) return 1.0;  // exact, whatever the rounding of cos(pi/2)
  const double x = static_cast<double>(s) / static_cast<double>(steps);
  return schedule == UnmaskSchedule::Cosine ? 1.0 - std::cos(std::numbers::pi / 2 * x) : x;
}

namespace {
// Committed after step s of S, for every row's count of initially masked genes.
torch::Tensor committed_after(const torch::Tensor& n_masked, UnmaskSchedule schedule, int64_t s, int64_t S) {
  if (schedule == UnmaskSchedule::Linear) return at::div(n_masked * s, S, "floor");  // exact integers
  return at::floor(n_masked.to(at::kDouble) * committed_share(schedule, s, S)).to(at::kLong);
}
}  // namespace

std::vector<int64_t> unmask_schedule(int64_t n_masked, int steps, UnmaskSchedule schedule) {
  const int64_t S = std::max(steps, 1);
  const auto n = at::full({1}, n_masked, at::kLong);
  std::vector<int64_t> counts(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) {
    counts[s] = (committed_after(n, schedule, s + 1, S) - committed_after(n, schedule, s, S)).item<int64_t>();
  }
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

// Rows per slice of `logits` whose float64 copies stay near 8 MiB.
int64_t rows_per_chunk(const torch::Tensor& logits) {
  const int64_t per_row = std::max<int64_t>(1, logits.numel() / std::max<int64_t>(logits.size(0), 1));
  return std::max<int64_t>(1, (int64_t{1} << 20) / per_row);
}
}  // namespace

std::pair<torch::Tensor, torch::Tensor> propose_values(const torch::Tensor& logits, double temperature,
                                                       at::Generator& generator) {
  // A slice at a time: float64 noise for every (gene, value) of a whole batch is large.
  const int64_t chunk = rows_per_chunk(logits);
  std::vector<torch::Tensor> tokens, log_p;
  for (int64_t begin = 0; begin < logits.size(0); begin += chunk) {
    auto [t, l] = propose_rows(logits.slice(0, begin, begin + chunk), temperature, generator);
    tokens.push_back(std::move(t));
    log_p.push_back(std::move(l));
  }
  if (tokens.empty()) {
    const auto shape = logits.sizes().vec();
    const std::vector<int64_t> out_shape(shape.begin(), shape.end() - 1);
    return {at::empty(out_shape, logits.options().dtype(at::kLong)),
            at::empty(out_shape, logits.options().dtype(at::kDouble))};
  }
  return {at::cat(tokens), at::cat(log_p)};
}

torch::Tensor values_at_quantiles(const torch::Tensor& logits, const torch::Tensor& u, double temperature) {
  if (logits.size(0) == 0) return at::empty({0}, logits.options().dtype(at::kLong));
  const int64_t chunk = rows_per_chunk(logits), K = logits.size(-1);
  std::vector<torch::Tensor> out;
  for (int64_t begin = 0; begin < logits.size(0); begin += chunk) {
    const auto l = logits.slice(0, begin, begin + chunk).to(at::kDouble);
    const auto cdf = at::softmax(temperature > 0 ? l / temperature : l, -1).cumsum(-1);
    const auto q = u.slice(0, begin, begin + chunk).to(cdf.device()).unsqueeze(-1);
    out.push_back((cdf < q).sum(-1).clamp_max(K - 1));
  }
  return at::cat(out);
}

torch::Tensor select_highest(const torch::Tensor& masked, const torch::Tensor& score,
                             const torch::Tensor& n_commit) {
  // Rank of each position by score within its row (masked positions first), then keep ranks < k.
  const auto ranked = score.masked_fill(masked.logical_not(), -std::numeric_limits<double>::infinity());
  const auto order = at::argsort(ranked, /*stable=*/true, /*dim=*/1, /*descending=*/true);
  const auto positions = at::arange(ranked.size(1), order.options()).expand_as(order);
  const auto rank = at::empty_like(order).scatter_(1, order, positions);
  return (rank < n_commit.unsqueeze(1)).logical_and(masked);
}

std::pair<torch::Tensor, torch::Tensor> commit_highest(const torch::Tensor& tokens,
                                                       const torch::Tensor& proposals,
                                                       const torch::Tensor& masked,
                                                       const torch::Tensor& score,
                                                       const torch::Tensor& n_commit) {
  const auto commit = select_highest(masked, score, n_commit);
  return {at::where(commit, proposals, tokens), masked.logical_and(commit.logical_not())};
}

torch::Tensor sample_tokens(const Denoiser& denoiser, const torch::Tensor& initial,
                            const torch::Tensor& is_gene, int64_t mask_token, const SamplerOptions& options,
                            at::Generator& generator, const PositionDenoiser& at_positions,
                            const torch::Tensor& quantiles) {
  auto tokens = initial.clone();
  auto masked = (tokens == mask_token).logical_and(is_gene.unsqueeze(0).to(tokens.device()));
  const auto n_masked = masked.sum(1);  // [B]: rows may differ when genes are pre-filled
  const int64_t S = std::max(options.steps, 1);
  // Each gene is drawn once, when committed: its quantile is fixed from the start.
  const auto quantile = options.order != UnmaskOrder::Random ? torch::Tensor()
                        : quantiles.defined()
                            ? quantiles
                            : stratified_uniforms(tokens.size(0), tokens.size(1), generator);
  for (int64_t s = 0; s < S; ++s) {
    // Per row, the schedule's share for this step (see unmask_schedule).
    const auto n_commit = committed_after(n_masked, options.schedule, s + 1, S) -
                          committed_after(n_masked, options.schedule, s, S);
    if (n_commit.max().item<int64_t>() == 0) continue;
    if (options.order == UnmaskOrder::Random) {
      // Which genes to commit does not depend on their values, so values are drawn only there:
      // the same distribution as drawing everywhere, S times less noise to generate.
      const auto score = at::rand(masked.sizes(), generator, at::kDouble).to(masked.device());
      const auto commit = select_highest(masked, score, n_commit);
      torch::Tensor logits;
      if (at_positions) {
        const auto where = commit.nonzero();  // row-major, the order masked_scatter fills
        logits = at_positions(tokens, where.select(1, 0), where.select(1, 1));
      } else {
        logits = denoiser(tokens).index({commit});
      }
      const auto values =
          options.temperature > 0
              ? values_at_quantiles(logits, quantile.index({commit.cpu()}), options.temperature)
              : propose_values(logits, options.temperature, generator).first;
      tokens = tokens.masked_scatter(commit, values);
      masked = masked.logical_and(commit.logical_not());
    } else {
      const auto logits = denoiser(tokens);
      auto [proposals, log_p] = propose_values(logits, options.temperature, generator);
      std::tie(tokens, masked) = commit_highest(tokens, proposals, masked, log_p, n_commit);
    }
  }
  return tokens;
}

}  // namespace lingshu
