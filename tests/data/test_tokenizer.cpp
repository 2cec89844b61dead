#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "data/simulator.h"
#include "data/tokenizer.h"

namespace lingshu {
namespace {

// Deep, high-count simulated data so that many counts fall in the log bins.
const CsrMatrix& deep_counts() {
  static const CsrMatrix m = [] {
    SimulatorConfig c;
    c.n_cells = 300;
    c.n_genes = 400;
    c.lib_loc = 10.0;  // ~22,000 UMIs per cell
    c.seed = 11;
    return simulate(c).data.X;
  }();
  return m;
}

CsrMatrix from_columns(const std::vector<std::vector<float>>& rows) {
  CsrMatrix m;
  m.n_cols = static_cast<int64_t>(rows.front().size());
  for (const auto& r : rows) m.append_dense_row(r);
  return m;
}

TEST(Tokenizer, SmallCountsAreTheirOwnTokenAndDecodeExactly) {
  const Tokenizer tok = Tokenizer::fit(deep_counts());
  ASSERT_EQ(tok.n_tokens(), 64);
  EXPECT_EQ(tok.mask_token(), 64);
  std::mt19937_64 rng(1);
  for (int c = 0; c < 32; ++c) {
    EXPECT_EQ(tok.encode(static_cast<float>(c)), c);
    for (int g = 0; g < tok.n_genes(); g += 37) EXPECT_EQ(tok.representative(g, c), c);
  }
  // A whole cell of small counts survives encode -> decode unchanged.
  std::vector<float> row(static_cast<size_t>(tok.n_genes()));
  for (size_t g = 0; g < row.size(); ++g) row[g] = static_cast<float>((g * 7) % 32);
  CsrMatrix m;
  m.n_cols = tok.n_genes();
  m.append_dense_row(row);
  std::vector<uint8_t> tokens(row.size());
  tok.encode_row(m, 0, tokens);
  std::vector<float> decoded(row.size());
  tok.decode_row(tokens, rng, decoded);
  EXPECT_EQ(decoded, row);
}

TEST(Tokenizer, BinEdgesAreIncreasingIntegersAndCoverTheCap) {
  const Tokenizer tok = Tokenizer::fit(deep_counts());
  const auto& edges = tok.lower_edges();
  ASSERT_EQ(edges.size(), 64u);
  for (size_t t = 0; t < 32; ++t) EXPECT_EQ(edges[t], static_cast<double>(t));
  for (size_t t = 1; t < edges.size(); ++t) {
    EXPECT_LT(edges[t - 1], edges[t]) << "token " << t;
    EXPECT_EQ(edges[t], std::round(edges[t]));
  }
  EXPECT_GT(tok.cap(), 200.0) << "the test data should need log bins";
  EXPECT_LE(edges.back(), tok.cap());
  // Log spacing: away from the exact range, consecutive ratios stay close to each other.
  const double first_ratio = edges[40] / edges[39];
  const double last_ratio = edges[63] / edges[62];
  EXPECT_NEAR(first_ratio, last_ratio, 0.25 * last_ratio);
}

TEST(Tokenizer, EncodeIsMonotoneAndFallsInItsBin) {
  const Tokenizer tok = Tokenizer::fit(deep_counts());
  const auto& edges = tok.lower_edges();
  int previous = 0;
  for (int c = 0; c <= 4 * static_cast<int>(tok.cap()); ++c) {
    const int t = tok.encode(static_cast<float>(c));
    ASSERT_GE(t, previous) << "count " << c;
    ASSERT_LT(t, tok.n_tokens());
    EXPECT_LE(edges[static_cast<size_t>(t)], c);
    if (t + 1 < tok.n_tokens()) {
      EXPECT_LT(c, edges[static_cast<size_t>(t) + 1]);
    }
    previous = t;
  }
  EXPECT_EQ(tok.encode(1e9f), tok.n_tokens() - 1);
  EXPECT_EQ(tok.encode(-3.0f), 0);
  EXPECT_EQ(tok.encode(std::nanf("")), 0);
}

TEST(Tokenizer, HandWorkedRepresentatives) {
  // Gene 0 holds 10 and 12, gene 1 holds 30. K = 4, exact_limit = 2, cap = 30 (quantile 1):
  // edges 0, 1, 2, then round(2 * sqrt(31 / 2)) = 8. Token 3 = [8, inf).
  const CsrMatrix m = from_columns({{10, 30}, {12, 0}, {1, 1}});
  const Tokenizer tok = Tokenizer::fit(m, {.n_tokens = 4, .exact_limit = 2, .cap_quantile = 1.0});
  EXPECT_EQ(tok.cap(), 30.0);
  EXPECT_EQ(tok.lower_edges(), (std::vector<double>{0, 1, 2, 8}));
  EXPECT_DOUBLE_EQ(tok.representative(0, 3), 11.0);
  EXPECT_DOUBLE_EQ(tok.representative(1, 3), 30.0);
  EXPECT_DOUBLE_EQ(tok.representative(0, 2), 4.5);  // empty bin [2, 8): mean of 2..7
  EXPECT_DOUBLE_EQ(tok.representative(1, 1), 1.0);
}

TEST(Tokenizer, CapIsTheQuantileOfNonZeroCounts) {
  std::vector<std::vector<float>> rows;
  for (int v = 1; v <= 100; ++v) rows.push_back({static_cast<float>(v), 0.0f});
  const Tokenizer tok =
      Tokenizer::fit(from_columns(rows), {.n_tokens = 16, .exact_limit = 4, .cap_quantile = 0.9});
  EXPECT_EQ(tok.cap(), 90.0);
}

// Per-gene representatives are bin means, so the expected decoded total of every gene over the
// training cells equals its real total exactly; sampled decoding stays within 1%.
TEST(Tokenizer, DecodingKeepsPerGeneMeans) {
  const CsrMatrix& m = deep_counts();
  const Tokenizer tok = Tokenizer::fit(m);
  const auto real = m.col_sums();
  std::vector<double> expected(real.size(), 0.0);
  std::vector<double> sampled(real.size(), 0.0);
  std::vector<uint8_t> tokens(static_cast<size_t>(m.n_cols));
  std::vector<float> decoded(tokens.size());
  std::mt19937_64 rng(5);
  for (int64_t r = 0; r < m.n_rows; ++r) {
    tok.encode_row(m, r, tokens);
    tok.decode_row(tokens, rng, decoded);
    for (size_t g = 0; g < tokens.size(); ++g) {
      expected[g] += tok.representative(static_cast<int>(g), tokens[g]);
      sampled[g] += decoded[g];
      EXPECT_EQ(decoded[g], std::floor(decoded[g]));
    }
  }
  int checked = 0;
  for (size_t g = 0; g < real.size(); ++g) {
    EXPECT_NEAR(expected[g], real[g], 1e-9 * std::max(1.0, real[g])) << "gene " << g;
    if (real[g] / static_cast<double>(m.n_rows) < 1.0) continue;
    EXPECT_NEAR(sampled[g], real[g], 0.01 * real[g]) << "gene " << g;
    ++checked;
  }
  EXPECT_GT(checked, 50);
}

TEST(Tokenizer, JsonRoundTripIsExact) {
  const Tokenizer tok =
      Tokenizer::fit(deep_counts(), {.n_tokens = 48, .exact_limit = 16, .cap_quantile = 0.999});
  const nlohmann::json j = tok.to_json();
  const Tokenizer back = Tokenizer::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_TRUE(back == tok);
  EXPECT_EQ(back.to_json(), j);
  for (int g = 0; g < tok.n_genes(); ++g) {
    for (int t = 0; t < tok.n_tokens(); ++t) ASSERT_EQ(back.representative(g, t), tok.representative(g, t));
  }
}

TEST(Tokenizer, DamagedJsonIsAUserError) {
  nlohmann::json j = Tokenizer::fit(deep_counts()).to_json();
  nlohmann::json missing = j;
  missing.erase("lower_edges");
  EXPECT_THROW(Tokenizer::from_json(missing), UserError);
  nlohmann::json unsorted = j;
  unsorted["lower_edges"][40] = 1.0;
  EXPECT_THROW(Tokenizer::from_json(unsorted), UserError);
  nlohmann::json bad_key = j;
  bad_key["gene_representatives"]["keys"][0] = -1;
  EXPECT_THROW(Tokenizer::from_json(bad_key), UserError);
}

TEST(Tokenizer, AllSmallCountsNeedNoLogBins) {
  const CsrMatrix m = from_columns({{0, 1, 5}, {3, 0, 2}, {1, 1, 1}});
  const Tokenizer tok = Tokenizer::fit(m, {.n_tokens = 16, .exact_limit = 4});
  // Every token stays one count wide: the data never needed log bins.
  for (size_t t = 0; t < 16; ++t) EXPECT_EQ(tok.lower_edges()[t], static_cast<double>(t));
  std::mt19937_64 rng(0);
  std::vector<uint8_t> tokens(3);
  std::vector<float> decoded(3);
  for (int64_t r = 0; r < m.n_rows; ++r) {
    tok.encode_row(m, r, tokens);
    tok.decode_row(tokens, rng, decoded);
    EXPECT_EQ(decoded, m.dense_row(r));
  }
}

TEST(Tokenizer, EmptyDataStillGivesAUsableTable) {
  CsrMatrix m;
  m.n_cols = 5;
  m.append_dense_row(std::vector<float>(5, 0.0f));
  const Tokenizer tok = Tokenizer::fit(m, {.n_tokens = 8, .exact_limit = 4});
  EXPECT_EQ(tok.lower_edges().size(), 8u);
  EXPECT_EQ(tok.encode(0.0f), 0);
  EXPECT_EQ(tok.encode(3.0f), 3);
}

TEST(Tokenizer, OnlyExactTokensPutLargerCountsInTheLastOne) {
  const CsrMatrix m = from_columns({{1, 50}, {2, 70}});
  const Tokenizer tok = Tokenizer::fit(m, {.n_tokens = 8, .exact_limit = 8});
  EXPECT_EQ(tok.encode(50.0f), 7);
  EXPECT_DOUBLE_EQ(tok.representative(1, 7), 60.0);
}

TEST(Tokenizer, ConfigErrorsAreUserErrors) {
  const CsrMatrix& m = deep_counts();
  EXPECT_THROW(Tokenizer::fit(m, {.n_tokens = 16, .exact_limit = 32}), UserError);
  EXPECT_THROW(Tokenizer::fit(m, {.n_tokens = 300, .exact_limit = 32}), UserError);
  EXPECT_THROW(Tokenizer::fit(m, {.n_tokens = 64, .exact_limit = 0}), UserError);
  EXPECT_THROW(Tokenizer::fit(m, {.n_tokens = 64, .exact_limit = 8, .cap_quantile = 0.0}), UserError);
  try {
    Tokenizer::fit(m, {.n_tokens = 16, .exact_limit = 32});
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("smaller than exact_limit"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, RefusesAMatrixWithOtherGenes) {
  const Tokenizer tok = Tokenizer::fit(deep_counts());
  CsrMatrix other;
  other.n_cols = 3;
  other.append_dense_row(std::vector<float>{1, 2, 3});
  std::vector<uint8_t> tokens(static_cast<size_t>(tok.n_genes()));
  EXPECT_THROW(tok.encode_row(other, 0, tokens), UserError);
}

}  // namespace
}  // namespace lingshu
