#pragma once
// Training checkpoints: one file (MODEL_DIR/checkpoint.pt) holding the weights, the optimiser's
// moments and the trainer's state (step, planned schedule, elapsed time) as JSON. Written
// atomically, so a run killed while writing keeps the previous checkpoint intact.
#include <torch/optim/adamw.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/model.h"

namespace lingshu {

void save_checkpoint(const std::filesystem::path& path, MaskedDiffusionModel& model,
                     torch::optim::AdamW& optimizer, const nlohmann::json& state);

// Restores model and optimiser in place and returns the trainer state. Throws UserError if the
// file is unreadable.
nlohmann::json load_checkpoint(const std::filesystem::path& path, MaskedDiffusionModel& model,
                               torch::optim::AdamW& optimizer, const torch::Device& device);

}  // namespace lingshu
