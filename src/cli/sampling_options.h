#pragma once
// The sampler's flags, shared by `generate` and `predict` so both read the same way.
#include <CLI/CLI.hpp>
#include <string>

#include "sample/generate.h"

namespace lingshu::cli {

// The arguments of either command: its options (which hold a SamplingSettings `sampling`), the
// .h5ad file to write and --threads.
template <class Options>
struct SamplingCommandArgs {
  Options options;
  std::string out;
  int threads = 0;
};

// --cfg, --guide, --steps, --temperature, --order, --schedule, --batch-size, --seed, --precision,
// --device, then --quiet and --threads.
void add_sampling_options(CLI::App& command, SamplingSettings& settings, int& threads);

}  // namespace lingshu::cli
