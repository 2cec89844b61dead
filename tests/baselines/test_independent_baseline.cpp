// The independent baseline keeps per-type marginals and proportions and loses gene-gene structure.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "baselines/independent_baseline.h"
#include "core/error.h"
#include "eval/stats.h"

namespace lingshu {
namespace {

// Two types (70% "a", 30% "b"); in every cell genes 0 and 1 carry the same count (perfectly
// correlated), gene 2 is constant 4 in type a and 0 in type b, gene 3 is a Poisson count.
AnnData correlated_training(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> shared(0, 9);
  std::poisson_distribution<int> poisson(2.0);
  AnnData d;
  d.X.n_cols = 4;
  std::vector<std::string> labels;
  for (int64_t i = 0; i < n; ++i) {
    const bool a = i % 10 < 7;
    const auto s = static_cast<float>(shared(rng));
    d.X.append_dense_row(std::vector<float>{s, s, a ? 4.0f : 0.0f, static_cast<float>(poisson(rng))});
    labels.push_back(a ? "a" : "b");
    d.obs.index.push_back(fmt::format("cell{}", i));
  }
  d.obs.set(Column::categorical("cell_type", labels));
  d.var.index = {"G0", "G1", "G2", "G3"};
  return d;
}

std::vector<double> column(const CsrMatrix& m, int64_t c, const std::vector<int64_t>& rows) {
  std::vector<double> out;
  for (const int64_t r : rows) out.push_back(m.dense_row(r)[static_cast<size_t>(c)]);
  return out;
}

// Options drawing `n_cells` cells by "cell_type".
IndependentBaselineOptions by_type(int64_t n_cells, uint64_t seed, int threads) {
  IndependentBaselineOptions options;
  options.label = "cell_type";
  options.n_cells = n_cells;
  options.seed = seed;
  options.threads = threads;
  return options;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return s / static_cast<double>(v.size());
}

TEST(IndependentBaseline, KeepsMarginalsAndProportionsAndLosesCorrelation) {
  const AnnData train = correlated_training(2000, 1);
  const AnnData out = sample_independent_baseline(train, by_type(3000, 7, 2));
  ASSERT_EQ(out.n_obs(), 3000);
  ASSERT_EQ(out.n_vars(), 4);
  EXPECT_EQ(out.gene_names(), train.gene_names());
  const Column& type = out.obs.require("cell_type", "obs");

  std::map<std::string, std::vector<int64_t>> gen_rows, train_rows;
  for (int64_t i = 0; i < out.n_obs(); ++i) gen_rows[*type.label(i)].push_back(i);
  const Column& train_type = train.obs.require("cell_type", "obs");
  for (int64_t i = 0; i < train.n_obs(); ++i) train_rows[*train_type.label(i)].push_back(i);

  // Proportions: binomial(3000, 0.7) has sd 0.008.
  EXPECT_NEAR(static_cast<double>(gen_rows["a"].size()) / 3000.0, 0.7, 0.03);
  for (const std::string t : {"a", "b"}) {
    for (int64_t g = 0; g < 4; ++g) {
      const auto generated = column(out.X, g, gen_rows[t]);
      const auto real = column(train.X, g, train_rows[t]);
      EXPECT_NEAR(mean(generated), mean(real), 0.15) << "type " << t << " gene " << g;
      // Every generated value occurs among the type's training values.
      const std::set<double> seen(real.begin(), real.end());
      for (const double v : generated) ASSERT_TRUE(seen.count(v)) << v;
    }
    // Genes 0 and 1 are identical in training, unrelated in the baseline.
    EXPECT_DOUBLE_EQ(
        pearson_correlation(column(train.X, 0, train_rows[t]), column(train.X, 1, train_rows[t])), 1.0);
    EXPECT_LT(std::abs(pearson_correlation(column(out.X, 0, gen_rows[t]), column(out.X, 1, gen_rows[t]))),
              0.1);
  }
  // The type-specific gene follows the drawn type exactly.
  for (const int64_t r : gen_rows["a"]) EXPECT_EQ(out.X.dense_row(r)[2], 4.0f);
  for (const int64_t r : gen_rows["b"]) EXPECT_EQ(out.X.dense_row(r)[2], 0.0f);
}

TEST(IndependentBaseline, SameSeedSameCellsWhateverTheThreadCount) {
  const AnnData train = correlated_training(300, 2);
  IndependentBaselineOptions options = by_type(700, 3, 1);
  const AnnData one = sample_independent_baseline(train, options);
  options.threads = 2;
  const AnnData two = sample_independent_baseline(train, options);
  EXPECT_EQ(one.X.values, two.X.values);
  EXPECT_EQ(one.X.indices, two.X.indices);
  EXPECT_EQ(one.obs.require("cell_type", "obs").codes, two.obs.require("cell_type", "obs").codes);
  options.seed = 4;
  EXPECT_NE(sample_independent_baseline(train, options).X.values, one.X.values);
}

TEST(IndependentBaseline, UnlabelledCellsAreNotUsedAndMissingColumnsAreUserErrors) {
  AnnData train = correlated_training(100, 3);
  Column& type = train.obs.columns[0];
  // Unlabel every "b" cell: the baseline then draws only "a" cells.
  for (auto& code : type.codes) code = type.categories[static_cast<size_t>(code)] == "b" ? -1 : code;
  IndependentBaselineOptions options;
  options.label = "cell_type";
  const AnnData out = sample_independent_baseline(train, options);
  EXPECT_EQ(out.n_obs(), 100) << "defaults to the training size";
  for (int64_t i = 0; i < out.n_obs(); ++i) EXPECT_EQ(out.obs.require("cell_type", "obs").label(i), "a");

  options.label = "celltype";
  try {
    sample_independent_baseline(train, options);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("available: cell_type"), std::string::npos) << e.what();
  }
  // Without a label every cell is one group: gene 2 keeps its overall 0 / 4 mixture.
  options.label = "";
  options.n_cells = 2000;
  const AnnData pooled = sample_independent_baseline(correlated_training(1000, 4), options);
  std::vector<int64_t> all(2000);
  for (int64_t i = 0; i < 2000; ++i) all[static_cast<size_t>(i)] = i;
  EXPECT_NEAR(mean(column(pooled.X, 2, all)), 0.7 * 4.0, 0.15);
  EXPECT_TRUE(pooled.obs.columns.empty());
}

}  // namespace
}  // namespace lingshu
