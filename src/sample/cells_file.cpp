#include "sample/cells_file.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "io/h5ad.h"
#include "train/distributed.h"

namespace lingshu {

namespace fs = std::filesystem;

namespace {

// Where rank `rank` leaves its cells for rank 0: beside the output, hidden.
fs::path shard_path(const fs::path& out, int rank) {
  return out.parent_path() / fmt::format(".{}.rank-{}.h5ad", out.filename().string(), rank);
}

// Removes the ranks' shard files however rank 0 leaves.
class ShardFiles {
 public:
  ShardFiles(const fs::path& out, int n_ranks) {
    for (int r = 1; r < n_ranks; ++r) paths_.push_back(shard_path(out, r));
  }
  ~ShardFiles() {
    for (const auto& p : paths_) {
      std::error_code ignored;
      fs::remove(p, ignored);
    }
  }
  ShardFiles(const ShardFiles&) = delete;
  ShardFiles& operator=(const ShardFiles&) = delete;
  const std::vector<fs::path>& paths() const { return paths_; }

 private:
  std::vector<fs::path> paths_;
};

void append_shard(const fs::path& path, int rank, H5adRowWriter& writer) {
  if (!fs::exists(path)) {
    throw UserError(fmt::format(
        "rank {} wrote its cells to {}, which rank 0 cannot see: across machines, --out must be in a "
        "folder they share",
        rank, path.string()));
  }
  H5adRowReader reader(path, {"", false, false});
  const int64_t chunk = reader.suggested_chunk_rows();
  for (int64_t begin = 0; begin < reader.n_rows(); begin += chunk)
    writer.append_rows(reader.read_rows(begin, std::min(reader.n_rows(), begin + chunk)));
}

// A shard's obs: only its row count matters (rank 0 writes the names).
DataFrame numbered_rows(int64_t n) {
  DataFrame obs;
  for (int64_t i = 0; i < n; ++i) obs.index.push_back(std::to_string(i));
  return obs;
}

}  // namespace

WrittenCells write_generated_cells(const fs::path& out, const WorldInfo& world, const ShardMaker& make) {
  const Shard shard{world.rank, world.size};
  if (!world.distributed()) {
    H5adRowWriter writer(out);
    const AnnData cells = make(shard, [&](const CsrMatrix& rows) { writer.append_rows(rows); });
    writer.finish(cells.obs, cells.var, cells.uns_strings);
    return {writer.n_rows(), cells.var.size()};
  }
  // Meet first, so that a rank that cannot be reached fails before the work, not after it.
  Collective collective(world);
  std::optional<ShardFiles> shards;
  if (world.is_root()) shards.emplace(out, world.size);
  std::optional<H5adRowWriter> writer;
  AnnData cells;
  try {
    writer.emplace(world.is_root() ? out : shard_path(out, world.rank));
    cells = make(shard, [&](const CsrMatrix& rows) { writer->append_rows(rows); });
    if (!world.is_root()) writer->finish(numbered_rows(writer->n_rows()), cells.var, {});
  } catch (const UserError& e) {
    if (world.is_root()) throw;
    // The shard's hidden name means little to the user: say whose file it was part of.
    throw UserError(fmt::format("{} (rank {}'s share of {})", e.what(), world.rank, out.string()));
  }
  // Every shard is complete (renamed into place) once all ranks arrive here.
  auto done = torch::ones({1}, torch::kLong);
  collective.sum_over_ranks({done});
  if (!world.is_root()) return {};
  for (size_t r = 0; r < shards->paths().size(); ++r)
    append_shard(shards->paths()[r], static_cast<int>(r) + 1, *writer);
  if (writer->n_rows() != cells.obs.size()) {
    throw std::logic_error(
        fmt::format("the ranks made {} cells for an obs of {}", writer->n_rows(), cells.obs.size()));
  }
  writer->finish(cells.obs, cells.var, cells.uns_strings);
  return {writer->n_rows(), cells.var.size()};
}

}  // namespace lingshu
