#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "data/summary.h"

namespace lingshu {
namespace {

TEST(Summary, QuantileInterpolatesLikeNumpy) {
  // numpy.percentile([4, 1, 3, 2], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4].
  const std::vector<double> v{4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(quantile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile(v, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(quantile(v, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile(v, 0.9), 3.7);
  EXPECT_DOUBLE_EQ(quantile(v, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(quantile({7}, 0.3), 7.0);
  EXPECT_TRUE(std::isnan(quantile({}, 0.5)));
}

TEST(Summary, CountsSparsityLibrarySizesAndColumnsByHand) {
  AnnData d;
  d.X.n_cols = 4;
  d.X.append_dense_row(std::vector<float>{1, 0, 0, 2});  // total 3, 2 genes
  d.X.append_dense_row(std::vector<float>{0, 5, 0, 0});  // total 5, 1 gene
  d.X.append_dense_row(std::vector<float>{3, 0, 7, 1});  // total 11, 3 genes
  d.obs.index = {"a", "b", "c"};
  d.var.index = {"g1", "g2", "g3", "g4"};
  Column type = Column::categorical("cell_type", {"T", "B", "T"});
  type.codes[1] = -1;  // one missing label
  d.obs.set(type);
  d.obs.set(Column::numeric("score", {0.5, NAN, 2.0}));
  d.var.set(Column::string("symbol", {"x", "y", "x", "z"}));
  const DatasetSummary s = summarize(d);
  EXPECT_EQ(s.n_obs, 3);
  EXPECT_EQ(s.n_vars, 4);
  EXPECT_EQ(s.nnz, 6);
  EXPECT_DOUBLE_EQ(s.zero_fraction, 0.5);
  EXPECT_TRUE(s.is_counts);
  ASSERT_EQ(s.library_size.size(), 7u);
  EXPECT_EQ(s.library_size[0], (std::pair<std::string, double>{"min", 3.0}));
  EXPECT_EQ(s.library_size[3], (std::pair<std::string, double>{"50%", 5.0}));
  EXPECT_DOUBLE_EQ(s.library_size[2].second, 4.0);  // 25%: halfway between 3 and 5
  EXPECT_EQ(s.library_size[6], (std::pair<std::string, double>{"max", 11.0}));
  EXPECT_EQ(s.median_genes_per_cell, 2.0);
  ASSERT_EQ(s.obs.size(), 2u);
  EXPECT_EQ(s.obs[0].n_missing, 1);
  EXPECT_EQ(s.obs[0].category_counts, (std::vector<std::pair<std::string, int64_t>>{{"T", 2}, {"B", 0}}));
  EXPECT_EQ(s.obs[1].n_missing, 1);
  EXPECT_DOUBLE_EQ(s.obs[1].median, 1.25);
  EXPECT_EQ(s.var[0].n_unique, 3);

  const nlohmann::json j = to_json(s);
  EXPECT_EQ(j["library_size"]["max"], 11.0);
  EXPECT_EQ(j["obs"][0]["categories"][0]["category"], "T");
  EXPECT_TRUE(j["counts_problem"].is_null());
  const std::string text = format_summary(s);
  EXPECT_NE(text.find("3 cells x 4 genes"), std::string::npos) << text;
  EXPECT_NE(text.find("T 2; B 0"), std::string::npos) << text;
}

TEST(Summary, ReportsNonCounts) {
  AnnData d;
  d.X.n_cols = 2;
  d.X.append_dense_row(std::vector<float>{0.5f, 1});
  d.obs.index = {"a"};
  d.var.index = {"g1", "g2"};
  const DatasetSummary s = summarize(d, "layers/counts");
  EXPECT_FALSE(s.is_counts);
  EXPECT_NE(s.counts_problem.find("layers/counts holds non-integer values"), std::string::npos)
      << s.counts_problem;
  EXPECT_NE(s.counts_problem.find("--layer"), std::string::npos);
}

TEST(Summary, ThousandsSeparators) {
  EXPECT_EQ(with_commas(0), "0");
  EXPECT_EQ(with_commas(999), "999");
  EXPECT_EQ(with_commas(1000), "1,000");
  EXPECT_EQ(with_commas(13714), "13,714");
  EXPECT_EQ(with_commas(1234567.4), "1,234,567");
  EXPECT_EQ(with_commas(-2500), "-2,500");
  EXPECT_EQ(with_commas(0.375), "0.38");
}

}  // namespace
}  // namespace lingshu
