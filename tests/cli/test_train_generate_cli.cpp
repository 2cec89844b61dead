// `lingshu train` and `lingshu generate` as a user runs them: files in, files out, read back by
// anndata; interrupted training resumed; bad input refused with one clear line.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "data/simulator.h"
#include "io/h5ad.h"
#include "test_support.h"

namespace lingshu {
namespace {

namespace fs = std::filesystem;

fs::path write_simulated(const testing::TempDir& dir, int64_t cells, int64_t genes) {
  SimulatorConfig c;
  c.n_cells = cells;
  c.n_genes = genes;
  c.n_cell_types = 2;
  c.seed = 3;
  c.lib_loc = 6.5;
  const auto path = dir / "sim.h5ad";
  write_h5ad(path, simulate(c).data);
  return path;
}

const char* kTiny =
    "--preset tiny --patch-size 8 --tokens 16 --batch-size 16 --precision fp32 --threads 1 -q";

TEST(TrainGenerateCli, TrainThenGenerateWritesCountsAnndataReads) {
  testing::TempDir dir;
  const auto data = write_simulated(dir, 80, 50);
  const auto model = dir / "model";
  auto r = testing::run_lingshu(
      fmt::format("train {} --out {} {} --steps 6", data.string(), model.string(), kTiny));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"config.json", "tokenizer.json", "genes.json", "conditions.json", "weights.safetensors",
                        "checkpoint.pt", "train_log.jsonl"}) {
    EXPECT_TRUE(fs::exists(model / f)) << f;
  }
  EXPECT_FALSE(fs::exists(model / "weights.pt")) << "one weights file: safetensors";
  const auto out = dir / "gen.h5ad";
  r = testing::run_lingshu(
      fmt::format("generate {} --n 9 --steps 4 --batch-size 4 --seed 2 --threads 1 -q --out {}",
                  model.string(), out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  if (!testing::python_has("anndata")) GTEST_SKIP() << "/usr/bin/python3 has no anndata";
  const auto check = testing::run_python(fmt::format(R"(
import anndata, numpy as np
real = anndata.read_h5ad('{}')
gen = anndata.read_h5ad('{}')
assert gen.shape == (9, real.n_vars), gen.shape
assert list(gen.var_names) == list(real.var_names)
assert len(set(gen.obs_names)) == 9
x = gen.X.toarray() if hasattr(gen.X, 'toarray') else np.asarray(gen.X)
assert (x >= 0).all() and (x == np.round(x)).all()
assert x.sum() > 0
assert 'lingshu_sampler' in gen.uns and 'steps=4' in str(gen.uns['lingshu_sampler']), dict(gen.uns)
print('ok')
)",
                                                     data.string(), out.string()));
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST(TrainGenerateCli, KilledRunResumesFromItsLastIntactCheckpoint) {
  testing::TempDir dir;
  const auto data = write_simulated(dir, 200, 64);
  const auto model = dir / "model";
  const auto args = fmt::format("train {} --out {} {} --steps 150 --checkpoint-every 2", data.string(),
                                model.string(), kTiny);
  // Start in the background, kill -9 once checkpoints are being written (possibly mid-write).
  const auto pid_file = dir / "pid";
  ASSERT_EQ(testing::run_shell(fmt::format("{} {} > {} 2>&1 & echo $! > {}", LINGSHU_BINARY, args,
                                           (dir / "log").string(), pid_file.string()))
                .exit_code,
            0);
  for (int i = 0; i < 600 && !fs::exists(model / "checkpoint.pt"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  testing::run_shell(fmt::format("kill -9 $(cat {})", pid_file.string()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(fs::exists(model / "checkpoint.pt"))
      << testing::run_shell("cat " + (dir / "log").string()).output;

  const auto r = testing::run_lingshu(args + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("trained 150 of 150 steps"), std::string::npos) << r.output;
  for (const auto& entry : fs::directory_iterator(model)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos)
        << "left behind: " << entry.path();
  }
  const auto g = testing::run_lingshu(
      fmt::format("generate {} --n 2 --steps 2 -q --out {}", model.string(), (dir / "g.h5ad").string()));
  EXPECT_EQ(g.exit_code, 0) << g.output;
}

TEST(TrainGenerateCli, AFolderOfShardsTrainsOnAllTheirCellsAndShardsWithOtherGenesAreRefused) {
  testing::TempDir dir;
  SimulatorConfig c;
  c.n_cells = 150;
  c.n_genes = 40;
  c.n_cell_types = 2;
  const auto data = simulate(c).data;
  fs::create_directories(dir / "shards");
  std::vector<int64_t> first(60), second(90);
  std::iota(first.begin(), first.end(), 0);
  std::iota(second.begin(), second.end(), 60);
  write_h5ad(dir / "shards" / "part_a.h5ad", data.select_cells(first));
  write_h5ad(dir / "shards" / "part_b.h5ad", data.select_cells(second));
  const auto model = dir / "model";
  auto r = testing::run_lingshu(fmt::format("train {} --out {} {} --steps 3 --condition cell_type",
                                            (dir / "shards").string(), model.string(), kTiny));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream config(model / "config.json");
  EXPECT_EQ(nlohmann::json::parse(config).at("training").at("n_cells"), 150);

  AnnData other = data.select_cells(first);
  other.var.index[3] = "OTHER";
  write_h5ad(dir / "shards" / "part_c.h5ad", other);
  r = testing::run_lingshu(fmt::format("train {} --out {} {} --steps 3", (dir / "shards").string(),
                                       (dir / "model2").string(), kTiny));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("part_c.h5ad does not have the genes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("OTHER"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "model2" / "config.json"));
}

TEST(TrainGenerateCli, AGeneListTrainsOnThoseGenesInItsOrder) {
  testing::TempDir dir;
  const auto data = write_simulated(dir, 80, 50);
  const auto names = read_h5ad(data).gene_names();
  std::vector<std::string> wanted;
  for (const int j : {7, 2, 40, 11, 0, 33, 21, 9, 48, 15, 30, 4})
    wanted.push_back(names[static_cast<size_t>(j)]);
  {
    std::ofstream list(dir / "genes.txt");
    for (const auto& g : wanted) list << g << "\n";
  }
  const auto model = dir / "model";
  auto r = testing::run_lingshu(fmt::format("train {} --out {} {} --steps 3 --genes {}", data.string(),
                                            model.string(), kTiny, (dir / "genes.txt").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream genes(model / "genes.json");
  EXPECT_EQ(nlohmann::json::parse(genes).at("names").get<std::vector<std::string>>(), wanted);
  r = testing::run_lingshu(
      fmt::format("generate {} --n 5 --steps 2 -q --out {}", model.string(), (dir / "g.h5ad").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_h5ad(dir / "g.h5ad").gene_names(), wanted);
}

TEST(TrainGenerateCli, MistakesGetOneClearLine) {
  testing::TempDir dir;
  const auto data = write_simulated(dir, 30, 20);
  const auto expect_error = [](const std::string& args, const std::string& words) {
    const auto r = testing::run_lingshu(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(words), std::string::npos) << args << "\n" << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  };
  expect_error(fmt::format("train {} --out {} --preset giant --steps 1", data.string(), (dir / "a").string()),
               "unknown model preset 'giant'");
  expect_error(fmt::format("train {} --out {} --preset tiny --patch-size 32 --steps 1", data.string(),
                           (dir / "b").string()),
               "larger than the 20 genes");
  expect_error(fmt::format("generate {} --n 3 --out {}", (dir / "none").string(), (dir / "x.h5ad").string()),
               "does not exist");
  expect_error(
      fmt::format("train {} --out {} --device cuda --steps 1 {}", data.string(), (dir / "c").string(), kTiny),
      "--device cuda");
}

}  // namespace
}  // namespace lingshu
