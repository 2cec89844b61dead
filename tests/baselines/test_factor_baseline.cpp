// The factor baseline keeps each type's proportions, gene totals and within-type gene-gene
// structure (what the independent baseline loses), and reduces its factors for small types.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

#include "baselines/factor_baseline.h"
#include "baselines/independent_baseline.h"
#include "core/error.h"
#include "data/simulator.h"
#include "eval/expression.h"
#include "eval/generation_metrics.h"
#include "eval/stats.h"

namespace lingshu {
namespace {

Simulation programs_data(int64_t n_cells, uint64_t seed) {
  SimulatorConfig c;
  c.n_cells = n_cells;
  c.n_genes = 300;
  c.n_cell_types = 2;
  c.n_programs = 3;
  c.program_scale = 1.0;
  c.seed = seed;
  return simulate(c);
}

FactorBaselineOptions by_type(int64_t n_cells, int factors) {
  FactorBaselineOptions options;
  options.label = "cell_type";
  options.n_cells = n_cells;
  options.factors = factors;
  options.seed = 4;
  return options;
}

TEST(FactorBaseline, KeepsProportionsAndEachTypesGeneTotals) {
  const AnnData train = programs_data(600, 1).data;
  const FactorBaseline b = sample_factor_baseline(train, by_type(train.n_obs(), 8));
  ASSERT_EQ(b.cells.n_obs(), train.n_obs());
  EXPECT_EQ(b.cells.var.index, train.var.index);
  EXPECT_TRUE(b.notes.empty());
  // As many cells as the training data: every training cell's state exactly once, so each type
  // keeps its count and, up to Poisson noise, each gene's total within it.
  const Column& real_type = *train.obs.find("cell_type");
  const Column& made_type = *b.cells.obs.find("cell_type");
  std::map<std::string, std::vector<double>> real_totals, made_totals;
  std::map<std::string, int64_t> real_n, made_n;
  const auto add = [](const AnnData& d, const Column& type, auto& totals, auto& n) {
    for (int64_t i = 0; i < d.n_obs(); ++i) {
      const std::string t = *type.label(i);
      auto& sum = totals[t];
      sum.resize(static_cast<size_t>(d.n_vars()), 0.0);
      const auto row = d.X.dense_row(i);
      for (size_t g = 0; g < row.size(); ++g) sum[g] += row[g];
      ++n[t];
    }
  };
  add(train, real_type, real_totals, real_n);
  add(b.cells, made_type, made_totals, made_n);
  EXPECT_EQ(real_n, made_n);
  for (const auto& [type, real] : real_totals) {
    EXPECT_GT(pearson_correlation(real, made_totals.at(type)), 0.99) << type;
    double r = 0, m = 0;
    for (size_t g = 0; g < real.size(); ++g) r += real[g], m += made_totals.at(type)[g];
    EXPECT_NEAR(m / r, 1.0, 0.01) << type;
  }
}

TEST(FactorBaseline, KeepsWithinTypeGeneGeneStructureThatIndependentGenesLose) {
  const Simulation sim = programs_data(1600, 2);
  std::vector<int64_t> a, b;
  for (int64_t i = 0; i < sim.data.n_obs(); ++i) (i % 2 ? b : a).push_back(i);
  const AnnData train = sim.data.select_cells(a), held_out = sim.data.select_cells(b);
  GenerationOptions options;
  options.label = "cell_type";
  const auto gene_gene = [&](const AnnData& generated) {
    return evaluate_generation(match_expression(held_out, generated, {}), options).metrics.gene_gene_corr;
  };
  IndependentBaselineOptions independent;
  independent.label = "cell_type";
  independent.seed = 4;
  const double factor = gene_gene(sample_factor_baseline(train, by_type(0, 8)).cells);
  const double independent_genes = gene_gene(sample_independent_baseline(train, independent));
  const double real_halves = gene_gene(train);
  EXPECT_LT(independent_genes, 0.15);
  EXPECT_GT(factor, independent_genes + 0.2);
  EXPECT_GT(factor, 0.6 * real_halves) << "real halves " << real_halves;
}

TEST(FactorBaseline, FewerFactorsWithANoteForATypeWithFewCells) {
  AnnData train = programs_data(200, 3).data;
  const FactorBaseline b = sample_factor_baseline(train, by_type(50, 150));
  ASSERT_EQ(b.notes.size(), 2u);  // both types have fewer than 150 cells
  EXPECT_NE(b.notes[0].find("factors instead of 150"), std::string::npos) << b.notes[0];
  EXPECT_EQ(b.cells.n_obs(), 50);
  EXPECT_THROW(sample_factor_baseline(train, by_type(10, 0)), UserError);
  FactorBaselineOptions missing = by_type(10, 4);
  missing.label = "no_such_column";
  EXPECT_THROW(sample_factor_baseline(train, missing), UserError);
}

}  // namespace
}  // namespace lingshu
