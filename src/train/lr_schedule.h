#pragma once
// Learning rate: linear warm-up from 0 to `peak` over `warmup` steps, then cosine decay to
// `min_ratio * peak` at `total` steps (and held there if training runs past it).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace lingshu {

struct LrSchedule {
  double peak = 1e-3;
  int64_t warmup = 100;
  int64_t total = 1000;
  double min_ratio = 0.1;

  // Learning rate for optimiser step `step` (0-based).
  double at(int64_t step) const {
    if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
    const double span = static_cast<double>(std::max<int64_t>(total - warmup, 1));
    const double progress = std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0);
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    return peak * (min_ratio + (1.0 - min_ratio) * cosine);
  }
};

}  // namespace lingshu
