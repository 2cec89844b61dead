#include "core/atomic_file.h"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <system_error>

#include "core/error.h"

namespace lingshu {

namespace fs = std::filesystem;

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(parent)) {
    throw UserError(fmt::format("cannot write {}: folder {} does not exist; create it first",
                                path.string(), parent.string()));
  }
  const fs::path tmp = parent / fmt::format(".{}.tmp{}", path.filename().string(), ::getpid());
  try {
    write(tmp);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw UserError(fmt::format("cannot write {}: {}", path.string(), ec.message()));
  }
}

void require_writable_parent(const std::string& path, const char* option) {
  if (path.empty()) return;
  const fs::path parent = fs::absolute(path).parent_path();
  if (!fs::is_directory(parent)) {
    throw UserError(fmt::format("{} {}: the folder {} does not exist; create it first", option, path,
                                parent.string()));
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
