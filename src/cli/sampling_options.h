#pragma once
// The sampler's flags, shared by `generate` and `predict` so both read the same way, and how both
// write their cells (on one process or --nproc N).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "sample/generate.h"

namespace lingshu::cli {

// The arguments of either command: its options (which hold a SamplingSettings `sampling`), the
// .h5ad file to write, --threads and --nproc.
template <class Options>
struct SamplingCommandArgs {
  Options options;
  std::string out;
  int threads = 0;
  int nproc = 1;
};

// --cfg, --guide, --steps, --temperature, --order, --schedule, --batch-size, --seed, --precision,
// --device, --nproc, then --quiet and --threads.
void add_sampling_options(CLI::App& command, SamplingSettings& settings, int& threads, int& nproc);

// Generates cells with `settings` (this process's shard and quiet set) into the sink, and returns
// the obs, var and uns of all of them.
using SampleCells = std::function<AnnData(const SamplingSettings& settings, const CellSink& sink)>;

// Runs `sample` on --nproc processes (or this process's place in a torchrun/srun job) and writes
// every cell to `out`, as one process would; then "<command>: wrote N cells x G genes to OUT".
void write_sampled_cells(const std::string& command, const std::string& out, int nproc, int threads,
                         const SamplingSettings& settings, const SampleCells& sample);

}  // namespace lingshu::cli
