#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "core/error.h"
#include "data/preprocess.h"
#include "data/simulator.h"

namespace lingshu {
namespace {

SimulatorConfig small_config(uint64_t seed) {
  SimulatorConfig c;
  c.n_cells = 600;
  c.n_genes = 1000;
  c.n_cell_types = 4;
  c.seed = seed;
  return c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

TEST(Simulator, SameSeedSameCellsOtherSeedOtherCells) {
  const Simulation a = simulate(small_config(1));
  const Simulation b = simulate(small_config(1));
  const Simulation c = simulate(small_config(2));
  EXPECT_EQ(a.data.X.indptr, b.data.X.indptr);
  EXPECT_EQ(a.data.X.indices, b.data.X.indices);
  EXPECT_EQ(a.data.X.values, b.data.X.values);
  EXPECT_EQ(a.truth.cell_type, b.truth.cell_type);
  EXPECT_NE(a.data.X.values, c.data.X.values);
  EXPECT_NE(a.truth.cell_type, c.truth.cell_type);
}

TEST(Simulator, ThreadCountDoesNotChangeTheCells) {
  SimulatorConfig config = small_config(9);
  config.n_cells = 1500;  // more than one parallel block
  const Simulation one = simulate(config, 1);
  const Simulation two = simulate(config, 2);
  EXPECT_EQ(one.data.X.indptr, two.data.X.indptr);
  EXPECT_EQ(one.data.X.indices, two.data.X.indices);
  EXPECT_EQ(one.data.X.values, two.data.X.values);
}

TEST(Simulator, TruthJsonNamesTheGenes) {
  SimulatorConfig config = small_config(10);
  config.n_perturbations = 2;
  const Simulation s = simulate(config);
  const nlohmann::json j = truth_json(s);
  ASSERT_EQ(j["cell_types"].size(), 4u);
  const auto& type1 = j["cell_types"]["type_1"]["de_gene_factors"];
  ASSERT_EQ(type1.size(), s.truth.de_genes[1].size());
  const int32_t first = s.truth.de_genes[1].front();
  EXPECT_EQ(type1[s.data.var.index[static_cast<size_t>(first)]].get<double>(), s.truth.de_factors[1].front());
  for (const auto& p : s.truth.perturbations) {
    EXPECT_EQ(j["perturbations"][p.name]["target"], p.name);
    EXPECT_EQ(j["perturbations"][p.name]["downstream_gene_factors"].size(), p.downstream.size());
  }
}

TEST(Simulator, LayoutNamesAndLabels) {
  SimulatorConfig config = small_config(3);
  config.n_perturbations = 3;
  const Simulation s = simulate(config);
  const AnnData& d = s.data;
  EXPECT_EQ(d.n_obs(), 600);
  EXPECT_EQ(d.n_vars(), 1000);
  EXPECT_NO_THROW(d.X.validate("simulated"));
  EXPECT_EQ(d.var.index.front(), "Gene0001");
  EXPECT_EQ(d.var.index.back(), "Gene1000");
  EXPECT_EQ(std::set<std::string>(d.obs.index.begin(), d.obs.index.end()).size(), 600u);
  const Column& type = d.obs.require("cell_type", "obs");
  EXPECT_EQ(type.kind, Column::Kind::Categorical);
  EXPECT_EQ(type.categories, (std::vector<std::string>{"type_0", "type_1", "type_2", "type_3"}));
  EXPECT_EQ(type.codes, s.truth.cell_type);
  const Column& condition = d.obs.require("condition", "obs");
  ASSERT_EQ(condition.categories.size(), 4u);
  EXPECT_EQ(condition.categories[0], "control");
  for (size_t i = 0; i < s.truth.perturbations.size(); ++i) {
    const auto& p = s.truth.perturbations[i];
    // The label names the real gene it knocks down.
    EXPECT_EQ(condition.categories[i + 1], p.name);
    EXPECT_EQ(d.var.index[static_cast<size_t>(p.target)], p.name);
    EXPECT_EQ(p.downstream.size(), 20u);
    EXPECT_FALSE(std::binary_search(p.downstream.begin(), p.downstream.end(), p.target));
  }
  for (const float v : d.X.values) EXPECT_EQ(v, std::floor(v));
  // Every label appears.
  EXPECT_EQ(std::set<int32_t>(type.codes.begin(), type.codes.end()).size(), 4u);
  EXPECT_EQ(std::set<int32_t>(condition.codes.begin(), condition.codes.end()).size(), 4u);
}

TEST(Simulator, NoPerturbationsMeansAllControl) {
  const Simulation s = simulate(small_config(4));
  const Column& condition = s.data.obs.require("condition", "obs");
  EXPECT_EQ(condition.categories, (std::vector<std::string>{"control"}));
  EXPECT_TRUE(std::all_of(condition.codes.begin(), condition.codes.end(), [](int32_t c) { return c == 0; }));
}

// Nearest centroid (fitted on even cells, tested on odd ones) on log-normalised DE genes.
TEST(Simulator, CellTypesAreRecoverableFromDEGenes) {
  const Simulation s = simulate(small_config(5));
  std::set<int32_t> de;
  for (const auto& genes : s.truth.de_genes) de.insert(genes.begin(), genes.end());
  ASSERT_GT(de.size(), 100u);
  const std::vector<int64_t> cols(de.begin(), de.end());
  const CsrMatrix x = log_normalize(s.data.X).select_cols(cols);
  const size_t k = s.truth.de_genes.size();
  std::vector<std::vector<double>> centroid(k, std::vector<double>(cols.size(), 0.0));
  std::vector<int> n(k, 0);
  for (int64_t r = 0; r < x.n_rows; r += 2) {
    const auto t = static_cast<size_t>(s.truth.cell_type[static_cast<size_t>(r)]);
    const auto row = x.dense_row(r);
    for (size_t j = 0; j < row.size(); ++j) centroid[t][j] += row[j];
    ++n[t];
  }
  for (size_t t = 0; t < k; ++t) {
    for (double& v : centroid[t]) v /= std::max(1, n[t]);
  }
  int correct = 0;
  int total = 0;
  for (int64_t r = 1; r < x.n_rows; r += 2) {
    const auto row = x.dense_row(r);
    size_t best = 0;
    double best_d = INFINITY;
    for (size_t t = 0; t < k; ++t) {
      double d = 0;
      for (size_t j = 0; j < row.size(); ++j) d += (row[j] - centroid[t][j]) * (row[j] - centroid[t][j]);
      if (d < best_d) best_d = d, best = t;
    }
    correct += static_cast<int>(best) == s.truth.cell_type[static_cast<size_t>(r)] ? 1 : 0;
    ++total;
  }
  EXPECT_GT(static_cast<double>(correct) / total, 0.95);
}

TEST(Simulator, KnockedDownTargetsAndShiftedDownstreamGenes) {
  SimulatorConfig config = small_config(6);
  config.n_cells = 1000;
  config.n_perturbations = 4;
  const Simulation s = simulate(config);
  const CsrMatrix norm = normalize_total(s.data.X);
  const auto mean_in = [&](int32_t condition, int32_t gene) {
    double sum = 0;
    int n = 0;
    for (int64_t r = 0; r < norm.n_rows; ++r) {
      if (s.truth.condition[static_cast<size_t>(r)] != condition) continue;
      sum += norm.dense_row(r)[static_cast<size_t>(gene)];
      ++n;
    }
    return sum / n;
  };
  for (size_t i = 0; i < s.truth.perturbations.size(); ++i) {
    const auto& p = s.truth.perturbations[i];
    const auto code = static_cast<int32_t>(i + 1);
    EXPECT_LT(mean_in(code, p.target), 0.3 * mean_in(0, p.target)) << p.name;
    // Strongly shifted downstream genes move the way the truth says.
    for (size_t j = 0; j < p.downstream.size(); ++j) {
      const double f = p.downstream_factors[j];
      if (f > 1.0 / 2.5 && f < 2.5) continue;
      const double ratio = mean_in(code, p.downstream[j]) / mean_in(0, p.downstream[j]);
      if (f > 1) {
        EXPECT_GT(ratio, 1.3) << p.name << " gene " << p.downstream[j] << " factor " << f;
      } else {
        EXPECT_LT(ratio, 1 / 1.3) << p.name << " gene " << p.downstream[j] << " factor " << f;
      }
    }
  }
}

TEST(Simulator, LibrarySizesFollowTheConfiguredLogNormal) {
  SimulatorConfig config = small_config(7);
  config.lib_loc = 8.5;
  config.lib_scale = 0.25;
  const Simulation s = simulate(config);
  const auto totals = s.data.X.row_sums();
  EXPECT_NEAR(median(totals), std::exp(8.5), 0.05 * std::exp(8.5));
  std::vector<double> logs;
  for (const double t : totals) logs.push_back(std::log(t));
  const double mean = std::accumulate(logs.begin(), logs.end(), 0.0) / logs.size();
  double var = 0;
  for (const double l : logs) var += (l - mean) * (l - mean);
  const double sd = std::sqrt(var / (logs.size() - 1));
  EXPECT_NEAR(mean, 8.5, 0.05);
  EXPECT_NEAR(sd, 0.25, 0.05);
}

TEST(Simulator, DropoutRemovesLowCounts) {
  SimulatorConfig config = small_config(8);
  config.dropout = true;
  config.dropout_mid = 1.0;
  const Simulation with = simulate(config);
  const Simulation without = simulate(small_config(8));
  EXPECT_LT(with.data.X.nnz(), 0.9 * static_cast<double>(without.data.X.nnz()));
}

TEST(Simulator, BadSettingsAreUserErrors) {
  SimulatorConfig c = small_config(1);
  c.n_cells = 0;
  EXPECT_THROW(simulate(c), UserError);
  c = small_config(1);
  c.n_cell_types = 0;
  EXPECT_THROW(simulate(c), UserError);
  c = small_config(1);
  c.n_genes = 30;
  c.n_perturbations = 10;
  EXPECT_THROW(simulate(c), UserError);
  c = small_config(1);
  c.cell_type_probs = {0.5, 0.5};
  EXPECT_THROW(simulate(c), UserError);
}

}  // namespace
}  // namespace lingshu
