#pragma once
// Helpers shared by the io tests: run a Python check and parse its JSON answer, build small
// AnnData objects, compare matrices.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/anndata.h"
#include "test_support.h"

namespace lingshu::testing {

// A path as a Python string literal.
inline std::string py_path(const std::filesystem::path& p) {
  return nlohmann::json(p.string()).dump();
}

// Runs a /usr/bin/python3 script whose last stdout line is JSON; fails the test if it does not run.
inline nlohmann::json python_json(const std::string& script) {
  const CommandResult result = run_python(script);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  const auto end = result.output.find_last_not_of("\n ");
  const auto start = result.output.rfind('\n', end);
  const std::string last = result.output.substr(
      start == std::string::npos ? 0 : start + 1,
      end == std::string::npos ? 0 : end - (start == std::string::npos ? 0 : start + 1) + 1);
  try {
    return nlohmann::json::parse(last);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "python did not print JSON: " << result.output;
    return nlohmann::json::object();
  }
}

// Runs a Python script that writes test files into the folder named by its variable OUT, once per
// script text: the folder is kept in the temp directory under the script's hash, because CTest runs
// every test in its own process and importing anndata costs seconds. nullopt (and a test failure)
// if the script fails.
inline std::optional<std::filesystem::path> python_made_files(const std::string& script) {
  namespace fs = std::filesystem;
  const fs::path done = fs::temp_directory_path() /
                        fmt::format("lingshu-io-fixtures-{:016x}", std::hash<std::string>{}(script));
  if (fs::exists(done / ".complete")) return done;
  const TempDir work;
  const CommandResult result = run_python("OUT = " + py_path(work.path()) + "\n" + script);
  if (result.exit_code != 0) {
    ADD_FAILURE() << result.output;
    return std::nullopt;
  }
  std::ofstream(work / ".complete").put('\n');
  std::error_code ec;
  fs::rename(work.path(), done, ec);  // a parallel test process may have won the race: fine
  if (fs::exists(done / ".complete")) return done;
  ADD_FAILURE() << "cannot keep the test files in " << done << ": " << ec.message();
  return std::nullopt;
}

inline std::vector<std::vector<float>> dense(const CsrMatrix& m) {
  std::vector<std::vector<float>> out;
  for (int64_t r = 0; r < m.n_rows; ++r) out.push_back(m.dense_row(r));
  return out;
}

inline bool same_matrix(const CsrMatrix& a, const CsrMatrix& b) {
  return a.n_rows == b.n_rows && a.n_cols == b.n_cols && a.indptr == b.indptr && a.indices == b.indices &&
         a.values == b.values;
}

}  // namespace lingshu::testing
