// Observed state profiles: each state's mean log1p CP10k and median total, read a chunk at a time.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

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
    auto totals = m.select_rows(members).row_sums();
    std::nth_element(totals.begin(), totals.begin() + std::ssize(totals) / 2, totals.end());
    EXPECT_EQ(states[s].library_size, totals[totals.size() / 2]);
  }
  EXPECT_EQ(find_state(states, "a/perturbed"), &states[1]);
  EXPECT_EQ(find_state(states, "b/control"), nullptr);
  EXPECT_THROW(observed_states(counts, rows, std::vector<std::string>(3, "a/control")),
               std::invalid_argument);
}

}  // namespace
}  // namespace lingshu
