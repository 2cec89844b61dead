// Perturbation baselines: each predictor's profile computed
// independently from the training cells, and the real-data check that a split half of a CRISPR
// screen scores near the best values while the mean baseline scores clearly worse.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "baselines/perturbation_baselines.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/preprocess.h"
#include "eval/perturbation_metrics.h"
#include "io/h5ad.h"
#include "test_perturbation_data.h"
#include "test_support.h"

namespace lingshu {
namespace {

using testing::cells_where;

// Mean log-normalised profile of the cells whose obs labels match every (column, value) given.
std::vector<double> profile(const AnnData& data, const std::map<std::string, std::string>& where) {
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < data.n_obs(); ++i) {
    bool match = true;
    for (const auto& [column, value] : where) match = match && data.obs.find(column)->label(i) == value;
    if (match) rows.push_back(i);
  }
  EXPECT_FALSE(rows.empty());
  return column_means(log_normalize(data.X.select_rows(rows)));
}

double mean_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t j = 0; j < a.size(); ++j) sum += std::abs(a[j] - b[j]);
  return sum / static_cast<double>(a.size());
}

std::vector<double> plus(const std::vector<double>& a, const std::vector<double>& b, double sign = 1.0) {
  std::vector<double> out(a.size());
  for (size_t j = 0; j < a.size(); ++j) out[j] = a[j] + sign * b[j];
  return out;
}

class BaselineOnScreen : public ::testing::Test {
 protected:
  void SetUp() override {
    Progress::set_enabled(false);
    testing::ScreenSpec spec;
    spec.contexts = {"A", "B"};
    spec.perts = {"P0", "P1", "P2"};
    spec.cells_per_group = 40;
    spec.genes = 200;  // a perturbation moves a small share of the transcriptome, as in real data
    train = testing::simulate_screen(spec);
    // Context B never saw P0: it is what the additive baseline transfers.
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < train.n_obs(); ++i) {
      const bool b_p0 =
          train.obs.find("cell_type")->label(i) == "B" && train.obs.find("condition")->label(i) == "P0";
      if (!b_p0) keep.push_back(i);
    }
    train = train.select_cells(keep);
    options.context_col = "cell_type";
    pairs = parse_prediction_pairs("cell_type,condition,n_cells\nB,P0,200\nA,P1,200\nB,P0+P1,200\n", "pairs");
  }
  AnnData train;
  BaselineOptions options;
  PredictionPairs pairs;
};

TEST_F(BaselineOnScreen, MeanPredictsTheAverageOfPerturbationProfiles) {
  const auto out = predict_baseline(BaselineKind::Mean, train, pairs, options);
  const AnnData& cells = out.cells;
  ASSERT_TRUE(cells.obs.find("condition") && cells.obs.find("cell_type"));
  EXPECT_EQ(cells.var.index, train.var.index);
  // Controls: every training control of both contexts, then 3 x 200 predicted cells.
  EXPECT_EQ(cells.n_obs(), 40 + 40 + 600);
  const auto in_b = profile(train, {{"cell_type", "B"}, {"condition", "P1"}});
  const auto in_b2 = profile(train, {{"cell_type", "B"}, {"condition", "P2"}});
  const auto expected_b = plus(in_b, in_b2);
  std::vector<double> half(expected_b.size());
  for (size_t j = 0; j < half.size(); ++j) half[j] = expected_b[j] / 2;
  EXPECT_LT(mean_abs_difference(profile(cells, {{"cell_type", "B"}, {"condition", "P0"}}), half), 0.01);
  // Both B rows get the same profile; the control cells are the training controls.
  EXPECT_LT(mean_abs_difference(profile(cells, {{"cell_type", "B"}, {"condition", "P0+P1"}}), half), 0.01);
  EXPECT_EQ(profile(cells, {{"cell_type", "A"}, {"condition", "control"}}),
            profile(train, {{"cell_type", "A"}, {"condition", "control"}}));
}

TEST_F(BaselineOnScreen, ControlResamplesTheContextsControlCells) {
  const auto out = predict_baseline(BaselineKind::Control, train, pairs, options);
  const AnnData& cells = out.cells;
  const auto b_controls = cells_where(train, "cell_type", {"B"});
  const auto rows = cells_where(cells, "condition", {"P0"});
  ASSERT_EQ(rows.size(), 200u);
  // Every predicted cell is an exact copy of some training control cell of context B.
  for (const int64_t r : rows) {
    const auto row = cells.X.dense_row(r);
    bool found = false;
    for (const int64_t t : b_controls) {
      if (train.obs.find("condition")->label(t) == "control" && train.X.dense_row(t) == row) found = true;
    }
    ASSERT_TRUE(found) << r;
  }
}

TEST_F(BaselineOnScreen, AdditiveTransfersShiftsAndAddsPairs) {
  const auto out = predict_baseline(BaselineKind::Additive, train, pairs, options);
  const AnnData& cells = out.cells;
  const auto ctrl_a = profile(train, {{"cell_type", "A"}, {"condition", "control"}});
  const auto ctrl_b = profile(train, {{"cell_type", "B"}, {"condition", "control"}});
  const auto shift_p0 = plus(profile(train, {{"cell_type", "A"}, {"condition", "P0"}}), ctrl_a, -1);
  // P1 was seen in both contexts: for context A the shift comes from B, and vice versa.
  const auto shift_p1_from_b = plus(profile(train, {{"cell_type", "B"}, {"condition", "P1"}}), ctrl_b, -1);
  const auto shift_p1_from_a = plus(profile(train, {{"cell_type", "A"}, {"condition", "P1"}}), ctrl_a, -1);
  auto clipped = [](std::vector<double> v) {
    for (auto& x : v) x = std::max(0.0, x);
    return v;
  };
  EXPECT_LT(mean_abs_difference(profile(cells, {{"cell_type", "B"}, {"condition", "P0"}}),
                                clipped(plus(ctrl_b, shift_p0))),
            0.01);
  EXPECT_LT(mean_abs_difference(profile(cells, {{"cell_type", "A"}, {"condition", "P1"}}),
                                clipped(plus(ctrl_a, shift_p1_from_b))),
            0.01);
  EXPECT_LT(mean_abs_difference(profile(cells, {{"cell_type", "B"}, {"condition", "P0+P1"}}),
                                clipped(plus(plus(ctrl_b, shift_p0), shift_p1_from_a))),
            0.01);
  EXPECT_TRUE(out.notes.empty());
}

TEST_F(BaselineOnScreen, BadInputsAreUserErrors) {
  auto bad_pairs = parse_prediction_pairs("cell_type,guide,n_cells\nA,P1,5\n", "pairs");
  EXPECT_THROW(predict_baseline(BaselineKind::Mean, train, bad_pairs, options), UserError);
  auto unknown_context = parse_prediction_pairs("cell_type,condition,n_cells\nC,P1,5\n", "pairs");
  EXPECT_THROW(predict_baseline(BaselineKind::Additive, train, unknown_context, options), UserError);
  BaselineOptions no_such_column = options;
  no_such_column.context_col = "donor";
  EXPECT_THROW(predict_baseline(BaselineKind::Mean, train, pairs, no_such_column), UserError);
  EXPECT_THROW(parse_baseline_kind("median"), UserError);
}

TEST(PerturbationBaselinesRealData, SplitHalfScoresNearBestAndMeanBaselineClearlyWorse) {
  const auto path = LINGSHU_REQUIRE_DATA("cellline_crispr.h5ad");
  Progress::set_enabled(false);
  const AnnData all = read_h5ad(path);
  const std::vector<std::string> chosen{"control", "KLF1",   "CEBPE+RUNX1T1", "MAP2K6", "SGK1",
                                        "FOXO4",   "TMSB4X", "KLF1+MAP2K6",   "HK2"};
  std::vector<int64_t> first, second;
  int64_t n = 0;
  for (const int64_t i : cells_where(all, "cell_type", {"k562"})) {
    if (std::find(chosen.begin(), chosen.end(), *all.obs.find("condition")->label(i)) == chosen.end())
      continue;
    (n++ % 2 == 0 ? first : second).push_back(i);
  }
  const AnnData real = all.select_cells(first);
  const AnnData half = all.select_cells(second);
  const auto split = evaluate_perturbations(real, half, {});

  // The mean baseline, trained on the other half, predicting the same perturbations.
  std::string csv = "condition,n_cells\n";
  for (const auto& s : split.scores) csv += fmt::format("{},{}\n", s.perturbation, s.real_cells);
  BaselineOptions options;
  options.context_col = "";
  const auto base = predict_baseline(BaselineKind::Mean, half, parse_prediction_pairs(csv, "pairs"), options);
  const auto mean_eval = evaluate_perturbations(real, base.cells, {});

  // Measured: split half DES 0.48, PDS 0.98, AUPRC 0.95, Pearson-delta 0.39; mean baseline 0.03,
  // 0.56, 0.06, 0.09. (MAE is not asserted: with ~50 cells per half the sampling noise of a real
  // pseudobulk exceeds the mean baseline's error on the many unaffected genes, as the challenge saw.)
  EXPECT_GT(split.metric("pds"), 0.9);
  EXPECT_GT(split.metric("auprc"), 0.8);
  EXPECT_GT(split.metric("des"), 0.3);
  EXPECT_LT(mean_eval.metric("pds"), 0.7);
  EXPECT_LT(mean_eval.metric("des"), 0.1);
  EXPECT_LT(mean_eval.metric("auprc"), 0.3);
  EXPECT_GT(split.metric("pearson_delta"), mean_eval.metric("pearson_delta") + 0.2);
  EXPECT_GT(split.metric("spearman_lfc"), mean_eval.metric("spearman_lfc") + 0.2);
  const auto cmp = compare_to_baseline(split, mean_eval);
  EXPECT_GT(cmp.vcc_average, 0.3);
  EXPECT_GT(cmp.average, 0.3);
}

}  // namespace
}  // namespace lingshu
