#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/atomic_file.h"
#include "core/error.h"
#include "test_support.h"

namespace lingshu {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(AtomicFile, WritesUnderFinalNameOnlyWhenComplete) {
  testing::TempDir dir;
  const auto target = dir / "out.txt";
  write_text_atomically(target, "hello");
  EXPECT_EQ(slurp(target), "hello");
  // A writer that fails leaves the previous file untouched and no temporary behind.
  EXPECT_THROW(write_atomically(target,
                                [](const std::filesystem::path& tmp) {
                                  std::ofstream(tmp) << "half";
                                  throw std::runtime_error("interrupted");
                                }),
               std::runtime_error);
  EXPECT_EQ(slurp(target), "hello");
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1);
}

TEST(AtomicFile, MissingFolderIsAUserError) {
  testing::TempDir dir;
  EXPECT_THROW(write_text_atomically(dir / "no/such/folder/x.txt", "x"), UserError);
}

}  // namespace
}  // namespace lingshu

namespace lingshu {
namespace {

TEST(AtomicFile, RequireWritableParentChecksTheFolderUpFront) {
  testing::TempDir dir;
  EXPECT_NO_THROW(require_writable_parent((dir / "out.json").string(), "--out"));
  EXPECT_NO_THROW(require_writable_parent("", "--out"));
  try {
    require_writable_parent((dir / "missing/out.json").string(), "--report");
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--report"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lingshu

namespace lingshu {
namespace {

// A process id that is certainly not running: a child that has exited and been reaped.
pid_t finished_process_id() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

TEST(AtomicFile, LeftoversOfDeadProcessesAreRemovedByTheNextWrite) {
  testing::TempDir dir;
  const auto target = dir / "out.h5ad";
  const auto dead = dir / fmt::format(".out.h5ad.tmp{}", finished_process_id());
  const auto alive = dir / fmt::format(".out.h5ad.tmp{}", ::getppid());              // a running process's
  const auto other = dir / fmt::format(".other.h5ad.tmp{}", finished_process_id());  // another output's
  for (const auto& p : {dead, alive, other}) std::ofstream(p) << "half";
  EXPECT_EQ(stale_temporaries(target), std::vector<std::filesystem::path>{dead});
  write_text_atomically(target, "whole");
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(alive));
  EXPECT_TRUE(std::filesystem::exists(other));
  EXPECT_EQ(slurp(target), "whole");
}

TEST(AtomicFile, AFailedWriteNamesTheFileAndTheCause) {
  testing::TempDir dir;
  const auto target = dir / "out.txt";
  // /dev/full fails every write with ENOSPC, as a full disk does.
  FileSink sink("/dev/full", target);
  sink.write(std::string(1 << 16, 'x'));
  try {
    sink.finish();
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              fmt::format("cannot write {}: No space left on device", target.string()));
  }
}

}  // namespace
}  // namespace lingshu
