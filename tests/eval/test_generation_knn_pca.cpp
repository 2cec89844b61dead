// kNN against a brute-force loop, PCA against numpy's SVD (both the exact and the randomized path).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "eval/knn.h"
#include "eval/pca.h"
#include "test_support.h"

namespace lingshu {
namespace {

using testing::python_has;
using testing::run_python;
using testing::TempDir;

DenseMatrix random_points(int64_t n, int64_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  DenseMatrix m(n, d);
  for (float& v : m.data) v = normal(rng);
  return m;
}

double squared_distance(std::span<const float> a, std::span<const float> b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return s;
}

// The k nearest rows of `reference` to `query` by sorting all distances.
std::vector<int32_t> brute_force_neighbours(std::span<const float> query, const DenseMatrix& reference, int k,
                                            int64_t skip) {
  std::vector<std::pair<double, int32_t>> all;
  for (int64_t j = 0; j < reference.rows; ++j) {
    if (j != skip) all.emplace_back(squared_distance(query, reference.row(j)), static_cast<int32_t>(j));
  }
  std::sort(all.begin(), all.end());
  std::vector<int32_t> out;
  for (int i = 0; i < k; ++i) out.push_back(all[static_cast<size_t>(i)].second);
  return out;
}

TEST(GenerationKnn, WithinMatchesBruteForceAndExcludesSelf) {
  const DenseMatrix points = random_points(700, 12, 1);
  const int k = 9;
  const KnnGraph graph = knn_within(points, k);
  ASSERT_EQ(graph.n, 700);
  for (int64_t i = 0; i < points.rows; ++i) {
    const auto expected = brute_force_neighbours(points.row(i), points, k, i);
    const auto got = graph.neighbors_of(i);
    ASSERT_EQ(std::vector<int32_t>(got.begin(), got.end()), expected) << "point " << i;
    for (int j = 0; j < k; ++j) {
      EXPECT_NEAR(graph.sq_distances_of(i)[j], squared_distance(points.row(i), points.row(got[j])), 1e-6);
    }
  }
}

TEST(GenerationKnn, BetweenMatchesBruteForce) {
  const DenseMatrix reference = random_points(400, 5, 2);
  const DenseMatrix queries = random_points(150, 5, 3);
  const KnnGraph graph = knn_between(queries, reference, 4);
  for (int64_t i = 0; i < queries.rows; ++i) {
    const auto got = graph.neighbors_of(i);
    EXPECT_EQ(std::vector<int32_t>(got.begin(), got.end()),
              brute_force_neighbours(queries.row(i), reference, 4, -1));
  }
}

TEST(GenerationKnn, DistanceBlocksCoverEveryPair) {
  const DenseMatrix a = random_points(37, 3, 4);
  const DenseMatrix b = random_points(23, 3, 5);
  std::vector<int> seen(37, 0);
  for_each_distance_block(a, b, [&](int64_t begin, int64_t end, std::span<const double> block) {
    ASSERT_EQ(block.size(), static_cast<size_t>((end - begin) * 23));
    for (int64_t i = begin; i < end; ++i) {
      ++seen[static_cast<size_t>(i)];
      for (int64_t j = 0; j < 23; ++j) {
        EXPECT_NEAR(block[static_cast<size_t>((i - begin) * 23 + j)], squared_distance(a.row(i), b.row(j)),
                    1e-9);
      }
    }
  });
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
}

TEST(GenerationKnn, RejectsImpossibleK) {
  const DenseMatrix points = random_points(5, 2, 6);
  EXPECT_THROW(knn_within(points, 5), std::invalid_argument);
  EXPECT_THROW(knn_between(points, points, 6), std::invalid_argument);
}

// A sparse non-negative matrix with a few strong directions (like log expression of cell types).
CsrMatrix structured_sparse(int64_t n, int64_t g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<double>> programmes(4, std::vector<double>(static_cast<size_t>(g)));
  for (auto& p : programmes) {
    for (auto& v : p) v = u(rng) < 0.2 ? 3.0 * u(rng) : 0.0;
  }
  CsrMatrix m;
  m.n_cols = g;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<float> row(static_cast<size_t>(g));
    const auto& p = programmes[static_cast<size_t>(i % 4)];
    const double strength = 0.5 + u(rng);
    for (int64_t j = 0; j < g; ++j) {
      const double mean = p[static_cast<size_t>(j)] * strength + 0.3;
      row[static_cast<size_t>(j)] = u(rng) < 0.5 ? 0.0f : static_cast<float>(mean * (0.5 + u(rng)));
    }
    m.append_dense_row(row);
  }
  m.n_rows = n;
  return m;
}

struct NumpyPca {
  std::vector<double> explained_variance;
  std::vector<double> ratio;
  std::vector<std::vector<double>> scores;  // component -> cells
};

NumpyPca numpy_pca(const CsrMatrix& m, int k, const TempDir& dir) {
  {
    std::ofstream out(dir / "x.txt");
    for (int64_t r = 0; r < m.n_rows; ++r) {
      const auto row = m.dense_row(r);
      for (size_t j = 0; j < row.size(); ++j) out << (j ? " " : "") << row[j];
      out << "\n";
    }
  }
  const auto result = run_python(
      "import numpy as np\n"
      "x = np.loadtxt('" +
      (dir / "x.txt").string() +
      "')\n"
      "c = x - x.mean(0)\n"
      "u, s, vt = np.linalg.svd(c, full_matrices=False)\n"
      "k = " +
      std::to_string(k) +
      "\n"
      "print(' '.join(repr(v) for v in (s[:k]**2 / (x.shape[0]-1))))\n"
      "print(' '.join(repr(v) for v in (s[:k]**2 / (c**2).sum())))\n"
      "for j in range(k): print(' '.join(repr(v) for v in u[:, j] * s[j]))\n");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  NumpyPca out;
  std::istringstream lines(result.output);
  std::string line;
  const auto parse = [](const std::string& text) {
    std::istringstream in(text);
    std::vector<double> v;
    for (double d; in >> d;) v.push_back(d);
    return v;
  };
  std::getline(lines, line);
  out.explained_variance = parse(line);
  std::getline(lines, line);
  out.ratio = parse(line);
  while (std::getline(lines, line)) out.scores.push_back(parse(line));
  return out;
}

double abs_correlation(const std::vector<double>& a, const DenseMatrix& scores, int64_t col) {
  std::vector<double> b;
  for (int64_t r = 0; r < scores.rows; ++r) b.push_back(scores.at(r, col));
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / static_cast<double>(a.size());
  const double mb = std::accumulate(b.begin(), b.end(), 0.0) / static_cast<double>(b.size());
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return std::abs(sab / std::sqrt(saa * sbb));
}

void expect_matches_numpy(PcaOptions::Method method) {
  if (!python_has("numpy")) GTEST_SKIP() << "numpy not available to /usr/bin/python3";
  const CsrMatrix m = structured_sparse(300, 120, 7);
  TempDir dir;
  const int k = 8;
  const NumpyPca expected = numpy_pca(m, k, dir);
  ASSERT_EQ(expected.scores.size(), static_cast<size_t>(k));
  PcaOptions options;
  options.n_components = k;
  options.method = method;
  const PcaResult result = pca(m, options);
  EXPECT_EQ(result.exact, method == PcaOptions::Method::Exact);
  ASSERT_EQ(result.n_components(), k);
  ASSERT_EQ(result.scores.rows, 300);
  for (int j = 0; j < k; ++j) {
    EXPECT_NEAR(result.explained_variance[static_cast<size_t>(j)],
                expected.explained_variance[static_cast<size_t>(j)], 2e-3 * expected.explained_variance[0])
        << "component " << j;
    EXPECT_NEAR(result.explained_variance_ratio[static_cast<size_t>(j)],
                expected.ratio[static_cast<size_t>(j)], 2e-4);
  }
  // Scores agree up to sign for the strong, well-separated components (the four programmes).
  for (int j = 0; j < 3; ++j) {
    EXPECT_GT(abs_correlation(expected.scores[static_cast<size_t>(j)], result.scores, j), 0.9999)
        << "component " << j;
  }
}

TEST(GenerationPca, ExactMatchesNumpySvd) {
  expect_matches_numpy(PcaOptions::Method::Exact);
}

TEST(GenerationPca, RandomizedMatchesNumpySvd) {
  expect_matches_numpy(PcaOptions::Method::Randomized);
}

TEST(GenerationPca, ScoresAreCentredAndComponentsOrthonormal) {
  const CsrMatrix m = structured_sparse(200, 90, 8);
  PcaOptions options;
  options.n_components = 5;
  options.method = PcaOptions::Method::Randomized;
  const PcaResult r = pca(m, options);
  for (int64_t j = 0; j < 5; ++j) {
    double sum = 0;
    for (int64_t i = 0; i < r.scores.rows; ++i) sum += r.scores.at(i, j);
    EXPECT_NEAR(sum / 200.0, 0.0, 1e-4);
    for (int64_t l = 0; l < 5; ++l) {
      double dot = 0;
      for (int64_t g = 0; g < 90; ++g)
        dot += static_cast<double>(r.components.at(j, g)) * r.components.at(l, g);
      EXPECT_NEAR(dot, j == l ? 1.0 : 0.0, 1e-5);
    }
  }
  // Variances decrease and the ratios stay within (0, 1].
  for (size_t j = 1; j < r.explained_variance.size(); ++j) {
    EXPECT_GE(r.explained_variance[j - 1], r.explained_variance[j]);
  }
  const double total =
      std::accumulate(r.explained_variance_ratio.begin(), r.explained_variance_ratio.end(), 0.0);
  EXPECT_GT(total, 0.0);
  EXPECT_LE(total, 1.0 + 1e-9);
}

TEST(GenerationPca, SameSeedSameResultAndFewComponentsForFewCells) {
  const CsrMatrix m = structured_sparse(6, 40, 9);
  const PcaResult r = pca(m, {});
  EXPECT_EQ(r.n_components(), 5) << "at most n_cells - 1 components";
  PcaOptions randomized;
  randomized.method = PcaOptions::Method::Randomized;
  randomized.n_components = 4;
  const CsrMatrix big = structured_sparse(100, 50, 10);
  EXPECT_EQ(pca(big, randomized).scores.data, pca(big, randomized).scores.data);
}

}  // namespace
}  // namespace lingshu
