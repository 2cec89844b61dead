#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "train/batch_loader.h"
#include "train/lr_schedule.h"
#include "train/objective.h"
#include "train/trainer.h"

namespace lingshu {
namespace {

at::Generator generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

TEST(Objective, DiffusionTimesAreStratifiedOverTheBatch) {
  auto gen = generator(7);
  const int64_t B = 16;
  const auto t = sample_diffusion_times(B, gen);
  ASSERT_EQ(t.size(0), B);
  // Low discrepancy: exactly one t in each of the B equal strata of (eps, 1).
  std::set<int64_t> strata;
  for (int64_t i = 0; i < B; ++i) {
    const double v = t[i].item<double>();
    ASSERT_GT(v, kMinDiffusionTime - 1e-7);
    ASSERT_LT(v, 1.0);
    strata.insert(static_cast<int64_t>((v - kMinDiffusionTime) / (1 - kMinDiffusionTime) * B));
  }
  EXPECT_EQ(strata.size(), static_cast<size_t>(B));
}

TEST(Objective, MaskingRateIsTAndPaddingIsNeverMasked) {
  auto gen = generator(3);
  const int64_t L = 20000, genes = 19000;
  auto is_gene = torch::zeros({L}, torch::kBool);
  is_gene.slice(0, 0, genes).fill_(true);
  const auto t = torch::tensor({0.1f, 0.5f, 0.9f});
  const auto mask = forward_mask(t, is_gene, gen);
  EXPECT_FALSE(mask.slice(1, genes).any().item<bool>());
  for (int64_t b = 0; b < 3; ++b) {
    const double rate = mask[b].slice(0, 0, genes).to(torch::kDouble).mean().item<double>();
    const double expected = t[b].item<double>();
    // Binomial standard deviation at n = 19000 is below 0.004.
    EXPECT_NEAR(rate, expected, 0.015) << "cell " << b;
  }
}

TEST(Objective, LossIsOneOverTWeightedCrossEntropyOfMaskedGenes) {
  // Two cells, three positions (the last is padding), two values; worked by hand.
  const auto logits = torch::tensor(
      {{{2.0f, 0.0f}, {0.0f, 1.0f}, {5.0f, -5.0f}}, {{1.0f, 1.0f}, {3.0f, 0.0f}, {5.0f, -5.0f}}});
  const auto targets = torch::tensor({{0, 0, 1}, {1, 0, 1}}, torch::kLong);
  const auto mask = torch::tensor({{true, true, false}, {false, true, false}});
  const auto t = torch::tensor({0.5f, 0.25f});
  const int64_t n_genes = 2;
  const auto nll = [](double target_logit, double other) {
    return -(target_logit - std::log(std::exp(target_logit) + std::exp(other)));
  };
  const double cell0 = (nll(2, 0) + nll(0, 1)) / 0.5 / n_genes;
  const double cell1 = nll(3, 0) / 0.25 / n_genes;
  const double expected = (cell0 + cell1) / 2;
  EXPECT_NEAR(masked_diffusion_loss(logits, targets, mask, t, n_genes).item<double>(), expected, 1e-5);
  const double plain = (nll(2, 0) + nll(0, 1) + nll(3, 0)) / 3;
  EXPECT_NEAR(masked_cross_entropy(logits, targets, mask).item<double>(), plain, 1e-5);
}

TEST(Objective, UnmaskedAndPaddingPositionsDoNotContribute) {
  torch::manual_seed(0);
  auto logits = torch::randn({4, 10, 5});
  const auto targets = torch::randint(0, 5, {4, 10}, torch::kLong);
  const auto mask = torch::rand({4, 10}) < 0.5;
  const auto t = torch::full({4}, 0.5f);
  const double before = masked_diffusion_loss(logits, targets, mask, t, 8).item<double>();
  // Scramble every unmasked logit: the loss must not move. Then scramble a masked one: it must.
  auto scrambled = logits.clone();
  scrambled.masked_scatter_(mask.logical_not().unsqueeze(-1).expand_as(logits),
                            torch::randn({4, 10, 5}) * 10);
  EXPECT_DOUBLE_EQ(masked_diffusion_loss(scrambled, targets, mask, t, 8).item<double>(), before);
  const auto first_masked = mask.nonzero()[0];
  scrambled[first_masked[0].item<int64_t>()][first_masked[1].item<int64_t>()] +=
      torch::tensor({9.f, 0.f, -9.f, 0.f, 3.f});
  EXPECT_NE(masked_diffusion_loss(scrambled, targets, mask, t, 8).item<double>(), before);
  // The gradient reaches masked positions only.
  auto leaf = logits.clone().requires_grad_(true);
  masked_diffusion_loss(leaf, targets, mask, t, 8).backward();
  const auto grad_norm = leaf.grad().abs().sum(-1);
  EXPECT_EQ(grad_norm.masked_select(mask.logical_not()).sum().item<float>(), 0.0f);
  EXPECT_GT(grad_norm.masked_select(mask).min().item<float>(), 0.0f);
}

TEST(Objective, ConditionDropoutReplacesTokensByNull) {
  auto gen = generator(1);
  const auto conditions = torch::randint(1, 5, {2000, 2}, torch::kLong);
  EXPECT_TRUE(torch::equal(drop_conditions(conditions, 0.0, gen), conditions));
  const auto dropped = drop_conditions(conditions, 0.1, gen);
  const auto changed = dropped != conditions;
  EXPECT_TRUE((dropped.masked_select(changed) == 0).all().item<bool>());
  EXPECT_NEAR(changed.to(torch::kDouble).mean().item<double>(), 0.1, 0.02);
}

TEST(LrSchedule, WarmsUpLinearlyThenDecaysByCosineToTheFloor) {
  const LrSchedule s{1e-3, 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(s.at(0), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(9), 1e-3);
  EXPECT_NEAR(s.at(60), 1e-3 * (0.1 + 0.9 * 0.5), 1e-12);  // half-way through the cosine
  EXPECT_NEAR(s.at(110), 1e-4, 1e-12);
  EXPECT_NEAR(s.at(500), 1e-4, 1e-12);
  for (int64_t i = 10; i < 110; ++i) EXPECT_LE(s.at(i + 1), s.at(i));
}

TEST(BatchLoader, EveryEpochVisitsEveryCellOnceInASeededOrder) {
  const int64_t n = 37, B = 8;
  std::vector<int64_t> stream;
  for (int64_t b = 0; b < 10; ++b) {
    const auto rows = BatchLoader::batch_rows(n, B, 5, b);
    ASSERT_EQ(rows, BatchLoader::batch_rows(n, B, 5, b));  // a pure function of (seed, index)
    stream.insert(stream.end(), rows.begin(), rows.end());
  }
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    std::set<int64_t> seen(stream.begin() + epoch * n, stream.begin() + (epoch + 1) * n);
    EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  }
  EXPECT_NE(BatchLoader::batch_rows(n, B, 5, 0), BatchLoader::batch_rows(n, B, 6, 0));
}

TEST(Split, ValidationAndTrainingCellsPartitionTheData) {
  const auto s = split_cells(1000, 0.05, 256, 3);
  EXPECT_EQ(s.validation.size(), 50u);
  EXPECT_EQ(s.train.size(), 950u);
  std::set<int64_t> all(s.train.begin(), s.train.end());
  all.insert(s.validation.begin(), s.validation.end());
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_EQ(split_cells(1000, 0.05, 256, 3).validation, s.validation);
  EXPECT_EQ(split_cells(100000, 0.05, 256, 3).validation.size(), 256u);
  EXPECT_TRUE(split_cells(100, 0.0, 256, 3).validation.empty());
}

}  // namespace
}  // namespace lingshu
