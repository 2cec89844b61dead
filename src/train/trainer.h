#pragma once
// `lingshu train`: fits the tokenizer and the masked diffusion model to a counts file and writes a
// model directory (model/model_dir.h). Free of LibTorch so the CLI stays light.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/world.h"
#include "data/anndata.h"
#include "data/cell_rows.h"
#include "data/tokenizer.h"
#include "model/config.h"

namespace lingshu {

struct TrainOptions {
  std::filesystem::path out;  // model directory
  bool resume = false;        // continue from out/checkpoint.pt with the stored settings
  ModelConfig model;          // preset + overrides; n_genes is filled in from the data
  TokenizerConfig tokenizer;
  int64_t batch_size = 16;
  int64_t steps = 0;          // optimiser steps (0: 8 passes over the cells; 2000 at most without `minutes`)
  double minutes = 0;         // wall-clock budget (0: none); with both, whichever ends first
  double lr = 1e-3;           // peak learning rate
  double min_lr_ratio = 0.1;  // cosine decays to this fraction of lr
  int64_t warmup = 100;       // warm-up steps (at most a tenth of the run)
  double weight_decay = 0.01;
  double grad_clip = 1.0;
  double val_fraction = 0.05;  // held-out cells for the validation loss
  int64_t max_val_cells = 256;
  int64_t eval_every = 200;  // validation loss every N steps (and at the end)
  int64_t log_every = 10;    // train_log.jsonl line every N steps
  int64_t checkpoint_every = 500;
  uint64_t seed = 0;
  std::string precision = "auto";             // auto (bf16 where the hardware has it), fp32, bf16
  std::string device = "cpu";                 // cpu, cuda
  double p_uncond = 0.1;                      // condition dropout to NULL (classifier-free guidance)
  std::vector<std::string> condition_fields;  // obs columns (empty: unconditional)
  std::string perturbation;                   // obs column whose labels may name target genes ("" = none)
  std::string control = "control";            // the unperturbed label of that column
  std::vector<std::string> holdouts;          // "col=value[,col=value]": cells removed from training
  int library_bins = 16;       // library-size condition bins (0 = none; see make_library_field)
  std::string gene_knowledge;  // a gene -> vector TSV for the perturbation targets ("" = none)
  bool quiet = false;          // no progress output
  // The data-parallel job this process is a rank of (one process by default). Every rank sees the
  // same --batch-size cells per step between them; rank 0 alone writes the model directory.
  WorldInfo world;
};

// Test-only controls, kept out of the product's options.
struct TrainHooks {
  // Stops after this many steps of this invocation without finishing the run, as if killed
  // (tests of --resume). 0: run to the end.
  int64_t stop_after_steps = 0;
};

struct TrainResult {
  int64_t steps = 0;         // optimiser steps done in total
  int64_t total_steps = 0;   // steps the schedule was planned for
  double train_loss = 0;     // mean of the last logged window
  double val_loss = 0;       // NaN without a validation split
  double val_masked_ce = 0;  // mean cross-entropy of masked genes on the validation split
  // Validation masked cross-entropy of the output biases alone minus the model's, half the genes
  // masked: what seeing the other genes adds (NaN without a validation split).
  double context_gain = 0;
  // The weights written to the model directory: those of the lowest validation loss (-1 / NaN
  // without validation cells: the last weights).
  int64_t best_step = -1;
  double best_val_loss = 0;
  double seconds = 0;  // wall-clock of this invocation
  double cells_per_second = 0;
  std::string precision;  // what ran: fp32 or bf16
};

// False when this build has no Gloo (libgloo-dev was missing at configure time): one process only
// (train, generate and predict --nproc).
bool multi_process_available();

// The cells to train on: obs and var in memory, the counts wherever `counts` reads them from (a
// matrix in memory, or .h5ad files read a few thousand cells at a time).
struct TrainingCells {
  DataFrame obs;
  DataFrame var;
  std::shared_ptr<const CellRows> counts;
  std::string source = "X";  // the matrix, for messages ("X", "layers/counts")
};

// Trains on the cells (counts; every gene, in the file's order) and writes the model directory.
// The tokenizer and the starting output biases are fitted to at most kStatisticsCells training
// cells (a seeded sample), so nothing but obs grows with the number of cells.
inline constexpr int64_t kStatisticsCells = 20000;
TrainResult train_model(const TrainingCells& cells, const TrainOptions& options,
                        const TrainHooks& hooks = {});
// The same on a data set held in memory.
TrainResult train_model(const AnnData& data, const TrainOptions& options, const TrainHooks& hooks = {});

// The rows of `data` kept for validation, and the others, by a seeded shuffle.
struct Split {
  std::vector<int64_t> train, validation;
};
Split split_cells(int64_t n_cells, double val_fraction, int64_t max_val_cells, uint64_t seed);

}  // namespace lingshu
