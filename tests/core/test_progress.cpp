#include <gtest/gtest.h>

#include "core/progress.h"

namespace lingshu {
namespace {

// Without a terminal, progress is plain log lines on stderr; --quiet silences it completely.
TEST(Progress, LogLinesWithoutTerminalAndNothingWhenQuiet) {
  ::testing::internal::CaptureStderr();
  {
    Progress p("train", 10, "steps");
    p.update(5, "loss 1.5");
    p.finish("loss 1.2");
  }
  const std::string shown = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(shown.find("train: 100% 10/10 steps"), std::string::npos) << shown;
  EXPECT_NE(shown.find("loss 1.2"), std::string::npos) << shown;
  EXPECT_EQ(shown.find('\r'), std::string::npos) << "no bar redraws in a log";

  Progress::set_enabled(false);
  ::testing::internal::CaptureStderr();
  {
    Progress p("train", 10, "steps");
    p.update(5);
    p.finish();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  Progress::set_enabled(true);
}

// A re-planned budget moves the total the bar shows (it showed 3386/2933 steps at the end).
TEST(Progress, ANewTotalIsShown) {
  ::testing::internal::CaptureStderr();
  {
    Progress p("train", 10, "steps", 4);
    p.set_total(25);
    p.finish();
  }
  const std::string shown = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(shown.find("train: 100% 25/25 steps"), std::string::npos) << shown;
}

}  // namespace
}  // namespace lingshu
