// The sparse one-pass DE engine against the plain two-sample test (itself checked against scipy in
// test_stats.cpp) and against scipy directly, on data shaped like single-cell expression.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <vector>

#include "data/count_matrix.h"
#include "eval/de.h"
#include "eval/stats.h"
#include "test_support.h"

namespace lingshu {
namespace {

// Sparse cells x genes with integer-valued and fractional entries, heavy zeros and many ties; some
// explicit stored zeros and (optionally) negative values to exercise every block path.
CsrMatrix random_matrix(std::mt19937& rng, int64_t cells, int64_t genes, bool with_negatives) {
  CsrMatrix m;
  m.n_cols = genes;
  std::uniform_real_distribution<double> u01(0, 1);
  std::vector<float> row(static_cast<size_t>(genes));
  for (int64_t c = 0; c < cells; ++c) {
    for (int64_t g = 0; g < genes; ++g) {
      const double density = 0.1 + 0.6 * static_cast<double>(g % 5) / 4.0;
      float v = 0;
      if (u01(rng) < density) v = static_cast<float>(1 + static_cast<int>(u01(rng) * (1 + g % 4)));
      if (g % 7 == 3 && v != 0) v += 0.25f * static_cast<float>(c % 3);  // fractional ties
      if (with_negatives && g % 3 == 1 && u01(rng) < 0.2) v = -static_cast<float>(1 + c % 2);
      row[static_cast<size_t>(g)] = v;
    }
    m.append_dense_row(row);
  }
  // An explicit stored zero must count as a zero.
  if (m.nnz() > 0) m.values[0] = 0.0f;
  return m;
}

std::vector<double> column_of(const CsrMatrix& m, const std::vector<int32_t>& group_of_cell, int32_t group,
                              int64_t gene) {
  std::vector<double> out;
  for (int64_t r = 0; r < m.n_rows; ++r) {
    if (group_of_cell[static_cast<size_t>(r)] != group) continue;
    out.push_back(m.dense_row(r)[static_cast<size_t>(gene)]);
  }
  return out;
}

CellGroups random_groups(std::mt19937& rng, int64_t cells, int32_t n_groups, int32_t control) {
  CellGroups groups{.group_of_cell = {}, .n_groups = n_groups, .control = control};
  std::uniform_int_distribution<int32_t> pick(-1, n_groups - 1);  // -1: cell left out
  for (int64_t c = 0; c < cells; ++c) groups.group_of_cell.push_back(pick(rng));
  return groups;
}

TEST(DifferentialExpression, SparseRanksMatchDenseTestForEveryGroupAndGene) {
  for (const bool negatives : {false, true}) {
    std::mt19937 rng(negatives ? 3 : 4);
    const CsrMatrix m = random_matrix(rng, 240, 23, negatives);
    const CellGroups groups = random_groups(rng, m.n_rows, 6, 2);
    for (const int threads : {1, 3}) {
      const auto result = mann_whitney_vs_control(m, groups, threads);
      for (int32_t g = 0; g < groups.n_groups; ++g) {
        for (int64_t gene = 0; gene < m.n_cols; ++gene) {
          const size_t at =
              static_cast<size_t>(g) * static_cast<size_t>(m.n_cols) + static_cast<size_t>(gene);
          if (g == groups.control) {
            EXPECT_EQ(result.p_value[at], 1.0);
            continue;
          }
          const auto expected = mann_whitney_u(column_of(m, groups.group_of_cell, g, gene),
                                               column_of(m, groups.group_of_cell, groups.control, gene));
          EXPECT_DOUBLE_EQ(result.u[at], expected.u) << "group " << g << " gene " << gene;
          EXPECT_NEAR(result.p_value[at], expected.p, 1e-13 + 1e-10 * expected.p)
              << "group " << g << " gene " << gene;
        }
      }
    }
  }
}

TEST(DifferentialExpression, LongColumnsMatchDenseTestToo) {
  // Columns of more than 256 stored values take the radix-sort path; negatives and fractional ties
  // included.
  std::mt19937 rng(8);
  const CsrMatrix m = random_matrix(rng, 1500, 8, true);
  const CellGroups groups = random_groups(rng, m.n_rows, 4, 1);
  const auto result = mann_whitney_vs_control(m, groups, 2);
  for (const int32_t g : {0, 2, 3}) {
    for (int64_t gene = 0; gene < m.n_cols; ++gene) {
      const auto expected = mann_whitney_u(column_of(m, groups.group_of_cell, g, gene),
                                           column_of(m, groups.group_of_cell, groups.control, gene));
      const size_t at = static_cast<size_t>(g) * static_cast<size_t>(m.n_cols) + static_cast<size_t>(gene);
      EXPECT_DOUBLE_EQ(result.u[at], expected.u) << "group " << g << " gene " << gene;
      EXPECT_NEAR(result.p_value[at], expected.p, 1e-13 + 1e-10 * expected.p)
          << "group " << g << " gene " << gene;
    }
  }
}

TEST(DifferentialExpression, EmptyGroupAndAllZeroGeneGiveNoEvidence) {
  CsrMatrix m;
  m.n_cols = 2;
  for (int r = 0; r < 6; ++r) m.append_dense_row(std::vector<float>{0.0f, static_cast<float>(r)});
  const CellGroups groups{.group_of_cell = {0, 0, 0, 1, 1, 1}, .n_groups = 3, .control = 0};
  const auto result = mann_whitney_vs_control(m, groups, 1);
  EXPECT_EQ(result.p_value[1 * 2 + 0], 1.0);  // gene 0 is all zeros
  EXPECT_EQ(result.p_value[2 * 2 + 0], 1.0);  // group 2 has no cells
  EXPECT_EQ(result.p_value[2 * 2 + 1], 1.0);
  // Gene 1: group 1 holds 3, 4, 5 against 0, 1, 2: every pair won, U = 9.
  EXPECT_DOUBLE_EQ(result.u[1 * 2 + 1], 9.0);
  EXPECT_LT(result.p_value[1 * 2 + 1], 0.1);
}

TEST(DifferentialExpression, FoldChangeFollowsPdexConventions) {
  EXPECT_NEAR(fold_change_from_log_means(std::log1p(3.0), std::log1p(1.5)), 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(fold_change_from_log_means(1.0, 0.0), kFoldChangeClip);
  EXPECT_DOUBLE_EQ(fold_change_from_log_means(0.0, 1.0), 1.0 / kFoldChangeClip);
  EXPECT_DOUBLE_EQ(fold_change_from_log_means(0.0, 0.0), kFoldChangeClip);  // control 0 wins
}

TEST(DifferentialExpression, MeansFoldChangesAndPerGroupFdr) {
  CsrMatrix m;
  m.n_cols = 3;
  // Control (group 0): gene means 1, 0, 2. Group 1: 3, 1, 0.
  m.append_dense_row(std::vector<float>{1, 0, 2});
  m.append_dense_row(std::vector<float>{1, 0, 2});
  m.append_dense_row(std::vector<float>{2, 1, 0});
  m.append_dense_row(std::vector<float>{4, 1, 0});
  const CellGroups groups{.group_of_cell = {0, 0, 1, 1}, .n_groups = 2, .control = 0};
  auto de = differential_expression(m, groups, 1);
  EXPECT_EQ(de.group_sizes, (std::vector<int64_t>{2, 2}));
  EXPECT_DOUBLE_EQ(de.mean[de.at(1, 0)], 3.0);
  EXPECT_DOUBLE_EQ(de.mean[de.at(0, 2)], 2.0);
  EXPECT_NEAR(de.log2_fold_change[de.at(1, 0)], std::log2(std::expm1(3.0) / std::expm1(1.0)), 1e-12);
  EXPECT_NEAR(de.log2_fold_change[de.at(1, 1)], std::log2(kFoldChangeClip), 1e-12);
  EXPECT_NEAR(de.log2_fold_change[de.at(1, 2)], -std::log2(kFoldChangeClip), 1e-12);
  apply_fdr_per_group(de);
  const auto q = benjamini_hochberg(DifferentialExpression::row(de.p_value, 1, 3));
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_DOUBLE_EQ(de.fdr[de.at(1, j)], q[static_cast<size_t>(j)]);
    EXPECT_DOUBLE_EQ(de.fdr[de.at(0, j)], 1.0);
  }
}

TEST(DifferentialExpression, MatchesScipyMannWhitneyPerGroup) {
  if (!testing::python_has("scipy")) GTEST_SKIP() << "/usr/bin/python3 has no scipy";
  std::mt19937 rng(21);
  const CsrMatrix m = random_matrix(rng, 150, 9, false);
  const CellGroups groups = random_groups(rng, m.n_rows, 4, 0);
  const auto result = mann_whitney_vs_control(m, groups, 2);
  std::string script =
      "import warnings; warnings.simplefilter('ignore')\n"
      "import numpy as np, scipy.stats as st\n";
  std::vector<std::vector<float>> dense;
  for (int64_t r = 0; r < m.n_rows; ++r) dense.push_back(m.dense_row(r));
  script += "X = np.array([";
  for (const auto& row : dense) script += fmt::format("[{}],", fmt::join(row, ","));
  script += fmt::format("])\ng = np.array([{}])\n", fmt::join(groups.group_of_cell, ","));
  script +=
      "for k in range(1, 4):\n"
      "    r = st.mannwhitneyu(X[g == k], X[g == 0], alternative='two-sided', method='asymptotic', axis=0)\n"
      "    print(' '.join(repr(float(v)) for v in np.nan_to_num(r.pvalue, nan=1.0)))\n";
  const auto out = testing::run_python(script);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  std::istringstream in(out.output);
  for (int32_t k = 1; k < 4; ++k) {
    for (int64_t gene = 0; gene < m.n_cols; ++gene) {
      double expected = 0;
      ASSERT_TRUE(in >> expected) << out.output;
      const double got = result.p_value[static_cast<size_t>(k * m.n_cols + gene)];
      EXPECT_NEAR(got, expected, 1e-12 + 1e-9 * expected) << "group " << k << " gene " << gene;
    }
  }
}

}  // namespace
}  // namespace lingshu
