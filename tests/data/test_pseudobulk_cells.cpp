// Integer-count cells for a target pseudobulk: the log-normalised column means come back as the
// target, at any library size, deterministically per seed.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "data/preprocess.h"
#include "data/pseudobulk_cells.h"
#include "test_perturbation_data.h"

namespace lingshu {
namespace {

double mean_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t j = 0; j < a.size(); ++j) sum += std::abs(a[j] - b[j]);
  return sum / static_cast<double>(a.size());
}

TEST(PseudobulkCells, CountsReproduceTheTargetLogPseudobulk) {
  // A consistent target (the pseudobulk of real-looking cells: fractions of 10k that add up),
  // spanning silent, sparse and highly expressed genes.
  testing::ScreenSpec spec;
  spec.genes = 300;
  const AnnData screen = testing::simulate_screen(spec);
  CsrMatrix counts;
  counts.n_cols = screen.n_vars();
  for (int64_t r = 0; r < screen.n_obs(); ++r) {
    auto row = screen.X.dense_row(r);
    row.front() = 0.0f;                                   // silent in every cell
    row.back() = static_cast<float>(300 + 40 * (r % 5));  // very high, like a mitochondrial gene
    counts.append_dense_row(row);
  }
  const std::vector<double> target = column_means(log_normalize(counts));
  double library = 0;
  for (const double t : counts.row_sums()) library += t / static_cast<double>(counts.n_rows);
  ASSERT_EQ(target[0], 0.0);
  for (const int64_t n : {40, 300}) {
    const CsrMatrix cells = counts_for_log_pseudobulk(target, n, library, 7, 2);
    ASSERT_EQ(cells.n_rows, n);
    ASSERT_EQ(cells.n_cols, static_cast<int64_t>(target.size()));
    for (const float v : cells.values) ASSERT_EQ(v, std::round(v));
    const auto achieved = column_means(log_normalize(cells));
    // Placing the counts by the cells' totals (refine_placement) took 40 cells from 0.011 to 0.007
    // and 300 from 0.0019 to 0.0007.
    EXPECT_LT(mean_abs_difference(achieved, target), n == 40 ? 0.009 : 0.001) << n << " cells";
    EXPECT_EQ(achieved[0], 0.0);
    EXPECT_NEAR(achieved.back(), target.back(), 0.01);
    const auto totals = cells.row_sums();
    double mean_total = 0;
    for (const double t : totals) mean_total += t / static_cast<double>(n);
    EXPECT_NEAR(mean_total, library, 0.15 * library);
  }
  // A library size off by half converges too, to the library the profile implies.
  const auto far = column_means(log_normalize(counts_for_log_pseudobulk(target, 300, 1.5 * library, 7, 2)));
  EXPECT_LT(mean_abs_difference(far, target), 0.01);
  // Same seed, same cells (whatever the thread count); another seed scatters them differently.
  const auto a = counts_for_log_pseudobulk(target, 50, library, 1, 1);
  const auto b = counts_for_log_pseudobulk(target, 50, library, 1, 3);
  const auto c = counts_for_log_pseudobulk(target, 50, library, 2, 1);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_NE(a.indices, c.indices);
}

}  // namespace
}  // namespace lingshu
