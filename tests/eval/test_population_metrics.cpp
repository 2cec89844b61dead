// Population metrics of perturbation predictions: the energy distance against a hand computation
// and its invariants, and the per-pair scores on simulated screens: another sample of the real
// cells scores like the real cells, a file of identical cells at the real mean (the mean baseline)
// is told apart, too few cells give n/a with a note.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "eval/perturbation_metrics.h"
#include "eval/population_metrics.h"
#include "test_perturbation_data.h"

namespace lingshu {
namespace {

using testing::ScreenSpec;
using testing::simulate_screen;

DenseMatrix column(std::vector<float> values) {
  DenseMatrix m(static_cast<int64_t>(values.size()), 1);
  m.data = std::move(values);
  return m;
}

DenseMatrix normal_points(int64_t n, int64_t dims, double shift, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  DenseMatrix m(n, dims);
  for (auto& v : m.data) v = normal(rng) + static_cast<float>(shift);
  return m;
}

TEST(PopulationMetrics, EnergyDistanceHandWorked) {
  // x = {0, 2}, y = {1, 5}: E|X - Y| = (1 + 5 + 1 + 3) / 4 = 2.5, E|X - X'| = 2, E|Y - Y'| = 4.
  EXPECT_NEAR(energy_distance(column({0, 2}), column({1, 5}), 1), 2 * 2.5 - 2 - 4, 1e-12);
  // Symmetric, and blind to a shift of both sets.
  EXPECT_NEAR(energy_distance(column({1, 5}), column({0, 2}), 1), -1.0, 1e-12);
  EXPECT_NEAR(energy_distance(column({10, 12}), column({11, 15}), 1), -1.0, 1e-12);
}

TEST(PopulationMetrics, EnergyDistanceSeesShapeNotOnlyTheMean) {
  const DenseMatrix real = normal_points(400, 5, 0.0, 1);
  const DenseMatrix same = normal_points(400, 5, 0.0, 2);
  const DenseMatrix shifted = normal_points(400, 5, 1.0, 3);
  // Identical points at the real mean: the mean is right, the spread is not.
  DenseMatrix at_mean(400, 5);
  EXPECT_NEAR(energy_distance(same, real, 2), 0.0, 0.05);
  EXPECT_GT(energy_distance(shifted, real, 2), 0.5);
  EXPECT_GT(energy_distance(at_mean, real, 2), 1.0);
}

// The control cells and every other perturbed cell of one simulated screen, and the rest: two
// samples of the same populations.
std::pair<AnnData, AnnData> two_samples(const std::vector<std::string>& perts) {
  ScreenSpec spec;
  spec.perts = perts;
  spec.cells_per_group = 400;
  const AnnData all = simulate_screen(spec);
  const auto control = testing::cells_where(all, "condition", {"control"});
  std::vector<int64_t> first(control), second(control);
  const auto perturbed = testing::cells_where(all, "condition", {"control"}, false);
  for (size_t i = 0; i < perturbed.size(); ++i) (i % 2 == 0 ? first : second).push_back(perturbed[i]);
  std::sort(first.begin(), first.end());
  std::sort(second.begin(), second.end());
  return {all.select_cells(first), all.select_cells(second)};
}

TEST(PopulationMetrics, AnotherSampleOfTheRealCellsScoresNearZero) {
  const auto [real, other] = two_samples({"P0", "P1"});
  PerturbationEvalOptions options;
  options.threads = 2;
  const auto eval = evaluate_perturbations(real, other, options);
  ASSERT_EQ(eval.scores.size(), 2u);
  for (const auto& s : eval.scores) {
    EXPECT_LT(std::abs(s.energy_share), 0.1) << s.perturbation;
    EXPECT_LT(s.knn_auc, 0.62) << s.perturbation;
  }
  EXPECT_FALSE(std::isnan(eval.metric("energy_distance")));
}

TEST(PopulationMetrics, IdenticalCellsAtTheMeanAreToldApart) {
  const auto [real, other] = two_samples({"P0"});
  // Every perturbed cell replaced by the first one: one profile, as the mean baseline writes.
  AnnData identical = other;
  CsrMatrix x;
  x.n_cols = other.X.n_cols;
  const auto perturbed = testing::cells_where(other, "condition", {"P0"});
  for (int64_t i = 0; i < other.n_obs(); ++i) {
    const bool is_perturbed = std::find(perturbed.begin(), perturbed.end(), i) != perturbed.end();
    const int64_t from = is_perturbed ? perturbed.front() : i;
    const auto cols = other.X.row_indices(from);
    const auto vals = other.X.row_values(from);
    x.append_row({cols.begin(), cols.end()}, {vals.begin(), vals.end()});
  }
  identical.X = x;
  const auto sampled = evaluate_perturbations(real, other, {});
  const auto collapsed = evaluate_perturbations(real, identical, {});
  EXPECT_GT(collapsed.scores[0].energy_share, sampled.scores[0].energy_share + 0.3);
  EXPECT_GT(collapsed.scores[0].knn_auc, 0.9);
}

TEST(PopulationMetrics, TooFewCellsAreNotApplicableWithANote) {
  ScreenSpec spec;
  spec.perts = {"P0", "P1"};
  spec.cells_per_group = 40;
  const AnnData real = simulate_screen(spec);
  auto rows = testing::cells_where(real, "condition", {"P1"}, false);
  const auto p1 = testing::cells_where(real, "condition", {"P1"});
  rows.insert(rows.end(), p1.begin(), p1.begin() + 5);
  const auto eval = evaluate_perturbations(real, real.select_cells(rows), {});
  ASSERT_EQ(eval.scores.size(), 2u);
  EXPECT_FALSE(std::isnan(eval.scores[0].energy_distance));
  EXPECT_TRUE(std::isnan(eval.scores[1].energy_distance));
  EXPECT_TRUE(std::isnan(eval.scores[1].knn_auc));
  bool noted = false;
  for (const auto& note : eval.notes) noted = noted || note.find("'P1'") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(PopulationMetrics, AContextWithoutControlsIsNamedAndTheOthersScored) {
  ScreenSpec spec;
  spec.contexts = {"A", "B"};
  spec.perts = {"P0"};
  const AnnData real = simulate_screen(spec);
  std::vector<int64_t> keep;
  const Column* context = real.obs.find("cell_type");
  const Column* condition = real.obs.find("condition");
  for (int64_t i = 0; i < real.n_obs(); ++i)
    if (context->label(i) != "B" || condition->label(i) != "control") keep.push_back(i);
  PerturbationEvalOptions options;
  options.context_col = "cell_type";
  const auto eval = evaluate_perturbations(real.select_cells(keep), real, options);
  ASSERT_EQ(eval.scores.size(), 1u);
  EXPECT_EQ(eval.scores[0].context, "A");
  bool noted = false;
  for (const auto& note : eval.notes)
    noted = noted || note.find("context 'B' has no real control") != std::string::npos;
  EXPECT_TRUE(noted);
}

}  // namespace
}  // namespace lingshu
