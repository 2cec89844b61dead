#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "core/balanced_draw.h"

namespace lingshu {
namespace {

std::vector<int64_t> picks(BalancedDraw& draw, size_t group, int64_t n, int64_t m) {
  std::vector<int64_t> out;
  for (int64_t cell = 0; cell < n; ++cell) out.push_back(draw.pick(group, cell, m));
  return out;
}

TEST(BalancedDraw, EveryCandidateIsTakenOnceBeforeAnyIsTakenAgain) {
  BalancedDraw draw(7);
  constexpr int64_t m = 13, n = 3 * m + 5;
  const auto taken = picks(draw, 0, n, m);
  for (int64_t cycle = 0; cycle < 3; ++cycle) {
    std::vector<int64_t> one(taken.begin() + cycle * m, taken.begin() + (cycle + 1) * m);
    std::sort(one.begin(), one.end());
    for (int64_t c = 0; c < m; ++c) EXPECT_EQ(one[static_cast<size_t>(c)], c) << "cycle " << cycle;
  }
  for (int64_t c = 0; c < m; ++c) {
    const auto times = std::count(taken.begin(), taken.end(), c);
    EXPECT_TRUE(times == 3 || times == 4) << c << " taken " << times << " times";
  }
  // Shuffled, and differently in every cycle.
  EXPECT_FALSE(std::is_sorted(taken.begin(), taken.begin() + m));
  EXPECT_FALSE(std::equal(taken.begin(), taken.begin() + m, taken.begin() + m));
}

TEST(BalancedDraw, APickDependsOnTheCellNotOnTheOrderOfTheCalls) {
  BalancedDraw forward(3), backward(3), other_seed(4);
  constexpr int64_t m = 10, n = 25;
  const auto in_order = picks(forward, 2, n, m);
  for (int64_t cell = n - 1; cell >= 0; --cell) {
    EXPECT_EQ(backward.pick(2, cell, m), in_order[static_cast<size_t>(cell)]) << cell;
    backward.pick(5, cell, m);  // another group in between changes nothing
  }
  EXPECT_NE(picks(other_seed, 2, n, m), in_order);
  EXPECT_NE(picks(forward, 1, n, m), in_order) << "each group has its own order";
  EXPECT_EQ(forward.pick(0, 4, 1), 0);
  EXPECT_THROW(forward.pick(0, 0, 0), std::invalid_argument);
}

}  // namespace
}  // namespace lingshu
