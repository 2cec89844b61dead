// Observed state profiles: each state's mean log1p CP10k and median total, read a chunk at a time.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/observed_states.h"
#include "data/preprocess.h"

namespace lingshu {
namespace {

TEST(ObservedStates, MeanLogProfileAndMedianTotalOfEachLabelsRows) {
  // 5,000 rows (more than one read chunk) of 3 genes; every third row unlabelled.
  CsrMatrix m;
  m.n_cols = 3;
  std::mt19937_64 rng(4);
  std::poisson_distribution<int> draw(3.0);
  std::vector<int64_t> rows;
  std::vector<std::string> labels;
  for (int64_t i = 0; i < 5000; ++i) {
    const std::vector<float> dense{static_cast<float>(draw(rng)), static_cast<float>(draw(rng)),
                                   static_cast<float>(1 + draw(rng))};
    m.append_dense_row(dense);
    rows.push_back(i);
    labels.push_back(i % 3 == 2 ? "" : (i % 3 == 0 ? "a/control" : "a/perturbed"));
  }
  const MatrixRows counts(std::make_shared<const CsrMatrix>(m));
  const auto states = observed_states(counts, rows, labels);
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0].label, "a/control");
  EXPECT_EQ(states[1].label, "a/perturbed");
  const auto logs = log_normalize(m);
  for (size_t s = 0; s < 2; ++s) {
    std::vector<int64_t> members;
    for (int64_t i = static_cast<int64_t>(s); i < 5000; i += 3) members.push_back(i);
    EXPECT_EQ(states[s].n_cells, std::ssize(members));
    const auto means = column_means(logs.select_rows(members));
    for (size_t j = 0; j < 3; ++j) EXPECT_NEAR(states[s].log_profile[j], means[j], 1e-9);
    // The cells' variance of each gene, computed the two-pass way.
    const CsrMatrix own = logs.select_rows(members);
    std::vector<double> squares(3, 0.0);
    for (int64_t r = 0; r < own.n_rows; ++r) {
      std::vector<double> row(3, 0.0);
      const auto cols = own.row_indices(r);
      const auto vals = own.row_values(r);
      for (size_t k = 0; k < cols.size(); ++k) row[static_cast<size_t>(cols[k])] = vals[k];
      for (size_t j = 0; j < 3; ++j) squares[j] += (row[j] - means[j]) * (row[j] - means[j]);
    }
    for (size_t j = 0; j < 3; ++j)
      EXPECT_NEAR(states[s].log_variance[j], squares[j] / static_cast<double>(members.size() - 1), 1e-6);
    auto totals = m.select_rows(members).row_sums();
    std::nth_element(totals.begin(), totals.begin() + std::ssize(totals) / 2, totals.end());
    EXPECT_EQ(states[s].library_size, totals[totals.size() / 2]);
  }
  EXPECT_EQ(find_state(states, "a/perturbed"), &states[1]);
  EXPECT_EQ(find_state(states, "b/control"), nullptr);
  EXPECT_THROW(observed_states(counts, rows, std::vector<std::string>(3, "a/control")),
               std::invalid_argument);
}

ObservedState state_of(const std::string& label, int64_t n_cells, std::vector<double> means,
                       std::vector<double> variances) {
  return {label, n_cells, 100.0, std::move(means), std::move(variances)};
}

TEST(ObservedStates, EstimatedAcrossContextsShrinksNoisyMeansByTheContextsSpread) {
  // Three genes of four contexts' controls: gene 0 measured without noise keeps its means; gene 1's
  // means differ less than their noise, so each becomes the contexts' mean; gene 2 by hand:
  // means 0..3 (spread 5/3), noise s2 = variance / cells = 1 for c0 and 0.5 for the others, so
  // tau2 = 5/3 - 0.625 and c0 keeps tau2 / (tau2 + 1) of its distance from the mean 1.5.
  std::vector<ObservedState> states{state_of("c0/control", 5, {1, 1.0, 0}, {0, 10, 5}),
                                    state_of("c1/control", 10, {2, 1.2, 1}, {0, 10, 5}),
                                    state_of("c2/control", 10, {3, 0.8, 2}, {0, 10, 5}),
                                    state_of("c3/control", 10, {4, 1.0, 3}, {0, 10, 5}),
                                    state_of("c0/perturbed", 10, {9, 9, 9}, {5, 5, 5}),
                                    state_of("c1/perturbed", 10, {0, 0, 0}, {5, 5, 5})};
  const auto estimated = estimated_across_contexts(states);
  ASSERT_EQ(estimated.size(), states.size());
  const double tau2 = 5.0 / 3.0 - 0.625;
  for (size_t s = 0; s < 4; ++s) {
    EXPECT_EQ(estimated[s].label, states[s].label);
    EXPECT_EQ(estimated[s].n_cells, states[s].n_cells);
    EXPECT_DOUBLE_EQ(estimated[s].log_profile[0], states[s].log_profile[0]);
    EXPECT_NEAR(estimated[s].log_profile[1], 1.0, 1e-12);
    const double s2 = s == 0 ? 1.0 : 0.5;
    EXPECT_NEAR(estimated[s].log_profile[2], 1.5 + tau2 / (tau2 + s2) * (states[s].log_profile[2] - 1.5),
                1e-12);
  }
  // Two perturbed states are too few contexts to tell their spread from noise: kept as measured.
  EXPECT_EQ(estimated[4].log_profile, states[4].log_profile);
  EXPECT_EQ(estimated[5].log_profile, states[5].log_profile);
}

TEST(ObservedStates, EstimatedAcrossContextsIsCloserToTheContextsTrueMeans) {
  // 8 contexts x 500 genes: true means spread by 0.2 around each gene's level, measured on 10-199
  // cells of variance 1 (noise 0.1 down to 0.005 against a spread of 0.04). Over the contexts the
  // estimates are nearer the true means than the measured ones, most of all for the fewest cells.
  // (A well-measured context can lose a little: eight contexts tell a gene's spread only roughly.)
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  constexpr size_t kContexts = 8, kGenes = 500;
  std::vector<double> level(kGenes);
  for (auto& l : level) l = 2.0 + normal(rng);
  std::vector<std::vector<double>> truth(kContexts, std::vector<double>(kGenes));
  std::vector<ObservedState> states;
  for (size_t c = 0; c < kContexts; ++c) {
    const int64_t n = 10 + static_cast<int64_t>(c) * 27;
    std::vector<double> means(kGenes);
    for (size_t j = 0; j < kGenes; ++j) {
      truth[c][j] = level[j] + 0.2 * normal(rng);
      means[j] = truth[c][j] + normal(rng) / std::sqrt(static_cast<double>(n));
    }
    states.push_back(state_of(fmt::format("c{}/control", c), n, means, std::vector<double>(kGenes, 1.0)));
  }
  const auto estimated = estimated_across_contexts(states);
  const auto squared_error = [&](const ObservedState& s, size_t c) {
    double sum = 0;
    for (size_t j = 0; j < kGenes; ++j) sum += std::pow(s.log_profile[j] - truth[c][j], 2);
    return sum;
  };
  double measured_total = 0, estimated_total = 0;
  for (size_t c = 0; c < kContexts; ++c) {
    measured_total += squared_error(states[c], c);
    estimated_total += squared_error(estimated[c], c);
  }
  EXPECT_LT(estimated_total, 0.8 * measured_total);
  EXPECT_LT(squared_error(estimated[0], 0), 0.5 * squared_error(states[0], 0));
}

}  // namespace
}  // namespace lingshu
