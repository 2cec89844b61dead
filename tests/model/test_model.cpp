#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/config.h"
#include "model/model.h"
#include "model/precision.h"

namespace lingshu {
namespace {

ModelConfig tiny_config(int64_t n_genes, int patch_size, std::vector<int64_t> conditions = {}) {
  auto c = ModelConfig::from_preset("tiny");
  c.n_genes = n_genes;
  c.patch_size = patch_size;
  c.n_tokens = 8;
  c.condition_vocab_sizes = std::move(conditions);
  return c;
}

TEST(ModelConfig, PresetsExistAndUnknownNamesAreRejectedWithTheChoices) {
  for (const auto& name : ModelConfig::preset_names()) EXPECT_EQ(ModelConfig::from_preset(name).preset, name);
  try {
    ModelConfig::from_preset("huge");
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("tiny, small, base, large"), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, PatchLargerThanGeneCountIsAUserError) {
  auto c = tiny_config(20, 32);
  EXPECT_THROW(c.validate(), UserError);
  c.patch_size = 8;
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.n_patches(), 3);  // 20 genes in patches of 8: the last one padded
  EXPECT_EQ(c.n_positions(), 24);
}

TEST(ModelConfig, JsonRoundTripKeepsEveryField) {
  auto c = tiny_config(100, 8, {3, 5});
  c.d_model = 48;
  c.n_heads = 3;
  c.perturbation_field = 1;
  c.knowledge_dim = 6;
  c.n_knowledge_genes = 11;
  const auto back = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
}

TEST(ModelConfig, PresetsHelpHasOneLinePerPreset) {
  const auto help = ModelConfig::presets_help();
  for (const auto& name : ModelConfig::preset_names()) {
    const auto c = ModelConfig::from_preset(name);
    EXPECT_NE(help.find(fmt::format("  {:<6} d={:<5} {:>2} layers", name, c.d_model, c.n_layers)),
              std::string::npos)
        << help;
  }
  EXPECT_EQ(std::count(help.begin(), help.end(), '\n'),
            static_cast<long>(ModelConfig::preset_names().size()));
}

TEST(Model, LogitsHaveOneDistributionPerPosition) {
  torch::manual_seed(0);
  const auto c = tiny_config(50, 8, {3, 4});
  MaskedDiffusionModel model(c);
  const auto tokens = torch::randint(0, c.n_tokens + 1, {5, c.n_positions()}, torch::kLong);
  const auto conditions = torch::tensor({0, 1, 2, 1, 0, 3, 2, 0, 1, 1}, torch::kLong).view({5, 2});
  const auto logits = model->forward(tokens, conditions);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{5, c.n_positions(), c.n_tokens}));
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

// A fresh model's head is zero (it predicts its output biases): tests of what the network sees
// give it random weights first.
void randomise_head(MaskedDiffusionModelImpl& model) {
  torch::NoGradGuard no_grad;
  model.named_parameters()["head.weight"].normal_(0.0, 0.02);
}

TEST(Model, FreshModelPredictsItsOutputBiases) {
  torch::manual_seed(3);
  auto c = tiny_config(40, 8, {3});
  MaskedDiffusionModel model(c);
  model->eval();
  auto tokens = torch::full({2, c.n_positions()}, c.n_tokens, torch::kLong);
  tokens[1][0] = 2;
  const auto conditions = torch::tensor({{1}, {2}}, torch::kLong);
  const auto logits = model->forward(tokens, conditions);
  EXPECT_TRUE(torch::allclose(logits, model->output_bias_logits(conditions), 1e-6, 1e-6));
}

TEST(Model, AttentionIsBidirectional) {
  // Changing the last gene's value must change the prediction for the first gene (a causal
  // model could not see it), and each cell is computed independently of the others.
  torch::manual_seed(1);
  const auto c = tiny_config(64, 8);
  MaskedDiffusionModel model(c);
  model->eval();
  randomise_head(*model);
  auto tokens = torch::full({2, c.n_positions()}, c.n_tokens, torch::kLong);
  const auto before = model->forward(tokens);
  tokens[0][c.n_positions() - 1] = 3;
  const auto after = model->forward(tokens);
  EXPECT_GT((after[0][0] - before[0][0]).abs().max().item<float>(), 1e-6);
  EXPECT_TRUE(torch::allclose(after[1], before[1]));
}

TEST(Model, ConditionTokensAndPerturbationTargetsChangeThePrediction) {
  torch::manual_seed(2);
  auto c = tiny_config(40, 8, {3, 4});
  c.perturbation_field = 1;
  MaskedDiffusionModel model(c);
  randomise_head(*model);
  const auto tokens = torch::full({1, c.n_positions()}, c.n_tokens, torch::kLong);
  const auto null_logits = model->forward(tokens, torch::zeros({1, 2}, torch::kLong));
  const auto cond_logits = model->forward(tokens, torch::tensor({{1, 0}}, torch::kLong));
  EXPECT_GT((null_logits - cond_logits).abs().max().item<float>(), 1e-6);
  // Targets add to the perturbation token; padding (-1) adds nothing.
  const auto target_logits =
      model->forward(tokens, torch::zeros({1, 2}, torch::kLong), torch::tensor({{5, -1}}));
  EXPECT_GT((null_logits - target_logits).abs().max().item<float>(), 1e-9);
  const auto padded_only =
      model->forward(tokens, torch::zeros({1, 2}, torch::kLong), torch::tensor({{-1, -1}}));
  EXPECT_TRUE(torch::equal(null_logits, padded_only));
  // The same target twice in different rows of a batch gives the same logits as alone.
  const auto pair = model->forward(tokens.expand({2, -1}), torch::zeros({2, 2}, torch::kLong),
                                   torch::tensor({{5, -1}, {-1, -1}}));
  EXPECT_TRUE(torch::allclose(pair[0], target_logits[0], 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(pair[1], null_logits[0], 1e-5, 1e-6));
}

TEST(Model, KnowledgeRowsEnterAsTargetsAfterTheSequencePositions) {
  torch::manual_seed(4);
  auto c = tiny_config(40, 8, {3, 4});
  c.perturbation_field = 1;
  c.knowledge_dim = 3;
  c.n_knowledge_genes = 3;
  MaskedDiffusionModel model(c);
  randomise_head(*model);
  // Rows 0 and 2 are the same vector: two genes the knowledge cannot tell apart.
  model->set_gene_knowledge(torch::tensor({{1.f, 0.f, 0.f}, {0.f, 1.f, 0.f}, {1.f, 0.f, 0.f}}));
  EXPECT_THROW(model->set_gene_knowledge(torch::zeros({2, 3})), c10::Error);
  const int64_t L = c.n_positions();
  const auto tokens = torch::full({1, L}, c.n_tokens, torch::kLong);
  const auto none = torch::zeros({1, 2}, torch::kLong);
  const auto with = [&](std::vector<int64_t> t) {
    return model->forward(tokens, none, torch::tensor(t).unsqueeze(0));
  };
  const auto null_logits = with({-1});
  const auto row0 = with({L}), row1 = with({L + 1}), row2 = with({L + 2});
  EXPECT_GT((row0 - null_logits).abs().max().item<float>(), 1e-9);
  EXPECT_GT((row0 - row1).abs().max().item<float>(), 1e-9);
  EXPECT_TRUE(torch::equal(row0, row2)) << "a row is looked up by its vector, not its index";
  // A measured gene with knowledge: its position and its row add up, in any order.
  EXPECT_TRUE(torch::allclose(with({5, L + 1}), with({L + 1, 5}), 1e-5, 1e-6));
  EXPECT_GT((with({5, L + 1}) - with({5})).abs().max().item<float>(), 1e-9);
  // The vectors are data, not weights the optimiser moves.
  const auto params = model->named_parameters();
  EXPECT_FALSE(params["gene_knowledge"].requires_grad());
  EXPECT_TRUE(params["knowledge_proj.weight"].requires_grad());
}

TEST(Model, LogitsAtChosenGenesEqualTheFullLogits) {
  torch::manual_seed(5);
  auto c = tiny_config(70, 8, {3});
  MaskedDiffusionModel model(c);
  model->eval();
  torch::NoGradGuard no_grad;
  model->named_parameters()["gene_out_loading"].normal_();  // the gene-factor path too (zero when fresh)
  randomise_head(*model);
  model->set_cell_factors(torch::randn({c.n_positions(), c.gene_factors}) * 0.1,
                          torch::randn({c.n_positions(), c.gene_factors}), torch::rand({c.n_positions()}));
  const auto tokens = torch::randint(0, c.n_tokens + 1, {2, c.n_positions()}, torch::kLong);
  const auto conditions = torch::tensor({{1}, {2}}, torch::kLong);
  const auto full = model->forward(tokens, conditions);
  const auto rows = torch::tensor({0, 1, 1, 0, 1}, torch::kLong);
  const auto positions = torch::tensor({0, 7, 8, 69, 33}, torch::kLong);
  const auto at = model->forward_at(tokens, conditions, {}, rows, positions);
  EXPECT_TRUE(torch::allclose(at, full.index({rows, positions}), 1e-5, 1e-5));
  // Every gene of both cells at once (one-step sampling), which takes the all-genes product.
  const auto all_rows = torch::arange(2).repeat_interleave(c.n_positions());
  const auto all_positions = torch::arange(c.n_positions()).repeat(2);
  const auto everywhere = model->forward_at(tokens, conditions, {}, all_rows, all_positions);
  EXPECT_TRUE(torch::allclose(everywhere, full.reshape({-1, c.n_tokens}), 1e-5, 1e-5));
}

TEST(Model, GeneFactorsStartSilentThenGiveEachGeneItsOwnOutputAndInput) {
  torch::manual_seed(6);
  auto c = tiny_config(40, 8, {3});
  c.gene_factors = 2;
  MaskedDiffusionModel model(c);
  model->eval();
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(0, c.n_tokens + 1, {2, c.n_positions()}, torch::kLong);
  const auto conditions = torch::tensor({{1}, {2}}, torch::kLong);
  // Zero output loadings: the factor path adds nothing, so a head with zero weights gives exactly
  // the output biases (a fresh model starts at its marginals).
  auto params = model->named_parameters();
  params["head.weight"].zero_();
  params["head.bias"].zero_();
  EXPECT_TRUE(torch::allclose(model->forward(tokens, conditions), model->output_bias_logits(conditions)));
  // With output loadings on one gene only, only that gene's logits move.
  params["gene_out_loading"][13].normal_();
  const auto moved = (model->forward(tokens, conditions) - model->output_bias_logits(conditions)).abs();
  EXPECT_GT(moved.select(1, 13).max().item<float>(), 1e-4);
  EXPECT_EQ(moved.narrow(1, 0, 13).max().item<float>(), 0.0f);
  EXPECT_EQ(moved.narrow(1, 14, c.n_positions() - 14).max().item<float>(), 0.0f);
  // An observed gene's level enters through its own input loading and through the cell's depth.
  // Give values 1 and 2 the same slot-shared value embedding: they then differ only in level, so
  // switching gene 21 between them changes the logits while either path is open, and nothing once
  // both are closed.
  params["value_emb.weight"][2].copy_(params["value_emb.weight"][1]);
  const auto change_of_level = [&] {
    tokens[0][21] = 1;
    const auto with_one = model->forward(tokens, conditions);
    tokens[0][21] = 2;
    return (with_one[0] - model->forward(tokens, conditions)[0]).abs().max().item<float>();
  };
  EXPECT_GT(change_of_level(), 1e-6);
  params["gene_in_loading"][21].zero_();
  EXPECT_GT(change_of_level(), 1e-6);  // the depth summary still sees it
  params["depth_in"].zero_();
  EXPECT_LT(change_of_level(), 1e-6);
}

// A fresh tiny model in eval mode with 2 cell factors, 40 genes and one field of 3 labels: its
// head is zero, so its logits are the output biases plus what the factors add.
MaskedDiffusionModel cell_factor_model(uint64_t seed) {
  torch::manual_seed(seed);
  auto c = tiny_config(40, 8, {3});
  c.gene_factors = 2;
  MaskedDiffusionModel model(c);
  model->eval();
  return model;
}

TEST(Model, CellFactorsTiltOnlyTheGenesWithOutputLoadingsOnceGenesAreObserved) {
  MaskedDiffusionModel model = cell_factor_model(8);
  const ModelConfig& c = model->config();
  torch::NoGradGuard no_grad;
  auto in = torch::zeros({c.n_positions(), 2});
  in.slice(0, 0, 10).normal_();
  auto out = torch::zeros({c.n_positions(), 2});
  out[30].normal_();
  model->set_cell_factors(in, out, torch::zeros({c.n_positions()}));
  const auto conditions = torch::tensor({{1}}, torch::kLong);
  const auto tilt = [&](const torch::Tensor& tokens) {
    return (model->forward(tokens, conditions) - model->output_bias_logits(conditions)).abs()[0];
  };
  // Nothing observed: every score is 0, the logits are the output biases.
  const auto masked = torch::full({1, c.n_positions()}, c.n_tokens, torch::kLong);
  EXPECT_EQ(tilt(masked).max().item<float>(), 0.0f);
  // Genes 0..9 observed high: gene 30, and only gene 30, is tilted.
  auto observed = masked.clone();
  observed.slice(1, 0, 10).fill_(c.n_tokens - 1);
  const auto moved = tilt(observed);
  EXPECT_GT(moved[30].max().item<float>(), 1e-3);
  EXPECT_EQ(moved.narrow(0, 0, 30).max().item<float>(), 0.0f);
  EXPECT_EQ(moved.narrow(0, 31, c.n_positions() - 31).max().item<float>(), 0.0f);
}

TEST(Model, NarrowingTakesSpreadOffOnlyItsGeneAndKeepsItsLevelsNearTheLabelMean) {
  MaskedDiffusionModel model = cell_factor_model(4);
  const ModelConfig& c = model->config();
  torch::NoGradGuard no_grad;
  auto params = model->named_parameters();
  // A wide label distribution of levels for every gene.
  const auto levels = params["value_level"].slice(0, 0, c.n_tokens);
  const auto centre = levels.mean();
  model->set_gene_logit_bias(
      (-(levels - centre).pow(2) / 4.0).unsqueeze(0).expand({c.n_positions(), -1}).contiguous());
  auto narrowing = torch::zeros({c.n_positions()});
  narrowing[12] = 2.0;
  model->set_cell_factors(torch::zeros({c.n_positions(), 2}), torch::zeros({c.n_positions(), 2}), narrowing);
  const auto conditions = torch::tensor({{0}}, torch::kLong);
  const auto masked = torch::full({1, c.n_positions()}, c.n_tokens, torch::kLong);
  const auto p = torch::softmax(model->forward(masked, conditions)[0], -1);      // [L, K]
  const auto p0 = torch::softmax(model->output_bias_logits(conditions)[0], -1);  // [L, K]
  const auto mean = [&](const torch::Tensor& q) { return q.matmul(levels); };
  const auto variance = [&](const torch::Tensor& q) { return q.matmul(levels.pow(2)) - mean(q).pow(2); };
  EXPECT_LT(variance(p)[12].item<float>(), 0.5f * variance(p0)[12].item<float>());
  // Centred on the label's mean level, the narrowing moves the mean only as far as the uneven
  // spacing of the levels makes the distribution lopsided.
  EXPECT_LT((mean(p)[12] - mean(p0)[12]).abs().item<float>(), 0.25f * variance(p0)[12].sqrt().item<float>());
  EXPECT_TRUE(torch::allclose(p.narrow(0, 0, 12), p0.narrow(0, 0, 12), 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(p.narrow(0, 13, c.n_positions() - 13), p0.narrow(0, 13, c.n_positions() - 13),
                              1e-6, 1e-7));
}

TEST(Model, DrawnCellStatesComeFromTheBankAndSetTheTiltInsteadOfTheObservedGenes) {
  MaskedDiffusionModel model = cell_factor_model(9);
  const ModelConfig& c = model->config();
  torch::NoGradGuard no_grad;
  model->named_parameters()["gene_out_loading"].normal_();
  randomise_head(*model);
  model->set_cell_factors(torch::randn({c.n_positions(), 2}), torch::randn({c.n_positions(), 2}),
                          torch::zeros({c.n_positions()}));
  // A fresh model's bank is zeros.
  EXPECT_EQ(model->banked_cell_states(torch::tensor({0, 3}, torch::kLong)).abs().max().item<float>(), 0.0f);
  // A filled one keeps the states and labels of its rows.
  const auto bank = torch::tensor({{1.0f, -2.0f}, {0.5f, 0.25f}, {-1.5f, 3.0f}});
  model->set_cell_state_bank(bank, torch::tensor({1, 1, 2}, torch::kLong).unsqueeze(1));
  EXPECT_TRUE(torch::equal(model->cell_state_labels().slice(0, 0, 4).squeeze(1),
                           torch::tensor({1, 1, 2, -1}, torch::kLong)));
  EXPECT_TRUE(torch::equal(model->banked_cell_states(torch::tensor({2, 0}, torch::kLong)),
                           torch::stack({bank[2], bank[0]})));

  auto tokens = torch::full({2, c.n_positions()}, c.n_tokens, torch::kLong);
  tokens.slice(1, 0, 20).random_(0, c.n_tokens);
  const auto conditions = torch::tensor({{1}, {2}}, torch::kLong);
  // The states the observed genes give, passed as drawn ones, change nothing ...
  const auto read = model->cell_states(tokens, conditions);
  EXPECT_TRUE(
      torch::allclose(model->forward(tokens, conditions, {}, read), model->forward(tokens, conditions)));
  // ... other drawn states change the logits, in forward and forward_at alike.
  const auto other = torch::stack({bank[0], bank[2]});
  const auto full = model->forward(tokens, conditions, {}, other);
  EXPECT_FALSE(torch::allclose(full, model->forward(tokens, conditions), 1e-3, 1e-3));
  const auto rows = torch::tensor({0, 1, 1}, torch::kLong);
  const auto positions = torch::tensor({25, 3, 39}, torch::kLong);
  EXPECT_TRUE(torch::allclose(model->forward_at(tokens, conditions, {}, rows, positions, other),
                              full.index({rows, positions}), 1e-5, 1e-5));
}

TEST(Model, PaddedTargetsFillWithMinusOne) {
  const auto t = padded_targets({{3, 4}, {}, {7}});
  EXPECT_TRUE(torch::equal(t, torch::tensor({{3, 4}, {-1, -1}, {7, -1}})));
  EXPECT_EQ(padded_targets({{}, {}}).size(1), 1);
}

TEST(Model, Bf16AutocastGivesCloseFloatLogits) {
  torch::manual_seed(3);
  const auto c = tiny_config(64, 8);
  MaskedDiffusionModel model(c);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(0, c.n_tokens + 1, {3, c.n_positions()}, torch::kLong);
  const auto fp32 = model->forward(tokens);
  torch::Tensor bf16;
  {
    const AutocastScope autocast(Precision::BFloat16, torch::kCPU);
    bf16 = model->forward(tokens);
  }
  EXPECT_EQ(bf16.scalar_type(), torch::kFloat32);
  EXPECT_LT((bf16 - fp32).abs().max().item<float>(), 0.1);
}

}  // namespace
}  // namespace lingshu
