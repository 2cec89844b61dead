#include "test_support.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

namespace lingshu::testing {

namespace fs = std::filesystem;

std::optional<fs::path> shared_data_dir() {
  if (const char* env = std::getenv("LINGSHU_DATA"); env && fs::is_directory(env)) return fs::path(env);
  const fs::path beside = fs::path(LINGSHU_SOURCE_DIR).parent_path() / "shared" / "data";
  if (fs::is_directory(beside)) return beside;
  return std::nullopt;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / fmt::format("lingshu-test-{}-{:x}", ::getpid(), rd());
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

CommandResult run_shell(const std::string& command_line) {
  CommandResult result;
  FILE* pipe = ::popen((command_line + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

CommandResult run_lingshu(const std::string& args) {
  return run_shell(fmt::format("'{}' {}", LINGSHU_BINARY, args));
}

CommandResult run_lingshu_with_file_limit(int64_t kib, const std::string& args) {
  return run_shell(fmt::format("bash -c 'trap \"\" XFSZ; ulimit -f {}; exec \"$0\" \"$@\"' '{}' {}", kib,
                               LINGSHU_BINARY, args));
}

bool python_has(const std::string& module) {
  return run_shell(fmt::format("/usr/bin/python3 -c 'import {}'", module)).exit_code == 0;
}

CommandResult run_python(const std::string& script) {
  TempDir dir;
  const fs::path file = dir / "script.py";
  std::ofstream(file) << script;
  return run_shell(fmt::format("/usr/bin/python3 '{}'", file.string()));
}

}  // namespace lingshu::testing
