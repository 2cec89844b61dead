#pragma once
// Progress for long work: a redrawn bar with rate and ETA on a terminal, plain periodic log lines
// (to stderr) otherwise, so logs of batch jobs stay readable.
#include <chrono>
#include <cstdint>
#include <string>

namespace lingshu {

class Progress {
 public:
  // `total` units of work named `unit` ("steps", "cells"); `label` starts the line. Work done
  // before (`already_done`, e.g. steps of a resumed run) counts towards the total, not the rate.
  Progress(std::string label, int64_t total, std::string unit, int64_t already_done = 0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Sets the amount done so far; `extra` is appended to the line (e.g. "loss 2.31").
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  // A new total as a time budget is re-planned; rate and ETA go on from the same start.
  void set_total(int64_t total);

  // false silences every Progress (--quiet, tests); true restores the automatic choice between
  // a bar (terminal) and log lines.
  static void set_enabled(bool enabled);

 private:
  void draw(bool final_line);

  std::string label_;
  std::string unit_;
  std::string extra_;
  int64_t total_;
  int64_t done_;
  int64_t already_done_;
  bool tty_;
  bool silent_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace lingshu
