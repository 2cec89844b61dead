#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/preprocess.h"
#include "data/simulator.h"
#include "test_support.h"

namespace lingshu {
namespace {

CsrMatrix dense(const std::vector<std::vector<float>>& rows) {
  CsrMatrix m;
  m.n_cols = static_cast<int64_t>(rows.front().size());
  for (const auto& r : rows) m.append_dense_row(r);
  return m;
}

TEST(Preprocess, NormalizeTotalByHand) {
  const CsrMatrix m = dense({{0, 1, 3}, {0, 0, 0}, {2, 2, 0}});
  const CsrMatrix n = normalize_total(m);
  EXPECT_EQ(n.indptr, m.indptr);
  EXPECT_EQ(n.indices, m.indices);
  EXPECT_EQ(n.dense_row(0), (std::vector<float>{0, 2500, 7500}));
  EXPECT_EQ(n.dense_row(1), (std::vector<float>{0, 0, 0}));  // an empty cell stays empty
  EXPECT_EQ(n.dense_row(2), (std::vector<float>{5000, 5000, 0}));
  EXPECT_EQ(normalize_total(m, 100.0).dense_row(0), (std::vector<float>{0, 25, 75}));
}

TEST(Preprocess, LogNormalizeEqualsLog1pOfNormalizeTotal) {
  const CsrMatrix m = dense({{0, 1, 3}, {5, 0, 0}});
  const CsrMatrix ln = log_normalize(m);
  EXPECT_FLOAT_EQ(ln.dense_row(0)[1], static_cast<float>(std::log(2501.0)));
  EXPECT_FLOAT_EQ(ln.dense_row(0)[2], static_cast<float>(std::log(7501.0)));
  EXPECT_FLOAT_EQ(ln.dense_row(1)[0], static_cast<float>(std::log(10001.0)));
  const CsrMatrix two_step = log1p(normalize_total(m));
  ASSERT_EQ(two_step.values.size(), ln.values.size());
  for (size_t i = 0; i < ln.values.size(); ++i) EXPECT_FLOAT_EQ(two_step.values[i], ln.values[i]);
}

TEST(Preprocess, ColumnMeansIncludeZeros) {
  const auto means = column_means(dense({{0, 1, 3}, {4, 0, 0}}));
  EXPECT_EQ(means, (std::vector<double>{2.0, 0.5, 1.5}));
}

TEST(Preprocess, FilterCellsAndGenesByHand) {
  // genes per cell: 2, 1, 3, 0; totals: 4, 10, 3, 0.
  const CsrMatrix m = dense({{0, 1, 3}, {10, 0, 0}, {1, 1, 1}, {0, 0, 0}});
  EXPECT_EQ(filter_cells(m, {.min_genes = 2}), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(filter_cells(m, {.min_counts = 4}), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(filter_cells(m, {.min_genes = 1, .min_counts = 3}), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(filter_cells(m, {}).size(), 4u);
  // cells per gene: 2, 2, 2; totals: 11, 2, 4.
  EXPECT_EQ(filter_genes(m, {.min_counts = 4}), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(filter_genes(m, {.min_cells = 3}), (std::vector<int64_t>{}));
  EXPECT_EQ(filter_genes(m, {.min_cells = 2, .min_counts = 3}), (std::vector<int64_t>{0, 2}));
}

TEST(Preprocess, GeneSubsetByNameKeepsRequestedOrder) {
  AnnData d;
  d.X = dense({{1, 2, 3}, {4, 5, 6}});
  d.obs.index = {"c1", "c2"};
  d.var.index = {"CD3E", "LYZ", "MS4A1"};
  d.var.set(Column::numeric("mean", {1, 2, 3}));
  const AnnData s = subset_genes(d, {"MS4A1", "CD3E"});
  EXPECT_EQ(s.var.index, (std::vector<std::string>{"MS4A1", "CD3E"}));
  EXPECT_EQ(s.var.find("mean")->numbers, (std::vector<double>{3, 1}));
  EXPECT_EQ(s.X.dense_row(1), (std::vector<float>{6, 4}));
  EXPECT_EQ(s.obs.index, d.obs.index);
}

TEST(Preprocess, UnknownGeneNamesAreNamedInOneLine) {
  const std::vector<std::string> names{"CD3E", "LYZ"};
  try {
    gene_indices(names, {"LYZ", "cd3e", "FOO"});
    FAIL() << "unknown genes were accepted";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("2 of 3 requested genes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cd3e, FOO"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

// The same operations computed with numpy using scanpy's formulas.
TEST(Preprocess, AgreesWithNumpyScanpyFormulas) {
  if (!testing::python_has("numpy")) GTEST_SKIP() << "/usr/bin/python3 has no numpy";
  SimulatorConfig config;
  config.n_cells = 60;
  config.n_genes = 40;
  config.lib_loc = 5.0;
  config.seed = 3;
  const CsrMatrix m = simulate(config).data.X;
  testing::TempDir dir;
  {
    std::ofstream out(dir / "x.txt");
    for (int64_t r = 0; r < m.n_rows; ++r) {
      for (const float v : m.dense_row(r)) out << v << ' ';
      out << '\n';
    }
  }
  const auto result = testing::run_python(fmt::format(R"(
import json, numpy as np
X = np.loadtxt('{}', dtype=np.float64)
tot = X.sum(1, keepdims=True)
norm = X / np.where(tot > 0, tot, 1) * 1e4
print(json.dumps({{
  'norm': norm.tolist(),
  'lognorm': np.log1p(norm).tolist(),
  'cells': np.flatnonzero(((X > 0).sum(1) >= 25) & (X.sum(1) >= 100)).tolist(),
  'genes': np.flatnonzero(((X > 0).sum(0) >= 30) & (X.sum(0) >= 50)).tolist(),
}}))
)",
                                                      (dir / "x.txt").string()));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto expected = nlohmann::json::parse(result.output);
  const CsrMatrix norm = normalize_total(m);
  const CsrMatrix lognorm = log_normalize(m);
  for (int64_t r = 0; r < m.n_rows; ++r) {
    const auto n = norm.dense_row(r);
    const auto l = lognorm.dense_row(r);
    for (int64_t c = 0; c < m.n_cols; ++c) {
      EXPECT_NEAR(n[static_cast<size_t>(c)], expected["norm"][r][c].get<double>(), 1e-6 * 1e4);
      EXPECT_NEAR(l[static_cast<size_t>(c)], expected["lognorm"][r][c].get<double>(), 1e-6);
    }
  }
  // The thresholds are chosen so that both filters keep some but not all.
  const auto cells = expected["cells"].get<std::vector<int64_t>>();
  const auto genes = expected["genes"].get<std::vector<int64_t>>();
  EXPECT_TRUE(!cells.empty() && static_cast<int64_t>(cells.size()) < m.n_rows) << cells.size();
  EXPECT_TRUE(!genes.empty() && static_cast<int64_t>(genes.size()) < m.n_cols) << genes.size();
  EXPECT_EQ(filter_cells(m, {.min_genes = 25, .min_counts = 100}), cells);
  EXPECT_EQ(filter_genes(m, {.min_cells = 30, .min_counts = 50}), genes);
}

}  // namespace
}  // namespace lingshu
