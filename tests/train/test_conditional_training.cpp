// Conditional training on simulated screens (cell types x perturbations): what the model directory
// records (conditions.json), --holdout errors, --resume equivalence with condition dropout, and a
// tiny model whose cells follow the requested cell type.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/simulator.h"
#include "model/model_dir.h"
#include "model/weights.h"
#include "sample/generate.h"
#include "test_support.h"
#include "tiny_training.h"
#include "train/trainer.h"

namespace lingshu {
namespace {

using testing::log_normalised;
using testing::stored_weights;
using testing::tiny_train_options;

Simulation screen(int64_t cells, int64_t genes, int types, int perturbations, uint64_t seed) {
  SimulatorConfig c;
  c.n_cells = cells;
  c.n_genes = genes;
  c.n_cell_types = types;
  c.n_perturbations = perturbations;
  c.n_downstream = 5;
  c.seed = seed;
  c.de_prob = 0.3;
  c.de_fac_loc = 1.0;
  c.lib_loc = 7.0;
  return simulate(c, 1);
}

TrainOptions conditional(const std::filesystem::path& out, int64_t steps, const std::string& holdout) {
  auto o = tiny_train_options(out, steps);
  o.condition_fields = {"cell_type"};
  o.perturbation = "condition";
  o.control = "control";
  o.holdouts = {holdout};
  o.p_uncond = 0.2;
  return o;
}

std::string label(const AnnData& data, const std::string& column, int64_t row) {
  return data.obs.require(column, "obs").label(row).value_or("");
}

TEST(ConditionalTraining, ModelDirectoryRecordsFieldsHoldoutAndCombinations) {
  testing::TempDir dir;
  const auto sim = screen(240, 48, 2, 2, 1);
  const std::string pert = sim.truth.perturbations[0].name;
  const std::string holdout = "cell_type=type_0,condition=" + pert;
  train_model(sim.data, conditional(dir / "m", 3, holdout));

  // The file itself, as other tools read it.
  nlohmann::json j;
  std::ifstream(dir / "m" / "conditions.json") >> j;
  ASSERT_TRUE(j.contains("fields") && j.contains("holdouts") && j.contains("training_combinations")) << j;
  EXPECT_EQ(j["holdouts"], nlohmann::json::array({holdout}));

  const auto meta = read_model_metadata(dir / "m");
  ASSERT_EQ(meta.conditions.size(), 3u);
  EXPECT_EQ(meta.conditions[0].column, "cell_type");
  EXPECT_EQ(meta.conditions[1].column, "condition");
  EXPECT_TRUE(meta.conditions[1].is_perturbation);
  EXPECT_EQ(meta.conditions[2].column, kStateColumn);
  EXPECT_EQ(meta.config.perturbation_field, 1);
  ASSERT_EQ(meta.config.condition_vocab_sizes.size(), 3u);
  EXPECT_EQ(meta.config.condition_vocab_sizes[0], 3);  // NULL + 2 types
  EXPECT_EQ(meta.config.condition_vocab_sizes[1], 4);  // NULL + control + 2 perturbations
  EXPECT_EQ(meta.config.condition_vocab_sizes[2], 5);  // NULL + 2 types x (control, perturbed)
  // The held-out perturbation is still a label: type_1 cells carry it.
  EXPECT_TRUE(meta.conditions[1].find(pert));
  EXPECT_EQ(meta.holdouts, std::vector<std::string>{holdout});

  // Combinations: the training cells (held-out cells excluded), counted exactly.
  std::map<std::vector<std::string>, int64_t> direct;
  int64_t held = 0;
  for (int64_t i = 0; i < sim.data.n_obs(); ++i) {
    const std::vector<std::string> labels{label(sim.data, "cell_type", i), label(sim.data, "condition", i)};
    if (labels[0] == "type_0" && labels[1] == pert) {
      ++held;
    } else {
      ++direct[labels];
    }
  }
  ASSERT_GT(held, 0);
  ASSERT_EQ(meta.combinations.size(), direct.size());
  int64_t total = 0;
  for (const auto& c : meta.combinations) {
    EXPECT_EQ(c.n_cells, direct.at({c.labels[0], c.labels[1]}));
    EXPECT_FALSE(c.labels[0] == "type_0" && c.labels[1] == pert);
    total += c.n_cells;
  }
  EXPECT_EQ(total, sim.data.n_obs() - held);
  EXPECT_EQ(meta.training.at("n_cells"), sim.data.n_obs());  // --resume compares the whole file
}

TEST(ConditionalTraining, HoldoutsThatMatchNoCellAreUserErrorsAndWriteNothing) {
  testing::TempDir dir;
  const auto sim = screen(120, 40, 2, 2, 2);
  EXPECT_THROW(train_model(sim.data, conditional(dir / "a", 2, "cell_type=type_7")), UserError);
  EXPECT_THROW(train_model(sim.data, conditional(dir / "b", 2, "donor=d1")), UserError);
  EXPECT_THROW(train_model(sim.data, conditional(dir / "c", 2, "cell_type")), UserError);
  for (const char* name : {"a", "b", "c"}) EXPECT_FALSE(is_model_dir(dir / name)) << name;
  // A --control that the perturbation column lacks, and a missing --condition column.
  auto o = conditional(dir / "d", 2, "cell_type=type_0");
  o.control = "NT";
  EXPECT_THROW(train_model(sim.data, o), UserError);
  o = conditional(dir / "e", 2, "cell_type=type_0");
  o.condition_fields = {"donor"};
  EXPECT_THROW(train_model(sim.data, o), UserError);
  // The valid version of the same run trains.
  EXPECT_EQ(train_model(sim.data, conditional(dir / "f", 2, "cell_type=type_0")).steps, 2);
}

TEST(ConditionalTraining, ResumeGivesTheSameParametersAsAnUninterruptedRun) {
  testing::TempDir dir;
  const auto sim = screen(160, 40, 2, 2, 3);
  const std::string holdout = "cell_type=type_1,condition=" + sim.truth.perturbations[1].name;
  EXPECT_EQ(train_model(sim.data, conditional(dir / "straight", 12, holdout)).steps, 12);

  auto first = conditional(dir / "resumed", 12, holdout);
  EXPECT_EQ(train_model(sim.data, first, {.stop_after_steps = 5}).steps, 5);
  auto again = tiny_train_options(dir / "resumed", 0);  // no condition flags: the stored ones are used
  again.resume = true;
  EXPECT_EQ(train_model(sim.data, again).steps, 12);

  const auto a = stored_weights(dir / "straight");
  const auto b = stored_weights(dir / "resumed");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_TRUE(a.contains("target_proj.weight"));
  for (const auto& [name, tensor] : a) EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name;
  EXPECT_EQ(read_model_metadata(dir / "resumed").holdouts, std::vector<std::string>{holdout});

  // Condition dropout is part of the replayed randomness: another p_uncond trains other weights.
  auto other = conditional(dir / "other", 12, holdout);
  other.p_uncond = 0.6;
  train_model(sim.data, other);
  EXPECT_FALSE(torch::equal(a.at("head.weight"), stored_weights(dir / "other").at("head.weight")));
}

TEST(ConditionalTraining, CellsOfARequestedTypeAreNearestToThatType) {
  testing::TempDir dir;
  const int types = 3;
  const auto sim = screen(600, 96, types, 0, 4);
  auto o = tiny_train_options(dir / "m", 300);
  o.batch_size = 32;
  o.condition_fields = {"cell_type"};
  train_model(sim.data, o);

  const testing::NearestType nearest(sim.data.X, sim.truth.cell_type, types);
  // Real cells of each type are (almost) all nearest to their own centroid here.
  const auto real = log_normalised(sim.data.X);
  int real_hits = 0;
  for (size_t i = 0; i < real.size(); ++i) real_hits += nearest(real[i]) == sim.truth.cell_type[i];
  ASSERT_GE(real_hits, static_cast<int>(real.size()) * 95 / 100);

  const int64_t n = 60;
  const auto hits_of = [&](int t, double cfg) {
    GenerateOptions g;
    g.model_dir = dir / "m";
    g.n_cells = n;
    g.conditions = {"cell_type=type_" + std::to_string(t)};
    g.sampling.steps = 16;
    g.sampling.batch_size = 60;
    g.sampling.seed = 3;
    g.sampling.cfg = cfg;
    g.sampling.quiet = true;
    g.sampling.precision = "fp32";
    const AnnData cells = generate_cells(g);
    EXPECT_EQ(cells.n_obs(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(label(cells, "cell_type", i), "type_" + std::to_string(t));
    int hits = 0;
    for (const auto& cell : log_normalised(cells.X)) hits += nearest(cell) == t;
    return hits;
  };
  // Chance is about a third. Each label's output bias starts at its cells' marginals, so even this
  // short run puts nearly every cell on its type without guidance; guidance (--cfg 2) must keep it.
  int plain = 0, guided = 0;
  for (int t = 0; t < types; ++t) {
    const int p = hits_of(t, 0), g = hits_of(t, 2);
    EXPECT_GE(p, 5 * n / 6) << "type_" << t << ", no guidance: " << p << " of " << n
                            << " cells nearest to it";
    EXPECT_GE(g, 5 * n / 6) << "type_" << t << ", cfg 2: " << g << " of " << n << " cells nearest to it";
    plain += p;
    guided += g;
  }
  EXPECT_GE(guided, plain - n / 20);

  // This model has no perturbation field to guide on its own.
  GenerateOptions g;
  g.model_dir = dir / "m";
  g.n_cells = 2;
  g.sampling.cfg = 1;
  g.sampling.guide = "perturbation";
  g.sampling.quiet = true;
  EXPECT_THROW(generate_cells(g), UserError);
}

}  // namespace
}  // namespace lingshu
