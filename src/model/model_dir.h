#pragma once
// A trained model on disk, everything needed to generate cells or go on training:
//
//   MODEL_DIR/config.json          format + version, model shape, training settings
//   MODEL_DIR/tokenizer.json       count -> token bins and representative counts
//   MODEL_DIR/genes.json           gene names (training order), the patching order, and the
//                                  symbols of the gene knowledge's rows (train --gene-knowledge)
//   MODEL_DIR/conditions.json      condition fields and their vocabularies (entry 0 = NULL)
//   MODEL_DIR/observed_states.json the training cells' profile of each perturbation state
//   MODEL_DIR/weights.safetensors  the weights generate and predict load (also for Python)
//   MODEL_DIR/checkpoint.pt        weights + optimiser + trainer state for --resume
//   MODEL_DIR/train_log.jsonl      one JSON object per logged step
//
// Each file is written atomically. Free of LibTorch (weights are in model/weights.h).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/conditions.h"
#include "data/observed_states.h"
#include "data/tokenizer.h"
#include "model/config.h"

namespace lingshu {

// Bumped whenever the layout or the meaning of a stored tensor changes.
inline constexpr int kModelFormatVersion = 11;

// How many training cells carried one combination of condition labels (one label per field,
// "" where missing): `lingshu generate` without --condition follows these proportions.
struct ConditionCombination {
  std::vector<std::string> labels;
  int64_t n_cells = 0;
};

struct ModelMetadata {
  ModelConfig config;
  Tokenizer tokenizer;
  GenePatching patching;
  std::vector<std::string> gene_names;                 // training genes, in the training file's order
  std::vector<std::string> knowledge_genes;            // rows of the gene knowledge (often not measured)
  std::vector<ConditionField> conditions;              // one per condition token, in token order
  std::vector<std::string> holdouts;                   // --holdout specs removed from training
  std::vector<ConditionCombination> combinations;      // training cells per label combination
  std::vector<ObservedState> observed_states;          // a perturbation model's training states
  nlohmann::json training = nlohmann::json::object();  // settings the model was trained with
};

// Writes config.json, tokenizer.json, genes.json and conditions.json into `dir` (created).
void write_model_metadata(const std::filesystem::path& dir, const ModelMetadata& metadata);

// Reads them back. Throws UserError if `dir` is not a model directory, or was written by another
// format version.
ModelMetadata read_model_metadata(const std::filesystem::path& dir);

// True if dir/config.json exists (a model directory, possibly from another version).
bool is_model_dir(const std::filesystem::path& dir);

}  // namespace lingshu
