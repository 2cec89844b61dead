#pragma once
// Shared helpers for the GoogleTest suites: real-data location (skip when absent), temporary
// folders, running the lingshu binary and /usr/bin/python3 (anndata, scipy) for cross-checks.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace lingshu::testing {

// ../shared/data next to the source tree, or $LINGSHU_DATA; nullopt if absent.
std::optional<std::filesystem::path> shared_data_dir();

// Skips the current test with a clear message when the shared data folder (or one file in it) is
// missing. Use as: const auto path = LINGSHU_REQUIRE_DATA("pbmc3k.h5ad");
#define LINGSHU_REQUIRE_DATA(name)                                                          \
  ({                                                                                        \
    const auto lingshu_dir = ::lingshu::testing::shared_data_dir();                         \
    if (!lingshu_dir || !std::filesystem::exists(*lingshu_dir / (name))) {                  \
      GTEST_SKIP() << "real data " << (name)                                                \
                   << " not found (expected in ../shared/data or $LINGSHU_DATA); skipping"; \
    }                                                                                       \
    *lingshu_dir / (name);                                                                  \
  })

// A fresh temporary folder removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing stdout+stderr.
CommandResult run_shell(const std::string& command_line);
// Runs the built lingshu binary with the given arguments (a shell-quoted string).
CommandResult run_lingshu(const std::string& args);

// Runs lingshu with files limited to `kib` KiB (RLIMIT_FSIZE, SIGXFSZ ignored): a write past the
// limit fails with EFBIG, as on a full disk, without root or a small file system.
CommandResult run_lingshu_with_file_limit(int64_t kib, const std::string& args);

// True if /usr/bin/python3 can import the module (anndata, scipy, numpy).
bool python_has(const std::string& module);
// Runs a Python script with /usr/bin/python3; the script text is passed through a temp file.
CommandResult run_python(const std::string& script);

}  // namespace lingshu::testing
