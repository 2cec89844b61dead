// Which banked training cells a generated cell draws its state from.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/model.h"
#include "sample/cell_batches.h"

namespace lingshu {
namespace {

// A tiny model's config with the given condition fields (perturbation_field: -1 for none).
ModelConfig tiny_config(std::vector<int64_t> vocab_sizes, int64_t perturbation_field, int64_t gene_factors) {
  auto config = ModelConfig::from_preset("tiny");
  config.n_genes = 40;
  config.patch_size = 8;
  config.n_tokens = 8;
  config.condition_vocab_sizes = std::move(vocab_sizes);
  config.perturbation_field = perturbation_field;
  config.gene_factors = gene_factors;
  return config;
}

TEST(CellStateCandidates, CellsWithTheSameLabelsOrEveryCellForANullLabel) {
  auto config = tiny_config({3}, -1, 2);
  MaskedDiffusionModel model(config);
  const auto candidates = [&](int64_t label) {
    return cell_state_candidates(*model, torch::tensor({label}, torch::kLong));
  };
  model->set_cell_state_bank(torch::randn({3, 2}), torch::tensor({1, 1, 2}, torch::kLong).unsqueeze(1));
  EXPECT_TRUE(torch::equal(candidates(1), torch::tensor({0, 1}, torch::kLong)));
  EXPECT_TRUE(torch::equal(candidates(2), torch::tensor({2}, torch::kLong)));
  EXPECT_TRUE(torch::equal(candidates(0), torch::tensor({0, 1, 2}, torch::kLong)));
  config.gene_factors = 0;
  EXPECT_FALSE(
      cell_state_candidates(*MaskedDiffusionModel(config), torch::tensor({1}, torch::kLong)).defined());
}

TEST(CellStateCandidates, ContextFieldsCountBeforeThePerturbation) {
  MaskedDiffusionModel model(tiny_config({3, 4}, 1, 2));
  // Rows: (context 1, perturbation 1), (context 1, perturbation 2), (context 2, perturbation 3).
  model->set_cell_state_bank(torch::randn({3, 2}), torch::tensor({{1, 1}, {1, 2}, {2, 3}}, torch::kLong));
  // An unseen pair (context 2, perturbation 1) takes its context's states, not the perturbation's.
  EXPECT_TRUE(torch::equal(cell_state_candidates(*model, torch::tensor({2, 1}, torch::kLong)),
                           torch::tensor({2}, torch::kLong)));
  EXPECT_TRUE(torch::equal(cell_state_candidates(*model, torch::tensor({1, 2}, torch::kLong)),
                           torch::tensor({1}, torch::kLong)));
}

TEST(GuidedDenoiser, TransferWeightBlendsThePerturbationWithItsState) {
  torch::manual_seed(4);
  const auto config = tiny_config({3, 4}, 1, 16);
  MaskedDiffusionModel model(config);
  model->eval();
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.normal_();
  const int64_t n = 4;
  // Row 3: a perturbation the model never saw, NULL plus a target gene (position 5).
  BatchInputs inputs{torch::full({n, config.n_positions()}, config.n_tokens, torch::kLong),
                     torch::tensor({{1, 2}, {2, 3}, {1, 0}, {2, 0}}, torch::kLong),
                     torch::tensor({{-1}, {-1}, {-1}, {5}}, torch::kLong),
                     {},
                     torch::tensor({0.0, 0.25, 1.0, 0.0}, torch::kDouble)};
  SamplingSettings settings;
  const GuidedDenoiser blended(*model, inputs, settings, -1, torch::kCPU, Precision::Float32);
  const auto z = inputs.initial;
  const auto full = model->forward(z, inputs.conditions, inputs.targets);
  auto state = inputs.conditions.clone();
  state.select(1, 1).zero_();
  const auto without = model->forward(z, state, torch::full_like(inputs.targets, -1));
  const auto got = blended(z);  // logits up to ~80: batches of other sizes round at ~1e-4
  EXPECT_TRUE(torch::allclose(got[0], without[0], 1e-4, 1e-3));
  EXPECT_TRUE(torch::allclose(got[1], 0.25 * full[1] + 0.75 * without[1], 1e-4, 1e-3));
  EXPECT_TRUE(torch::allclose(got[2], full[2], 1e-4, 1e-3));
  EXPECT_TRUE(torch::allclose(got[3], without[3], 1e-4, 1e-3));
  EXPECT_FALSE(torch::allclose(full[3], without[3], 1e-4, 1e-3));  // the target does move the logits
  // The same at chosen positions.
  const auto rows = torch::tensor({1, 0, 2}, torch::kLong),
             positions = torch::tensor({5, 9, 30}, torch::kLong);
  const auto at = blended.at(z, rows, positions);
  EXPECT_TRUE(torch::allclose(at[0], got[1][5], 1e-4, 1e-3));
  EXPECT_TRUE(torch::allclose(at[1], got[0][9], 1e-4, 1e-3));
  EXPECT_TRUE(torch::allclose(at[2], got[2][30], 1e-4, 1e-3));
}

TEST(StrataOfRows, SizeBinsOfARequestTakenTogetherUntilLargeEnough) {
  // (request, size-bin group sizes): bins join until a stratum holds kMinStratum (32) cells; a
  // request's small last stratum joins the one before; a small request stands alone.
  const std::vector<std::pair<size_t, std::vector<int64_t>>> requests = {
      {0, {20, 20, 5}}, {1, {40, 10, 30}}, {2, {7}}, {3, {35, 3}}};
  GroupPlan plan;
  for (const auto& [request, sizes] : requests) {
    for (const int64_t size : sizes) {
      for (int64_t c = 0; c < size; ++c) plan.rows.push_back({plan.request.size(), c});
      plan.request.push_back(request);
    }
  }
  const auto stratum = strata_of_rows(plan);
  ASSERT_EQ(stratum.size(), plan.rows.size());
  std::vector<int64_t> run_sizes{1};
  for (size_t r = 1; r < stratum.size(); ++r) {
    if (stratum[r] == stratum[r - 1]) {
      ++run_sizes.back();
    } else {
      run_sizes.push_back(1);
    }
  }
  EXPECT_EQ(run_sizes, (std::vector<int64_t>{45, 40, 40, 7, 38}));
}

}  // namespace
}  // namespace lingshu
