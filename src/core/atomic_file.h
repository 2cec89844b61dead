#pragma once
// Outputs are written under a temporary name in the destination folder and renamed into place
// once complete, so an interrupted run never leaves a half-written file under the real name.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace lingshu {

// A file written over time under a temporary name (".NAME.tmpPID") in its destination folder:
// commit() renames it into place; destroyed uncommitted (an exception, an interrupted command),
// the temporary file is removed and nothing appears under the real name. Opening one removes the
// temporaries of the same output that processes no longer running left behind (kill -9).
class PendingFile {
 public:
  // UserError when the destination folder does not exist.
  explicit PendingFile(std::filesystem::path path);
  ~PendingFile();
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& tmp() const { return tmp_; }
  // Renames the temporary file to the real name (UserError if that fails).
  void commit();

 private:
  std::filesystem::path path_, tmp_;
  bool committed_ = false;
};

// Bytes written straight to a file descriptor, remembering the first failure (a full disk, a
// file-size limit) so that finish() can name its cause; writes after a failure are skipped.
class FileSink {
 public:
  // `shown` is the name used in messages (the destination, not the temporary name).
  FileSink(const std::filesystem::path& path, std::filesystem::path shown);
  ~FileSink();
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  void write(const void* data, size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Closes the file; UserError "cannot write SHOWN: CAUSE" if any write or the close failed.
  void finish();

 private:
  int fd_ = -1;
  int error_ = 0;  // errno of the first failure
  std::filesystem::path shown_;
};

// Calls `write(tmp_path)` and renames tmp_path to `path` if it returns normally; removes the
// temporary file if it throws (and rethrows).
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& tmp_path)>& write);

// write_atomically through a FileSink: `write(sink)` fills the file.
void write_bytes_atomically(const std::filesystem::path& path,
                            const std::function<void(FileSink& sink)>& write);

// Throws UserError naming `option` (e.g. "--report") when `path`'s folder does not exist, so a
// command fails before its long part rather than at the end. An empty path is fine (no output).
void require_writable_parent(const std::string& path, const char* option);

// Convenience for text outputs (JSON, CSV, HTML).
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

// The temporaries of `path` (".NAME.tmpPID") whose process is no longer running.
std::vector<std::filesystem::path> stale_temporaries(const std::filesystem::path& path);

}  // namespace lingshu
