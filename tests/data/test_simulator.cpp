#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "core/error.h"
#include "core/random.h"
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

// Nearest centroid (fitted on even cells, tested on odd ones) on log-normalised DE genes. Program
// members are left out: their variation within a type is large by design and is not about types.
TEST(Simulator, CellTypesAreRecoverableFromDEGenes) {
  const Simulation s = simulate(small_config(5));
  std::set<int32_t> de;
  for (const auto& genes : s.truth.de_genes) de.insert(genes.begin(), genes.end());
  for (const auto& p : s.truth.programs) {
    for (const int32_t g : p.genes) de.erase(g);
  }
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

// ---- Gene programs: within-type gene-gene structure ----

// Two types of about 1,000 cells each, 500 genes: three programs of 20 genes (4% of the genes).
SimulatorConfig program_config(uint64_t seed) {
  SimulatorConfig c;
  c.n_cells = 2000;
  c.n_genes = 500;
  c.n_cell_types = 2;
  c.seed = seed;
  return c;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

// log1p CP10k of `genes` (one vector per gene) over the cells of `type`.
std::vector<std::vector<double>> expression_in_type(const Simulation& s, int32_t type,
                                                    const std::vector<int32_t>& genes) {
  const CsrMatrix x = log_normalize(s.data.X);
  std::vector<std::vector<double>> out(genes.size());
  for (int64_t r = 0; r < x.n_rows; ++r) {
    if (s.truth.cell_type[static_cast<size_t>(r)] != type) continue;
    const auto row = x.dense_row(r);
    for (size_t j = 0; j < genes.size(); ++j) out[j].push_back(row[static_cast<size_t>(genes[j])]);
  }
  return out;
}

// Mean Pearson correlation over the pairs of genes, each pair's sign flipped where the loadings'
// signs differ (a gene the program turns down anti-correlates with one it turns up).
double mean_pair_correlation(const std::vector<std::vector<double>>& genes,
                             const std::vector<double>& signs) {
  double sum = 0;
  int pairs = 0;
  for (size_t i = 0; i < genes.size(); ++i) {
    for (size_t j = i + 1; j < genes.size(); ++j) {
      sum += signs[i] * signs[j] * pearson(genes[i], genes[j]);
      ++pairs;
    }
  }
  return sum / pairs;
}

std::vector<double> loading_signs(const ProgramTruth& p) {
  std::vector<double> signs;
  for (const double l : p.loadings) signs.push_back(l < 0 ? -1.0 : 1.0);
  return signs;
}

// Expressed genes (base mean at or above the median, as program members are) in no program.
std::vector<int32_t> expressed_non_program_genes(const Simulation& s, size_t count) {
  std::set<int32_t> members;
  for (const auto& p : s.truth.programs) members.insert(p.genes.begin(), p.genes.end());
  std::vector<double> means = s.truth.base_means;
  std::nth_element(means.begin(), means.begin() + static_cast<std::ptrdiff_t>(means.size() / 2), means.end());
  const double median = means[means.size() / 2];
  std::vector<int32_t> out;
  for (size_t g = 0; g < s.truth.base_means.size() && out.size() < count; ++g) {
    if (!members.count(static_cast<int32_t>(g)) && !s.truth.is_outlier[g] && s.truth.base_means[g] >= median)
      out.push_back(static_cast<int32_t>(g));
  }
  return out;
}

TEST(SimulatorPrograms, ProgramGenesCorrelateWithinACellTypeAndOtherGenesDoNot) {
  const Simulation s = simulate(program_config(21));
  ASSERT_EQ(s.truth.programs.size(), 3u);
  const std::vector<int32_t> others = expressed_non_program_genes(s, 40);
  ASSERT_EQ(others.size(), 40u);
  int checked = 0;
  for (int32_t type = 0; type < 2; ++type) {
    for (const ProgramTruth& p : s.truth.programs) {
      if (!p.active[static_cast<size_t>(type)]) continue;
      EXPECT_EQ(p.genes.size(), 20u);
      const double r = mean_pair_correlation(expression_in_type(s, type, p.genes), loading_signs(p));
      EXPECT_GT(r, 0.2) << p.name << " in type_" << type;
      ++checked;
    }
    const double r_others =
        mean_pair_correlation(expression_in_type(s, type, others), std::vector<double>(others.size(), 1.0));
    EXPECT_LT(std::abs(r_others), 0.05) << "type_" << type;
  }
  EXPECT_GE(checked, 3);  // program 0 in both types and at least one more
}

// What the independent-genes baseline does: each gene's values shuffled across the cells of a type
// keep every marginal and lose the program.
TEST(SimulatorPrograms, ShufflingGenesWithinATypeRemovesTheProgramCorrelation) {
  const Simulation s = simulate(program_config(22));
  const ProgramTruth& p = s.truth.programs.front();  // active in every type
  auto genes = expression_in_type(s, 0, p.genes);
  const double before = mean_pair_correlation(genes, loading_signs(p));
  std::mt19937_64 rng(7);
  for (auto& values : genes) {
    for (size_t i = values.size() - 1; i > 0; --i)
      std::swap(values[i], values[rnd::uniform_below(rng, i + 1)]);
  }
  const double after = mean_pair_correlation(genes, loading_signs(p));
  EXPECT_GT(before, 0.2);
  EXPECT_LT(std::abs(after), 0.05);
}

TEST(SimulatorPrograms, ActivityColumnTracksTheProgramGenes) {
  const Simulation s = simulate(program_config(23));
  for (size_t k = 0; k < s.truth.programs.size(); ++k) {
    const ProgramTruth& p = s.truth.programs[k];
    const Column& column = s.data.obs.require(p.name, "obs");
    ASSERT_EQ(column.kind, Column::Kind::Numeric);
    EXPECT_EQ(column.numbers, s.truth.program_activity[k]);
    for (int32_t type = 0; type < 2; ++type) {
      std::vector<double> activity;
      for (size_t i = 0; i < column.numbers.size(); ++i) {
        if (s.truth.cell_type[i] == type) activity.push_back(column.numbers[i]);
      }
      if (!p.active[static_cast<size_t>(type)]) {
        EXPECT_TRUE(std::all_of(activity.begin(), activity.end(), [](double a) { return a == 0.0; }))
            << p.name;
        continue;
      }
      // The members' expression, each signed by its loading, summed per cell.
      const auto genes = expression_in_type(s, type, p.genes);
      const auto signs = loading_signs(p);
      std::vector<double> score(activity.size(), 0.0);
      for (size_t j = 0; j < genes.size(); ++j) {
        for (size_t i = 0; i < score.size(); ++i) score[i] += signs[j] * genes[j][i];
      }
      EXPECT_GT(pearson(activity, score), 0.7) << p.name << " in type_" << type;
    }
  }
}

// --programs 0 is the simulator as it was before programs: the same cells (those of scale 0, where
// every factor is 1), no program columns, no program settings in uns; and programs draw from
// streams of their own, so turning them on leaves the labels, library sizes and DE genes alone.
TEST(SimulatorPrograms, NoProgramsGivesTheCellsWithoutProgramsAndNoColumns) {
  SimulatorConfig none = program_config(24);
  none.n_programs = 0;
  SimulatorConfig flat = program_config(24);
  flat.program_scale = 0.0;
  const Simulation without = simulate(none);
  const Simulation zero = simulate(flat);
  const Simulation with = simulate(program_config(24));
  EXPECT_TRUE(without.truth.programs.empty());
  EXPECT_EQ(without.data.X.indptr, zero.data.X.indptr);
  EXPECT_EQ(without.data.X.indices, zero.data.X.indices);
  EXPECT_EQ(without.data.X.values, zero.data.X.values);
  std::vector<std::string> columns;
  for (const Column& c : without.data.obs.columns) columns.push_back(c.name);
  EXPECT_EQ(columns, (std::vector<std::string>{"cell_type", "condition"}));
  ASSERT_EQ(without.data.uns_strings.size(), 1u);
  EXPECT_FALSE(nlohmann::json::parse(without.data.uns_strings[0].second).contains("n_programs"));
  EXPECT_TRUE(nlohmann::json::parse(with.data.uns_strings[0].second).contains("n_programs"));
  EXPECT_TRUE(truth_json(without)["programs"].empty());

  columns.clear();
  for (const Column& c : with.data.obs.columns) columns.push_back(c.name);
  EXPECT_EQ(columns,
            (std::vector<std::string>{"cell_type", "condition", "program_0", "program_1", "program_2"}));
  EXPECT_NE(with.data.X.values, without.data.X.values);
  EXPECT_EQ(with.truth.cell_type, without.truth.cell_type);
  EXPECT_EQ(with.truth.library_sizes, without.truth.library_sizes);
  EXPECT_EQ(with.truth.de_genes, without.truth.de_genes);
  EXPECT_EQ(with.truth.base_means, without.truth.base_means);
}

TEST(SimulatorPrograms, TruthJsonListsThePrograms) {
  SimulatorConfig config = program_config(25);
  config.n_cell_types = 4;
  config.n_programs = 4;
  config.program_genes = 12;
  const Simulation s = simulate(config);
  const nlohmann::json j = truth_json(s);
  ASSERT_EQ(j["programs"].size(), 4u);
  std::set<int32_t> seen;
  int negative = 0;
  int loadings = 0;
  for (const ProgramTruth& p : s.truth.programs) {
    const auto& entry = j["programs"][p.name];
    EXPECT_EQ(entry["obs_column"], p.name);
    EXPECT_EQ(entry["kind"], p.is_switch ? "switch" : "graded");
    EXPECT_EQ(entry["scale"].get<double>(), 1.0);
    ASSERT_EQ(entry["gene_loadings"].size(), 12u);
    for (size_t i = 0; i < p.genes.size(); ++i) {
      EXPECT_TRUE(seen.insert(p.genes[i]).second) << "gene " << p.genes[i] << " is in two programs";
      EXPECT_EQ(entry["gene_loadings"][s.data.var.index[static_cast<size_t>(p.genes[i])]].get<double>(),
                p.loadings[i]);
      EXPECT_GE(std::abs(p.loadings[i]), 0.5);
      EXPECT_LE(std::abs(p.loadings[i]), 1.5);
      negative += p.loadings[i] < 0 ? 1 : 0;
      ++loadings;
    }
    std::vector<std::string> active;
    for (size_t k = 0; k < p.active.size(); ++k) {
      if (p.active[k]) active.push_back("type_" + std::to_string(k));
    }
    EXPECT_FALSE(active.empty());
    EXPECT_EQ(entry["active_in"].get<std::vector<std::string>>(), active);
    EXPECT_EQ(entry[p.is_switch ? "on_share" : "mean_activity"].size(), active.size());
  }
  // Program 0 runs in every type; program 2 is the switch.
  EXPECT_EQ(j["programs"]["program_0"]["active_in"].size(), 4u);
  EXPECT_EQ(j["programs"]["program_2"]["kind"], "switch");
  EXPECT_GT(negative, 0);
  EXPECT_LT(negative, loadings / 2);  // mostly up
}

// Switch programs (the cell cycle): in an active type a share of the cells is on, the rest at 0.
TEST(SimulatorPrograms, SwitchProgramsTurnOnAShareOfTheCells) {
  const Simulation s = simulate(program_config(26));
  const ProgramTruth& p = s.truth.programs[2];
  ASSERT_TRUE(p.is_switch);
  for (size_t type = 0; type < p.active.size(); ++type) {
    if (!p.active[type]) continue;
    int on = 0;
    int cells = 0;
    for (size_t i = 0; i < s.truth.cell_type.size(); ++i) {
      if (static_cast<size_t>(s.truth.cell_type[i]) != type) continue;
      on += s.truth.program_activity[2][i] != 0.0 ? 1 : 0;
      ++cells;
    }
    EXPECT_NEAR(static_cast<double>(on) / cells, p.type_on_share[type], 0.05);
  }
}

// Small simulations still work: programs shrink to the genes there are, then disappear.
TEST(SimulatorPrograms, FewGenesGiveSmallerOrNoPrograms) {
  SimulatorConfig c = small_config(12);
  c.n_genes = 20;
  Simulation s = simulate(c);
  ASSERT_EQ(s.truth.programs.size(), 3u);
  for (const auto& p : s.truth.programs) EXPECT_EQ(p.genes.size(), 2u);
  c.program_genes = 40;  // asked for more than there are: the candidates are shared out
  s = simulate(c);
  ASSERT_EQ(s.truth.programs.size(), 3u);
  for (const auto& p : s.truth.programs) EXPECT_GE(p.genes.size(), 2u);
  c.n_genes = 1;
  s = simulate(c);
  EXPECT_TRUE(s.truth.programs.empty());
  EXPECT_EQ(s.data.obs.columns.size(), 2u);
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
  c = small_config(1);
  c.n_programs = -1;
  EXPECT_THROW(simulate(c), UserError);
  c = small_config(1);
  c.program_genes = 1;
  EXPECT_THROW(simulate(c), UserError);
  c = small_config(1);
  c.program_scale = -0.5;
  EXPECT_THROW(simulate(c), UserError);
}

}  // namespace
}  // namespace lingshu
