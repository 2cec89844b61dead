// Guidance as a weighted sum of passes: which labels each pass sees, and what the sum computes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "sample/guidance.h"

namespace lingshu {
namespace {

// Two fields: cell type (0) and perturbation (1, with targets). Rows: (type 2, pert 3), (type 1, pert 0).
const torch::Tensor kConditions = torch::tensor({2, 3, 1, 0}, torch::kLong).view({2, 2});
const torch::Tensor kTargets = torch::tensor({7, -1, -1, -1}, torch::kLong).view({2, 2});

// A model whose logits add one vector per label (NULL adds nothing): conditions act independently.
torch::Tensor additive_model(const torch::Tensor& conditions) {
  torch::manual_seed(3);
  const auto base = torch::randn({5});
  auto per_type = torch::randn({4, 5}), per_pert = torch::randn({4, 5});
  per_type[0].zero_();
  per_pert[0].zero_();
  return base + per_type.index_select(0, conditions.select(1, 0)) +
         per_pert.index_select(0, conditions.select(1, 1));
}

torch::Tensor guided(const std::vector<GuidancePass>& passes) {
  auto sum = torch::zeros({2, 5});
  for (const auto& p : passes) sum = sum + p.weight * additive_model(p.conditions);
  return sum;
}

TEST(Guidance, WeightsSumToOneSoAConditionFreeModelIsUnchanged) {
  for (const auto mode : {GuideMode::All, GuideMode::Perturbation, GuideMode::Compose}) {
    for (const double w : {0.0, 0.5, 2.0}) {
      double total = 0;
      for (const auto& p : guidance_passes(kConditions, kTargets, mode, w, 1)) total += p.weight;
      EXPECT_NEAR(total, 1.0, 1e-12) << static_cast<int>(mode) << " w " << w;
    }
  }
  EXPECT_EQ(guidance_passes(kConditions, kTargets, GuideMode::All, 0.0, 1).size(), 1u);
  EXPECT_EQ(guidance_passes(kConditions, kTargets, GuideMode::Compose, 0.0, 1).size(), 3u);
}

TEST(Guidance, ReferencePassesDropTheRightLabelsAndTargets) {
  const auto all = guidance_passes(kConditions, kTargets, GuideMode::All, 2.0, 1);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(torch::equal(all[0].conditions, kConditions));
  EXPECT_EQ(all[0].weight, 3.0);
  EXPECT_TRUE((all[1].conditions == 0).all().item<bool>());
  EXPECT_TRUE((all[1].targets == -1).all().item<bool>());
  EXPECT_EQ(all[1].weight, -2.0);

  const auto pert = guidance_passes(kConditions, kTargets, GuideMode::Perturbation, 2.0, 1);
  EXPECT_TRUE(torch::equal(pert[1].conditions.select(1, 0), kConditions.select(1, 0)));  // context kept
  EXPECT_TRUE((pert[1].conditions.select(1, 1) == 0).all().item<bool>());
  EXPECT_TRUE((pert[1].targets == -1).all().item<bool>());

  const auto compose = guidance_passes(kConditions, kTargets, GuideMode::Compose, 0.0, 1);
  EXPECT_TRUE(torch::equal(compose[0].conditions.select(1, 0), kConditions.select(1, 0)));
  EXPECT_TRUE((compose[0].conditions.select(1, 1) == 0).all().item<bool>());
  EXPECT_TRUE((compose[0].targets == -1).all().item<bool>());
  EXPECT_TRUE((compose[1].conditions.select(1, 0) == 0).all().item<bool>());
  EXPECT_TRUE(torch::equal(compose[1].conditions.select(1, 1), kConditions.select(1, 1)));
  EXPECT_TRUE(torch::equal(compose[1].targets, kTargets));  // targets travel with the perturbation
  EXPECT_TRUE((compose[2].conditions == 0).all().item<bool>());
}

TEST(Guidance, ComposeRecoversTheJointOfIndependentConditionsAndScalesEachEffect) {
  // p(x|c1,c2) = p(x|c1) p(x|c2) / p(x) holds exactly for an additive model, so the product of
  // experts gives the joint without ever evaluating it.
  const auto joint = additive_model(kConditions);
  EXPECT_TRUE(torch::allclose(guided(guidance_passes(kConditions, kTargets, GuideMode::Compose, 0.0, 1)),
                              joint, 1e-5, 1e-5));
  // At w, each label's effect is scaled by w + 1.
  const auto null = additive_model(torch::zeros_like(kConditions));
  EXPECT_TRUE(torch::allclose(guided(guidance_passes(kConditions, kTargets, GuideMode::Compose, 1.5, 1)),
                              null + 2.5 * (joint - null), 1e-4, 1e-4));
  // Guiding the perturbation scales only the perturbation's effect.
  auto context_only = kConditions.clone();
  context_only.select(1, 1).zero_();
  const auto context = additive_model(context_only);
  EXPECT_TRUE(torch::allclose(guided(guidance_passes(kConditions, kTargets, GuideMode::Perturbation, 1.5, 1)),
                              context + 2.5 * (joint - context), 1e-4, 1e-4));
}

TEST(Guidance, EveryPassKeepsTheLibraryFieldSoOnlyTheOtherLabelsAreGuided) {
  // Field 0 read as the library size: a drawn cell size, never guided towards or away from.
  auto library_only = kConditions.clone();
  library_only.select(1, 1).zero_();
  const auto sized = additive_model(library_only), joint = additive_model(kConditions);
  for (const auto mode : {GuideMode::All, GuideMode::Perturbation, GuideMode::Compose}) {
    const auto passes = guidance_passes(kConditions, kTargets, mode, 1.5, 1, 0);
    double total = 0;
    for (const auto& p : passes) {
      EXPECT_TRUE(torch::equal(p.conditions.select(1, 0), kConditions.select(1, 0)));
      total += p.weight;
    }
    EXPECT_NEAR(total, 1.0, 1e-12);
    EXPECT_TRUE(torch::allclose(guided(passes), sized + 2.5 * (joint - sized), 1e-4, 1e-4))
        << static_cast<int>(mode);
  }
  EXPECT_EQ(guidance_passes(kConditions, kTargets, GuideMode::Compose, 0.0, 1, 0).size(), 2u);
}

TEST(Guidance, UnknownModeIsAUserError) {
  EXPECT_EQ(parse_guide("compose"), GuideMode::Compose);
  EXPECT_THROW(parse_guide("context"), UserError);
}

}  // namespace
}  // namespace lingshu
