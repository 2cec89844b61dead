#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace lingshu {

namespace {
std::atomic<bool> g_enabled{true};

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}
}  // namespace

void Progress::set_enabled(bool enabled) {
  g_enabled = enabled;
}

Progress::Progress(std::string label, int64_t total, std::string unit, int64_t already_done)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(std::max<int64_t>(total, 1)),
      done_(already_done),
      already_done_(already_done),
      tty_(::isatty(STDERR_FILENO) != 0),
      silent_(!g_enabled.load()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && done_ > 0 && tty_ && !silent_) std::fputc('\n', stderr);
}

void Progress::update(int64_t done, const std::string& extra) {
  done_ = done;
  extra_ = extra;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  // Terminal: redraw up to 10x a second. Log: a line every 10 s.
  if (since >= (tty_ ? 0.1 : 10.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  if (!extra.empty()) extra_ = extra;
  done_ = std::max(done_, total_);
  draw(true);
  finished_ = true;
}

void Progress::set_total(int64_t total) {
  total_ = std::max<int64_t>(total, 1);
}

void Progress::draw(bool final_line) {
  if (silent_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_ - already_done_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1.0;
  const double frac = std::clamp(static_cast<double>(done_) / static_cast<double>(total_), 0.0, 1.0);
  const std::string rate_text = rate >= 10 ? fmt::format("{:.0f}", rate) : fmt::format("{:.2f}", rate);
  const std::string tail = fmt::format("{}/{} {} | {} {}/s | {} < {}{}{}", done_, total_, unit_, rate_text,
                                       unit_, format_duration(elapsed), format_duration(final_line ? 0 : eta),
                                       extra_.empty() ? "" : " | ", extra_);
  if (tty_) {
    constexpr int width = 28;
    const int filled = static_cast<int>(frac * width);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    fmt::print(stderr, "\r\033[K{} [{}] {:3.0f}% {}{}", label_, bar, frac * 100, tail,
               final_line ? "\n" : "");
  } else {
    fmt::print(stderr, "{}: {:3.0f}% {}\n", label_, frac * 100, tail);
  }
  std::fflush(stderr);
}

}  // namespace lingshu
