// A corpus in several .h5ad shards reads like one matrix: rows anywhere, obs concatenated, and
// shards whose genes differ are refused by name.
#include <gtest/gtest.h>

#include <numeric>

#include "core/error.h"
#include "data/simulator.h"
#include "io/h5ad.h"
#include "io/h5ad_cells.h"
#include "io_test_util.h"

namespace lingshu {
namespace {

namespace fs = std::filesystem;

AnnData simulated(int64_t cells, int64_t genes) {
  SimulatorConfig c;
  c.n_cells = cells;
  c.n_genes = genes;
  c.n_cell_types = 3;
  c.seed = 11;
  return simulate(c).data;
}

std::vector<int64_t> range(int64_t begin, int64_t end) {
  std::vector<int64_t> rows(static_cast<size_t>(end - begin));
  std::iota(rows.begin(), rows.end(), begin);
  return rows;
}

// Writes rows [0, 100), [100, 220) and [220, n) of `data` as three files in `folder`.
void write_shards(const AnnData& data, const fs::path& folder) {
  fs::create_directories(folder);
  const int64_t bounds[] = {0, 100, 220, data.n_obs()};
  for (int s = 0; s < 3; ++s) {
    write_h5ad(folder / fmt::format("part{}.h5ad", s), data.select_cells(range(bounds[s], bounds[s + 1])));
  }
}

void expect_same_matrix(const CsrMatrix& a, const CsrMatrix& b) {
  EXPECT_EQ(a.n_rows, b.n_rows);
  EXPECT_EQ(a.n_cols, b.n_cols);
  EXPECT_EQ(a.indptr, b.indptr);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.values, b.values);
}

TEST(H5adCells, AFolderOfShardsReadsLikeTheWholeMatrixAtAnyRows) {
  testing::TempDir dir;
  const auto data = simulated(300, 40);
  write_shards(data, dir / "corpus");
  const H5adCells cells(expand_h5ad_paths({dir / "corpus"}));
  EXPECT_EQ(cells.n_files(), 3);
  ASSERT_EQ(cells.n_rows(), 300);
  EXPECT_EQ(cells.n_cols(), 40);
  EXPECT_EQ(cells.var().index, data.var.index);
  // Runs, a gap wider than a read, and rows on both sides of each shard boundary.
  const std::vector<int64_t> rows = {0, 1, 2, 50, 99, 100, 101, 150, 219, 220, 221, 290, 299};
  expect_same_matrix(cells.read(rows), data.X.select_rows(rows));
  expect_same_matrix(cells.read(range(0, 300)), data.X);
  // obs: the shards' rows one after another; each shard has only some of the cell types as
  // categories, and the labels survive the merge.
  ASSERT_EQ(cells.obs().size(), 300);
  const Column& got = cells.obs().require("cell_type", "obs");
  const Column& want = data.obs.require("cell_type", "obs");
  for (int64_t i = 0; i < 300; ++i) EXPECT_EQ(got.label(i), want.label(i)) << i;
  EXPECT_EQ(cells.obs().index, data.obs.index);
}

TEST(H5adCells, KeptColumnsAreReadInTheListedOrder) {
  testing::TempDir dir;
  const auto data = simulated(120, 30);
  write_h5ad(dir / "one.h5ad", data);
  H5adCells cells({dir / "one.h5ad"});
  const std::vector<int64_t> columns = {7, 2, 29};
  cells.keep_columns(columns);
  EXPECT_EQ(cells.n_cols(), 3);
  EXPECT_EQ(cells.var().index,
            (std::vector<std::string>{data.var.index[7], data.var.index[2], data.var.index[29]}));
  const std::vector<int64_t> rows = {3, 4, 90};
  expect_same_matrix(cells.read(rows), data.X.select_rows(rows).select_cols(columns));
}

TEST(H5adCells, ShardsWithOtherGenesAreRefusedNamingTheFileAndTheGene) {
  testing::TempDir dir;
  auto data = simulated(60, 20);
  write_h5ad(dir / "a.h5ad", data);
  data.var.index[5] = "NOT_A_GENE";
  write_h5ad(dir / "b.h5ad", data);
  try {
    H5adCells cells({dir / "a.h5ad", dir / "b.h5ad"});
    FAIL() << "different genes were accepted";
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("b.h5ad"), std::string::npos) << message;
    EXPECT_NE(message.find("NOT_A_GENE"), std::string::npos) << message;
  }
}

TEST(H5adCells, PathsAreExpandedAndCheckedBeforeAnythingIsRead) {
  testing::TempDir dir;
  fs::create_directories(dir / "empty");
  EXPECT_THROW(expand_h5ad_paths({dir / "empty"}), UserError);
  EXPECT_THROW(expand_h5ad_paths({dir / "missing.h5ad"}), UserError);
  const auto data = simulated(30, 10);
  write_h5ad(dir / "x.h5ad", data);
  EXPECT_THROW(expand_h5ad_paths({dir / "x.h5ad", dir.path() / "." / "x.h5ad"}), UserError);
  std::ofstream(dir / "cells.loom") << "not hdf5";
  EXPECT_THROW(expand_h5ad_paths({dir / "cells.loom"}), UserError);
  EXPECT_EQ(expand_h5ad_paths({dir.path()}), std::vector<fs::path>{dir / "x.h5ad"});
}

}  // namespace
}  // namespace lingshu
