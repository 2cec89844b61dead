#pragma once
// The sampler's flags, shared by `generate` and `predict` so both read the same way.
#include <CLI/CLI.hpp>

#include "sample/generate.h"

namespace lingshu::cli {

// --cfg, --guide, --steps, --temperature, --order, --schedule, --batch-size, --seed, --precision, --device,
// --quiet.
void add_sampling_options(CLI::App& command, SamplingSettings& settings);

}  // namespace lingshu::cli
