// Generation metrics on real cells (pbmc3k): two random halves look alike, a copy with shuffled gene
// names does not, and the independent baseline fools the mean correlations but not MMD, the kNN AUC or
// the gene-gene structure.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "baselines/independent_baseline.h"
#include "eval/expression.h"
#include "eval/generation_metrics.h"
#include "io/h5ad.h"
#include "test_support.h"

namespace lingshu {
namespace {

struct Halves {
  AnnData a;
  AnnData b;
};

Halves random_halves(const AnnData& data, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(data.n_obs()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  const auto middle = order.begin() + data.n_obs() / 2;
  std::vector<int64_t> first(order.begin(), middle);
  std::vector<int64_t> second(middle, order.end());
  std::sort(first.begin(), first.end());
  std::sort(second.begin(), second.end());
  return {data.select_cells(first), data.select_cells(second)};
}

GenerationMetrics evaluate(const AnnData& real, const AnnData& generated) {
  GenerationOptions options;
  options.label = "cell_type";
  options.threads = 2;
  return evaluate_generation(match_expression(real, generated, {}), options).metrics;
}

TEST(GenerationReal, Pbmc3kHalvesShuffledGenesAndIndependentBaseline) {
  const auto path = LINGSHU_REQUIRE_DATA("pbmc3k.h5ad");
  const Halves halves = random_halves(read_h5ad(path), 42);
  const GenerationMetrics real_halves = evaluate(halves.b, halves.a);
  EXPECT_GT(real_halves.mean_pearson, 0.99);
  EXPECT_NEAR(real_halves.knn_auc, 0.5, 0.05);
  EXPECT_GT(real_halves.ilisi, 0.85);
  EXPECT_LT(real_halves.proportion_tv, 0.1);

  // Same cells, gene names shuffled: every per-gene statistic is scrambled.
  AnnData shuffled = halves.a;
  std::shuffle(shuffled.var.index.begin(), shuffled.var.index.end(), std::mt19937_64(7));
  const GenerationMetrics scrambled = evaluate(halves.b, shuffled);
  EXPECT_LT(scrambled.mean_pearson, 0.5);
  EXPECT_GT(scrambled.knn_auc, 0.9);
  EXPECT_GT(scrambled.mmd, 5 * real_halves.mmd);
  EXPECT_GT(scrambled.wasserstein1, 2 * real_halves.wasserstein1);
  EXPECT_LT(scrambled.ilisi, 0.3);

  // The independent baseline, trained on half a and scored against half b.
  IndependentBaselineOptions baseline;
  baseline.label = "cell_type";
  baseline.n_cells = halves.b.n_obs();
  baseline.seed = 1;
  baseline.threads = 2;
  const GenerationMetrics independent = evaluate(halves.b, sample_independent_baseline(halves.a, baseline));
  for (const auto& [name, m] :
       {std::pair{"real halves", &real_halves}, std::pair{"shuffled genes", &scrambled},
        std::pair{"independent baseline", &independent}}) {
    fmt::print(
        "pbmc3k {:<22} AUC {:.4f}  MMD {:.4f}  iLISI {:.4f}  1-WD {:.4f}  Pearson {:.4f}  gene-gene {:.4f}\n",
        name, m->knn_auc, m->mmd, m->ilisi, m->wasserstein1, m->mean_pearson, m->gene_gene_corr);
  }
  EXPECT_GT(independent.mean_pearson, 0.99) << "marginals are kept: mean correlations cannot tell";
  EXPECT_GT(independent.mmd, 2 * real_halves.mmd);
  EXPECT_GT(independent.knn_auc, real_halves.knn_auc + 0.2);
  EXPECT_LT(independent.ilisi, real_halves.ilisi);
  // Gene-gene structure: real halves share it (about 0.44 on pbmc3k), independent genes have none.
  EXPECT_GT(real_halves.gene_gene_corr, 0.3);
  EXPECT_LT(std::abs(independent.gene_gene_corr), 0.1);
  EXPECT_GE(real_halves.gene_gene_types, 6) << "the types with >= 50 cells per half";
}

}  // namespace
}  // namespace lingshu
