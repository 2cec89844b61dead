// Perturbation metrics: hand-built cases for each piece, invariants of the whole pipeline on
// simulated screens, the baseline normalisation, and the input errors users hit.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "data/preprocess.h"
#include "eval/de.h"
#include "eval/perturbation_metrics.h"
#include "eval/stats.h"
#include "test_perturbation_data.h"

namespace lingshu {
namespace {

using testing::ScreenSpec;
using testing::simulate_screen;

// A simulated screen with some settings changed.
template <class Edit>
AnnData screen(Edit edit) {
  ScreenSpec spec;
  edit(spec);
  return simulate_screen(spec);
}

// Options with one field changed (designated initialisers would warn about the rest).
template <class Field, class Value>
PerturbationEvalOptions with(Field PerturbationEvalOptions::*field, Value value) {
  PerturbationEvalOptions options;
  options.*field = value;
  return options;
}

TEST(PerturbationMetrics, DesOverlapHandWorked) {
  // |log2 FC| order, real: G0 (4) G1 (3) G2 (2) G3 (1); k = 4.
  const std::vector<double> real_lfc{4, -3, 2, 1, 0, 0, 0};
  // Predicted significant G1 G2 G4 G5 G6 ordered by |FC|: G6 (6) G5 (5) G1 (3) G4 (2.5) G2 (0.1);
  // the top 4 share only G1 with the real set.
  const std::vector<double> pred_lfc{0, 3, 0.1, 0, -2.5, 5, 6};
  EXPECT_DOUBLE_EQ(de_overlap_score({0, 1, 2, 3}, {1, 2, 4, 5, 6}, real_lfc, pred_lfc), 0.25);
  // Fewer predicted than real: everything predicted counts; G1 and G2 of 4.
  EXPECT_DOUBLE_EQ(de_overlap_score({0, 1, 2, 3}, {2, 1}, real_lfc, pred_lfc), 0.5);
  EXPECT_DOUBLE_EQ(de_overlap_score({3, 2, 1, 0}, {0, 1, 2, 3}, real_lfc, pred_lfc), 1.0);
  // No real significant genes: cell-eval scores 0.
  EXPECT_DOUBLE_EQ(de_overlap_score({}, {1, 2}, real_lfc, pred_lfc), 0.0);
}

TEST(PerturbationMetrics, PdsRanksHandBuilt) {
  const std::vector<std::vector<double>> real{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  // A' is nearest to A; B' (0, 0, .8) is nearest to C (0.2) and ties A and B (1.8):
  // rank 1 + 0.5 -> 1 - 1.5/3; C' is exact.
  const std::vector<std::vector<double>> pred{{0.9, 0, 0}, {0, 0, 0.8}, {0, 0, 1}};
  const auto pds = discrimination_scores(real, pred, {{}, {}, {}}, 2);
  EXPECT_DOUBLE_EQ(pds[0], 1.0);
  EXPECT_DOUBLE_EQ(pds[1], 0.5);
  EXPECT_DOUBLE_EQ(pds[2], 1.0);
  // A knocked-down target predicted far off (-5 instead of 1 on column 0): with column 0 left out
  // A is at distance 0 from A and 1 from B and C (score 1); counted, all three tie at 6 (1 - 1/3).
  const std::vector<std::vector<double>> off{{-5, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  EXPECT_DOUBLE_EQ(discrimination_scores(real, off, {{0}, {}, {}}, 1)[0], 1.0);
  EXPECT_NEAR(discrimination_scores(real, off, {{}, {}, {}}, 1)[0], 1.0 - 1.0 / 3.0, 1e-15);
}

TEST(PerturbationMetrics, TargetColumnsNameSinglesAndPairs) {
  const std::vector<std::string> genes{"A", "MAP2K6", "KLF1", "KLF"};
  EXPECT_EQ(perturbation_target_columns("KLF1+MAP2K6", genes), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(perturbation_target_columns("KLF1", genes), (std::vector<int64_t>{2}));
  EXPECT_TRUE(perturbation_target_columns("control", genes).empty());
}

TEST(PerturbationMetrics, IdenticalFilesScoreBest) {
  const AnnData real = screen([](ScreenSpec& s) { s.perts = {"P0", "P1", "P2", "P3"}; });
  const auto eval = evaluate_perturbations(real, real, with(&PerturbationEvalOptions::threads, 2));
  ASSERT_EQ(eval.scores.size(), 4u);
  for (const auto& s : eval.scores) {
    EXPECT_GT(s.real_deg, 0) << s.perturbation;
    EXPECT_EQ(s.real_deg, s.pred_deg);
    EXPECT_DOUBLE_EQ(s.des, 1.0);
    EXPECT_DOUBLE_EQ(s.pds, 1.0);
    EXPECT_DOUBLE_EQ(s.mae, 0.0);
    EXPECT_NEAR(s.pearson_delta, 1.0, 1e-12);
    EXPECT_NEAR(s.spearman_lfc, 1.0, 1e-12);
    EXPECT_NEAR(s.auprc, 1.0, 1e-12);
  }
  EXPECT_NEAR(eval.metric("spearman_deg"), 1.0, 1e-12);
}

TEST(PerturbationMetrics, APredictionOfSomePairsScoresOnlyThose) {
  const AnnData real = screen([](ScreenSpec& s) { s.perts = {"P0", "P1", "P2"}; });
  const AnnData without_p2 = real.select_cells(testing::cells_where(real, "condition", {"P2"}, false));
  const auto full = evaluate_perturbations(real, real, {});
  const auto eval = evaluate_perturbations(real, without_p2, {});
  ASSERT_EQ(eval.scores.size(), 2u);
  for (const auto& s : eval.scores) EXPECT_NE(s.perturbation, "P2");
  bool noted = false;
  for (const auto& n : eval.notes)
    noted = noted || n.find("1 real (context, perturbation) pair") != std::string::npos;
  EXPECT_TRUE(noted);
  // The scored pairs get the same scores as in the full evaluation (per-perturbation FDR).
  EXPECT_DOUBLE_EQ(eval.scores[0].pearson_delta, full.scores[0].pearson_delta);
}

TEST(PerturbationMetrics, SwappedLabelsLosePdsForThatPair) {
  // P1 and P2 swapped in the prediction: each predicted delta is exactly the other's real delta,
  // which therefore ranks first (the score is at most 1 - 1/3) while P0 stays exact.
  const AnnData real = screen([](ScreenSpec& s) { s.effect = 8.0; });
  AnnData pred = real;
  Column& condition = pred.obs.columns[0];
  ASSERT_EQ(condition.name, "condition");
  const auto p1 = std::find(condition.categories.begin(), condition.categories.end(), "P1");
  const auto p2 = std::find(condition.categories.begin(), condition.categories.end(), "P2");
  std::iter_swap(p1, p2);
  const auto eval = evaluate_perturbations(real, pred, {});
  ASSERT_EQ(eval.scores.size(), 3u);
  EXPECT_DOUBLE_EQ(eval.scores[0].pds, 1.0);
  EXPECT_LE(eval.scores[1].pds, 1.0 - 1.0 / 3.0);
  EXPECT_LE(eval.scores[2].pds, 1.0 - 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(eval.scores[0].mae, 0.0);
  EXPECT_GT(eval.scores[1].mae, 0.0);
  EXPECT_LT(eval.scores[1].des, 0.5);  // different genes move
}

TEST(PerturbationMetrics, MaeAndPearsonDeltaFromPseudobulks) {
  // Independent assembly: per-group means of the log-normalised matrix, computed directly.
  const AnnData real = screen([](ScreenSpec& s) { s.seed = 3; });
  const AnnData pred = screen([](ScreenSpec& s) { s.seed = 4; });
  const auto eval = evaluate_perturbations(real, pred, {});
  auto pseudobulk = [](const AnnData& data, const std::string& label) {
    const auto rows = testing::cells_where(data, "condition", {label});
    const CsrMatrix x = log_normalize(data.X.select_rows(rows));
    return column_means(x);
  };
  for (const auto& s : eval.scores) {
    const auto real_p = pseudobulk(real, s.perturbation), pred_p = pseudobulk(pred, s.perturbation);
    const auto real_c = pseudobulk(real, "control"), pred_c = pseudobulk(pred, "control");
    double mae = 0;
    std::vector<double> real_d, pred_d;
    for (size_t j = 0; j < real_p.size(); ++j) {
      mae += std::abs(real_p[j] - pred_p[j]) / static_cast<double>(real_p.size());
      real_d.push_back(real_p[j] - real_c[j]);
      pred_d.push_back(pred_p[j] - pred_c[j]);
    }
    EXPECT_NEAR(s.mae, mae, 1e-6) << s.perturbation;
    EXPECT_NEAR(s.pearson_delta, pearson_correlation(pred_d, real_d), 1e-6) << s.perturbation;
    EXPECT_GT(s.pearson_delta, 0.3);  // same simulated effects, different cells
  }
}

TEST(PerturbationMetrics, GlobalFdrIsOneBenjaminiHochbergOverTheWholeTable) {
  const AnnData real = screen([](ScreenSpec& s) {
    s.perts = {"P0", "P1", "P2", "P3", "P4"};
    s.effect = 2.0;
  });
  const auto per = evaluate_perturbations(real, real, {});
  const auto global =
      evaluate_perturbations(real, real, with(&PerturbationEvalOptions::fdr_scope, FdrScope::Global));
  // Recount significant genes from raw p-values pooled over all perturbations.
  CellGroups groups;
  groups.n_groups = 6;
  const Column& condition = *real.obs.find("condition");
  for (int64_t i = 0; i < real.n_obs(); ++i) {
    const std::string label = *condition.label(i);
    groups.group_of_cell.push_back(label == "control" ? 0 : 1 + (label[1] - '0'));
  }
  const auto de = differential_expression(log_normalize(real.X), groups, 1);
  std::vector<double> pooled(de.p_value.begin() + de.n_genes, de.p_value.end());
  const auto q = benjamini_hochberg(pooled);
  int64_t total_global = 0, total_per = 0;
  for (size_t k = 0; k < 5; ++k) {
    int64_t expected = 0;
    for (int64_t j = 0; j < de.n_genes; ++j)
      expected += q[k * static_cast<size_t>(de.n_genes) + static_cast<size_t>(j)] < 0.05;
    EXPECT_EQ(global.scores[k].real_deg, expected) << k;
    total_global += global.scores[k].real_deg;
    total_per += per.scores[k].real_deg;
  }
  EXPECT_GT(total_global, 0);
  EXPECT_NE(total_global, total_per);  // the scopes genuinely differ on this screen
}

TEST(PerturbationMetrics, ContextsAreScoredSeparately) {
  const AnnData real = screen([](ScreenSpec& s) {
    s.contexts = {"A", "B"};
    s.perts = {"P0", "P1"};
  });
  const auto eval = evaluate_perturbations(
      real, real, with(&PerturbationEvalOptions::context_col, std::string("cell_type")));
  ASSERT_EQ(eval.scores.size(), 4u);
  EXPECT_EQ(eval.scores[0].context, "A");
  EXPECT_EQ(eval.scores[3].context, "B");
  for (const auto& s : eval.scores) {
    EXPECT_EQ(s.real_cells, 30);
    EXPECT_DOUBLE_EQ(s.pds, 1.0);
  }
  // Pooling both contexts under one control instead changes the group sizes.
  const auto pooled = evaluate_perturbations(real, real, {});
  EXPECT_EQ(pooled.scores[0].real_cells, 60);
}

TEST(PerturbationMetrics, GenesAreMatchedByName) {
  const AnnData real = screen([](ScreenSpec& s) { s.seed = 5; });
  // The prediction lists its genes in reverse and lacks the first one.
  std::vector<int64_t> cols;
  for (int64_t j = real.n_vars() - 1; j >= 1; --j) cols.push_back(j);
  AnnData pred = real;
  pred.X = real.X.select_cols(cols);
  pred.var.index.clear();
  for (const int64_t j : cols) pred.var.index.push_back(real.var.index[static_cast<size_t>(j)]);
  const auto eval = evaluate_perturbations(real, pred, {});
  EXPECT_EQ(eval.genes.size(), static_cast<size_t>(real.n_vars() - 1));
  EXPECT_EQ(eval.genes.front(), "G1");
  ASSERT_FALSE(eval.notes.empty());
  // Library sizes differ by one gene, so values differ slightly but the effects line up.
  for (const auto& s : eval.scores) EXPECT_GT(s.pearson_delta, 0.99);
}

TEST(PerturbationMetrics, BaselineNormalisationHandWorked) {
  PerturbationEvaluation model, base;
  model.summary = {
      {"des", 0.5},          {"pds", 0.9},   {"mae", 0.1},          {"spearman_deg", std::nan("")},
      {"spearman_lfc", 0.2}, {"auprc", 0.3}, {"pearson_delta", 0.8}};
  base.summary = {{"des", 0.2},          {"pds", 0.5},   {"mae", 0.2},          {"spearman_deg", 0.4},
                  {"spearman_lfc", 0.5}, {"auprc", 0.3}, {"pearson_delta", 1.0}};
  const auto cmp = compare_to_baseline(model, base);
  ASSERT_EQ(cmp.metrics.size(), 7u);
  EXPECT_NEAR(cmp.metrics[0].score, 0.3 / 0.8, 1e-12);  // des
  EXPECT_NEAR(cmp.metrics[1].score, 0.8, 1e-12);        // pds: 0.4 / 0.5
  EXPECT_NEAR(cmp.metrics[2].score, 0.5, 1e-12);        // mae: 1 - 0.1 / 0.2
  EXPECT_EQ(cmp.metrics[3].score, 0.0);                 // NaN -> 0
  EXPECT_EQ(cmp.metrics[4].score, 0.0);                 // worse than baseline, clipped
  EXPECT_EQ(cmp.metrics[5].score, 0.0);                 // equal
  EXPECT_EQ(cmp.metrics[6].score, 0.0);                 // baseline already perfect
  EXPECT_NEAR(cmp.average, (0.375 + 0.8 + 0.5) / 7.0, 1e-12);
  EXPECT_NEAR(cmp.vcc_average, (0.375 + 0.8 + 0.5) / 3.0, 1e-12);
}

TEST(PerturbationMetrics, CsvAndJsonOutputs) {
  const AnnData real = screen([](ScreenSpec& s) {
    s.contexts = {"x,y"};
    s.perts = {"P0", "P1"};
  });
  const auto options = with(&PerturbationEvalOptions::context_col, std::string("cell_type"));
  const auto eval = evaluate_perturbations(real, real, options);
  const std::string csv = per_perturbation_csv(eval);
  std::istringstream lines(csv);
  std::string header, row;
  std::getline(lines, header);
  EXPECT_EQ(header.substr(0, 26), "context,perturbation,real_");
  std::getline(lines, row);
  EXPECT_EQ(row.substr(0, 10), "\"x,y\",P0,3");  // quoted context, 30 cells
  EXPECT_NE(header.find(",energy_distance,energy_share,knn_auc"), std::string::npos);
  const auto cmp = compare_to_baseline(eval, eval);
  const auto doc = nlohmann::json::parse(summary_json(eval, options, &cmp));
  EXPECT_EQ(doc["perturbations"], 2);
  EXPECT_EQ(doc["options"]["context_col"], "cell_type");
  EXPECT_DOUBLE_EQ(static_cast<double>(doc["metrics"]["pds"]), 1.0);
  EXPECT_DOUBLE_EQ(static_cast<double>(doc["baseline"]["average"]), 0.0);  // equal to its own baseline
  // The real cells themselves: each predicted cell's nearest neighbour is its copy.
  EXPECT_LT(static_cast<double>(doc["metrics"]["knn_auc"]), 0.2);
  EXPECT_TRUE(doc["baseline"]["metrics"]["energy_share"]["score"].is_null());
}

TEST(PerturbationMetrics, InputErrorsAreUserErrors) {
  const AnnData real = simulate_screen(ScreenSpec{});
  auto expect_error = [](const AnnData& a, const AnnData& b, const PerturbationEvalOptions& o,
                         const std::string& fragment) {
    try {
      evaluate_perturbations(a, b, o);
      ADD_FAILURE() << "expected a UserError mentioning " << fragment;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  AnnData renamed = real;
  for (size_t j = 0; j < renamed.var.index.size(); ++j) renamed.var.index[j] = fmt::format("other{}", j);
  expect_error(real, renamed, {}, "share no gene names");
  expect_error(real, real, with(&PerturbationEvalOptions::pert_col, std::string("guide")),
               "no obs column 'guide'");
  expect_error(real, real, with(&PerturbationEvalOptions::control, std::string("NT")), "no control cells");
  expect_error(real, real, with(&PerturbationEvalOptions::context_col, std::string("donor")),
               "no obs column 'donor'");
  const AnnData only_control = real.select_cells(testing::cells_where(real, "condition", {"control"}));
  expect_error(real, only_control, {}, "covers none of the real file's");
  auto one_p1 = testing::cells_where(real, "condition", {"P1"}, false);
  one_p1.push_back(testing::cells_where(real, "condition", {"P1"}).front());
  expect_error(real, real.select_cells(one_p1), {}, "single cell of 'P1'");
  AnnData logged = real;
  for (auto& v : logged.X.values) v = std::log1p(v);
  expect_error(real, logged, {}, "looks log-normalised");
}

}  // namespace
}  // namespace lingshu
