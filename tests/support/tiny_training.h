#pragma once
// A `tiny` model that trains in well under a second per step on simulated data, for tests that
// need a trained model directory, and the stored weights of such a directory.
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

#include "model/model_dir.h"
#include "model/weights.h"
#include "train/trainer.h"

namespace lingshu::testing {

inline TrainOptions tiny_train_options(const std::filesystem::path& out, int64_t steps) {
  TrainOptions o;
  o.out = out;
  o.model = ModelConfig::from_preset("tiny");
  o.model.patch_size = 8;
  o.tokenizer.n_tokens = 16;
  o.tokenizer.exact_limit = 8;
  o.batch_size = 16;
  o.steps = steps;
  o.lr = 3e-3;
  o.warmup = 10;
  o.eval_every = 1000000;
  o.checkpoint_every = 1000000;
  o.precision = "fp32";
  o.quiet = true;
  o.seed = 4;
  return o;
}

inline std::map<std::string, torch::Tensor> stored_weights(const std::filesystem::path& dir) {
  const auto meta = read_model_metadata(dir);
  auto model = load_weights(dir, meta.config);
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model->named_parameters()) out[item.key()] = item.value().clone();
  return out;
}

}  // namespace lingshu::testing
