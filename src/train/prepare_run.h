#pragma once
// Everything a run settles before the model exists: which settings hold (a resumed run's are
// the stored ones), which cells train and which validate, their condition codes, and the sample
// the tokenizer and the starting statistics are fitted to. Done first so that a request the data
// cannot satisfy fails before any model is built, and so that the training loop starts from a
// plain record rather than from the data file. Free of LibTorch.
#include <cstdint>
#include <memory>
#include <vector>

#include "data/count_matrix.h"
#include "data/counts_check.h"
#include "data/gene_knowledge.h"
#include "model/model_dir.h"
#include "train/trainer.h"

namespace lingshu {

// Everything a run needs before its first step: the settings (the stored ones when resuming), the
// model directory's metadata, where the training cells are and their condition codes, the
// validation cells, and the sample of training cells the starting statistics come from.
struct PreparedRun {
  TrainOptions options;
  ModelMetadata meta;
  bool resuming = false;
  std::unique_ptr<CountCheckedRows> counts;  // every cell of the data, checked as read
  std::vector<int64_t> train_rows;           // rows of `counts`, ascending
  std::vector<std::vector<int64_t>> train_codes, val_codes, sample_codes;
  CsrMatrix val_counts, sample_counts;
  GeneKnowledge knowledge;        // a new run's --gene-knowledge (a resumed one has it in its weights)
  bool steps_are_passes = false;  // options.steps is kMaxEpochs passes, not the user's --steps
};

// Checks the request, leaves out the held-out cells, splits off the validation cells, reads them
// and the statistics sample, and (for a new run) writes the model directory's metadata.
PreparedRun prepare_run(const TrainingCells& cells, const TrainOptions& requested);

// values[at[0]], values[at[1]], ...
template <typename T>
std::vector<T> pick(const std::vector<T>& values, const std::vector<int64_t>& at) {
  std::vector<T> out;
  out.reserve(at.size());
  for (const int64_t i : at) out.push_back(values[static_cast<size_t>(i)]);
  return out;
}

// Condition codes (one vector per field) of the listed rows.
std::vector<std::vector<int64_t>> codes_of_rows(const std::vector<std::vector<int64_t>>& codes,
                                                const std::vector<int64_t>& rows);

}  // namespace lingshu
