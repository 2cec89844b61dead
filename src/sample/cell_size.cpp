#include "sample/cell_size.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>

#include "core/random.h"

namespace lingshu {

// Draws are lingshu::rnd's, as in decoding: the same seed gives the same cells on every platform.
void fit_total_to_range(std::vector<float>& counts, double lo, double hi, std::mt19937_64& rng) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  if (total <= 0 || (total >= lo && total < hi)) return;
  const double target = total < lo ? std::ceil(lo) : std::ceil(hi) - 1;
  if (total > target) {
    // Exactly `target` of the cell's counts, drawn without replacement (as scanpy's
    // downsample_counts): one entry per count, a partial shuffle, and the first `target` kept.
    std::vector<uint32_t> units;
    units.reserve(static_cast<size_t>(total));
    for (size_t g = 0; g < counts.size(); ++g)
      units.insert(units.end(), static_cast<size_t>(counts[g]), static_cast<uint32_t>(g));
    const auto keep = static_cast<size_t>(target);
    for (size_t i = 0; i < keep; ++i)
      std::swap(units[i], units[i + rnd::uniform_below(rng, units.size() - i)]);
    std::fill(counts.begin(), counts.end(), 0.0F);
    for (size_t i = 0; i < keep; ++i) counts[units[i]] += 1;
    return;
  }
  std::vector<double> cumulative(counts.size());
  std::partial_sum(counts.begin(), counts.end(), cumulative.begin());
  for (auto extra = static_cast<int64_t>(target - total); extra > 0; --extra)
    counts[rnd::draw_index(rng, cumulative)] += 1;
}

}  // namespace lingshu
