// Data-module properties on real counts (pbmc3k, read with the io module); skipped without data.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "data/counts_check.h"
#include "data/preprocess.h"
#include "data/tokenizer.h"
#include "io/h5ad.h"
#include "test_support.h"

namespace lingshu {
namespace {

const AnnData& pbmc3k(const std::filesystem::path& path) {
  static const AnnData data = read_h5ad(path);
  return data;
}

TEST(RealData, Pbmc3kHoldsCountsAndItsLogNormalisationDoesNot) {
  const auto path = LINGSHU_REQUIRE_DATA("pbmc3k.h5ad");
  const AnnData& d = pbmc3k(path);
  EXPECT_TRUE(holds_counts(d.X));
  AnnData normalised = d;
  normalised.X = log_normalize(d.X);
  const auto bad = find_non_count(normalised.X);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->problem, NonCountValue::Problem::NonInteger);
  const std::string msg = describe_non_count(*bad, normalised, "X");
  EXPECT_NE(msg.find(fmt::format("'{}'", d.obs.index[static_cast<size_t>(bad->row)])), std::string::npos)
      << msg;
  EXPECT_NE(msg.find(fmt::format("'{}'", d.var.index[static_cast<size_t>(bad->col)])), std::string::npos)
      << msg;
}

// Sampled decoding keeps every reasonably expressed gene's mean count within 1%.
TEST(RealData, TokenizerDecodingKeepsPbmc3kGeneMeans) {
  const auto path = LINGSHU_REQUIRE_DATA("pbmc3k.h5ad");
  const CsrMatrix& x = pbmc3k(path).X;
  const Tokenizer tok = Tokenizer::fit(x);
  EXPECT_GT(tok.cap(), 32.0) << "pbmc3k has counts beyond the exact range";
  const auto real = x.col_sums();
  std::vector<double> decoded_sum(real.size(), 0.0);
  std::vector<uint8_t> tokens(real.size());
  std::vector<float> decoded(real.size());
  std::mt19937_64 rng(2024);
  for (int64_t r = 0; r < x.n_rows; ++r) {
    tok.encode_row(x, r, tokens);
    tok.decode_row(tokens, rng, decoded);
    for (size_t g = 0; g < real.size(); ++g) decoded_sum[g] += decoded[g];
  }
  int checked = 0;
  for (size_t g = 0; g < real.size(); ++g) {
    if (real[g] / static_cast<double>(x.n_rows) < 0.1) continue;
    EXPECT_NEAR(decoded_sum[g], real[g], 0.01 * real[g]) << "gene " << pbmc3k(path).var.index[g];
    ++checked;
  }
  EXPECT_GT(checked, 2000);
  // The check means something only if many values went through the log bins.
  EXPECT_GT(std::count_if(x.values.begin(), x.values.end(), [](float v) { return v >= 32.0f; }), 10000);
}

// log1p(counts / total * 1e4) against scipy on the whole matrix (per-gene means and a few values).
TEST(RealData, LogNormalizeAgreesWithScipyOnPbmc3k) {
  const auto path = LINGSHU_REQUIRE_DATA("pbmc3k.h5ad");
  if (!testing::python_has("anndata")) GTEST_SKIP() << "/usr/bin/python3 has no anndata";
  const auto result = testing::run_python(fmt::format(R"(
import json, numpy as np, anndata, scipy.sparse as sp
X = sp.csr_matrix(anndata.read_h5ad('{}').X, dtype=np.float64)
tot = np.asarray(X.sum(1)).ravel()
L = sp.diags(1e4 / tot) @ X
L.data = np.log1p(L.data)
print(json.dumps({{'means': np.asarray(L.mean(0)).ravel().tolist(), 'row7': L[7].toarray().ravel().tolist()}}))
)",
                                                      path.string()));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto expected = nlohmann::json::parse(result.output);
  const CsrMatrix ln = log_normalize(pbmc3k(path).X);
  const auto means = column_means(ln);
  const auto want = expected["means"].get<std::vector<double>>();
  ASSERT_EQ(means.size(), want.size());
  for (size_t g = 0; g < means.size(); ++g) EXPECT_NEAR(means[g], want[g], 1e-5 + 1e-5 * want[g]) << g;
  const auto row = ln.dense_row(7);
  const auto want_row = expected["row7"].get<std::vector<double>>();
  for (size_t g = 0; g < row.size(); ++g) EXPECT_NEAR(row[g], want_row[g], 1e-5) << g;
}

}  // namespace
}  // namespace lingshu
