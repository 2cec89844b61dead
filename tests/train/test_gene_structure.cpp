// The network must learn how genes vary together inside a cell type, not only each type's
// marginals: on simulated cells with within-type gene programs, a small model trained on one half
// reproduces the program correlations of the other half (the gene-gene metric of `eval
// generation`) far above the independent-genes baseline built from the same half, its masked loss
// gains from seeing the other genes, and even one sampling step carries the structure (the cell's
// state is drawn before its genes).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "baselines/independent_baseline.h"
#include "data/simulator.h"
#include "eval/generation_metrics.h"
#include "sample/generate.h"
#include "test_support.h"
#include "tiny_training.h"
#include "train/trainer.h"

namespace lingshu {
namespace {

Simulation programs_simulation() {
  SimulatorConfig c;
  c.n_cells = 2000;
  c.n_genes = 96;
  c.n_cell_types = 2;
  c.seed = 11;
  c.lib_loc = 7.5;
  c.n_programs = 2;
  c.program_genes = 16;
  c.program_scale = 1.2;
  c.program_type_prob = 1.0;
  return simulate(c);
}

double gene_gene_corr(const AnnData& real, const AnnData& generated) {
  GenerationOptions options;
  options.label = "cell_type";
  options.threads = 1;
  const auto evaluation = evaluate_generation(match_expression(real, generated, {}), options);
  return evaluation.metrics.gene_gene_corr;
}

AnnData generate(const std::filesystem::path& model, int64_t n, int steps) {
  GenerateOptions g;
  g.model_dir = model;
  g.n_cells = n;
  g.sampling.steps = steps;
  g.sampling.batch_size = 250;
  g.sampling.seed = 5;
  g.sampling.quiet = true;
  g.sampling.precision = "fp32";
  return generate_cells(g);
}

TEST(GeneStructure, TinyModelReproducesWithinTypeProgramsThatIndependentGenesMiss) {
  testing::TempDir dir;
  const auto sim = programs_simulation();
  std::vector<int64_t> first, second;
  for (int64_t i = 0; i < sim.data.n_obs(); ++i) (i < sim.data.n_obs() / 2 ? first : second).push_back(i);
  const AnnData train = sim.data.select_cells(first), held_out = sim.data.select_cells(second);

  auto o = testing::tiny_train_options(dir / "model", 600);
  o.batch_size = 32;
  o.condition_fields = {"cell_type"};
  o.val_fraction = 0.1;
  o.eval_every = 300;
  const auto result = train_model(train, o);
  // Seeing the other genes of the cell helps (the output biases alone are the type's marginals).
  EXPECT_GT(result.context_gain, 0.0);
  // ... and the training log says so at every mask rate, more as training goes on.
  std::ifstream log(dir / "model" / "train_log.jsonl");
  std::vector<double> gains;
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("val_context")) continue;
    for (const char* rate : {"0.1", "0.5", "0.9"}) ASSERT_TRUE(j["val_context"].contains(rate)) << line;
    gains.push_back(j["val_context"]["0.5"]["gain"]);
  }
  ASSERT_EQ(gains.size(), 2u);
  EXPECT_GT(gains[1], gains[0]);

  const int64_t n = held_out.n_obs();
  const double model = gene_gene_corr(held_out, generate(dir / "model", n, 16));
  const double one_step = gene_gene_corr(held_out, generate(dir / "model", n, 1));
  IndependentBaselineOptions b;
  b.label = "cell_type";
  b.n_cells = n;
  b.threads = 1;
  const double independent = gene_gene_corr(held_out, sample_independent_baseline(train, b));
  const double real_halves = gene_gene_corr(held_out, train);
  RecordProperty("gene_gene", fmt::format("model {:.3f}, one step {:.3f}, independent {:.3f}, real {:.3f}",
                                          model, one_step, independent, real_halves));
  EXPECT_LT(std::abs(independent), 0.1);
  EXPECT_GT(real_halves, 0.8);
  EXPECT_GT(model, 0.5) << "independent " << independent << ", real halves " << real_halves;
  // One step draws every gene at once given the type and the cell's drawn state (the training
  // cells' scores): the programs' structure is in that state, not in genes sampled earlier.
  EXPECT_GT(one_step, 0.5);
}

}  // namespace
}  // namespace lingshu
