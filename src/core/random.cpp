#include "core/random.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace lingshu::rnd {

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  // Reject the lowest (2^64 mod n) outputs so every residue is equally likely.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const uint64_t x = rng();
    if (x >= threshold) return x % n;
  }
}

double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

double normal(std::mt19937_64& rng) {
  const double u1 = 1.0 - uniform01(rng);  // (0, 1]: log is finite
  const double u2 = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double lognormal(std::mt19937_64& rng, double meanlog, double sdlog) {
  return std::exp(meanlog + sdlog * normal(rng));
}

double gamma(std::mt19937_64& rng, double shape, double scale) {
  if (shape <= 0.0) return 0.0;
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a).
    const double u = 1.0 - uniform01(rng);
    return gamma(rng, shape + 1.0, scale) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = uniform01(rng);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale;
  }
}

double chi_squared(std::mt19937_64& rng, double df) {
  return gamma(rng, df / 2.0, 2.0);
}

namespace {

int64_t poisson_small(std::mt19937_64& rng, double lambda) {
  const double limit = std::exp(-lambda);
  int64_t k = 0;
  double product = uniform01(rng);
  while (product > limit) {
    ++k;
    product *= uniform01(rng);
  }
  return k;
}

// Transformed rejection with squeeze (Hormann 1993, "The transformed rejection method for
// generating Poisson random variables"), as used by numpy for lambda >= 10.
int64_t poisson_ptrs(std::mt19937_64& rng, double lambda) {
  const double slam = std::sqrt(lambda);
  const double loglam = std::log(lambda);
  const double b = 0.931 + 2.53 * slam;
  const double a = -0.059 + 0.02483 * b;
  const double invalpha = 1.1239 + 1.1328 / (b - 3.4);
  const double vr = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    const double u = uniform01(rng) - 0.5;
    const double v = uniform01(rng);
    const double us = 0.5 - std::fabs(u);
    const double k = std::floor((2.0 * a / us + b) * u + lambda + 0.43);
    if (us >= 0.07 && v <= vr) return static_cast<int64_t>(k);
    if (k < 0.0 || (us < 0.013 && v > us)) continue;
    if (std::log(v) + std::log(invalpha) - std::log(a / (us * us) + b) <=
        -lambda + k * loglam - std::lgamma(k + 1.0)) {
      return static_cast<int64_t>(k);
    }
  }
}

}  // namespace

int64_t poisson(std::mt19937_64& rng, double lambda) {
  if (!(lambda > 0.0)) return 0;
  return lambda < 10.0 ? poisson_small(rng, lambda) : poisson_ptrs(rng, lambda);
}

bool bernoulli(std::mt19937_64& rng, double p) {
  return uniform01(rng) < p;
}

size_t draw_index(std::mt19937_64& rng, const std::vector<double>& cumulative) {
  const double u = uniform01(rng) * cumulative.back();
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
  return static_cast<size_t>(
      std::min<std::ptrdiff_t>(it - cumulative.begin(), static_cast<std::ptrdiff_t>(cumulative.size()) - 1));
}

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace lingshu::rnd
