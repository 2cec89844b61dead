#pragma once
// How long a run is and how fast its learning rate decays. A run without --steps is sized by
// passes over its cells; a --minutes run can only size itself once it has timed its own steps,
// and must keep doing so on a shared machine whose speed changes. Free of LibTorch.
#include <chrono>
#include <cstdint>
#include <optional>

#include "train/lr_schedule.h"
#include "train/trainer.h"

namespace lingshu {

// A run that names no --steps makes at most this many passes over its training cells: on a few
// thousand cells the validation loss is lowest after 5-8 passes and rises after (paul15, 1,264
// cells: best at pass 5 of 20 when the schedule was planned for the whole budget), and only a
// schedule that has decayed by then keeps what was learnt (BENCHMARKS.md, "Training stops after 8 passes over
// its cells").
inline constexpr int64_t kMaxEpochs = 8;
inline constexpr int64_t kDefaultSteps = 2000;   // without --minutes either
inline constexpr int64_t kSpeedProbeSteps = 10;  // steps timed before a --minutes run plans its schedule
inline constexpr int64_t kReplanEvery = 25;      // a --minutes run re-plans its step count this often

// The length of a run without --steps: kMaxEpochs passes over the training cells, and without
// --minutes at most kDefaultSteps; with --minutes, whichever ends first.
int64_t default_steps(const TrainOptions& options, int64_t n_train);

// The number of steps and the learning-rate schedule. A --steps run is planned from the start; a
// --minutes run warms up as if it were long until it has timed kSpeedProbeSteps steps, then plans
// the steps that fit in the remaining budget, and re-plans every kReplanEvery steps as the speed
// changes (a shared machine speeds up and slows down).
class StepPlan {
 public:
  // `options` must outlive the plan.
  StepPlan(const TrainOptions& options, int64_t total_steps, bool planned);
  bool planned() const { return planned_; }
  int64_t total() const { return total_; }
  bool is_last(int64_t step) const { return planned_ && step == total_; }
  bool done(int64_t step) const { return planned_ && step >= total_; }
  double lr(int64_t step) const { return schedule_.at(step); }
  bool wants_replan(int64_t step, int64_t timed_steps) const {
    return options_.minutes > 0 && timed_steps >= kSpeedProbeSteps && (!planned_ || step % kReplanEvery == 0);
  }
  // Plans for the steps that fit in the rest of the budget; true when that is news for the user
  // (the first plan, or a change of more than 5%).
  bool replan(int64_t step, double steps_per_second, double elapsed_seconds);
  // The budget ended before the planned steps (the machine slowed down): the run ends here.
  void end_at(int64_t step) { total_ = step; }

 private:
  LrSchedule schedule_for(int64_t total) const;

  const TrainOptions& options_;
  int64_t total_;
  bool planned_;
  LrSchedule schedule_;
};

// What the measured speed makes of the budget: the steps that fit, or the fewer ones that end the
// run first (--steps, or kMaxEpochs passes over the training cells when `steps_are_passes`).
void print_plan(int64_t total, double steps_per_second, const TrainOptions& options, bool steps_are_passes);

// Steps per second of this invocation, from the end of its first step (allocations, warm-up).
class StepTimer {
 public:
  void step_done() {
    if (!from_) {
      from_ = Clock::now();
    } else {
      ++timed_;
    }
  }
  int64_t timed_steps() const { return timed_; }
  double seconds() const {
    return from_ ? std::chrono::duration<double>(Clock::now() - *from_).count() : 0.0;
  }
  double steps_per_second() const { return timed_ > 0 ? static_cast<double>(timed_) / seconds() : 0.0; }

 private:
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> from_;
  int64_t timed_ = 0;
};

}  // namespace lingshu
