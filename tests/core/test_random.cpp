#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/random.h"

namespace lingshu {
namespace {

struct Moments {
  double mean = 0;
  double var = 0;
};

Moments moments(int n, const std::function<double()>& draw) {
  double sum = 0;
  double sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double x = draw();
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / n;
  return {mean, sum_sq / n - mean * mean};
}

// Sample moments against the distribution's, within 5 standard errors of the mean (and 10% for
// the variance), for the regimes the simulator uses.
TEST(Random, PoissonMomentsAcrossBothAlgorithms) {
  std::mt19937_64 rng(1);
  constexpr int n = 40000;
  for (const double lambda : {0.05, 0.8, 4.0, 9.9, 10.0, 37.0, 900.0}) {
    const Moments m = moments(n, [&] { return static_cast<double>(rnd::poisson(rng, lambda)); });
    EXPECT_NEAR(m.mean, lambda, 5 * std::sqrt(lambda / n)) << "lambda " << lambda;
    EXPECT_NEAR(m.var, lambda, 0.1 * lambda) << "lambda " << lambda;
  }
  EXPECT_EQ(rnd::poisson(rng, 0.0), 0);
}

TEST(Random, GammaMomentsForSmallAndLargeShapes) {
  std::mt19937_64 rng(2);
  constexpr int n = 40000;
  for (const double shape : {0.1, 0.6, 1.0, 3.0, 100.0}) {
    const double scale = 2.5;
    const Moments m = moments(n, [&] { return rnd::gamma(rng, shape, scale); });
    const double sd = std::sqrt(shape) * scale;
    EXPECT_NEAR(m.mean, shape * scale, 5 * sd / std::sqrt(n)) << "shape " << shape;
    EXPECT_NEAR(m.var, shape * scale * scale, 0.15 * shape * scale * scale) << "shape " << shape;
  }
}

TEST(Random, NormalAndLogNormal) {
  std::mt19937_64 rng(3);
  constexpr int n = 40000;
  const Moments z = moments(n, [&] { return rnd::normal(rng); });
  EXPECT_NEAR(z.mean, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(z.var, 1.0, 0.05);
  const Moments l = moments(n, [&] { return std::log(rnd::lognormal(rng, 2.0, 0.5)); });
  EXPECT_NEAR(l.mean, 2.0, 5 * 0.5 / std::sqrt(n));
  EXPECT_NEAR(l.var, 0.25, 0.0125);
}

TEST(Random, UniformBelowHitsEveryValueEvenly) {
  std::mt19937_64 rng(4);
  std::vector<int> hits(7, 0);
  for (int i = 0; i < 70000; ++i) ++hits[rnd::uniform_below(rng, 7)];
  for (const int h : hits) EXPECT_NEAR(h, 10000, 500);
}

TEST(Random, DerivedSeedsDiffer) {
  EXPECT_NE(rnd::derive_seed(1, 0), rnd::derive_seed(1, 1));
  EXPECT_NE(rnd::derive_seed(1, 0), rnd::derive_seed(2, 0));
  EXPECT_EQ(rnd::derive_seed(9, 9), rnd::derive_seed(9, 9));
}

}  // namespace
}  // namespace lingshu
