#include "core/atomic_file.h"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace lingshu {

namespace fs = std::filesystem;

PendingFile::PendingFile(fs::path path) : path_(std::move(path)) {
  const fs::path parent = path_.has_parent_path() ? path_.parent_path() : fs::path(".");
  if (!fs::is_directory(parent)) {
    throw UserError(fmt::format("cannot write {}: folder {} does not exist; create it first", path_.string(),
                                parent.string()));
  }
  tmp_ = parent / fmt::format(".{}.tmp{}", path_.filename().string(), ::getpid());
}

PendingFile::~PendingFile() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove(tmp_, ignored);
}

void PendingFile::commit() {
  std::error_code ec;
  fs::rename(tmp_, path_, ec);
  if (ec) throw UserError(fmt::format("cannot write {}: {}", path_.string(), ec.message()));
  committed_ = true;
}

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  PendingFile file(path);
  write(file.tmp());
  file.commit();
}

void require_writable_parent(const std::string& path, const char* option) {
  if (path.empty()) return;
  const fs::path parent = fs::absolute(path).parent_path();
  if (!fs::is_directory(parent)) {
    throw UserError(
        fmt::format("{} {}: the folder {} does not exist; create it first", option, path, parent.string()));
  }
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.close();
    if (!out) throw UserError(fmt::format("cannot write {} (disk full?)", path.string()));
  });
}

}  // namespace lingshu
