// Transfer weights of perturbations: an effect that is the same in every context carries over
// (weight near 1), one that differs by context does not (near 0), and a perturbation measured in one
// context gets the mean of the others.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "data/conditions.h"
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
  const auto weight = perturbation_transfer(counts, codes, fields, genes);
  ASSERT_EQ(weight.size(), 10u);
  EXPECT_GT(weight[0], 0.8);
  EXPECT_LT(weight[1], 0.3);
  double measured = 0;
  for (const int p : {0, 1, 3, 4, 5, 6, 7, 8}) measured += weight[static_cast<size_t>(p)] / 8;
  EXPECT_NEAR(weight[2], measured, 1e-12);
  EXPECT_EQ(weight[9], 1.0);  // the control
  // Without a state field there is nothing to weigh against: every weight is 1.
  const auto plain = perturbation_transfer(counts, {codes[0], codes[1]}, {fields[0], fields[1]}, genes);
  EXPECT_EQ(plain, std::vector<double>(10, 1.0));
}

}  // namespace
}  // namespace lingshu
