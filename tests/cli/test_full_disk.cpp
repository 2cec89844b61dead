// Every command that writes, on a disk that fills up: one line naming the file and the cause, exit
// 1, no temporary file left, nothing under the final name, and for `train` the previous
// checkpoint and weights intact. The full disk is a file-size limit (RLIMIT_FSIZE with SIGXFSZ
// ignored), so writes fail with EFBIG ("File too large") as they would with ENOSPC.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/simulator.h"
#include "io/h5ad.h"
#include "test_support.h"

namespace lingshu {
namespace {

namespace fs = std::filesystem;

const char* kTiny =
    "--preset tiny --patch-size 8 --tokens 16 --batch-size 16 --precision fp32 --threads 1 -q";

fs::path write_simulated(const fs::path& path) {
  SimulatorConfig c;
  c.n_cells = 120;
  c.n_genes = 60;
  c.n_cell_types = 2;
  c.seed = 5;
  write_h5ad(path, simulate(c).data);
  return path;
}

// Names in `dir` that start with a dot: the temporaries and the --nproc rank files.
std::vector<std::string> hidden_files(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".")) names.push_back(name);
  }
  return names;
}

// What every failed write must look like to the user.
void expect_one_clear_line(const testing::CommandResult& r, const fs::path& named) {
  EXPECT_EQ(r.exit_code, 1) << r.output;  // -1 would be a crash (segfault, abort)
  EXPECT_NE(r.output.find("lingshu: error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(named.string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("File too large"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("HDF5"), std::string::npos) << "HDF5's error stack reached the user:\n" << r.output;
}

TEST(FullDisk, SimulateStopsWithOneLineAndLeavesNothing) {
  testing::TempDir dir;
  const auto out = dir / "s.h5ad";
  const auto r = testing::run_lingshu_with_file_limit(
      200, fmt::format("simulate --cells 20000 --genes 500 --out {} -q", out.string()));
  expect_one_clear_line(r, out);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(hidden_files(dir.path()).empty()) << hidden_files(dir.path()).front();
}

TEST(FullDisk, ConvertStopsWithOneLineAndLeavesNothing) {
  testing::TempDir dir;
  const auto in = dir / "in.h5ad";
  ASSERT_EQ(testing::run_lingshu(fmt::format("simulate --cells 4000 --genes 400 --out {} -q", in.string()))
                .exit_code,
            0);
  const auto out = dir / "c.h5ad";
  const auto r =
      testing::run_lingshu_with_file_limit(64, fmt::format("convert {} {}", in.string(), out.string()));
  expect_one_clear_line(r, out);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(hidden_files(dir.path()).empty());
}

TEST(FullDisk, EvalReportStopsWithOneLine) {
  testing::TempDir dir;
  const auto real = write_simulated(dir / "real.h5ad");
  const auto report = dir / "report.html";
  const auto r = testing::run_lingshu_with_file_limit(
      8, fmt::format("eval generation {} {} --report {} -q", real.string(), real.string(), report.string()));
  expect_one_clear_line(r, report);
  EXPECT_FALSE(fs::exists(report));
  EXPECT_TRUE(hidden_files(dir.path()).empty());
}

TEST(FullDisk, TrainKeepsThePreviousCheckpointAndGenerateStopsCleanly) {
  testing::TempDir dir;
  const auto data = write_simulated(dir / "sim.h5ad");
  const auto model = dir / "model";
  const std::string train = fmt::format("train {} --out {} {}", data.string(), model.string(), kTiny);
  ASSERT_EQ(testing::run_lingshu(train + " --steps 4").exit_code, 0);
  const auto weights_before = fs::file_size(model / "weights.safetensors");

  // More steps with too little room for the next checkpoint: it fails, the earlier one stays.
  auto r = testing::run_lingshu_with_file_limit(64, train + " --steps 8 --resume");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("File too large"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(model.string()), std::string::npos) << r.output;
  EXPECT_TRUE(hidden_files(model).empty()) << hidden_files(model).front();
  EXPECT_EQ(fs::file_size(model / "weights.safetensors"), weights_before);

  // Once there is room again, --resume continues from the checkpoint that was kept.
  r = testing::run_lingshu(train + " --steps 8 --resume");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  for (const char* nproc : {"1", "2"}) {
    const auto out = dir / "g.h5ad";
    r = testing::run_lingshu_with_file_limit(
        64, fmt::format("generate {} --n 3000 --steps 1 --threads 1 -q --nproc {} --out {}", model.string(),
                        nproc, out.string()));
    expect_one_clear_line(r, out);
    EXPECT_FALSE(fs::exists(out));
    EXPECT_TRUE(hidden_files(dir.path()).empty())
        << "--nproc " << nproc << ": " << hidden_files(dir.path()).front();
  }
}

// A real full disk where the test may mount one (root, a kernel that allows it).
TEST(FullDisk, SmallTmpfsGivesNoSpaceLeftOnDevice) {
  if (::geteuid() != 0) GTEST_SKIP() << "not root: cannot mount a small tmpfs (the file-size tests cover it)";
  testing::TempDir dir;
  const auto small = dir / "small";
  fs::create_directory(small);
  if (testing::run_shell(fmt::format("mount -t tmpfs -o size=600k tmpfs '{}'", small.string())).exit_code !=
      0)
    GTEST_SKIP() << "mounting a tmpfs was refused here";
  const auto out = small / "s.h5ad";
  const auto r =
      testing::run_lingshu(fmt::format("simulate --cells 20000 --genes 500 --out {} -q", out.string()));
  const auto left = hidden_files(small);
  testing::run_shell(fmt::format("umount '{}'", small.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(out.string()), std::string::npos) << r.output;
  EXPECT_TRUE(left.empty());
}

}  // namespace
}  // namespace lingshu
