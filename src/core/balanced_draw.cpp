#include "core/balanced_draw.h"

#include <numeric>
#include <random>
#include <stdexcept>
#include <utility>

#include "core/random.h"
#include "core/seed.h"

namespace lingshu {

int64_t BalancedDraw::pick(size_t group, int64_t cell, int64_t m) {
  if (m < 1 || cell < 0) throw std::invalid_argument("BalancedDraw::pick needs m >= 1 and cell >= 0");
  Cycle& cycle = current_[group];
  const int64_t number = cell / m;
  if (cycle.number != number || static_cast<int64_t>(cycle.order.size()) != m) {
    cycle.number = number;
    cycle.order.resize(static_cast<size_t>(m));
    std::iota(cycle.order.begin(), cycle.order.end(), int64_t{0});
    std::mt19937_64 rng(mix_seed(mix_seed(seed_ ^ 0xBA1A9CEDULL, group), static_cast<uint64_t>(number)));
    for (size_t i = cycle.order.size() - 1; i > 0; --i)
      std::swap(cycle.order[i], cycle.order[rnd::uniform_below(rng, i + 1)]);
  }
  return cycle.order[static_cast<size_t>(cell % m)];
}

}  // namespace lingshu
