// The gene-gene structure metric (README "Evaluation") against values known another way: identical
// cells (1 and 0), genes permuted independently across cells (about 0), a case worked by hand, a
// direct dense computation and numpy's corrcoef, and the per-type rules (>= 50 cells on both sides,
// weights by real cells) through the whole evaluation.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "eval/expression.h"
#include "eval/generation_metrics.h"
#include "test_support.h"

namespace lingshu {
namespace {

using Rows = std::vector<std::vector<float>>;

CsrMatrix csr(const Rows& rows) {
  CsrMatrix m;
  m.n_cols = static_cast<int64_t>(rows[0].size());
  for (const auto& r : rows) m.append_dense_row(r);
  m.n_rows = static_cast<int64_t>(rows.size());
  return m;
}

std::vector<int64_t> all_rows(const Rows& rows) {
  std::vector<int64_t> out(rows.size());
  std::iota(out.begin(), out.end(), 0);
  return out;
}

GeneGeneStructure structure(const Rows& real, const Rows& generated, int n_genes) {
  return gene_gene_structure(csr(real), all_rows(real), csr(generated), all_rows(generated), n_genes);
}

// Cells whose genes come in modules of `per_module` genes driven by one shared factor each (strong
// within-module correlation, none between modules), as non-negative log-like values with some zeros.
Rows block_cells(int n_cells, int n_modules, int per_module, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Rows rows(static_cast<size_t>(n_cells), std::vector<float>(static_cast<size_t>(n_modules * per_module)));
  for (auto& row : rows) {
    for (int module = 0; module < n_modules; ++module) {
      const double factor = normal(rng);
      for (int g = 0; g < per_module; ++g) {
        // Genes of a module differ in level and loading, so their variances differ too.
        const double v = 1.5 + 0.3 * g + (0.8 + 0.1 * module) * factor + 0.4 * normal(rng);
        row[static_cast<size_t>(module * per_module + g)] = static_cast<float>(std::max(0.0, v));
      }
    }
  }
  return rows;
}

// Each gene's values shuffled across cells on its own: every marginal kept, correlations destroyed.
Rows permute_genes(Rows rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> column(rows.size());
  for (size_t g = 0; g < rows[0].size(); ++g) {
    for (size_t i = 0; i < rows.size(); ++i) column[i] = rows[i][g];
    std::shuffle(column.begin(), column.end(), rng);
    for (size_t i = 0; i < rows.size(); ++i) rows[i][g] = column[i];
  }
  return rows;
}

TEST(GeneGeneStructure, IdenticalCellsScoreOneAndZero) {
  const Rows real = block_cells(200, 3, 5, 1);
  const GeneGeneStructure s = structure(real, real, 50);
  ASSERT_EQ(s.genes.size(), 15u) << "fewer genes than asked for: all of them";
  EXPECT_NEAR(s.corr, 1.0, 1e-12);
  EXPECT_NEAR(s.mad, 0.0, 1e-12);
  EXPECT_EQ(s.real_corr, s.generated_corr);
}

TEST(GeneGeneStructure, IndependentlyPermutedGenesScoreNearZero) {
  const Rows real = block_cells(2000, 3, 5, 2);
  const GeneGeneStructure s = structure(real, permute_genes(real, 3), 50);
  ASSERT_EQ(s.genes.size(), 15u);
  // Within a module real r is about 0.8, between modules about 0: the structure is strong.
  EXPECT_GT(s.real_corr[0 * 15 + 1], 0.5);
  // 105 pairs against pure sampling noise: the correlation of correlations is near 0 (sd ~0.1), and the
  // mean |difference| is about the mean |r| of the real pairs.
  EXPECT_LT(std::abs(s.corr), 0.3) << s.corr;
  double mean_abs_real = 0;
  for (size_t i = 0; i < 15; ++i) {
    for (size_t j = i + 1; j < 15; ++j) mean_abs_real += std::abs(s.real_corr[i * 15 + j]) / 105.0;
  }
  EXPECT_NEAR(s.mad, mean_abs_real, 0.05);
  // Another sample of the same cells (not a copy) keeps the structure.
  const GeneGeneStructure again = structure(real, block_cells(2000, 3, 5, 4), 50);
  EXPECT_GT(again.corr, 0.95);
  EXPECT_LT(again.mad, 0.05);
}

TEST(GeneGeneStructure, HandWorkedCase) {
  // Real: g1 = 2 g0 (r = 1), g2 = reversed g0 (r = -1); g3 never expressed (no variance: left out).
  // Variances: g1 5, g0 1.25, g2 1.25 -> order g1, g0, g2 (the tie goes to the lower column).
  const Rows real = {{1, 2, 4, 0}, {2, 4, 3, 0}, {3, 6, 2, 0}, {4, 8, 1, 0}};
  // Generated: g0 as before, g1 reversed (r(g0, g1) = -1), g2 = {1, 2, 4, 3}: centred
  // {-1.5, -0.5, 1.5, 0.5} against g0's {-1.5, -0.5, 0.5, 1.5}: r = 4 / 5 = 0.8, and -0.8 with g1.
  const Rows generated = {{1, 4, 1, 0}, {2, 3, 2, 0}, {3, 2, 4, 0}, {4, 1, 3, 0}};
  const GeneGeneStructure s = structure(real, generated, 50);
  EXPECT_EQ(s.genes, (std::vector<int64_t>{1, 0, 2}));
  // Pairs (g0, g1), (g0, g2), (g1, g2): real {1, -1, -1}, generated {-1, 0.8, -0.8}.
  // |differences| {2, 1.8, 0.2}: mean 4/3. Pearson: centred real {4/3, -2/3, -2/3} (sum of squares
  // 8/3), centred generated {-2/3, 17/15, -7/15} (438/225), cross products -4/3.
  EXPECT_NEAR(s.mad, 4.0 / 3.0, 1e-12);
  EXPECT_NEAR(s.corr, (-4.0 / 3.0) / std::sqrt(8.0 / 3.0 * 438.0 / 225.0), 1e-12);
  // Matrices in the order of s.genes: (g1, g0) is entry (0, 1).
  EXPECT_NEAR(s.real_corr[0 * 3 + 1], 1.0, 1e-12);
  EXPECT_NEAR(s.generated_corr[0 * 3 + 1], -1.0, 1e-12);
  EXPECT_NEAR(s.generated_corr[1 * 3 + 2], 0.8, 1e-12);

  // Asking for 2 genes: too few to score.
  EXPECT_TRUE(structure(real, generated, 2).genes.empty());
  // A generated side where only 2 of the chosen genes vary: not scored.
  const Rows flat = {{1, 5, 1, 0}, {2, 5, 2, 0}, {3, 5, 4, 0}, {4, 5, 3, 0}};
  const GeneGeneStructure none = structure(real, flat, 50);
  EXPECT_TRUE(none.genes.empty());
  EXPECT_TRUE(std::isnan(none.corr));
  EXPECT_TRUE(std::isnan(none.mad));
}

// The metric computed the plain way on dense columns: variances, top genes, textbook Pearson.
struct Direct {
  std::vector<size_t> genes;
  double corr = 0;
  double mad = 0;
};

Direct direct(const Rows& real, const Rows& generated, size_t n_genes) {
  const size_t n_cols = real[0].size();
  const auto column = [](const Rows& rows, size_t g) {
    std::vector<double> out;
    for (const auto& r : rows) out.push_back(r[g]);
    return out;
  };
  const auto mean = [](const std::vector<double>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  };
  const auto variance = [&](const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0;
    for (const double x : v) s += (x - m) * (x - m);
    return s / static_cast<double>(v.size());
  };
  const auto pearson = [&](const std::vector<double>& x, const std::vector<double>& y) {
    const double mx = mean(x), my = mean(y);
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      sxy += (x[i] - mx) * (y[i] - my);
      sxx += (x[i] - mx) * (x[i] - mx);
      syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
  };
  Direct out;
  std::vector<std::pair<double, size_t>> by_variance;
  for (size_t g = 0; g < n_cols; ++g) {
    const double v = variance(column(real, g));
    if (v > 0) by_variance.emplace_back(-v, g);
  }
  std::sort(by_variance.begin(), by_variance.end());
  for (size_t i = 0; i < std::min(n_genes, by_variance.size()); ++i)
    out.genes.push_back(by_variance[i].second);
  std::vector<double> real_upper, generated_upper;
  for (size_t i = 0; i < out.genes.size(); ++i) {
    for (size_t j = i + 1; j < out.genes.size(); ++j) {
      real_upper.push_back(pearson(column(real, out.genes[i]), column(real, out.genes[j])));
      generated_upper.push_back(pearson(column(generated, out.genes[i]), column(generated, out.genes[j])));
      out.mad += std::abs(real_upper.back() - generated_upper.back());
    }
  }
  out.mad /= static_cast<double>(real_upper.size());
  out.corr = pearson(real_upper, generated_upper);
  return out;
}

std::string numpy_rows(const Rows& rows) {
  std::string out = "np.array([";
  for (const auto& r : rows) {
    out += "[";
    for (const float v : r) out += fmt::format("{:.9g},", v);
    out += "],";
  }
  return out + "], dtype=np.float64)";
}

TEST(GeneGeneStructure, MatchesADirectComputationAndNumpy) {
  // 12 genes, 6 of them compared; sparse-looking values, a real gene that never varies, and a chosen
  // gene that is constant in the generated cells (correlations 0).
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0, 1);
  Rows real = block_cells(60, 3, 4, 6);
  Rows generated = block_cells(45, 3, 4, 7);
  for (auto* rows : {&real, &generated}) {
    for (auto& r : *rows) {
      for (float& v : r) v = u(rng) < 0.3 ? 0.0f : v;
      r[7] = 0.0f;  // never expressed in either file
    }
  }
  const GeneGeneStructure s = structure(real, generated, 6);
  ASSERT_EQ(s.genes.size(), 6u);
  const size_t constant = static_cast<size_t>(s.genes[2]);
  for (auto& r : generated) r[constant] = 1.25f;
  const GeneGeneStructure with_constant = structure(real, generated, 6);
  ASSERT_EQ(with_constant.genes, s.genes) << "the genes are chosen on the real cells only";
  for (size_t j = 0; j < 6; ++j) EXPECT_EQ(with_constant.generated_corr[2 * 6 + j], 0.0);

  const Direct expected = direct(real, generated, 6);
  ASSERT_EQ(expected.genes.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(static_cast<size_t>(with_constant.genes[i]), expected.genes[i]);
  EXPECT_NEAR(with_constant.corr, expected.corr, 1e-9);
  EXPECT_NEAR(with_constant.mad, expected.mad, 1e-9);

  if (!testing::python_has("numpy")) GTEST_SKIP() << "numpy not available to /usr/bin/python3";
  const std::string script =
      "import numpy as np, warnings\n"
      "warnings.simplefilter('ignore')  # corrcoef warns about the constant column, then is overwritten\n"
      "real = " +
      numpy_rows(real) + "\ngen = " + numpy_rows(generated) +
      "\n"
      "var = real.var(axis=0)\n"
      "order = [g for g in np.argsort(-var, kind='stable') if var[g] > 0][:6]\n"
      "def corr(x):\n"
      "    sd = x.std(axis=0)\n"
      "    c = np.corrcoef(x, rowvar=False)\n"
      "    c[sd == 0, :] = 0\n"
      "    c[:, sd == 0] = 0\n"
      "    return c\n"
      "a = corr(real[:, order])\n"
      "b = corr(gen[:, order])\n"
      "iu = np.triu_indices(len(order), 1)\n"
      "print(repr(float(np.corrcoef(a[iu], b[iu])[0, 1])), repr(float(np.abs(a[iu] - b[iu]).mean())))\n";
  const auto result = testing::run_python(script);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::istringstream in(result.output);
  double corr = 0, mad = 0;
  ASSERT_TRUE(in >> corr >> mad) << result.output;
  EXPECT_NEAR(with_constant.corr, corr, 1e-9);
  EXPECT_NEAR(with_constant.mad, mad, 1e-9);
}

// ---- Through evaluate_generation: which types count, and how they are weighted ----

// An expression pair built by hand: cells of named types on each side (the generated file declares
// its labels), already log-normalised values.
ExpressionPair labelled_pair(const std::vector<std::pair<std::string, Rows>>& real,
                             const std::vector<std::pair<std::string, Rows>>& generated) {
  ExpressionPair pair;
  const size_t n_genes = real[0].second[0].size();
  for (size_t g = 0; g < n_genes; ++g) pair.genes.push_back(fmt::format("G{}", g));
  const auto side = [](const std::vector<std::pair<std::string, Rows>>& groups, CsrMatrix& matrix,
                       DataFrame& obs) {
    Rows rows;
    std::vector<std::string> labels;
    for (const auto& [name, cells] : groups) {
      rows.insert(rows.end(), cells.begin(), cells.end());
      labels.insert(labels.end(), cells.size(), name);
    }
    matrix = csr(rows);
    for (size_t i = 0; i < rows.size(); ++i) obs.index.push_back(fmt::format("c{}", i));
    obs.columns.push_back(Column::categorical("cell_type", labels));
  };
  side(real, pair.real, pair.real_obs);
  side(generated, pair.generated, pair.generated_obs);
  return pair;
}

GenerationOptions options() {
  GenerationOptions o;
  o.label = "cell_type";
  o.n_pcs = 5;
  o.threads = 1;
  return o;
}

Rows take(const Rows& rows, size_t begin, size_t n) {
  return Rows(rows.begin() + static_cast<std::ptrdiff_t>(begin),
              rows.begin() + static_cast<std::ptrdiff_t>(begin + n));
}

TEST(GeneGeneEvaluate, TypesNeedFiftyCellsOnBothSidesAndWeighByRealCells) {
  // A: structure kept (another sample of the same modules); B: genes permuted (structure lost);
  // C: 49 real cells; D: 49 generated cells. 289 cells per side.
  const Rows a = block_cells(230, 2, 4, 11);
  const Rows b = block_cells(130, 2, 4, 12);
  const Rows c = block_cells(109, 2, 4, 13);
  const Rows d = block_cells(109, 2, 4, 14);
  const std::vector<std::pair<std::string, Rows>> real = {
      {"A", take(a, 0, 120)}, {"B", take(b, 0, 60)}, {"C", take(c, 0, 49)}, {"D", take(d, 0, 60)}};
  const std::vector<std::pair<std::string, Rows>> generated = {{"A", take(a, 120, 110)},
                                                               {"B", permute_genes(take(b, 60, 70), 15)},
                                                               {"C", take(c, 49, 60)},
                                                               {"D", take(d, 60, 49)}};
  const ExpressionPair pair = labelled_pair(real, generated);
  const GenerationEvaluation e = evaluate_generation(pair, options());
  const GenerationMetrics& m = e.metrics;
  ASSERT_EQ(m.generated_grouping, "declared");
  ASSERT_EQ(m.cell_types.size(), 4u);
  const CellTypeResult& ta = m.cell_types[0];
  const CellTypeResult& tb = m.cell_types[1];
  const CellTypeResult& tc = m.cell_types[2];
  const CellTypeResult& td = m.cell_types[3];
  ASSERT_EQ(ta.name, "A");

  // Each scored type's values are the statistic on exactly its cells.
  const auto rows_of = [](int64_t begin, int64_t n) {
    std::vector<int64_t> out(static_cast<size_t>(n));
    std::iota(out.begin(), out.end(), begin);
    return out;
  };
  const GeneGeneStructure sa =
      gene_gene_structure(pair.real, rows_of(0, 120), pair.generated, rows_of(0, 110), 50);
  const GeneGeneStructure sb =
      gene_gene_structure(pair.real, rows_of(120, 60), pair.generated, rows_of(110, 70), 50);
  EXPECT_DOUBLE_EQ(ta.gene_gene_corr, sa.corr);
  EXPECT_DOUBLE_EQ(ta.gene_gene_mad, sa.mad);
  EXPECT_DOUBLE_EQ(tb.gene_gene_corr, sb.corr);
  EXPECT_EQ(ta.gene_gene_genes, 8);
  EXPECT_GT(ta.gene_gene_corr, 0.9) << "structure kept";
  EXPECT_LT(std::abs(tb.gene_gene_corr), 0.6) << "structure lost";

  // 49 cells on either side: not scored.
  EXPECT_TRUE(std::isnan(tc.gene_gene_corr));
  EXPECT_TRUE(std::isnan(td.gene_gene_corr));
  EXPECT_EQ(tc.gene_gene_genes, 0);
  EXPECT_EQ(m.gene_gene_types, 2);

  // Weighted by real cells (120 and 60), not by generated cells or equally.
  EXPECT_NEAR(m.gene_gene_corr, (120 * sa.corr + 60 * sb.corr) / 180, 1e-12);
  EXPECT_NEAR(m.gene_gene_mad, (120 * sa.mad + 60 * sb.mad) / 180, 1e-12);
  EXPECT_GT(std::abs(m.gene_gene_corr - (sa.corr + sb.corr) / 2), 0.01) << "the test tells weightings apart";
  const bool noted = std::any_of(m.notes.begin(), m.notes.end(), [](const std::string& n) {
    return n.find("gene-gene structure scored on 2 of 4") != std::string::npos;
  });
  EXPECT_TRUE(noted);

  // The largest scored type's matrices are kept for the report.
  EXPECT_EQ(e.gene_gene_type, 0);
  EXPECT_EQ(e.gene_gene_genes.size(), 8u);
  EXPECT_EQ(e.gene_gene_real, sa.real_corr);

  // With the threshold at 49, C and D count too.
  GenerationOptions lower = options();
  lower.gene_gene_min_cells = 49;
  const GenerationMetrics all = evaluate_generation(pair, lower).metrics;
  EXPECT_EQ(all.gene_gene_types, 4);
  EXPECT_TRUE(std::isfinite(all.cell_types[2].gene_gene_corr));
  EXPECT_TRUE(std::isfinite(all.cell_types[3].gene_gene_corr));

  // JSON and the table carry the numbers.
  const nlohmann::json j = to_json(m);
  EXPECT_DOUBLE_EQ(j["gene_gene_corr"].get<double>(), m.gene_gene_corr);
  EXPECT_DOUBLE_EQ(j["gene_gene_mad"].get<double>(), m.gene_gene_mad);
  EXPECT_EQ(j["cell_types"]["gene_gene_types"], 2);
  EXPECT_DOUBLE_EQ(j["cell_types"]["per_type"][0]["gene_gene_corr"].get<double>(), ta.gene_gene_corr);
  EXPECT_TRUE(j["cell_types"]["per_type"][2]["gene_gene_corr"].is_null());
  const std::string table = format_metrics_table(m);
  EXPECT_NE(table.find("gene-gene corr. of correlations"), std::string::npos) << table;
  EXPECT_NE(table.find("~real halves"), std::string::npos) << table;
}

TEST(GeneGeneEvaluate, TransferredLabelsGroupTheGeneratedCellsWhenNoneAreDeclared) {
  // Two types far apart in expression, so kNN transfer recovers them; the generated file has no labels.
  Rows low = block_cells(200, 2, 4, 21);
  Rows high = block_cells(200, 2, 4, 22);
  for (auto& r : high) {
    for (float& v : r) v += 6.0f;
  }
  ExpressionPair pair = labelled_pair({{"low", take(low, 0, 100)}, {"high", take(high, 0, 100)}},
                                      {{"low", take(low, 100, 100)}, {"high", take(high, 100, 100)}});
  pair.generated_obs.columns.clear();
  const GenerationEvaluation e = evaluate_generation(pair, options());
  EXPECT_EQ(e.metrics.generated_grouping, "transferred");
  EXPECT_EQ(e.metrics.gene_gene_types, 2);
  EXPECT_GT(e.metrics.gene_gene_corr, 0.8);
}

TEST(GeneGeneEvaluate, NaNWithANoteWithoutLabelsOrQualifyingTypes) {
  const Rows a = block_cells(80, 2, 4, 31);
  const ExpressionPair pair = labelled_pair({{"A", take(a, 0, 40)}}, {{"A", take(a, 40, 40)}});
  const auto has_note = [](const GenerationMetrics& m, const std::string& what) {
    return std::any_of(m.notes.begin(), m.notes.end(),
                       [&](const std::string& n) { return n.find(what) != std::string::npos; });
  };
  // 40 cells a side: no type qualifies.
  const GenerationMetrics few = evaluate_generation(pair, options()).metrics;
  EXPECT_TRUE(std::isnan(few.gene_gene_corr));
  EXPECT_TRUE(std::isnan(few.gene_gene_mad));
  EXPECT_TRUE(has_note(few, "at least 50 real and 50 generated cells"));
  EXPECT_TRUE(to_json(few)["gene_gene_corr"].is_null());

  // No label column asked for.
  GenerationOptions unlabelled = options();
  unlabelled.label.clear();
  const GenerationMetrics none = evaluate_generation(pair, unlabelled).metrics;
  EXPECT_TRUE(std::isnan(none.gene_gene_corr));
  EXPECT_TRUE(has_note(none, "pass --label"));
  EXPECT_NE(format_metrics_table(none).find("gene-gene corr. of correlations"), std::string::npos);
}

}  // namespace
}  // namespace lingshu
