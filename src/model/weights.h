#pragma once
// Model weights on disk: weights.safetensors, which lingshu loads and Python users open (an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw
// little-endian tensor bytes).
#include <torch/serialize/output-archive.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"

namespace lingshu {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes `tensors` (any of float32/float64/bfloat16/float16/int64/int32/uint8/bool) atomically.
void write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors);

// Writes a LibTorch archive atomically; a full disk is a UserError naming `path` and the cause.
void save_archive(const std::filesystem::path& path, torch::serialize::OutputArchive& archive);

// Writes weights.safetensors into `dir` (atomically, float32 on the CPU).
void save_weights(const std::filesystem::path& dir, MaskedDiffusionModel& model);

// A model of shape `config` with the weights of dir/weights.safetensors, on `device`, in eval mode.
// UserError when a tensor is missing, of another shape or dtype, or the file is damaged.
MaskedDiffusionModel load_weights(const std::filesystem::path& dir, const ModelConfig& config,
                                  const torch::Device& device = torch::kCPU);

}  // namespace lingshu
