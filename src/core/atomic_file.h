#pragma once
// Outputs are written under a temporary name in the destination folder and renamed into place
// once complete, so an interrupted run never leaves a half-written file under the real name.
#include <filesystem>
#include <functional>
#include <string>

namespace lingshu {

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
