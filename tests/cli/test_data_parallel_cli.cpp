// `lingshu train --nproc N`: N processes on torch.distributed (c10d, Gloo over loopback) take the
// optimiser steps one process takes with the whole batch; a killed worker stops the job with a
// clear error instead of a hang.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "data/simulator.h"
#include "io/h5ad.h"
#include "test_support.h"

namespace lingshu {
namespace {

namespace fs = std::filesystem;

// The float32 tensors of a .safetensors file (8-byte header length, JSON header, raw data).
std::map<std::string, std::vector<float>> read_safetensors(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::string, std::vector<float>> tensors;
  const auto index = nlohmann::json::parse(header);
  for (const auto& [name, entry] : index.items()) {
    if (name == "__metadata__" || entry.at("dtype") != "F32") continue;
    const auto begin = entry.at("data_offsets")[0].get<size_t>(),
               end = entry.at("data_offsets")[1].get<size_t>();
    std::vector<float> values((end - begin) / sizeof(float));
    std::memcpy(values.data(), data.data() + begin, end - begin);
    tensors[name] = std::move(values);
  }
  return tensors;
}

// Largest |a - b| over every tensor, relative to the largest |a|.
double relative_difference(const std::map<std::string, std::vector<float>>& a,
                           const std::map<std::string, std::vector<float>>& b) {
  double diff = 0, scale = 0;
  for (const auto& [name, values] : a) {
    const auto& other = b.at(name);
    for (size_t i = 0; i < values.size(); ++i) {
      diff = std::max(diff, static_cast<double>(std::abs(values[i] - other[i])));
      scale = std::max(scale, static_cast<double>(std::abs(values[i])));
    }
  }
  return diff / scale;
}

// 300 simulated cells of 120 genes and 3 types (with `n_perturbations` besides control) in
// DIR/sim.h5ad; returns the simulation for its truth.
Simulation write_simulation(const testing::TempDir& dir, int n_perturbations = 0) {
  SimulatorConfig c;
  c.n_cells = 300;
  c.n_genes = 120;
  c.n_cell_types = 3;
  c.n_perturbations = n_perturbations;
  c.seed = 5;
  auto sim = simulate(c);
  write_h5ad(dir / "sim.h5ad", sim.data);
  return sim;
}

fs::path write_simulated(const testing::TempDir& dir) {
  write_simulation(dir);
  return dir / "sim.h5ad";
}

const char* kTiny =
    "--preset tiny --patch-size 8 --tokens 16 --precision fp32 --threads 1 --condition cell_type "
    "--eval-every 10";

TEST(DataParallelCli, TwoProcessesTakeTheStepsOfOneWithTheWholeBatch) {
  testing::TempDir dir;
  const auto data = write_simulated(dir);
  const auto train = [&](const std::string& name, const std::string& extra) {
    return testing::run_lingshu(fmt::format("train {} --out {} {} --steps 30 {}", data.string(),
                                            (dir / name).string(), kTiny, extra));
  };
  const auto one = train("one", "-q --batch-size 16");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = train("two", "--batch-size 16 --nproc 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("2 processes"), std::string::npos) << two.output;
  // A batch of 8 takes different steps: the comparison can tell runs apart.
  const auto half = train("half", "-q --batch-size 8");
  ASSERT_EQ(half.exit_code, 0) << half.output;

  const auto weights = [&](const std::string& name) {
    return read_safetensors(dir / name / "weights.safetensors");
  };
  const auto w_one = weights("one");
  ASSERT_FALSE(w_one.empty());
  EXPECT_LT(relative_difference(w_one, weights("two")), 1e-4);
  EXPECT_GT(relative_difference(w_one, weights("half")), 1e-3);
  for (const auto& entry : fs::directory_iterator(dir / "two")) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos)
        << "left behind: " << entry.path();
  }
}

TEST(DataParallelCli, AKilledWorkerStopsTheJobWithAClearError) {
  testing::TempDir dir;
  const auto data = write_simulated(dir);
  const auto pid_file = dir / "pid", log = dir / "log";
  const auto started = testing::run_shell(fmt::format(
      "{} train {} --out {} {} --steps 1000000 --batch-size 16 --nproc 2 -q > {} 2>&1 & echo $! > {}",
      LINGSHU_BINARY, data.string(), (dir / "model").string(), kTiny, log.string(), pid_file.string()));
  ASSERT_EQ(started.exit_code, 0);
  // Once rank 0 has written its first log lines the job is stepping: kill rank 1.
  for (int i = 0; i < 600 && !fs::exists(dir / "model" / "train_log.jsonl"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto pid = testing::run_shell("cat " + pid_file.string()).output;
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  ASSERT_EQ(testing::run_shell(fmt::format("kill -9 $(pgrep -P {})", pid)).exit_code, 0);
  // Rank 0 must end on its own, well before the collectives' timeout.
  bool ended = false;
  for (int i = 0; i < 600 && !ended; ++i) {
    ended = testing::run_shell(fmt::format("kill -0 {} 2>/dev/null", pid)).exit_code != 0;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!ended) testing::run_shell(fmt::format("kill -9 {}", pid));
  ASSERT_TRUE(ended) << "rank 0 still running 30 s after its worker was killed";
  const auto output = testing::run_shell("cat " + log.string()).output;
  EXPECT_NE(output.find("lingshu: error: data-parallel run"), std::string::npos) << output;
  EXPECT_NE(output.find("(rank 1) was killed by signal 9"), std::string::npos) << output;
  EXPECT_EQ(output.find("internal error"), std::string::npos) << output;
}

TEST(DataParallelCli, AKilledTwoProcessRunResumesOnOneProcessAndEndsWhereAnUnbrokenRunEnds) {
  testing::TempDir dir;
  const auto data = write_simulated(dir);
  const auto args = [&](const std::string& name) {
    return fmt::format("train {} --out {} {} --steps 120 --batch-size 16 --checkpoint-every 5 -q",
                       data.string(), (dir / name).string(), kTiny);
  };
  const auto unbroken = testing::run_lingshu(args("unbroken"));
  ASSERT_EQ(unbroken.exit_code, 0) << unbroken.output;

  const auto pid_file = dir / "pid";
  ASSERT_EQ(testing::run_shell(fmt::format("{} {} --nproc 2 > {} 2>&1 & echo $! > {}", LINGSHU_BINARY,
                                           args("broken"), (dir / "log").string(), pid_file.string()))
                .exit_code,
            0);
  for (int i = 0; i < 600 && !fs::exists(dir / "broken" / "checkpoint.pt"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  testing::run_shell(fmt::format("kill -9 $(cat {})", pid_file.string()));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(fs::exists(dir / "broken" / "checkpoint.pt"));
  const auto logged =
      testing::run_shell("grep -c loss " + (dir / "broken" / "train_log.jsonl").string()).output;
  ASSERT_LT(std::stoi(logged), 12) << "the two-process run was killed part-way";

  const auto resumed = testing::run_lingshu(args("broken") + " --resume --nproc 1");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("trained 120 of 120 steps"), std::string::npos) << resumed.output;
  const auto weights = [&](const std::string& name) {
    return read_safetensors(dir / name / "weights.safetensors");
  };
  EXPECT_LT(relative_difference(weights("unbroken"), weights("broken")), 1e-4);
}

TEST(DataParallelCli, MoreProcessesThanCellsPerStepIsRefused) {
  testing::TempDir dir;
  const auto data = write_simulated(dir);
  const auto r = testing::run_lingshu(fmt::format("train {} --out {} {} --steps 2 --nproc 3 --batch-size 2",
                                                  data.string(), (dir / "m").string(), kTiny));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--nproc 3 is more than the 2 cells of a batch"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "m" / "config.json"));
}

// Everything a user reads from a file of cells: X, the cell names and every obs column's labels.
void expect_same_cells(const fs::path& a_path, const fs::path& b_path) {
  const AnnData a = read_h5ad(a_path), b = read_h5ad(b_path);
  EXPECT_EQ(a.X.indptr, b.X.indptr) << b_path;
  EXPECT_EQ(a.X.indices, b.X.indices) << b_path;
  EXPECT_EQ(a.X.values, b.X.values) << b_path;
  EXPECT_EQ(a.obs.index, b.obs.index) << b_path;
  ASSERT_EQ(a.obs.columns.size(), b.obs.columns.size()) << b_path;
  for (const auto& column : a.obs.columns) {
    const Column* other = b.obs.find(column.name);
    ASSERT_NE(other, nullptr) << column.name;
    for (int64_t i = 0; i < column.size(); ++i) ASSERT_EQ(column.text(i), other->text(i)) << column.name;
  }
  EXPECT_EQ(a.var.index, b.var.index) << b_path;
}

TEST(DataParallelCli, GenerateAndPredictOnSeveralProcessesWriteTheCellsOfOne) {
  testing::TempDir dir;
  const auto sim = write_simulation(dir, /*n_perturbations=*/2);
  const auto model = (dir / "model").string();
  const auto trained =
      testing::run_lingshu(fmt::format("train {} --out {} {} --perturbation condition --steps 10 -q",
                                       (dir / "sim.h5ad").string(), model, kTiny));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const auto pert = sim.truth.perturbations.at(0).name;
  std::ofstream(dir / "pairs.csv") << "cell_type,condition,n_cells\ntype_0," << pert << ",37\ntype_1," << pert
                                   << ",29\n";

  // 150 cells in batches of 16: ten batches, shared 5 + 5 by two processes and 3 + 3 + 4 by three.
  const std::string sampling = "--steps 4 --batch-size 16 --threads 1";
  const auto generate = [&](const std::string& name, const std::string& extra, int seed = 3) {
    return testing::run_lingshu(fmt::format("generate {} --n 150 {} --seed {} --out {} {}", model, sampling,
                                            seed, (dir / name).string(), extra));
  };
  const auto predict = [&](const std::string& name, const std::string& extra) {
    return testing::run_lingshu(fmt::format("predict {} --pairs {} {} --seed 3 --out {} {}", model,
                                            (dir / "pairs.csv").string(), sampling, (dir / name).string(),
                                            extra));
  };
  const auto one = generate("one.h5ad", "-q");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = generate("two.h5ad", "--nproc 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("generate: wrote 150 cells x 120 genes"), std::string::npos) << two.output;
  const auto three = generate("three.h5ad", "--nproc 3 -q");
  ASSERT_EQ(three.exit_code, 0) << three.output;
  expect_same_cells(dir / "one.h5ad", dir / "two.h5ad");
  expect_same_cells(dir / "one.h5ad", dir / "three.h5ad");
  // Another seed gives other cells: the comparison can tell files apart.
  const auto other = generate("other.h5ad", "-q", 4);
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_NE(read_h5ad(dir / "one.h5ad").X.values, read_h5ad(dir / "other.h5ad").X.values);

  const auto predicted_one = predict("pred_one.h5ad", "-q");
  ASSERT_EQ(predicted_one.exit_code, 0) << predicted_one.output;
  const auto predicted_two = predict("pred_two.h5ad", "-q --nproc 2");
  ASSERT_EQ(predicted_two.exit_code, 0) << predicted_two.output;
  expect_same_cells(dir / "pred_one.h5ad", dir / "pred_two.h5ad");
  // The expected profiles too: each process writes its share of the rows.
  ASSERT_EQ(predict("exp_one.h5ad", "-q --expected").exit_code, 0);
  const auto expected_three = predict("exp_three.h5ad", "-q --expected --nproc 3");
  ASSERT_EQ(expected_three.exit_code, 0) << expected_three.output;
  expect_same_cells(dir / "exp_one.h5ad", dir / "exp_three.h5ad");

  // Bad input fails on every process alike: one line (rank 0's), and no file.
  std::ofstream(dir / "bad.csv") << "cell_type,condition,n_cells\ntype_0,NO_SUCH_PERTURBATION,10\n";
  const auto bad =
      testing::run_lingshu(fmt::format("predict {} --pairs {} --nproc 2 --threads 1 --out {}", model,
                                       (dir / "bad.csv").string(), (dir / "bad.h5ad").string()));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
  EXPECT_NE(bad.output.find("lingshu: error: the pairs file names labels the model never saw"),
            std::string::npos)
      << bad.output;
  EXPECT_FALSE(fs::exists(dir / "bad.h5ad"));

  for (const auto& entry : fs::directory_iterator(dir.path())) {
    const auto name = entry.path().filename().string();
    EXPECT_TRUE(name.find(".rank-") == std::string::npos && name.find(".tmp") == std::string::npos)
        << "left behind: " << name;
  }
}

}  // namespace
}  // namespace lingshu
