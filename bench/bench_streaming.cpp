// Training throughput when cells are read from the .h5ad a shuffle group at a time, against the
// same training with the whole matrix in memory, in one process (issue 16: within 10%).
//
//   ./build/bench/bench_streaming FILE.h5ad [--steps N] [--batch-size B] [--rounds R]
//
// Trains the `tiny` preset for N steps (default 300, batch 64) R times each way (default 2),
// alternating, and prints cells/s per run and the ratio of the medians. Peak memory against the
// number of cells is bench/train_memory.sh (separate processes).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "io/h5ad.h"
#include "io/h5ad_cells.h"
#include "train/trainer.h"

namespace {

using namespace lingshu;
namespace fs = std::filesystem;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double train_cells_per_second(const TrainingCells& cells, int64_t steps, int64_t batch, const fs::path& out) {
  fs::remove_all(out);
  TrainOptions o;
  o.out = out;
  o.model = ModelConfig::from_preset("tiny");
  o.batch_size = batch;
  o.steps = steps;
  o.eval_every = steps;
  o.checkpoint_every = steps * 10;
  o.precision = "fp32";
  o.quiet = true;
  const auto r = train_model(cells, o);
  fs::remove_all(out);
  return r.cells_per_second;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_streaming FILE.h5ad [--steps N] [--batch-size B] [--rounds R]\n");
    return 2;
  }
  const fs::path file = argv[1];
  int64_t steps = 300, batch = 64, rounds = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int64_t value = std::stoll(argv[i + 1]);
    if (flag == "--steps") steps = value;
    if (flag == "--batch-size") batch = value;
    if (flag == "--rounds") rounds = value;
  }
  auto files = std::make_shared<H5adCells>(std::vector<fs::path>{file});
  const TrainingCells streamed{files->obs(), files->var(), files};
  auto data = std::make_shared<const AnnData>(read_h5ad(file));
  const std::shared_ptr<const CsrMatrix> matrix(data, &data->X);
  const TrainingCells in_memory{data->obs, data->var, std::make_shared<MatrixRows>(matrix)};
  const fs::path out = fs::temp_directory_path() / "lingshu_bench_streaming";

  fmt::print("{} cells x {} genes, tiny preset, {} steps of {} cells\n\n", files->n_rows(), files->n_cols(),
             steps, batch);
  fmt::print("| round | in memory cells/s | streamed cells/s |\n|---|---|---|\n");
  std::vector<double> memory_rate, streamed_rate;
  for (int64_t r = 0; r < rounds; ++r) {
    memory_rate.push_back(train_cells_per_second(in_memory, steps, batch, out));
    streamed_rate.push_back(train_cells_per_second(streamed, steps, batch, out));
    fmt::print("| {} | {:.1f} | {:.1f} |\n", r + 1, memory_rate.back(), streamed_rate.back());
  }
  fmt::print("\nstreamed / in memory (medians): {:.3f}\n", median(streamed_rate) / median(memory_rate));
  return 0;
}
