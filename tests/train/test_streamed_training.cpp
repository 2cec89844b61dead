// Training from .h5ad files read a shuffle group at a time is the same training as from memory,
// and the block shuffle visits every cell once per epoch while reading few places per group.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <numeric>
#include <set>

#include "core/error.h"
#include "data/simulator.h"
#include "io/h5ad.h"
#include "io/h5ad_cells.h"
#include "test_support.h"
#include "tiny_training.h"
#include "train/batch_loader.h"
#include "train/trainer.h"

namespace lingshu {
namespace {

namespace fs = std::filesystem;

TEST(ShuffleGroups, EveryEpochVisitsEveryCellOnceAndAGroupReadsAtMostItsBlocks) {
  const int64_t n = 20000;  // more than two groups of 64 x 128 cells
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    std::vector<int64_t> order;
    std::vector<std::vector<int64_t>> groups;
    for (int64_t p = epoch * n; p < (epoch + 1) * n;) {
      const auto group = shuffle_group_at(n, 9, p);
      ASSERT_EQ(group.first_position, p);
      EXPECT_EQ(shuffle_group_at(n, 9, p + 5).cells, group.cells);  // a pure function of the position
      order.insert(order.end(), group.cells.begin(), group.cells.end());
      groups.push_back(group.cells);
      p += static_cast<int64_t>(group.cells.size());
    }
    EXPECT_EQ(std::set<int64_t>(order.begin(), order.end()).size(), static_cast<size_t>(n));
    EXPECT_EQ(groups.size(), 3u);  // 157 blocks, 64 per group
    for (const auto& cells : groups) {
      std::set<int64_t> blocks;
      for (const int64_t c : cells) blocks.insert(c / kShuffleBlockRows);
      EXPECT_LE(blocks.size(), static_cast<size_t>(kShuffleGroupBlocks));
      // Shuffled within the group: consecutive positions rarely come from one block.
      int64_t same_block = 0;
      for (size_t i = 1; i < cells.size(); ++i)
        same_block += cells[i] / kShuffleBlockRows == cells[i - 1] / kShuffleBlockRows;
      EXPECT_LT(same_block, static_cast<int64_t>(cells.size()) / 10);
    }
  }
  EXPECT_NE(shuffle_group_at(n, 9, 0).cells, shuffle_group_at(n, 9, n).cells);  // a new order each epoch
}

TEST(StreamedTraining, ShardFilesTrainExactlyLikeTheSameCellsInMemory) {
  testing::TempDir dir;
  SimulatorConfig c;
  c.n_cells = 300;
  c.n_genes = 48;
  c.n_cell_types = 3;
  c.seed = 5;
  const auto data = simulate(c).data;
  fs::create_directories(dir / "shards");
  std::vector<int64_t> first(130), second(170);
  std::iota(first.begin(), first.end(), 0);
  std::iota(second.begin(), second.end(), 130);
  write_h5ad(dir / "shards" / "a.h5ad", data.select_cells(first));
  write_h5ad(dir / "shards" / "b.h5ad", data.select_cells(second));

  auto options = testing::tiny_train_options(dir / "memory", 12);
  options.condition_fields = {"cell_type"};
  options.holdouts = {"cell_type=type_1"};  // rows left out in the middle of the files
  train_model(data, options);
  auto files = std::make_shared<H5adCells>(expand_h5ad_paths({dir / "shards"}));
  options.out = dir / "files";
  train_model(TrainingCells{files->obs(), files->var(), files}, options);

  const auto a = testing::stored_weights(dir / "memory");
  const auto b = testing::stored_weights(dir / "files");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, value] : a) EXPECT_TRUE(torch::equal(value, b.at(name))) << name;
}

TEST(StreamedTraining, AValueThatIsNotACountStopsTrainingNamingTheCellAndGene) {
  testing::TempDir dir;
  SimulatorConfig c;
  c.n_cells = 200;
  c.n_genes = 32;
  c.seed = 2;
  auto data = simulate(c).data;
  data.X.values[data.X.indptr[150]] = 2.5f;  // one normalised value in one cell
  write_h5ad(dir / "cells.h5ad", data);
  auto files = std::make_shared<H5adCells>(std::vector<fs::path>{dir / "cells.h5ad"});
  try {
    train_model(TrainingCells{files->obs(), files->var(), files}, testing::tiny_train_options(dir / "m", 4));
    FAIL() << "a non-count value was trained on";
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(data.obs.index[150]), std::string::npos) << message;
    EXPECT_NE(message.find("2.5"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace lingshu
