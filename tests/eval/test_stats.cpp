// The general statistics against hand-worked cases and against scipy (run through
// /usr/bin/python3 on the same numbers).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "eval/stats.h"
#include "test_support.h"

namespace lingshu {
namespace {

std::string py_list(const std::vector<double>& v) {
  return fmt::format("[{}]", fmt::join(v, ", "));
}

// Parses whitespace-separated numbers printed by a Python script.
std::vector<double> parse_numbers(const std::string& text) {
  std::istringstream in(text);
  std::vector<double> out;
  std::string token;
  while (in >> token) out.push_back(token == "nan" ? std::nan("") : std::stod(token));
  return out;
}

// Integers 0..max_value (many ties, many zeros) as doubles: the shape of UMI counts.
std::vector<double> tied_counts(std::mt19937& rng, int n, double zero_share, int max_value) {
  std::bernoulli_distribution is_zero(zero_share);
  std::uniform_int_distribution<int> value(1, max_value);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = is_zero(rng) ? 0.0 : value(rng);
  return v;
}

TEST(Stats, AverageRanksGiveTiesTheMeanRank) {
  const std::vector<double> x{3, 1, 4, 1, 5, 9, 2, 6, 5};
  // Sorted: 1 1 2 3 4 5 5 6 9 -> ranks 1.5 1.5 3 4 5 6.5 6.5 8 9.
  const std::vector<double> expected{4, 1.5, 5, 1.5, 6.5, 9, 3, 8, 6.5};
  EXPECT_EQ(average_ranks(x), expected);
  EXPECT_TRUE(average_ranks(std::vector<double>{}).empty());
}

TEST(Stats, PearsonHandWorked) {
  // Centred x = (-1, 0, 1), y = (-7/3, -1/3, 8/3): sxy = 5, sxx = 2, syy = 114/9.
  const std::vector<double> x{1, 2, 3};
  const std::vector<double> y{2, 4, 7};
  EXPECT_NEAR(pearson_correlation(x, y), 5.0 / std::sqrt(2.0 * 114.0 / 9.0), 1e-15);
  const std::vector<double> neg{3, 2, 1};
  EXPECT_DOUBLE_EQ(pearson_correlation(x, neg), -1.0);
  // Correlation is unchanged by shifting and scaling.
  const std::vector<double> affine{1e6 + 2 * 2, 1e6 + 4 * 2, 1e6 + 7 * 2};
  EXPECT_NEAR(pearson_correlation(x, affine), pearson_correlation(x, y), 1e-12);
  EXPECT_TRUE(std::isnan(pearson_correlation(x, std::vector<double>{5, 5, 5})));
  EXPECT_THROW(pearson_correlation(x, std::vector<double>{1, 2}), std::invalid_argument);
}

TEST(Stats, SpearmanHandWorkedWithTies) {
  // Ranks x: 1 2.5 2.5 4; ranks y: 1 2 3 4 -> Pearson of the ranks.
  const std::vector<double> x{10, 20, 20, 30};
  const std::vector<double> y{1, 2, 3, 4};
  const std::vector<double> rx{1, 2.5, 2.5, 4};
  const std::vector<double> ry{1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(spearman_correlation(x, y), pearson_correlation(rx, ry));
  // Any monotone transform gives 1.
  const std::vector<double> cubed{1, 8, 27, 64};
  EXPECT_DOUBLE_EQ(spearman_correlation(y, cubed), 1.0);
}

TEST(Stats, BenjaminiHochbergHandWorked) {
  // Sorted p: 0.005 0.01 0.03 0.04, times m/rank: 0.02 0.02 0.04 0.04 (already monotone).
  const std::vector<double> p{0.01, 0.04, 0.03, 0.005};
  const auto q = benjamini_hochberg(p);
  const std::vector<double> expected{0.02, 0.04, 0.04, 0.02};
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(q[i], expected[i], 1e-15) << i;
  // Step-up: raw 0.12 0.0675 0.05 become 0.05 each (minimum over larger ranks).
  const auto q2 = benjamini_hochberg(std::vector<double>{0.04, 0.045, 0.05});
  for (const double v : q2) EXPECT_NEAR(v, 0.05, 1e-15);
  // NaN stays NaN and does not count in m: the two finite values behave as m = 2.
  const auto q3 = benjamini_hochberg(std::vector<double>{0.01, std::nan(""), 0.02});
  EXPECT_NEAR(q3[0], 0.02, 1e-15);
  EXPECT_TRUE(std::isnan(q3[1]));
  EXPECT_NEAR(q3[2], 0.02, 1e-15);
}

TEST(Stats, AveragePrecisionHandWorked) {
  // Thresholds 0.9 (P 1, R .5), 0.8 (R unchanged), 0.7 (P 2/3, R 1): AP = .5 + .5 * 2/3.
  const std::vector<uint8_t> labels{1, 0, 1, 0};
  const std::vector<double> scores{0.9, 0.8, 0.7, 0.1};
  EXPECT_NEAR(average_precision(labels, scores), 0.5 + 0.5 * 2.0 / 3.0, 1e-15);
  // Tied scores form one threshold: at 0.5 P = 1/2, R = 1/2; at 0.1 P = 2/3, R = 1.
  const std::vector<uint8_t> tied_labels{1, 0, 1};
  const std::vector<double> tied_scores{0.5, 0.5, 0.1};
  EXPECT_NEAR(average_precision(tied_labels, tied_scores), 0.25 + 0.5 * 2.0 / 3.0, 1e-15);
  // A perfect ranking scores 1; no positives is undefined.
  EXPECT_DOUBLE_EQ(average_precision(std::vector<uint8_t>{0, 1, 1}, std::vector<double>{0, 2, 3}), 1.0);
  EXPECT_TRUE(std::isnan(average_precision(std::vector<uint8_t>{0, 0}, std::vector<double>{1, 2})));
}

TEST(Stats, MannWhitneyHandWorked) {
  // x = {1, 2}, y = {3, 4}: ranks of x 1, 2 -> U1 = 0; U = max(0, 4) = 4, mean 2,
  // var = 2*2/12 * 5 = 5/3, z = (4 - 2 - 0.5) / sqrt(5/3).
  const auto r = mann_whitney_u(std::vector<double>{1, 2}, std::vector<double>{3, 4});
  EXPECT_DOUBLE_EQ(r.u, 0.0);
  EXPECT_NEAR(r.p, std::erfc(1.5 / std::sqrt(5.0 / 3.0) / std::sqrt(2.0)), 1e-15);
  // Every value tied: no evidence, p = 1.
  EXPECT_DOUBLE_EQ(mann_whitney_u(std::vector<double>{0, 0, 0}, std::vector<double>{0, 0}).p, 1.0);
  EXPECT_DOUBLE_EQ(mann_whitney_u(std::vector<double>{}, std::vector<double>{1, 2}).p, 1.0);
}

TEST(Stats, MatchScipyOnTiedData) {
  if (!testing::python_has("scipy")) GTEST_SKIP() << "/usr/bin/python3 has no scipy";
  std::mt19937 rng(7);
  // Pairs of samples shaped like UMI counts: sparse, heavily tied, different sizes and shifts.
  struct Case {
    std::vector<double> x, y;
  };
  std::vector<Case> cases;
  cases.push_back({tied_counts(rng, 40, 0.6, 4), tied_counts(rng, 55, 0.3, 6)});
  cases.push_back({tied_counts(rng, 7, 0.2, 3), tied_counts(rng, 9, 0.2, 3)});
  cases.push_back({tied_counts(rng, 300, 0.9, 2), tied_counts(rng, 800, 0.95, 2)});
  cases.push_back({tied_counts(rng, 120, 0.0, 50), tied_counts(rng, 60, 0.0, 50)});
  cases.push_back({tied_counts(rng, 25, 1.0, 1), tied_counts(rng, 30, 0.9, 1)});

  std::string script =
      "import warnings; warnings.simplefilter('ignore')\nimport scipy.stats as st\ncases = [\n";
  for (const auto& c : cases) script += fmt::format("  ({}, {}),\n", py_list(c.x), py_list(c.y));
  script +=
      "]\n"
      "for x, y in cases:\n"
      "    r = st.mannwhitneyu(x, y, alternative='two-sided', method='asymptotic', use_continuity=True)\n"
      "    s = st.spearmanr(x[:min(len(x), len(y))], y[:min(len(x), len(y))]).correlation\n"
      "    p = st.pearsonr(x[:min(len(x), len(y))], y[:min(len(x), len(y))])[0]\n"
      "    print(repr(float(r.statistic)), repr(float(r.pvalue)), repr(float(s)), repr(float(p)))\n";
  const auto result = testing::run_python(script);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto numbers = parse_numbers(result.output);
  ASSERT_EQ(numbers.size(), 4 * cases.size()) << result.output;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto mw = mann_whitney_u(c.x, c.y);
    EXPECT_DOUBLE_EQ(mw.u, numbers[4 * i]) << "case " << i;
    EXPECT_NEAR(mw.p, numbers[4 * i + 1], 1e-12 + 1e-9 * numbers[4 * i + 1]) << "case " << i;
    const size_t n = std::min(c.x.size(), c.y.size());
    const std::span<const double> xs(c.x.data(), n), ys(c.y.data(), n);
    const double expected_spearman = numbers[4 * i + 2];
    if (std::isnan(expected_spearman)) {
      EXPECT_TRUE(std::isnan(spearman_correlation(xs, ys))) << "case " << i;
    } else {
      EXPECT_NEAR(spearman_correlation(xs, ys), expected_spearman, 1e-12) << "case " << i;
      EXPECT_NEAR(pearson_correlation(xs, ys), numbers[4 * i + 3], 1e-12) << "case " << i;
    }
  }
}

TEST(Stats, BenjaminiHochbergMatchesReference) {
  if (!testing::python_has("numpy")) GTEST_SKIP() << "/usr/bin/python3 has no numpy";
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<double> p(200);
  // A mix of strong signals and nulls, with some exact ties.
  for (size_t i = 0; i < p.size(); ++i) p[i] = i % 5 == 0 ? uniform(rng) * 1e-4 : uniform(rng);
  p[3] = p[4];
  // scipy >= 1.11 has false_discovery_control; otherwise statsmodels; otherwise the textbook
  // step-up formula written with numpy (independent of the C++ loop).
  const std::string script = fmt::format(
      "import numpy as np\n"
      "p = np.array({})\n"
      "try:\n"
      "    from scipy.stats import false_discovery_control\n"
      "    q = false_discovery_control(p, method='bh')\n"
      "except ImportError:\n"
      "    try:\n"
      "        from statsmodels.stats.multitest import multipletests\n"
      "        q = multipletests(p, method='fdr_bh')[1]\n"
      "    except ImportError:\n"
      "        o = np.argsort(p)[::-1]\n"
      "        m = len(p)\n"
      "        q = np.empty(m)\n"
      "        q[o] = np.minimum(1, np.minimum.accumulate(p[o] * m / np.arange(m, 0, -1)))\n"
      "print(' '.join(repr(float(v)) for v in q))\n",
      py_list(p));
  const auto result = testing::run_python(script);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto expected = parse_numbers(result.output);
  ASSERT_EQ(expected.size(), p.size());
  const auto q = benjamini_hochberg(p);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(q[i], expected[i], 1e-14) << i;
}

TEST(Stats, AveragePrecisionMatchesSklearnWhenPresent) {
  if (!testing::python_has("sklearn"))
    GTEST_SKIP() << "/usr/bin/python3 has no sklearn (hand-worked cases above)";
  std::mt19937 rng(5);
  std::vector<double> labels(150), scores(150);
  std::uniform_int_distribution<int> score(0, 20);  // coarse scores: many ties
  for (size_t i = 0; i < labels.size(); ++i) {
    labels[i] = rng() % 3 == 0 ? 1 : 0;
    scores[i] = score(rng) + 5 * labels[i] * (rng() % 2);
  }
  const auto result =
      testing::run_python(fmt::format("from sklearn.metrics import average_precision_score\n"
                                      "print(repr(float(average_precision_score({}, {}))))\n",
                                      py_list(labels), py_list(scores)));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::vector<uint8_t> label_bytes(labels.begin(), labels.end());
  EXPECT_NEAR(average_precision(label_bytes, scores), parse_numbers(result.output).at(0), 1e-12);
}

}  // namespace
}  // namespace lingshu
