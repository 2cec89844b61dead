#pragma once
// `lingshu generate`: unconditional cells from a trained model directory, decoded to integer
// counts, as an AnnData with the training genes as var. Free of LibTorch so the CLI stays light.
#include <cstdint>
#include <filesystem>
#include <string>

#include "data/anndata.h"

namespace lingshu {

struct GenerateOptions {
  std::filesystem::path model_dir;
  int64_t n_cells = 1000;
  int steps = 32;                  // unmasking steps
  double temperature = 1.0;
  std::string order = "random";  // random (the MDLM ancestral sampler), confidence
  int64_t batch_size = 32;         // cells per forward pass
  uint64_t seed = 0;               // same seed (and batch size) -> same cells
  std::string device = "cpu";
  std::string precision = "auto";  // auto, fp32, bf16
  bool quiet = false;
};

// Cells x training genes (X = counts), obs index gen_0 .., uns notes of the model and settings.
AnnData generate_cells(const GenerateOptions& options);

}  // namespace lingshu
