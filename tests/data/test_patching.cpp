#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "data/tokenizer.h"

namespace lingshu {
namespace {

bool is_permutation_of_iota(std::vector<int32_t> order) {
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i] != static_cast<int32_t>(i)) return false;
  }
  return true;
}

TEST(GenePatching, OrderIsAPermutationAndShuffled) {
  const GenePatching p = GenePatching::make(13714, 32, 7);
  ASSERT_EQ(p.order.size(), 13714u);
  EXPECT_TRUE(is_permutation_of_iota(p.order));
  int fixed_points = 0;
  for (size_t i = 0; i < p.order.size(); ++i) fixed_points += p.order[i] == static_cast<int32_t>(i) ? 1 : 0;
  EXPECT_LT(fixed_points, 10) << "a random permutation has about one fixed point";
}

TEST(GenePatching, DeterministicBySeed) {
  EXPECT_EQ(GenePatching::make(1000, 8, 3).order, GenePatching::make(1000, 8, 3).order);
  EXPECT_NE(GenePatching::make(1000, 8, 3).order, GenePatching::make(1000, 8, 4).order);
}

TEST(GenePatching, PaddingFillsOnlyTheLastPatch) {
  const GenePatching p = GenePatching::make(70, 32, 1);
  EXPECT_EQ(p.n_patches(), 3);
  EXPECT_EQ(p.n_positions(), 96);
  for (int64_t pos = 0; pos < 70; ++pos) EXPECT_EQ(p.gene_at(pos), p.order[static_cast<size_t>(pos)]);
  for (int64_t pos = 70; pos < 96; ++pos) EXPECT_EQ(p.gene_at(pos), -1);
  const GenePatching exact = GenePatching::make(64, 32, 1);
  EXPECT_EQ(exact.n_patches(), 2);
  EXPECT_EQ(exact.n_positions(), 64);
  const GenePatching single = GenePatching::make(5, 1, 1);
  EXPECT_EQ(single.n_positions(), 5);
}

TEST(GenePatching, PositionsRoundTripToGenes) {
  const GenePatching p = GenePatching::make(70, 32, 9);
  std::vector<uint8_t> by_gene(70);
  for (size_t g = 0; g < by_gene.size(); ++g) by_gene[g] = static_cast<uint8_t>(g % 50);
  std::vector<uint8_t> by_position(static_cast<size_t>(p.n_positions()));
  p.to_positions(by_gene, 200, by_position);
  for (int64_t pos = 0; pos < p.n_positions(); ++pos) {
    const int32_t g = p.gene_at(pos);
    EXPECT_EQ(by_position[static_cast<size_t>(pos)], g < 0 ? 200 : by_gene[static_cast<size_t>(g)]);
  }
  std::vector<uint8_t> back(70, 255);
  p.to_genes(by_position, back);
  EXPECT_EQ(back, by_gene);
  // position_of_gene inverts the order.
  const auto position = p.position_of_gene();
  ASSERT_EQ(position.size(), 70u);
  for (int32_t g = 0; g < 70; ++g) EXPECT_EQ(p.gene_at(position[static_cast<size_t>(g)]), g);
}

// Fisher-Yates with an unbiased bounded draw makes all 24 orders of 4 genes equally likely.
TEST(GenePatching, ShuffleIsUniformOverSeeds) {
  std::map<std::vector<int32_t>, int> seen;
  constexpr int kSeeds = 4800;
  for (uint64_t seed = 0; seed < kSeeds; ++seed) ++seen[GenePatching::make(4, 2, seed).order];
  ASSERT_EQ(seen.size(), 24u);
  double chi2 = 0.0;
  for (const auto& [order, n] : seen) chi2 += (n - 200.0) * (n - 200.0) / 200.0;
  EXPECT_LT(chi2, 49.7) << "chi-square with 23 df above its 0.999 quantile";
}

TEST(GenePatching, JsonRoundTripAndValidation) {
  const GenePatching p = GenePatching::make(100, 8, 12345678901234ULL);
  const GenePatching back = GenePatching::from_json(nlohmann::json::parse(p.to_json().dump()));
  EXPECT_TRUE(back == p);
  nlohmann::json dup = p.to_json();
  dup["order"][1] = dup["order"][0];
  EXPECT_THROW(GenePatching::from_json(dup), UserError);
  nlohmann::json short_order = p.to_json();
  short_order["order"].erase(short_order["order"].size() - 1);
  EXPECT_THROW(GenePatching::from_json(short_order), UserError);
  EXPECT_THROW(GenePatching::make(10, 0, 1), UserError);
}

}  // namespace
}  // namespace lingshu
