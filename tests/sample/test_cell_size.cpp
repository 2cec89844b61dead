// fit_total_to_range: a generated cell's total brought into its size label's range, by
// downsampling its counts or by drawing more counts from the cell's own profile.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "data/conditions.h"
#include "sample/cell_size.h"

namespace lingshu {
namespace {

double total(const std::vector<float>& counts) {
  return std::accumulate(counts.begin(), counts.end(), 0.0);
}

std::vector<float> profile(int genes, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::poisson_distribution<int> draw(6.0);
  std::vector<float> counts(static_cast<size_t>(genes));
  for (size_t g = 0; g < counts.size(); ++g) counts[g] = g % 3 == 0 ? 0.0F : static_cast<float>(draw(rng));
  return counts;
}

TEST(CellSize, ACellInsideItsRangeIsLeftAsItIs) {
  auto counts = profile(300, 1);
  const auto before = counts;
  std::mt19937_64 rng(2);
  fit_total_to_range(counts, total(counts) - 1, total(counts) + 1, rng);
  EXPECT_EQ(counts, before);
}

TEST(CellSize, ALargeCellIsDownsampledToTheTopOfItsRange) {
  const auto before = profile(3000, 3);  // about 12,000 counts
  for (unsigned s = 0; s < 20; ++s) {
    auto counts = before;
    std::mt19937_64 rng(s);
    fit_total_to_range(counts, 3000, 4000, rng);
    // Downsampled to exactly 3,999 counts, never more than a gene had, whole numbers.
    EXPECT_EQ(total(counts), 3999);
    for (size_t g = 0; g < counts.size(); ++g) {
      ASSERT_LE(counts[g], before[g]);
      ASSERT_EQ(counts[g], std::round(counts[g]));
    }
  }
  // Different seeds keep different counts: the counts are drawn, not scaled.
  auto a = before, b = before;
  std::mt19937_64 ra(1), rb(2);
  fit_total_to_range(a, 3000, 4000, ra);
  fit_total_to_range(b, 3000, 4000, rb);
  EXPECT_NE(a, b);
}

TEST(CellSize, ASmallCellGrowsFromItsOwnProfileAndItsZerosStayZero) {
  const auto before = profile(300, 4);  // about 1,200 counts
  auto counts = before;
  std::mt19937_64 rng(5);
  fit_total_to_range(counts, 5000, 6000, rng);
  EXPECT_EQ(total(counts), 5000);
  double kept = 0, grown = 0;
  for (size_t g = 0; g < counts.size(); ++g) {
    if (before[g] == 0) {
      ASSERT_EQ(counts[g], 0) << g;
    }
    ASSERT_GE(counts[g], before[g]);
    kept += before[g];
    grown += counts[g];
  }
  // Genes grow in proportion: the largest gene's share of the cell stays about the same.
  const auto top = static_cast<size_t>(std::max_element(before.begin(), before.end()) - before.begin());
  EXPECT_NEAR(counts[top] / grown, before[top] / kept, 0.5 * before[top] / kept);
}

TEST(CellSize, TheLastBinRaisesASmallCellToItsLowerEdgeAndAnEmptyCellStaysEmpty) {
  auto counts = profile(300, 6);
  std::mt19937_64 rng(7);
  fit_total_to_range(counts, 2000, std::numeric_limits<double>::infinity(), rng);
  EXPECT_EQ(total(counts), 2000);
  std::vector<float> empty(50, 0.0F);
  fit_total_to_range(empty, 100, 200, rng);
  EXPECT_EQ(total(empty), 0);
}

TEST(CellSize, LibraryRangesTileTheTotalsOfTheTrainingCells) {
  std::vector<double> totals;
  for (int i = 0; i < 1000; ++i) totals.push_back(500 + i * 7);
  const auto field = make_library_field(totals, 4);
  ASSERT_TRUE(field.has_value());
  const auto labels = library_labels(*field, totals);
  for (size_t i = 0; i < totals.size(); ++i) {
    const auto [lo, hi] = library_range(*field, labels[i]);
    ASSERT_GE(totals[i], lo) << labels[i];
    ASSERT_LT(totals[i], hi) << labels[i];
  }
  EXPECT_EQ(library_range(*field, field->labels.front()).first, 0);
  EXPECT_TRUE(std::isinf(library_range(*field, field->labels.back()).second));
}

}  // namespace
}  // namespace lingshu
