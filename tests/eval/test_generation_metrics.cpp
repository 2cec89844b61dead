// Each generation statistic against a value computed another way: hand-worked cases, scipy's
// wasserstein_distance, a numpy implementation of the MMD formula, and toy data whose mixing is known.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "core/error.h"
#include "data/preprocess.h"
#include "data/simulator.h"
#include "eval/expression.h"
#include "eval/generation_metrics.h"
#include "io/h5ad.h"
#include "test_support.h"

namespace lingshu {
namespace {

using testing::python_has;
using testing::run_python;
using testing::TempDir;

std::string python_list(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += fmt::format("{}{:.17g}", i ? "," : "", v[i]);
  return out + "]";
}

double python_number(const std::string& script) {
  const auto result = run_python(script);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return std::stod(result.output);
}

TEST(GenerationStats, WassersteinHandWorked) {
  EXPECT_DOUBLE_EQ(wasserstein1(std::vector<double>{1, 2, 3}, std::vector<double>{1, 2, 3}), 0.0);
  EXPECT_DOUBLE_EQ(wasserstein1(std::vector<double>{0}, std::vector<double>{5}), 5.0);
  // F_u - F_v = 0.5 on [1, 2): distance 0.5.
  EXPECT_DOUBLE_EQ(wasserstein1(std::vector<double>{0, 1}, std::vector<double>{0, 2}), 0.5);
  // Shifting a sample by c moves it by exactly c.
  EXPECT_NEAR(wasserstein1(std::vector<double>{0.5, 1.5, 4}, std::vector<double>{2.5, 3.5, 6}), 2.0, 1e-12);
}

TEST(GenerationStats, WassersteinMatchesScipy) {
  if (!python_has("scipy")) GTEST_SKIP() << "scipy not available to /usr/bin/python3";
  std::mt19937_64 rng(11);
  std::gamma_distribution<double> gamma(0.7, 1.3);
  std::vector<double> u, v;
  for (int i = 0; i < 173; ++i)
    u.push_back(i % 3 == 0 ? 0.0 : std::round(gamma(rng) * 4) / 4);  // ties, zeros
  for (int i = 0; i < 91; ++i) v.push_back(i % 2 == 0 ? 0.0 : gamma(rng) * 1.2);
  const double expected =
      python_number("from scipy.stats import wasserstein_distance\nprint(repr(wasserstein_distance(" +
                    python_list(u) + "," + python_list(v) + ")))\n");
  EXPECT_NEAR(wasserstein1(u, v), expected, 1e-12);
}

CsrMatrix sparse_from_dense(const std::vector<std::vector<float>>& rows) {
  CsrMatrix m;
  m.n_cols = static_cast<int64_t>(rows[0].size());
  for (const auto& r : rows) m.append_dense_row(r);
  m.n_rows = static_cast<int64_t>(rows.size());
  return m;
}

TEST(GenerationStats, MeanColumnWassersteinMatchesScipyPerColumn) {
  if (!python_has("scipy")) GTEST_SKIP() << "scipy not available to /usr/bin/python3";
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<float> u(0, 1);
  const auto random_rows = [&](int n, float zero_share) {
    std::vector<std::vector<float>> rows(static_cast<size_t>(n), std::vector<float>(6));
    for (auto& r : rows) {
      for (size_t c = 0; c < r.size(); ++c)
        r[c] = u(rng) < zero_share ? 0.0f : 3.0f * u(rng) + static_cast<float>(c) * 0.1f;
    }
    rows[0][5] = 0.0f;  // column 5 is all zero on one side
    for (auto& r : rows) r[5] = zero_share > 0.5f ? 0.0f : r[5];
    return rows;
  };
  const auto a = random_rows(40, 0.6f);
  const auto b = random_rows(33, 0.3f);
  std::string script = "from scipy.stats import wasserstein_distance\nimport numpy as np\n";
  const auto as_py = [](const std::vector<std::vector<float>>& rows) {
    std::string out = "np.array([";
    for (const auto& r : rows) {
      out += "[";
      for (const float v : r) out += fmt::format("{:.9g},", v);
      out += "],";
    }
    return out + "])";
  };
  script += "a = " + as_py(a) + "\nb = " + as_py(b) + "\n";
  script += "print(repr(np.mean([wasserstein_distance(a[:, j], b[:, j]) for j in range(a.shape[1])])))\n";
  const double expected = python_number(script);
  EXPECT_NEAR(mean_column_wasserstein1(sparse_from_dense(a), sparse_from_dense(b), 2), expected, 1e-6);
}

DenseMatrix gaussian_cloud(int64_t n, int64_t d, double shift, double scale, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  DenseMatrix m(n, d);
  for (float& v : m.data) v = static_cast<float>(shift + scale * normal(rng));
  return m;
}

std::string matrix_py(const DenseMatrix& m) {
  std::string out = "np.array([";
  for (int64_t r = 0; r < m.rows; ++r) {
    out += "[";
    for (int64_t c = 0; c < m.cols; ++c) out += fmt::format("{:.9g},", m.at(r, c));
    out += "],";
  }
  return out + "], dtype=np.float64)";
}

TEST(GenerationStats, MmdMatchesNumpyImplementationOfTheSameFormula) {
  if (!python_has("numpy")) GTEST_SKIP() << "numpy not available to /usr/bin/python3";
  const DenseMatrix x = gaussian_cloud(60, 4, 0.0, 1.0, 13);
  const DenseMatrix y = gaussian_cloud(45, 4, 0.7, 1.5, 14);
  // The DAN / scDiffusion reference code (guassian_kernel + mmd_rbf), written out in numpy.
  const std::string script =
      "import numpy as np\n"
      "x = " +
      matrix_py(x) + "\ny = " + matrix_py(y) +
      "\n"
      "z = np.concatenate([x, y])\n"
      "n = z.shape[0]\n"
      "d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(2)\n"
      "bw = d.sum() / (n * n - n) / 2 ** (5 // 2)\n"
      "k = sum(np.exp(-d / (bw * 2 ** i)) for i in range(5))\n"
      "b = x.shape[0]\n"
      "print(repr(k[:b, :b].mean() + k[b:, b:].mean() - k[:b, b:].mean() - k[b:, :b].mean()))\n";
  const double expected = python_number(script);
  EXPECT_NEAR(mmd_gaussian(x, y, 5, 2.0, 2), expected, 1e-9);
  EXPECT_GT(expected, 0.05) << "the two clouds differ, so the check is not trivially 0";
}

TEST(GenerationStats, MmdIsNearZeroForTheSameDistributionAndGrowsWithTheShift) {
  const DenseMatrix x = gaussian_cloud(300, 5, 0.0, 1.0, 15);
  const DenseMatrix same = gaussian_cloud(300, 5, 0.0, 1.0, 16);
  const DenseMatrix near = gaussian_cloud(300, 5, 0.3, 1.0, 17);
  const DenseMatrix far = gaussian_cloud(300, 5, 1.5, 1.0, 18);
  const double m_same = mmd_gaussian(x, same);
  const double m_near = mmd_gaussian(x, near);
  const double m_far = mmd_gaussian(x, far);
  // The biased estimator keeps the k(x, x) = 5 diagonal terms: about 2 (5 - mean k) / n ~ 0.02 at n = 300.
  EXPECT_LT(m_same, 0.035);
  EXPECT_LT(m_same, m_near);
  EXPECT_LT(m_near, m_far);
  EXPECT_NEAR(mmd_gaussian(x, x), 0.0, 1e-9) << "a sample against itself";
}

TEST(GenerationStats, RocAucHandWorkedWithTies) {
  // Pairs (pos, neg): 0.9>0.5, 0.9>0.1, 0.5=0.5 (half), 0.5>0.1: 3.5 of 4.
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<uint8_t>{1, 1, 0, 0}, std::vector<double>{0.9, 0.5, 0.5, 0.1}), 0.875);
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<uint8_t>{0, 0, 1, 1}, std::vector<double>{1, 2, 3, 4}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<uint8_t>{0, 1, 0, 1}, std::vector<double>{1, 1, 1, 1}), 0.5);
  EXPECT_TRUE(std::isnan(roc_auc(std::vector<uint8_t>{1, 1}, std::vector<double>{1, 2})));
}

KnnGraph hand_graph(int k, std::vector<int32_t> neighbours) {
  KnnGraph g;
  g.k = k;
  g.n = static_cast<int64_t>(neighbours.size()) / k;
  g.neighbors = std::move(neighbours);
  g.sq_distances.assign(g.neighbors.size(), 1.0);
  return g;
}

TEST(GenerationStats, IlisiHandWorked) {
  const std::vector<int32_t> source = {0, 0, 1, 1};
  // Every point sees one neighbour of each source: inverse Simpson 2 -> scaled 1.
  EXPECT_DOUBLE_EQ(scaled_ilisi(hand_graph(2, {1, 2, 0, 3, 0, 3, 1, 2}), source, 2), 1.0);
  // Every point sees only its own source: 1 -> scaled 0.
  EXPECT_DOUBLE_EQ(scaled_ilisi(hand_graph(1, {1, 0, 3, 2}), source, 2), 0.0);
  // k = 4 with a 3:1 split: 1 / (9/16 + 1/16) = 1.6 -> 0.6.
  EXPECT_NEAR(scaled_ilisi(hand_graph(4, {1, 0, 0, 2}), std::vector<int32_t>{0, 0, 1}, 2), 0.6, 1e-12);
}

TEST(GenerationStats, IlisiAndAucOnMixedAndSeparatedToyData) {
  // Mixed: both sources from one distribution. Separated: two far-apart clouds.
  const DenseMatrix a = gaussian_cloud(400, 6, 0.0, 1.0, 19);
  const DenseMatrix mixed = stack_rows(a, gaussian_cloud(400, 6, 0.0, 1.0, 20));
  const DenseMatrix separated = stack_rows(a, gaussian_cloud(400, 6, 25.0, 1.0, 21));
  std::vector<uint8_t> is_b(800, 0);
  std::fill(is_b.begin() + 400, is_b.end(), 1);
  const std::vector<int32_t> source(is_b.begin(), is_b.end());

  const KnnGraph mixed_graph = knn_within(mixed, 30);
  EXPECT_GT(scaled_ilisi(mixed_graph, source, 2), 0.85);
  EXPECT_NEAR(roc_auc(is_b, marked_neighbour_fraction(mixed_graph, is_b)), 0.5, 0.06);

  const KnnGraph separated_graph = knn_within(separated, 30);
  EXPECT_DOUBLE_EQ(scaled_ilisi(separated_graph, source, 2), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc(is_b, marked_neighbour_fraction(separated_graph, is_b)), 1.0);
}

TEST(GenerationStats, LabelTransferVotesAndBreaksTiesByTheNearest) {
  const std::vector<int32_t> labels = {0, 1, 1, 2};
  // Query 0: neighbours 1, 2, 0 -> label 1 wins 2:1. Query 1: neighbours 3, 0 -> tie, nearest is 3 (label 2).
  const KnnGraph g1 = hand_graph(3, {1, 2, 0});
  EXPECT_EQ(transfer_labels(g1, labels, 3), std::vector<int32_t>{1});
  const KnnGraph g2 = hand_graph(2, {3, 0});
  EXPECT_EQ(transfer_labels(g2, labels, 3), std::vector<int32_t>{2});
}

TEST(GenerationStats, TotalVariation) {
  EXPECT_DOUBLE_EQ(total_variation(std::vector<double>{0.5, 0.5, 0}, std::vector<double>{0.25, 0.25, 0.5}),
                   0.5);
  EXPECT_DOUBLE_EQ(total_variation(std::vector<double>{1, 0}, std::vector<double>{0, 1}), 1.0);
}

// ---- Expression matching ----

AnnData tiny_data(const std::vector<std::string>& genes, const std::vector<std::vector<float>>& rows) {
  AnnData d;
  d.X = sparse_from_dense(rows);
  d.var.index = genes;
  for (size_t i = 0; i < rows.size(); ++i) d.obs.index.push_back(fmt::format("c{}", i));
  return d;
}

TEST(GenerationExpression, MatchesGenesByNameAndNormalisesOverSharedGenes) {
  const AnnData real = tiny_data({"A", "B", "C", "D"}, {{1, 2, 3, 4}, {0, 5, 0, 5}});
  const AnnData generated = tiny_data({"D", "X", "B"}, {{6, 100, 2}, {1, 7, 0}});
  const ExpressionPair pair = match_expression(real, generated, {});
  EXPECT_EQ(pair.genes, (std::vector<std::string>{"B", "D"}));
  ASSERT_EQ(pair.real.n_cols, 2);
  // Real cell 0: B = 2, D = 4 over a shared total of 6.
  EXPECT_NEAR(pair.real.dense_row(0)[0], std::log1p(2.0 / 6 * 1e4), 1e-3);
  EXPECT_NEAR(pair.real.dense_row(0)[1], std::log1p(4.0 / 6 * 1e4), 1e-3);
  // Generated cell 0: B = 2, D = 6 (the unshared X does not count towards the total).
  EXPECT_NEAR(pair.generated.dense_row(0)[0], std::log1p(2.0 / 8 * 1e4), 1e-3);
  EXPECT_NEAR(pair.generated.dense_row(0)[1], std::log1p(6.0 / 8 * 1e4), 1e-3);
  EXPECT_EQ(pair.generated.dense_row(1)[0], 0.0f);
  EXPECT_FALSE(pair.notes.empty()) << "dropped genes are mentioned";
}

TEST(GenerationExpression, NoSharedGenesIsAClearError) {
  const AnnData real = tiny_data({"CD3E", "MS4A1"}, {{1, 2}});
  const AnnData generated = tiny_data({"ENSG00000198851", "ENSG00000156738"}, {{1, 2}});
  try {
    match_expression(real, generated, {}, "real.h5ad", "gen.h5ad");
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("share no gene names"), std::string::npos) << what;
    EXPECT_NE(what.find("real.h5ad"), std::string::npos) << what;
    EXPECT_NE(what.find("'ENSG00000198851'"), std::string::npos) << what;
  }
}

TEST(GenerationExpression, RejectsLogValuesUnlessAllowed) {
  const AnnData real = tiny_data({"A", "B"}, {{1, 2}});
  const AnnData logged = tiny_data({"A", "B"}, {{0.69f, 1.1f}});
  EXPECT_THROW(match_expression(real, logged, {}), UserError);
  ExpressionOptions allow;
  allow.allow_non_integer = true;
  EXPECT_NO_THROW(match_expression(real, logged, allow));
  const AnnData negative = tiny_data({"A", "B"}, {{-1.0f, 1.0f}});
  EXPECT_THROW(match_expression(real, negative, allow), UserError);
}

TEST(GenerationExpression, SubsamplesToEqualSizesWithASeed) {
  const auto a = subsample_indices(100, 30, 5);
  ASSERT_EQ(a.size(), 30u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end()) << "no repeats";
  EXPECT_EQ(a, subsample_indices(100, 30, 5));
  EXPECT_NE(a, subsample_indices(100, 30, 6));
  EXPECT_EQ(subsample_indices(4, 10, 1), (std::vector<int64_t>{0, 1, 2, 3}));

  std::vector<std::vector<float>> rows_a(10, {1, 1}), rows_b(25, {2, 1});
  ExpressionOptions options;
  const ExpressionPair pair =
      match_expression(tiny_data({"A", "B"}, rows_a), tiny_data({"A", "B"}, rows_b), options);
  EXPECT_EQ(pair.real.n_rows, 10);
  EXPECT_EQ(pair.generated.n_rows, 10);
  options.max_cells = 4;
  EXPECT_EQ(
      match_expression(tiny_data({"A", "B"}, rows_a), tiny_data({"A", "B"}, rows_b), options).real.n_rows, 4);
}

TEST(GenerationExpression, FilesAreReadOnlyAtTheDrawnCellsWithTheSameResultAsInMemory) {
  SimulatorConfig config;
  config.n_cells = 700;
  config.n_genes = 60;
  config.seed = 4;
  const AnnData real = simulate(config).data;
  config.n_cells = 900;
  config.seed = 5;
  const AnnData generated = simulate(config).data;
  testing::TempDir dir;
  write_h5ad(dir / "real.h5ad", real);
  write_h5ad(dir / "gen.h5ad", generated);
  ExpressionOptions options;
  options.max_cells = 250;
  options.seed = 9;
  const ExpressionPair from_files = load_expression_pair(dir / "real.h5ad", dir / "gen.h5ad", options);
  const ExpressionPair in_memory = match_expression(real, generated, options);
  EXPECT_EQ(from_files.n_cells(), 250);
  EXPECT_EQ(from_files.real_cells_in_file, 700);
  EXPECT_EQ(from_files.generated_cells_in_file, 900);
  EXPECT_EQ(from_files.real.values, in_memory.real.values);
  EXPECT_EQ(from_files.real.indices, in_memory.real.indices);
  EXPECT_EQ(from_files.generated.values, in_memory.generated.values);
  EXPECT_EQ(from_files.real_obs.index, in_memory.real_obs.index);
  EXPECT_EQ(from_files.generated_obs.index, in_memory.generated_obs.index);
  bool said_so = false;
  for (const auto& note : from_files.notes)
    said_so |= note.find("250 cells of each side are compared") != std::string::npos;
  EXPECT_TRUE(said_so);
}

// ---- The whole evaluation on simulated cell types ----

Simulation simulated(uint64_t seed, std::vector<double> type_probs = {}) {
  SimulatorConfig config;
  config.n_cells = 600;
  config.n_genes = 400;
  config.n_cell_types = 3;
  config.de_prob = 0.2;
  config.de_fac_loc = 1.0;
  config.cell_type_probs = std::move(type_probs);
  config.seed = seed;
  return simulate(config, 2);
}

GenerationOptions labelled_options() {
  GenerationOptions options;
  options.label = "cell_type";
  options.n_pcs = 20;
  options.threads = 2;
  return options;
}

TEST(GenerationEvaluate, SameDistributionLooksRealAndOneTypeOnlyDoesNot) {
  const Simulation real = simulated(1);
  // Halves of one simulation share the gene programmes: one is "real", the other "generated".
  std::vector<int64_t> first, second;
  for (int64_t i = 0; i < real.data.n_obs(); ++i) (i % 2 ? second : first).push_back(i);
  const AnnData half_a = real.data.select_cells(first);
  const AnnData half_b = real.data.select_cells(second);
  const GenerationEvaluation good =
      evaluate_generation(match_expression(half_a, half_b, {}), labelled_options());
  EXPECT_GT(good.metrics.mean_pearson, 0.95);
  EXPECT_NEAR(good.metrics.knn_auc, 0.5, 0.08);
  EXPECT_GT(good.metrics.ilisi, 0.8);
  EXPECT_LT(good.metrics.proportion_tv, 0.08);
  EXPECT_GT(good.metrics.marker_pearson_mean, 0.9);
  EXPECT_EQ(good.metrics.generated_grouping, "declared");
  EXPECT_GT(good.metrics.label_agreement, 0.9) << "well-separated types transfer correctly";
  ASSERT_EQ(good.metrics.cell_types.size(), 3u);
  // Per type, the agreements weighted by the declared counts give back the overall agreement.
  const Column& declared = *half_b.obs.find("cell_type");
  double weighted = 0, n_declared = 0;
  for (const auto& t : good.metrics.cell_types) {
    double n = 0;
    for (int64_t i = 0; i < declared.size(); ++i) n += declared.label(i) == t.name ? 1 : 0;
    ASSERT_TRUE(std::isfinite(t.agreement)) << t.name;
    EXPECT_GT(t.agreement, 0.8) << t.name;
    weighted += t.agreement * n;
    n_declared += n;
  }
  EXPECT_NEAR(weighted / n_declared, good.metrics.label_agreement, 1e-12);

  // Generated cells all of type 0: proportions far off, the kNN classifier sees it, MMD grows.
  std::vector<int64_t> type0;
  for (const int64_t i : second) {
    if (real.truth.cell_type[static_cast<size_t>(i)] == 0) type0.push_back(i);
  }
  std::vector<int64_t> repeated;
  while (repeated.size() < second.size()) repeated.push_back(type0[repeated.size() % type0.size()]);
  const AnnData only_type0 = real.data.select_cells(repeated);
  const GenerationEvaluation bad =
      evaluate_generation(match_expression(half_a, only_type0, {}), labelled_options());
  EXPECT_GT(bad.metrics.proportion_tv, 0.5);
  EXPECT_GT(bad.metrics.knn_auc, 0.8);
  EXPECT_GT(bad.metrics.mmd, 5 * good.metrics.mmd);
  EXPECT_LT(bad.metrics.ilisi, good.metrics.ilisi);
  EXPECT_NEAR(bad.metrics.cell_types[0].generated_fraction, 1.0, 0.05);

  const nlohmann::json j = to_json(good.metrics);
  EXPECT_DOUBLE_EQ(j["knn_auc"].get<double>(), good.metrics.knn_auc);
  EXPECT_EQ(j["cell_types"]["per_type"].size(), 3u);
  const std::string table = format_metrics_table(good.metrics);
  EXPECT_NE(table.find("kNN real-vs-generated AUC"), std::string::npos);
  EXPECT_NE(table.find("type_0"), std::string::npos);
}

TEST(GenerationEvaluate, MissingLabelColumnInRealCellsIsAUserError) {
  const Simulation real = simulated(3);
  GenerationOptions options = labelled_options();
  options.label = "celltype";
  try {
    evaluate_generation(match_expression(real.data, real.data, {}, "real.h5ad", "gen.h5ad"), options);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'celltype'"), std::string::npos) << what;
    EXPECT_NE(what.find("cell_type"), std::string::npos) << "lists the available columns: " << what;
  }
}

TEST(GenerationEvaluate, TransfersLabelsWhenTheGeneratedFileHasNone) {
  const Simulation real = simulated(4);
  std::vector<int64_t> first, second;
  for (int64_t i = 0; i < real.data.n_obs(); ++i) (i % 2 ? second : first).push_back(i);
  AnnData generated = real.data.select_cells(second);
  generated.obs.columns.clear();
  const GenerationEvaluation e =
      evaluate_generation(match_expression(real.data.select_cells(first), generated, {}), labelled_options());
  EXPECT_EQ(e.metrics.generated_grouping, "transferred");
  EXPECT_TRUE(std::isnan(e.metrics.label_agreement));
  // The transferred labels recover the hidden truth.
  int64_t correct = 0;
  for (size_t i = 0; i < second.size(); ++i) {
    correct += e.metrics.cell_types[static_cast<size_t>(e.generated_types[i])].name ==
               "type_" + std::to_string(real.truth.cell_type[static_cast<size_t>(second[i])]);
  }
  EXPECT_GT(static_cast<double>(correct) / static_cast<double>(second.size()), 0.9);
}

TEST(GenerationStats, HeldOutClassifierAucOnMixedAndSeparatedToyData) {
  const DenseMatrix a = gaussian_cloud(500, 6, 0.0, 1.0, 31);
  std::vector<uint8_t> is_b(1000, 0);
  std::fill(is_b.begin() + 500, is_b.end(), 1);
  const double mixed =
      knn_classifier_auc(stack_rows(a, gaussian_cloud(500, 6, 0.0, 1.0, 32)), is_b, 5, 0.3, 1);
  EXPECT_NEAR(mixed, 0.5, 0.07);
  EXPECT_DOUBLE_EQ(knn_classifier_auc(stack_rows(a, gaussian_cloud(500, 6, 25.0, 1.0, 33)), is_b, 5, 0.3, 1),
                   1.0);
  // Half way: partly separable, between the two.
  const double shifted =
      knn_classifier_auc(stack_rows(a, gaussian_cloud(500, 6, 0.6, 1.0, 34)), is_b, 5, 0.3, 1);
  EXPECT_GT(shifted, mixed + 0.1);
  EXPECT_LT(shifted, 0.99);
}

// The copy check: generated cells that are the training cells sit at distance 0 from them; new
// cells of the same distribution sit as far from them as the real held-out cells do.
TEST(GenerationEvaluate, CopyCheckTellsCopiesFromNewCells) {
  SimulatorConfig c;
  c.n_cells = 900;
  c.n_genes = 200;
  c.n_cell_types = 3;
  c.seed = 12;
  const Simulation all = simulate(c);
  std::vector<int64_t> train_rows, real_rows, new_rows;
  for (int64_t i = 0; i < all.data.n_obs(); ++i)
    (i % 3 == 0 ? train_rows : i % 3 == 1 ? real_rows : new_rows).push_back(i);
  const AnnData train = all.data.select_cells(train_rows);
  const auto score = [&](const AnnData& generated) {
    ExpressionPair pair = match_expression(all.data.select_cells(real_rows), generated, {});
    pair.train = log_normalize(train.X);
    pair.train_columns.resize(static_cast<size_t>(pair.n_genes()));
    std::iota(pair.train_columns.begin(), pair.train_columns.end(), 0);
    return evaluate_generation(pair, {}).metrics;
  };
  const GenerationMetrics copies = score(train);
  EXPECT_NEAR(copies.copy_generated_distance, 0.0, 1e-3);
  EXPECT_LT(copies.copy_ratio, 0.01);
  EXPECT_EQ(copies.copy_train_cells, 300);
  const GenerationMetrics fresh = score(all.data.select_cells(new_rows));
  EXPECT_NEAR(fresh.copy_ratio, 1.0, 0.1);
  EXPECT_NEAR(fresh.classifier_auc, 0.5, 0.1);
  const nlohmann::json j = to_json(fresh);
  EXPECT_DOUBLE_EQ(j["copy_ratio"].get<double>(), fresh.copy_ratio);
  EXPECT_DOUBLE_EQ(j["classifier_auc"].get<double>(), fresh.classifier_auc);
}

}  // namespace
}  // namespace lingshu
