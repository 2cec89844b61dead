// The banked cell states (train/cell_state_bank.h): with readings of known signal and noise, the
// split-half reliability is the signal share, the states keep each combination's mean and vary as
// much as the signal does, a pure-noise factor collapses to the mean and a noiseless one is kept.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/cell_state_bank.h"
#include "train/group_means.h"

namespace lingshu {
namespace {

constexpr int64_t kCells = 20000;

struct Readings {
  torch::Tensor scores, half_a, half_b, labels, signal;
};

// Factor 0: signal (var 1) read by each half with noise of var 1, so the full reading (the halves'
// mean) has noise var 0.5 and reliability 1 / 1.5. Factor 1: noise alone. Factor 2: no noise.
// Two label combinations whose means differ.
Readings readings() {
  torch::manual_seed(3);
  Readings r;
  r.labels = (torch::arange(kCells) % 2).unsqueeze(1);
  const auto offset = r.labels.to(torch::kFloat) * 4.0;
  const auto z = torch::randn({kCells, 1});
  r.signal = torch::cat({z, torch::zeros({kCells, 1}), z}, 1) + offset;
  const auto noise = [] { return torch::cat({torch::randn({kCells, 2}), torch::zeros({kCells, 1})}, 1); };
  r.half_a = r.signal + noise();
  r.half_b = r.signal + noise();
  r.scores = (r.half_a + r.half_b) / 2;
  return r;
}

TEST(CellStateBank, ReliabilityIsTheSignalShareOfEachFactor) {
  const auto r = readings();
  const auto bank = reliable_cell_states(r.scores, r.half_a, r.half_b, r.labels);
  EXPECT_NEAR(bank.reliability[0].item<double>(), 1.0 / 1.5, 0.02);
  EXPECT_NEAR(bank.reliability[1].item<double>(), 0.0, 0.03);
  EXPECT_NEAR(bank.reliability[2].item<double>(), 1.0, 1e-6);
}

TEST(CellStateBank, StatesKeepTheMeansAndVaryAsMuchAsTheSignal) {
  const auto r = readings();
  const auto states = reliable_cell_states(r.scores, r.half_a, r.half_b, r.labels).states;
  for (int64_t label : {0, 1}) {
    const auto rows = r.labels.squeeze(1).eq(label);
    const auto in = states.index({rows});
    EXPECT_TRUE(torch::allclose(in.mean(0), r.scores.index({rows}).mean(0), 1e-4, 1e-4)) << label;
    const auto variance = in.var(0);
    EXPECT_NEAR(variance[0].item<double>(), 1.0, 0.05)
        << "read with noise: " << r.scores.index({rows}).var(0);
    EXPECT_LT(variance[1].item<double>(), 0.02);
  }
  EXPECT_TRUE(torch::allclose(states.select(1, 2), r.scores.select(1, 2), 1e-5, 1e-5));
}

TEST(CellStateBank, RefusesMismatchedShapes) {
  const auto r = readings();
  EXPECT_THROW(reliable_cell_states(r.scores, r.half_a.slice(0, 1), r.half_b, r.labels), c10::Error);
}

TEST(GroupMeans, EachRowLosesItsGroupsMean) {
  const auto x = torch::tensor({1.0, 2.0, 3.0, 6.0, 10.0, -4.0}, torch::kDouble).view({3, 2});
  const auto centred = minus_group_means(x, torch::tensor({0, 0, 1}, torch::kLong), 2);
  EXPECT_TRUE(
      torch::allclose(centred, torch::tensor({-1.0, -2.0, 1.0, 2.0, 0.0, 0.0}, torch::kDouble).view({3, 2})));
  EXPECT_EQ(centred.scalar_type(), torch::kDouble);
}

}  // namespace
}  // namespace lingshu
