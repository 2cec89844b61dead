#include "core/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace lingshu {

namespace fs = std::filesystem;

namespace {

fs::path parent_of(const fs::path& path) {
  return path.has_parent_path() ? path.parent_path() : fs::path(".");
}

// ".NAME.tmp" + the writing process's id.
std::string temporary_prefix(const fs::path& path) {
  return fmt::format(".{}.tmp", path.filename().string());
}

bool process_is_running(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace

std::vector<fs::path> stale_temporaries(const fs::path& path) {
  const std::string prefix = temporary_prefix(path);
  std::vector<fs::path> stale;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent_of(path), ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix)) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid != ::getpid() && !process_is_running(pid)) stale.push_back(entry.path());
  }
  return stale;
}

PendingFile::PendingFile(fs::path path) : path_(std::move(path)) {
  const fs::path parent = parent_of(path_);
  if (!fs::is_directory(parent)) {
    throw UserError(fmt::format("cannot write {}: folder {} does not exist; create it first", path_.string(),
                                parent.string()));
  }
  std::error_code ignored;
  for (const auto& stale : stale_temporaries(path_)) fs::remove(stale, ignored);
  tmp_ = parent / fmt::format("{}{}", temporary_prefix(path_), ::getpid());
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

FileSink::FileSink(const fs::path& path, fs::path shown) : shown_(std::move(shown)) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw UserError(fmt::format("cannot write {}: {}", shown_.string(), std::strerror(errno)));
}

FileSink::~FileSink() {
  if (fd_ >= 0) ::close(fd_);
}

void FileSink::write(const void* data, size_t bytes) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0 && error_ == 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n < 0 ? errno : ENOSPC;
      return;
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void FileSink::finish() {
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 && error_ == 0) error_ = errno;
  if (error_ != 0)
    throw UserError(fmt::format("cannot write {}: {}", shown_.string(), std::strerror(error_)));
}

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  PendingFile file(path);
  write(file.tmp());
  file.commit();
}

void write_bytes_atomically(const fs::path& path, const std::function<void(FileSink& sink)>& write) {
  write_atomically(path, [&](const fs::path& tmp) {
    FileSink sink(tmp, path);
    write(sink);
    sink.finish();
  });
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
  write_bytes_atomically(path, [&](FileSink& sink) { sink.write(text); });
}

}  // namespace lingshu
