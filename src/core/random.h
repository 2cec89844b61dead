#pragma once
// Seeded random draws written out by hand on top of std::mt19937_64 (whose output the standard
// fixes), because the standard library's distributions may differ between implementations: the
// same seed gives the same gene order, simulated cells and decoded counts on every platform.
#include <cstdint>
#include <random>
#include <vector>

namespace lingshu::rnd {

// Uniform integer in [0, n) without modulo bias; n >= 1.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);
// Uniform double in [0, 1) with 53 random bits.
double uniform01(std::mt19937_64& rng);
// Standard normal (Box-Muller; one draw per call keeps the stream easy to reason about).
double normal(std::mt19937_64& rng);
// exp(N(meanlog, sdlog)).
double lognormal(std::mt19937_64& rng, double meanlog, double sdlog);
// Gamma with the given shape and scale (Marsaglia-Tsang; shape < 1 by the boost U^(1/shape)).
double gamma(std::mt19937_64& rng, double shape, double scale);
// Chi-squared with `df` degrees of freedom.
double chi_squared(std::mt19937_64& rng, double df);
// Poisson with mean `lambda` >= 0 (inversion by multiplication below 10, Hormann's PTRS above).
int64_t poisson(std::mt19937_64& rng, double lambda);
// True with probability p.
bool bernoulli(std::mt19937_64& rng, double p);
// An index drawn with probability proportional to its weight, given the running sums of the
// weights (cumulative.back() > 0).
size_t draw_index(std::mt19937_64& rng, const std::vector<double>& cumulative);

// A well-mixed seed for stream `stream` derived from `seed` (SplitMix64), so independent parts of
// a computation (genes, cells, each cell) get their own reproducible streams.
uint64_t derive_seed(uint64_t seed, uint64_t stream);

}  // namespace lingshu::rnd
