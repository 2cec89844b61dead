#include "train/step_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace lingshu {

int64_t default_steps(const TrainOptions& options, int64_t n_train) {
  const int64_t passes = (kMaxEpochs * n_train + options.batch_size - 1) / options.batch_size;
  return options.minutes > 0 ? passes : std::min(passes, kDefaultSteps);
}

StepPlan::StepPlan(const TrainOptions& options, int64_t total_steps, bool planned)
    : options_(options), total_(total_steps), planned_(planned) {
  schedule_ = planned ? schedule_for(total_steps)
                      : LrSchedule{options.lr, std::max<int64_t>(options.warmup, 1),
                                   std::numeric_limits<int32_t>::max(), options.min_lr_ratio};
}

bool StepPlan::replan(int64_t step, double steps_per_second, double elapsed_seconds) {
  const double remaining = options_.minutes * 60.0 - elapsed_seconds;
  int64_t total = step + static_cast<int64_t>(std::max(remaining, 0.0) * steps_per_second);
  if (options_.steps > 0) total = std::min(total, options_.steps);
  total = std::max(total, step + 1);
  const bool news =
      !planned_ || std::abs(static_cast<double>(total - total_)) > 0.05 * static_cast<double>(total_);
  total_ = total;
  schedule_ = schedule_for(total);
  planned_ = true;
  return news;
}

LrSchedule StepPlan::schedule_for(int64_t total) const {
  return LrSchedule{options_.lr, std::max<int64_t>(1, std::min(options_.warmup, total / 10)), total,
                    options_.min_lr_ratio};
}

void print_plan(int64_t total, double steps_per_second, const TrainOptions& options, bool steps_are_passes) {
  if (total < options.steps) {
    fmt::print(stderr, "train: {:.2f} steps/s measured; planning {} steps for the {} minute budget\n",
               steps_per_second, total, options.minutes);
    return;
  }
  fmt::print(stderr, "train: {:.2f} steps/s measured; {} steps ({}) take about {:.0f} of the {} minutes\n",
             steps_per_second, total,
             steps_are_passes ? fmt::format("{} passes over the training cells", kMaxEpochs) : "--steps",
             static_cast<double>(total) / steps_per_second / 60.0, options.minutes);
}

}  // namespace lingshu
