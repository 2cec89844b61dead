// The cell factors' start (train/cell_factor_init.h): on cells with one known gene program whose
// activity varies from cell to cell, and two labels that differ in other genes, the leading
// factor is the program (not the label difference, which is centred away), its scores have unit
// variance, and a gene's output loading has the sign of its input loading. The program's genes
// are narrowed to what the factors leave of their spread; genes of pure counting noise hardly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "train/cell_factor_init.h"

namespace lingshu {
namespace {

constexpr int64_t kCells = 600, kGenes = 30;
constexpr int kProgram = 8;  // genes 0..7 follow the program; genes 20..29 differ by label

struct Fixture {
  CsrMatrix counts;
  std::vector<std::vector<int64_t>> codes{std::vector<int64_t>(kCells)};
  Tokenizer tokenizer;
  GenePatching patching = GenePatching::make(kGenes, 8, 3);
  torch::Tensor levels;
};

Fixture make_fixture() {
  Fixture f;
  f.counts.n_cols = kGenes;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  for (int64_t i = 0; i < kCells; ++i) {
    const int64_t label = 1 + i % 2;
    f.codes[0][static_cast<size_t>(i)] = label;
    const double activity = normal(rng);
    std::vector<float> row(kGenes);
    for (int g = 0; g < kGenes; ++g) {
      double mean = 3.0;
      if (g < kProgram) mean = std::exp(1.0 + 0.8 * activity);
      if (g >= 20 && label == 2) mean *= 6;
      row[static_cast<size_t>(g)] = static_cast<float>(std::poisson_distribution<int>(mean)(rng));
    }
    f.counts.append_dense_row(row);
  }
  f.tokenizer = Tokenizer::fit(f.counts, {16, 8, 0.9999});
  f.levels = torch::log1p(torch::tensor(f.tokenizer.lower_edges(), torch::kDouble));
  return f;
}

TEST(CellFactorInit, TheLeadingFactorIsTheProgramWithUnitVarianceScores) {
  const Fixture f = make_fixture();
  const auto start = cell_factor_start(f.counts, f.tokenizer, f.patching, f.levels, f.codes, 3);
  ASSERT_EQ(start.in_loading.sizes(), (std::vector<int64_t>{f.patching.n_positions(), 3}));
  ASSERT_EQ(start.out_loading.sizes(), start.in_loading.sizes());
  EXPECT_EQ(start.in_loading.slice(0, kGenes).abs().sum().item<double>(), 0.0) << "padding loads nothing";

  // Levels by position, centred within labels, another way: per label mean of each column.
  const auto position_of = f.patching.position_of_gene();
  auto x = torch::zeros({kCells, kGenes}, torch::kDouble);
  for (int64_t i = 0; i < kCells; ++i) {
    const auto row = f.counts.dense_row(i);
    for (int g = 0; g < kGenes; ++g)
      x[i][position_of[static_cast<size_t>(g)]] = f.levels[f.tokenizer.encode(row[static_cast<size_t>(g)])];
  }
  const auto label = torch::tensor(f.codes[0], torch::kLong);
  for (const int64_t l : {1, 2}) {
    const auto rows = label.eq(l).nonzero().squeeze(1);
    x.index_put_({rows}, x.index_select(0, rows) - x.index_select(0, rows).mean(0));
  }
  const auto first = start.in_loading.slice(0, 0, kGenes).select(1, 0).to(torch::kDouble);
  const auto scores = x.matmul(first);
  EXPECT_NEAR(scores.var().item<double>(), 1.0, 0.02);

  double program = 0, labelled = 0;
  const auto out = start.out_loading.select(1, 0);
  for (int g = 0; g < kGenes; ++g) {
    const auto pos = position_of[static_cast<size_t>(g)];
    const double w = first[pos].item<double>();
    if (g < kProgram) {
      program += w * w;
      EXPECT_GT(w * out[pos].item<double>(), 0) << "gene " << g << " rises with the factor it loads on";
    }
    if (g >= 20) labelled += w * w;
  }
  const double total = first.pow(2).sum().item<double>();
  EXPECT_GT(program / total, 0.9);
  EXPECT_LT(labelled / total, 0.05) << "the label difference is centred away";

  // The narrowed spread 1 / (1/V + 2c) of every gene is its variance left after regressing its
  // levels on the three scores (at least 0.3 V and 0.15): most of the spread for the program's genes,
  // little for the genes of pure counting noise (the second and third factors fit some noise here).
  const auto all_scores = x.matmul(start.in_loading.slice(0, 0, kGenes).to(torch::kDouble));
  const auto fit = std::get<0>(torch::linalg_lstsq(all_scores, x, {}, {}));
  const auto residual = (x - all_scores.matmul(fit)).pow(2).mean(0);
  const auto variance = x.pow(2).mean(0);
  for (int g = 0; g < 20; ++g) {
    const auto pos = position_of[static_cast<size_t>(g)];
    const double v = variance[pos].item<double>();
    const double narrowed = 1.0 / (1.0 / v + 2.0 * start.narrowing[pos].item<double>());
    EXPECT_NEAR(narrowed, std::max({residual[pos].item<double>(), 0.3 * v, 0.15}), 0.02 * v) << "gene " << g;
    if (g < kProgram) {
      EXPECT_LT(narrowed, 0.35 * v) << "program gene " << g;
    } else {
      EXPECT_GT(narrowed, 0.5 * v) << "noise gene " << g;
    }
  }
}

}  // namespace
}  // namespace lingshu
