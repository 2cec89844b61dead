#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "data/counts_check.h"
#include "data/preprocess.h"

namespace lingshu {
namespace {

AnnData two_by_three(std::vector<float> row0, std::vector<float> row1) {
  AnnData d;
  d.X.n_cols = 3;
  d.X.append_dense_row(row0);
  d.X.append_dense_row(row1);
  d.obs.index = {"AAAC-1", "TTTG-1"};
  d.var.index = {"CD3E", "MS4A1", "LYZ"};
  return d;
}

TEST(CountsCheck, AcceptsIntegerCountsIncludingLargeOnes) {
  const AnnData d = two_by_three({0, 1, 2}, {16'000'000, 0, 7});
  EXPECT_TRUE(holds_counts(d.X));
  EXPECT_NO_THROW(require_counts(d));
}

TEST(CountsCheck, FindsFirstNonIntegerInRowOrder) {
  const AnnData d = two_by_three({0, 3, 0}, {1, 0.37f, 2.5f});
  const auto bad = find_non_count(d.X);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->problem, NonCountValue::Problem::NonInteger);
  EXPECT_EQ(bad->row, 1);
  EXPECT_EQ(bad->col, 1);
  EXPECT_FLOAT_EQ(bad->value, 0.37f);
}

TEST(CountsCheck, MessageNamesValueCellGeneAndCure) {
  const AnnData d = two_by_three({0, 0.37f, 0}, {1, 0, 0});
  try {
    require_counts(d);
    FAIL() << "normalised values were accepted";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("X holds non-integer values"), std::string::npos) << msg;
    EXPECT_NE(msg.find("0.37"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'AAAC-1'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'MS4A1'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--layer counts"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "the message must be one line";
  }
}

TEST(CountsCheck, ClassifiesNanInfAndNegative) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(find_non_count(two_by_three({1, nan, 0}, {0, 0, 0}).X)->problem,
            NonCountValue::Problem::NotANumber);
  EXPECT_EQ(find_non_count(two_by_three({1, 0, 0}, {0, inf, 0}).X)->problem,
            NonCountValue::Problem::Infinite);
  EXPECT_EQ(find_non_count(two_by_three({1, 0, 0}, {0, 0, -1}).X)->problem, NonCountValue::Problem::Negative);
  // A scaled matrix (negative, non-integer) is reported for whichever comes first.
  const auto scaled = find_non_count(two_by_three({-0.5f, 1.2f, 0}, {0, 0, 0}).X);
  EXPECT_EQ(scaled->problem, NonCountValue::Problem::Negative);
  try {
    require_counts(two_by_three({1, nan, 0}, {0, 0, 0}), "layers/counts");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("layers/counts holds NaN"), std::string::npos) << e.what();
  }
}

TEST(CountsCheck, CatchesLogNormalisedCounts) {
  AnnData d = two_by_three({0, 5, 12}, {3, 0, 1});
  d.X = log_normalize(d.X);
  EXPECT_FALSE(holds_counts(d.X));
  EXPECT_THROW(require_counts(d), UserError);
}

TEST(CountsCheck, FallsBackToPositionsWithoutNames) {
  AnnData d = two_by_three({0, 0, 0}, {0, 0, 1.5f});
  d.obs.index.clear();
  d.var.index.clear();
  const std::string msg = describe_non_count(*find_non_count(d.X), d, "X");
  EXPECT_NE(msg.find("cell #1, gene #2"), std::string::npos) << msg;
}

}  // namespace
}  // namespace lingshu
