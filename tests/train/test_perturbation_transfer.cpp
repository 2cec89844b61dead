// Transfer weights of perturbations: an effect that is the same in every context carries over
// (weight near 1), one that differs by context does not (near 0), and a perturbation measured in one
// context gets the mean of the others.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "data/conditions.h"
#include "data/preprocess.h"
#include "train/perturbation_transfer.h"

namespace lingshu {
namespace {

ConditionField field(const std::string& column, std::vector<std::string> labels) {
  ConditionField f;
  f.column = column;
  f.labels = std::move(labels);
  return f;
}

TEST(PerturbationTransfer, SharedEffectsCarryOverContextSpecificOnesDoNot) {
  constexpr int kGenes = 200, kCells = 60;
  const std::vector<std::string> contexts{"A", "B", "C"};
  // P3..P8 do nothing: with them a context's perturbed state is mostly unperturbed cells, as in a
  // screen of many perturbations.
  auto pert = field("condition", {"P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "control"});
  pert.is_perturbation = true;
  pert.control = "control";
  auto state = field("perturbation_state", {"A/perturbed", "B/perturbed", "C/perturbed"});
  state.is_state = true;
  const std::vector<ConditionField> fields{field("cell_type", contexts), pert, state};
  std::vector<std::string> genes;
  for (int g = 0; g < kGenes; ++g) genes.push_back(fmt::format("G{}", g));

  std::mt19937 rng(3);
  std::lognormal_distribution<double> base_rate(1.0, 1.0);
  std::vector<double> base(kGenes);
  for (auto& b : base) b = base_rate(rng);
  CsrMatrix counts;
  counts.n_cols = kGenes;
  std::vector<std::vector<int64_t>> codes(3);
  for (int c = 0; c < 3; ++c) {
    // P1 moves other genes in every context; P2 is measured in context A only.
    std::vector<int> specific(kGenes, 0);
    for (int k = 0; k < 20; ++k) specific[static_cast<size_t>((37 * c + 53 * k) % kGenes)] = 1;
    for (int p = 0; p < 9; ++p) {
      if (p == 2 && c > 0) continue;
      for (int cell = 0; cell < kCells; ++cell) {
        std::vector<float> row(kGenes);
        for (int g = 0; g < kGenes; ++g) {
          double rate = base[static_cast<size_t>(g)];
          if (p == 0 && g < 20) rate *= 4.0;
          if (p == 1 && specific[static_cast<size_t>(g)]) rate *= 4.0;
          if (p == 2 && g >= 180) rate *= 4.0;
          row[static_cast<size_t>(g)] = static_cast<float>(std::poisson_distribution<int>(rate)(rng));
        }
        counts.append_dense_row(row);
        codes[0].push_back(c + 1);
        codes[1].push_back(p + 1);
        codes[2].push_back(c + 1);
      }
    }
  }
  const auto weight = perturbation_transfer(log_normalize(counts), codes, fields, genes);
  ASSERT_EQ(weight.size(), 10u);
  EXPECT_GT(weight[0], 0.8);
  EXPECT_LT(weight[1], 0.3);
  double measured = 0;
  for (const int p : {0, 1, 3, 4, 5, 6, 7, 8}) measured += weight[static_cast<size_t>(p)] / 8;
  EXPECT_NEAR(weight[2], measured, 1e-12);
  EXPECT_EQ(weight[9], 1.0);  // the control
  // Without a state field there is nothing to weigh against: every weight is 1.
  const auto plain =
      perturbation_transfer(log_normalize(counts), {codes[0], codes[1]}, {fields[0], fields[1]}, genes);
  EXPECT_EQ(plain, std::vector<double>(10, 1.0));
}

// Cells of `contexts` contexts under perturbations named after genes G0..G3 (plus controls), each
// multiplying its own target's rate by its factor; 40 genes at rate 3.
struct TargetScreen {
  CsrMatrix counts;
  std::vector<std::vector<int64_t>> codes{{}, {}, {}};
  std::vector<ConditionField> fields;
  std::vector<std::string> genes;
};

TargetScreen target_screen(const std::vector<double>& factor, int contexts) {
  constexpr int kGenes = 40, kCells = 80;
  TargetScreen out;
  std::vector<std::string> labels, states;
  for (size_t p = 0; p < factor.size(); ++p) labels.push_back(fmt::format("G{}", p));
  labels.push_back("control");
  for (int c = 0; c < contexts; ++c) states.push_back(fmt::format("C{}/perturbed", c));
  auto pert = field("condition", labels);
  pert.is_perturbation = true;
  pert.control = "control";
  auto state = field("perturbation_state", states);
  state.is_state = true;
  out.fields = {field("cell_type", states), pert, state};
  for (int g = 0; g < kGenes; ++g) out.genes.push_back(fmt::format("G{}", g));
  std::mt19937 rng(5);
  out.counts.n_cols = kGenes;
  for (int c = 0; c < contexts; ++c) {
    for (size_t p = 0; p <= factor.size(); ++p) {
      for (int cell = 0; cell < kCells; ++cell) {
        std::vector<float> row(kGenes);
        for (int g = 0; g < kGenes; ++g) {
          const double rate = 3.0 * (static_cast<size_t>(g) == p ? factor[p] : 1.0);
          row[static_cast<size_t>(g)] = static_cast<float>(std::poisson_distribution<int>(rate)(rng));
        }
        out.counts.append_dense_row(row);
        out.codes[0].push_back(c + 1);
        out.codes[1].push_back(static_cast<int64_t>(p) + 1);
        out.codes[2].push_back(c + 1);
      }
    }
  }
  return out;
}

TEST(TargetGeneEffect, TheMedianFallOfEachPerturbationsOwnTarget) {
  const std::vector<double> factor{0.1, 0.1, 0.2, 0.05};
  const auto screen = target_screen(factor, 3);
  const auto effect =
      target_gene_effect(log_normalize(screen.counts), screen.codes, screen.fields, screen.genes);
  EXPECT_EQ(effect.measured, 12);  // 4 perturbations x 3 contexts, one target each
  // By hand: each perturbation's rows are a block of 80 in order, contexts in order; a target's
  // level in the context's other perturbed cells is the mean over the other perturbations' blocks.
  const CsrMatrix logs = log_normalize(screen.counts);
  const auto block_mean = [&](int c, int p, size_t gene) {
    std::vector<int64_t> rows(80);
    std::iota(rows.begin(), rows.end(), (c * 5 + p) * 80);
    return column_means(logs.select_rows(rows))[gene];
  };
  std::vector<double> ratios;
  for (int c = 0; c < 3; ++c) {
    for (int p = 0; p < 4; ++p) {
      double others = 0;
      for (int q = 0; q < 4; ++q) others += q == p ? 0 : block_mean(c, q, static_cast<size_t>(p)) / 3;
      ratios.push_back(block_mean(c, p, static_cast<size_t>(p)) / others);
    }
  }
  std::nth_element(ratios.begin(), ratios.begin() + 6, ratios.end());
  const double upper = ratios[6];
  const double lower = *std::max_element(ratios.begin(), ratios.begin() + 6);
  EXPECT_NEAR(std::exp(effect.log_ratio), std::sqrt(lower * upper), 1e-9);  // the median of 12 in log
  EXPECT_LT(std::exp(effect.log_ratio), 0.5);
  // A knock-out leaves no counts; the ratio is floored rather than -infinity.
  const auto none_left = target_screen({0, 0, 0}, 2);
  const auto knocked_out =
      target_gene_effect(log_normalize(none_left.counts), none_left.codes, none_left.fields, none_left.genes);
  EXPECT_EQ(knocked_out.measured, 6);
  EXPECT_NEAR(knocked_out.log_ratio, std::log(0.01), 1e-12);
}

TEST(TargetGeneEffect, NoneWithoutAConsistentDirectionOrEnoughMeasurements) {
  // Activation and interference mixed: half the targets rise four-fold, half fall ten-fold.
  const auto mixed = target_screen({4, 0.1, 4, 0.1}, 3);
  const auto none = target_gene_effect(log_normalize(mixed.counts), mixed.codes, mixed.fields, mixed.genes);
  EXPECT_EQ(none.measured, 0);
  EXPECT_EQ(none.log_ratio, 0.0);
  // Two measurements are too few.
  const auto two = target_screen({0.1, 0.1}, 1);
  EXPECT_EQ(target_gene_effect(log_normalize(two.counts), two.codes, two.fields, two.genes).measured, 0);
  // Targets that are not genes of the file (a drug screen's labels) measure nothing.
  auto drugs = target_screen({0.1, 0.1, 0.1}, 3);
  for (auto& label : drugs.fields[1].labels)
    if (label != "control") label = "drug" + label;
  EXPECT_EQ(target_gene_effect(log_normalize(drugs.counts), drugs.codes, drugs.fields, drugs.genes).measured,
            0);
}

}  // namespace
}  // namespace lingshu
