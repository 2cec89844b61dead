// Which banked training cells a generated cell draws its state from.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/model.h"
#include "sample/cell_batches.h"

namespace lingshu {
namespace {

TEST(CellStateCandidates, CellsWithTheSameLabelsOrEveryCellForANullLabel) {
  auto config = ModelConfig::from_preset("tiny");
  config.n_genes = 40;
  config.patch_size = 8;
  config.n_tokens = 8;
  config.condition_vocab_sizes = {3};
  config.gene_factors = 2;
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
  auto config = ModelConfig::from_preset("tiny");
  config.n_genes = 40;
  config.patch_size = 8;
  config.n_tokens = 8;
  config.condition_vocab_sizes = {3, 4};
  config.perturbation_field = 1;
  config.gene_factors = 2;
  MaskedDiffusionModel model(config);
  // Rows: (context 1, perturbation 1), (context 1, perturbation 2), (context 2, perturbation 3).
  model->set_cell_state_bank(torch::randn({3, 2}), torch::tensor({{1, 1}, {1, 2}, {2, 3}}, torch::kLong));
  // An unseen pair (context 2, perturbation 1) takes its context's states, not the perturbation's.
  EXPECT_TRUE(torch::equal(cell_state_candidates(*model, torch::tensor({2, 1}, torch::kLong)),
                           torch::tensor({2}, torch::kLong)));
  EXPECT_TRUE(torch::equal(cell_state_candidates(*model, torch::tensor({1, 2}, torch::kLong)),
                           torch::tensor({1}, torch::kLong)));
}

}  // namespace
}  // namespace lingshu
