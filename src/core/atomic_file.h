#pragma once
// Outputs are written under a temporary name in the destination folder and renamed into place
// once complete, so an interrupted run never leaves a half-written file under the real name.
#include <filesystem>
#include <functional>
#include <string>

namespace lingshu {

// A file written over time under a temporary name in its destination folder: commit() renames it
// into place; destroyed uncommitted (an exception, an interrupted command), the temporary file is
// removed and nothing appears under the real name.
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

// Calls `write(tmp_path)` and renames tmp_path to `path` if it returns normally; removes the
// temporary file if it throws (and rethrows).
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& tmp_path)>& write);

// Throws UserError naming `option` (e.g. "--report") when `path`'s folder does not exist, so a
// command fails before its long part rather than at the end. An empty path is fine (no output).
void require_writable_parent(const std::string& path, const char* option);

// Convenience for text outputs (JSON, CSV, HTML).
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace lingshu
