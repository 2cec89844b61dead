#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <numbers>
#include <numeric>

#include "sample/sampler.h"
#include "sample/stratum_quantiles.h"

namespace lingshu {
namespace {

at::Generator generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

TEST(UnmaskSchedule, CommitsEveryMaskedGeneOverTheSteps) {
  for (const auto schedule : {UnmaskSchedule::Linear, UnmaskSchedule::Cosine}) {
    for (const int64_t n : {0L, 1L, 7L, 100L, 13714L}) {
      for (const int steps : {1, 3, 32, 200}) {
        const auto counts = unmask_schedule(n, steps, schedule);
        ASSERT_EQ(counts.size(), static_cast<size_t>(steps));
        EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), n);
        for (size_t s = 0; s < counts.size(); ++s) {
          EXPECT_GE(counts[s], 0);
          // After step s+1, floor(n * share) are committed: share (s+1)/S or 1 - cos(pi/2 (s+1)/S).
          const double x = static_cast<double>(s + 1) / steps;
          const double share =
              schedule == UnmaskSchedule::Linear ? x : 1 - std::cos(std::numbers::pi / 2 * x);
          const int64_t committed = std::accumulate(counts.begin(), counts.begin() + s + 1, int64_t{0});
          if (schedule == UnmaskSchedule::Linear) {
            EXPECT_EQ(committed, n * static_cast<int64_t>(s + 1) / steps);
          } else {
            EXPECT_NEAR(static_cast<double>(committed), std::floor(static_cast<double>(n) * share), 1.0);
          }
        }
      }
    }
  }
  // Cosine commits few genes first and many last: 16 of 13,714 at step 1 of 32, 672 at the last.
  const auto cosine = unmask_schedule(13714, 32, UnmaskSchedule::Cosine);
  EXPECT_LT(cosine.front(), 13714 / 32 / 10);
  EXPECT_GT(cosine.back(), 13714 / 32);
}

TEST(Sampler, GumbelProposalsFollowTheTemperatureScaledDistribution) {
  auto gen = generator(11);
  const std::vector<double> p = {0.7, 0.2, 0.1};
  const auto row = torch::log(torch::tensor(p, torch::kDouble)).to(torch::kFloat);
  const auto logits = row.expand({8, 5000, 3}).contiguous();
  auto [tokens, log_p] = propose_values(logits, 1.0, gen);
  for (int64_t k = 0; k < 3; ++k) {
    const double freq = (tokens == k).to(torch::kDouble).mean().item<double>();
    EXPECT_NEAR(freq, p[k], 0.01) << "value " << k;  // 40,000 draws: sd < 0.0025
  }
  // The returned score is log p of the drawn value under the model.
  EXPECT_NEAR(log_p.masked_select(tokens == 1).mean().item<double>(), std::log(0.2), 1e-6);
  // Temperature 0.5 squares and renormalises the probabilities.
  std::tie(tokens, log_p) = propose_values(logits, 0.5, gen);
  const double z = 0.49 + 0.04 + 0.01;
  EXPECT_NEAR((tokens == 0).to(torch::kDouble).mean().item<double>(), 0.49 / z, 0.01);
  // Temperature 0: always the most likely value.
  std::tie(tokens, log_p) = propose_values(logits, 0.0, gen);
  EXPECT_TRUE((tokens == 0).all().item<bool>());
}

// A denoiser that records how many genes are still masked each time it is called.
struct RecordingDenoiser {
  int64_t mask_token;
  torch::Tensor logits;  // fixed [B, L, K]
  std::vector<torch::Tensor> masked_counts;
  torch::Tensor operator()(const torch::Tensor& z) {
    masked_counts.push_back((z == mask_token).sum(1));
    return logits;
  }
};

TEST(Sampler, CommitsTheScheduledNumberPerStepAndLeavesNoMask) {
  torch::manual_seed(0);
  const int64_t B = 3, L = 50, genes = 45, K = 6, mask = K;
  const int steps = 7;
  auto is_gene = torch::zeros({L}, torch::kBool);
  is_gene.slice(0, 0, genes).fill_(true);
  auto initial = torch::full({B, L}, mask, torch::kLong);
  initial.slice(1, genes).fill_(mask);  // padding stays MASK: it is not a gene
  // Row 1 has 5 genes pre-filled; they must keep their values.
  initial[1].slice(0, 10, 15).fill_(2);
  for (const auto& [order, schedule] : {std::pair{UnmaskOrder::Confidence, UnmaskSchedule::Linear},
                                        std::pair{UnmaskOrder::Random, UnmaskSchedule::Linear},
                                        std::pair{UnmaskOrder::Random, UnmaskSchedule::Cosine}}) {
    auto state = std::make_shared<RecordingDenoiser>(RecordingDenoiser{mask, torch::randn({B, L, K}), {}});
    auto gen = generator(5);
    const auto out = sample_tokens([state](const torch::Tensor& z) { return (*state)(z); }, initial, is_gene,
                                   mask, {steps, 1.0, order, schedule}, gen);
    EXPECT_FALSE((out.slice(1, 0, genes) == mask).any().item<bool>());
    EXPECT_TRUE((out.slice(1, 0, genes) < K).all().item<bool>());
    EXPECT_TRUE((out.slice(1, genes) == mask).all().item<bool>());  // padding untouched
    EXPECT_TRUE((out[1].slice(0, 10, 15) == 2).all().item<bool>());
    ASSERT_EQ(state->masked_counts.size(), static_cast<size_t>(steps));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t to_fill = b == 1 ? genes - 5 : genes;
      const auto per_step = unmask_schedule(to_fill, steps, schedule);
      int64_t remaining = to_fill;
      for (int s = 0; s < steps; ++s) {
        // The count seen by call s (padding included), minus padding, is what was still masked.
        EXPECT_EQ(state->masked_counts[s][b].item<int64_t>() - (L - genes), remaining)
            << "row " << b << " step " << s;
        remaining -= per_step[s];
      }
      EXPECT_EQ(remaining, 0);
    }
  }
}

TEST(Sampler, ConfidenceOrderCommitsTheSurestGenesFirst) {
  // Position p's distribution gets sharper with p: the first of 4 steps must commit the last 4.
  const int64_t L = 16, K = 4, mask = K;
  auto logits = torch::zeros({1, L, K});
  for (int64_t p = 0; p < L; ++p) logits[0][p][1] = static_cast<float>(p + 1);
  auto is_gene = torch::ones({L}, torch::kBool);
  auto gen = generator(2);
  std::vector<torch::Tensor> seen;
  const auto out = sample_tokens(
      [&](const torch::Tensor& z) {
        seen.push_back(z.clone());
        return logits;
      },
      torch::full({1, L}, mask, torch::kLong), is_gene, mask,
      {4, 0.0, UnmaskOrder::Confidence, UnmaskSchedule::Linear}, gen);
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_TRUE((seen[1][0].slice(0, 12) == 1).all().item<bool>());
  EXPECT_TRUE((seen[1][0].slice(0, 0, 12) == mask).all().item<bool>());
  EXPECT_TRUE((out == 1).all().item<bool>());
}

TEST(Sampler, SameSeedSameTokens) {
  torch::manual_seed(1);
  const auto logits = torch::randn({2, 30, 5});
  const Denoiser d = [&](const torch::Tensor&) { return logits; };
  const auto initial = torch::full({2, 30}, 5, torch::kLong);
  const auto is_gene = torch::ones({30}, torch::kBool);
  auto g1 = generator(9), g2 = generator(9), g3 = generator(10);
  const auto a = sample_tokens(d, initial, is_gene, 5, {}, g1);
  const auto b = sample_tokens(d, initial, is_gene, 5, {}, g2);
  const auto c = sample_tokens(d, initial, is_gene, 5, {}, g3);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

TEST(Sampler, PositionDenoiserGivesTheSameCellsAsTheFullOne) {
  torch::manual_seed(4);
  const auto logits = torch::randn({3, 40, 6});
  const Denoiser full = [&](const torch::Tensor&) { return logits; };
  int64_t asked = 0;
  const PositionDenoiser at = [&](const torch::Tensor&, const torch::Tensor& rows,
                                  const torch::Tensor& positions) {
    asked += positions.size(0);
    return logits.index({rows, positions});
  };
  const auto initial = torch::full({3, 40}, 6, torch::kLong);
  const auto is_gene = torch::ones({40}, torch::kBool);
  const SamplerOptions options{8, 1.0, UnmaskOrder::Random};
  auto g1 = generator(3), g2 = generator(3);
  const auto a = sample_tokens(full, initial, is_gene, 6, options, g1);
  const auto b = sample_tokens(full, initial, is_gene, 6, options, g2, at);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(asked, 3 * 40);  // each gene's logits asked for exactly once
}

// Down each column of u [rows, positions]: one value in each [i / rows, (i + 1) / rows).
bool one_per_interval(const torch::Tensor& u) {
  const int64_t rows = u.size(0);
  const auto slot = at::floor(u * rows).to(torch::kLong);
  return torch::equal(std::get<0>(slot.sort(0)), torch::arange(rows).unsqueeze(1).expand_as(slot));
}

TEST(Sampler, StratifiedUniformsFillEveryIntervalOfAColumnOnce) {
  auto gen = generator(12);
  const int64_t rows = 50, positions = 400;
  const auto u = stratified_uniforms(rows, positions, gen);
  ASSERT_EQ(u.sizes(), (std::vector<int64_t>{rows, positions}));
  EXPECT_TRUE(one_per_interval(u));
  // Along a row the values are independent uniforms: spread over [0, 1) with mean 1/2, variance
  // 1/12, and no correlation between neighbouring columns.
  const auto row = u[7];
  EXPECT_NEAR(row.mean().item<double>(), 0.5, 4 * std::sqrt(1.0 / 12 / positions));
  EXPECT_NEAR(row.var().item<double>(), 1.0 / 12, 0.015);
  const auto a = u.slice(1, 0, positions - 1).flatten() - 0.5, b = u.slice(1, 1).flatten() - 0.5;
  EXPECT_NEAR((a * b).mean().item<double>() * 12, 0.0, 4 / std::sqrt(static_cast<double>(a.numel())));
}

TEST(Sampler, StratumQuantilesStratifyEachGroupWhereverTheBatchesCut) {
  // Groups of 5, 1,030 (more than two blocks of kMaxBlock: three of 343-344) and 3 rows.
  std::vector<int64_t> group(5, 7);
  group.insert(group.end(), 1030, 2);
  group.insert(group.end(), 3, 9);
  const int64_t n = std::ssize(group), positions = 60;
  StratumQuantiles whole(group, positions, 21);
  const auto u = whole.rows(0, n);
  ASSERT_EQ(u.sizes(), (std::vector<int64_t>{n, positions}));
  EXPECT_TRUE(one_per_interval(u.slice(0, 0, 5)));
  EXPECT_TRUE(one_per_interval(u.slice(0, 5, 5 + 343)));
  EXPECT_TRUE(one_per_interval(u.slice(0, 5 + 343, 5 + 686)));
  EXPECT_TRUE(one_per_interval(u.slice(0, 5 + 686, 5 + 1030)));
  EXPECT_TRUE(one_per_interval(u.slice(0, 5 + 1030)));
  // Batches of 32 see the same quantiles as one pass: a group is stratified across its batches.
  StratumQuantiles batched(group, positions, 21);
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < n; begin += 32)
    parts.push_back(batched.rows(begin, std::min<int64_t>(32, n - begin)));
  EXPECT_TRUE(torch::equal(torch::cat(parts), u));
  // Within a block each row's values are independent uniforms, unrelated to the next row's.
  const auto block = u.slice(0, 5, 5 + 343);
  EXPECT_NEAR(block.mean().item<double>(), 0.5, 4 * std::sqrt(1.0 / 12 / static_cast<double>(block.numel())));
  const auto a = block.slice(0, 0, 342).flatten() - 0.5, b = block.slice(0, 1).flatten() - 0.5;
  EXPECT_NEAR((a * b).mean().item<double>() * 12, 0.0, 4 / std::sqrt(static_cast<double>(a.numel())));
  EXPECT_THROW(whole.rows(n - 2, 3), std::out_of_range);
}

TEST(Sampler, ValuesAtEvenlySpreadQuantilesReproduceTheDistribution) {
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  const auto logits = torch::log(torch::tensor(p, torch::kDouble)).expand({1000, 4}).contiguous();
  const auto u = (torch::arange(1000, torch::kDouble) + 0.5) / 1000;  // evenly spread quantiles
  const auto values = values_at_quantiles(logits, u, 1.0);
  for (int64_t k = 0; k < 4; ++k)
    EXPECT_EQ((values == k).sum().item<int64_t>(), static_cast<int64_t>(std::lround(p[k] * 1000)));
  // Temperature 0.5 squares and renormalises the probabilities: 0.25 / 0.365 of the mass on value 0.
  const auto cooler = values_at_quantiles(logits, u, 0.5);
  EXPECT_NEAR((cooler == 0).to(torch::kDouble).mean().item<double>(), 0.25 / 0.365, 1e-3);
}

TEST(Sampler, ACellsDrawsFollowTheModelWhileTheBatchMeanVariesFarLess) {
  // Every cell the same distribution over 4 values at 300 genes. Each cell's draws follow it, and
  // the batch's mean value per gene (a pseudobulk of 40 cells) varies at most a tenth as much as 40
  // independent draws' means would.
  const std::vector<double> p = {0.6, 0.25, 0.1, 0.05};
  const auto logits = torch::log(torch::tensor(p, torch::kDouble)).to(torch::kFloat).expand({40, 300, 4});
  const Denoiser d = [&](const torch::Tensor&) { return logits; };
  const auto initial = torch::full({40, 300}, 4, torch::kLong);
  auto gen = generator(13);
  const auto out = sample_tokens(d, initial, torch::ones({300}, torch::kBool), 4, {4, 1.0}, gen);
  for (int64_t k = 0; k < 4; ++k) {
    EXPECT_NEAR((out == k).to(torch::kDouble).mean().item<double>(), p[k], 0.01) << "value " << k;
    EXPECT_NEAR((out[3] == k).to(torch::kDouble).mean().item<double>(), p[k], 0.1) << "one cell, value " << k;
  }
  double mean = 0, second = 0;
  for (int64_t k = 0; k < 4; ++k) {
    mean += static_cast<double>(k) * p[k];
    second += static_cast<double>(k * k) * p[k];
  }
  const double iid_variance = (second - mean * mean) / 40;
  const double variance = out.to(torch::kDouble).mean(0).var().item<double>();
  EXPECT_LT(variance, iid_variance / 10);
}

}  // namespace
}  // namespace lingshu
