#include <gtest/gtest.h>

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
