#include "io/h5ad_cells.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "io/read_counts.h"

namespace fs = std::filesystem;

namespace lingshu {

namespace {

bool is_h5ad(const fs::path& path) {
  return fs::is_regular_file(path) && path.extension() == ".h5ad";
}

std::vector<fs::path> h5ad_files_in(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (is_h5ad(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    throw UserError(fmt::format("{} is a folder without .h5ad files; pass .h5ad files or a folder of them",
                                folder.string()));
  }
  return files;
}

// The first gene where two files' var_names differ, described for the error message.
std::string first_difference(const std::vector<std::string>& expected, const std::vector<std::string>& got) {
  if (expected.size() != got.size())
    return fmt::format("{} genes instead of {}", got.size(), expected.size());
  for (size_t j = 0; j < expected.size(); ++j) {
    if (expected[j] != got[j]) return fmt::format("gene {} is '{}' instead of '{}'", j, got[j], expected[j]);
  }
  return {};
}

}  // namespace

std::vector<fs::path> expand_h5ad_paths(const std::vector<fs::path>& paths) {
  std::vector<fs::path> files;
  for (const auto& path : paths) {
    if (!fs::exists(path)) throw UserError(fmt::format("{} does not exist", path.string()));
    if (fs::is_directory(path)) {
      const auto inside = h5ad_files_in(path);
      files.insert(files.end(), inside.begin(), inside.end());
    } else {
      refuse_known_other_formats(path);
      files.push_back(path);
    }
  }
  std::set<fs::path> seen;
  for (const auto& f : files) {
    if (!seen.insert(fs::weakly_canonical(f)).second) {
      throw UserError(fmt::format("{} is named twice; each file's cells would count twice", f.string()));
    }
  }
  return files;
}

H5adCells::H5adCells(const std::vector<fs::path>& files, const H5adReadOptions& options) {
  if (files.empty()) throw UserError("no .h5ad file given");
  std::vector<DataFrame> obs_parts;
  for (const auto& path : files) {
    Shard shard{path, std::make_unique<H5adRowReader>(path, options), n_rows_};
    if (shards_.empty()) {
      var_ = shard.reader->var();
    } else if (const auto why = first_difference(var_.index, shard.reader->var().index); !why.empty()) {
      throw UserError(
          fmt::format("{} does not have the genes of {}: {}; shards of one corpus need the same "
                      "genes in the same order",
                      path.string(), files.front().string(), why));
    }
    n_rows_ += shard.reader->n_rows();
    obs_parts.push_back(shard.reader->take_obs());
    shards_.push_back(std::move(shard));
  }
  obs_ = concat_rows(std::move(obs_parts));
}

H5adCells::~H5adCells() = default;

int64_t H5adCells::n_cols() const {
  return columns_.empty() ? shards_.front().reader->n_cols() : static_cast<int64_t>(columns_.size());
}

void H5adCells::keep_columns(std::vector<int64_t> columns) {
  var_ = var_.select_rows(columns);
  columns_ = std::move(columns);
}

// Reads runs of nearby rows with one call each (rows in between are read and dropped), so a
// block of consecutive cells costs one read whatever the file's chunking.
void H5adCells::read_from_shard(const Shard& shard, std::span<const int64_t> local_rows,
                                CsrMatrix& out) const {
  constexpr int64_t kLargestGap = 32;
  const int64_t max_run = shard.reader->suggested_chunk_rows();
  size_t i = 0;
  while (i < local_rows.size()) {
    const int64_t begin = local_rows[i];
    size_t j = i + 1;
    while (j < local_rows.size() && local_rows[j] - local_rows[j - 1] <= kLargestGap &&
           local_rows[j] - begin < max_run)
      ++j;
    const CsrMatrix run = shard.reader->read_rows(begin, local_rows[j - 1] + 1);
    std::vector<int64_t> wanted;
    for (size_t k = i; k < j; ++k) wanted.push_back(local_rows[k] - begin);
    out.append_rows(run.select_rows(wanted));
    i = j;
  }
}

CsrMatrix H5adCells::read(std::span<const int64_t> rows) const {
  CsrMatrix out;
  out.n_cols = shards_.front().reader->n_cols();
  const std::lock_guard lock(mutex_);
  size_t i = 0;
  for (const auto& shard : shards_) {
    const int64_t end = shard.first_row + shard.reader->n_rows();
    std::vector<int64_t> local;
    for (; i < rows.size() && rows[i] < end; ++i) {
      if (rows[i] < shard.first_row || (i > 0 && rows[i] <= rows[i - 1])) {
        throw std::logic_error("H5adCells::read: rows must be ascending");
      }
      local.push_back(rows[i] - shard.first_row);
    }
    if (!local.empty()) read_from_shard(shard, local, out);
  }
  if (i != rows.size()) throw std::logic_error("H5adCells::read: row beyond the files");
  return columns_.empty() ? out : out.select_cols(columns_);
}

}  // namespace lingshu
