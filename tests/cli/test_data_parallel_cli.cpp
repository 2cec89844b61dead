// `lingshu train --nproc N`: N processes on torch.distributed (c10d, Gloo over loopback) take the
// optimiser steps one process takes with the whole batch; a killed worker stops the job with a
// clear error instead of a hang.
#include <fmt/format.h>
#include <gtest/gtest.h>

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

fs::path write_simulated(const testing::TempDir& dir) {
  SimulatorConfig c;
  c.n_cells = 300;
  c.n_genes = 120;
  c.n_cell_types = 3;
  c.seed = 5;
  const auto path = dir / "sim.h5ad";
  write_h5ad(path, simulate(c).data);
  return path;
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
  EXPECT_NE(output.find("lingshu: error: data-parallel training"), std::string::npos) << output;
  EXPECT_NE(output.find("(rank 1) was killed by signal 9"), std::string::npos) << output;
  EXPECT_EQ(output.find("internal error"), std::string::npos) << output;
}

TEST(DataParallelCli, AKilledTwoProcessRunResumesOnOneProcessAndEndsWhereAnUnbrokenRunEnds) {
  testing::TempDir dir;
  const auto data = write_simulated(dir);
  const auto args = [&](const std::string& name) {
    return fmt::format("train {} --out {} {} --steps 120 --batch-size 16 --checkpoint-every 5 -q", data.string(),
                       (dir / name).string(), kTiny);
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
  const auto logged = testing::run_shell("grep -c loss " + (dir / "broken" / "train_log.jsonl").string()).output;
  ASSERT_LT(std::stoi(logged), 12) << "the two-process run was killed part-way";

  const auto resumed = testing::run_lingshu(args("broken") + " --resume --nproc 1");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("trained 120 of 120 steps"), std::string::npos) << resumed.output;
  const auto weights = [&](const std::string& name) { return read_safetensors(dir / name / "weights.safetensors"); };
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

}  // namespace
}  // namespace lingshu
