#pragma once
// Shared by the fuzz targets: a per-process scratch folder (inputs go through files because the
// readers take paths) and the invariants every successfully read matrix must satisfy.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/anndata.h"

namespace lingshu::fuzz {

inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("lingshu-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, const char* data, size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(data, static_cast<std::streamsize>(size));
}

// A reader that returns must hand out a canonical CSR with finite values that matches its tables.
inline void check_result(const AnnData& a) {
  a.X.validate("fuzz");  // throws UserError, which the fuzzer reports as an uncaught exception
  for (int64_t r = 0; r < a.X.n_rows; ++r) {
    const auto cols = a.X.row_indices(r);
    for (size_t i = 1; i < cols.size(); ++i) {
      if (cols[i] <= cols[i - 1]) std::abort();
    }
    for (const float v : a.X.row_values(r)) {
      if (v == 0.0f || !std::isfinite(v)) std::abort();
    }
  }
  if (a.obs.size() != a.X.n_rows && !a.obs.index.empty()) std::abort();
  if (a.var.size() != a.X.n_cols) std::abort();
  for (const auto& col : a.obs.columns) {
    if (col.size() != a.X.n_rows) std::abort();
    for (const int32_t c : col.codes) {
      if (c < -1 || c >= static_cast<int32_t>(col.categories.size())) std::abort();
    }
  }
}

}  // namespace lingshu::fuzz
