#pragma once
// Which of its m candidates each cell of a group takes, so that the cells of a group cover the
// candidates evenly: every candidate once, in a seeded random order, before any is taken again.
// Drawn with replacement instead, n = m cells leave a third of the candidates unused and take
// others two or three times, which clumps the generated cells and adds noise to a group's mean.
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace lingshu {

class BalancedDraw {
 public:
  explicit BalancedDraw(uint64_t seed) : seed_(seed) {}

  // The candidate in [0, m) of cell `cell` (0-based within its group) of group `group`. Depends
  // only on (seed, group, cell, m), not on the order of the calls: a shard of the cells, made by
  // another process, draws what the whole run draws for it.
  int64_t pick(size_t group, int64_t cell, int64_t m);

 private:
  struct Cycle {
    int64_t number = -1;
    std::vector<int64_t> order;
  };
  uint64_t seed_;
  std::unordered_map<size_t, Cycle> current_;  // per group: the cycle its last call fell in
};

}  // namespace lingshu
