#pragma once
// Turns count rows into token tensors on a background thread, a few batches ahead of the training
// loop, so the model never waits for data. The cells come from a CellRows (memory, or .h5ad files
// read a group of blocks at a time), so memory holds one shuffle group, not the data set.
//
// The order of cells is a deterministic function of (seed, batch index): an endless stream of
// epochs; each epoch shuffles blocks of kShuffleBlockRows consecutive training cells, takes them
// kShuffleGroupBlocks at a time and shuffles the cells within each such group. Batch n takes
// stream positions [n*B, (n+1)*B), so resuming at batch n replays exactly the same data. A data
// set of up to one group (8,192 cells) is simply reshuffled every epoch; a larger one is read from
// 64 places of its files per group, so a file sorted by cell type still gives mixed batches.
// In data-parallel training each process encodes only its share of every batch (a BatchShard), so
// N processes see together exactly the cells one process would.
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "data/cell_rows.h"
#include "data/count_matrix.h"
#include "data/tokenizer.h"

namespace lingshu {

inline constexpr int64_t kShuffleBlockRows = 128;
inline constexpr int64_t kShuffleGroupBlocks = 64;

// Which rows of every batch a process of a data-parallel job takes: an even split of [0, B).
struct BatchShard {
  int rank = 0;
  int size = 1;
  int64_t begin(int64_t batch_size) const { return batch_size * rank / size; }
  int64_t end(int64_t batch_size) const { return batch_size * (rank + 1) / size; }
};

// The shuffle group holding one stream position: its cells (indices into the training cells) in
// training order, and the stream position of the first.
struct ShuffleGroup {
  int64_t first_position = 0;
  std::vector<int64_t> cells;
  bool holds(int64_t position) const {
    return position >= first_position && position < first_position + static_cast<int64_t>(cells.size());
  }
};
ShuffleGroup shuffle_group_at(int64_t n_cells, uint64_t seed, int64_t position);

struct TokenBatch {
  int64_t index = 0;        // batch number in the stream
  int64_t shard_begin = 0;  // this process's rows of the batch: [shard_begin, shard_begin + tokens.size(0))
  torch::Tensor tokens;     // [rows of the shard, n_positions] int64, padding = MASK
  torch::Tensor
      conditions;  // [B, n_fields] int64 (0 = NULL), every row of the batch; [B, 0] when unconditional
};

// Tokens of one cell in sequence (patched) order: n_positions values, padding = MASK.
void encode_cell(const CsrMatrix& counts, int64_t row, const Tokenizer& tokenizer,
                 const GenePatching& patching, std::span<uint8_t> gene_scratch, std::span<int64_t> out);

// Tokens [rows.size(), n_positions] int64 of the listed rows (no thread; for validation, tests).
torch::Tensor encode_cells(const CsrMatrix& counts, std::span<const int64_t> rows, const Tokenizer& tokenizer,
                           const GenePatching& patching);

// The training cells (a view): rows of a CellRows (ascending) and their condition codes (one vector
// per field, indexed like `rows`; empty when unconditional).
struct TrainingRows {
  const CellRows& cells;
  const std::vector<int64_t>& rows;
  const std::vector<std::vector<int64_t>>& conditions;
};

class BatchLoader {
 public:
  // What `data` refers to, `tokenizer` and `patching` must outlive the loader.
  BatchLoader(const TrainingRows& data, const Tokenizer& tokenizer, const GenePatching& patching,
              int64_t batch_size, uint64_t seed, int64_t first_batch = 0, BatchShard shard = {},
              int prefetch = 4);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Blocks until the next batch is ready; rethrows an error raised on the loading thread.
  TokenBatch next();

  // Training cells (indices into TrainingRows::rows) of batch `index`, exposed for tests.
  static std::vector<int64_t> batch_rows(int64_t n_cells, int64_t batch_size, uint64_t seed, int64_t index);

 private:
  void run();
  TokenBatch make_batch(int64_t index);
  // Makes `group_` the group holding `position`, with its counts read.
  void load_group(int64_t position);

  const TrainingRows data_;  // a view: what it refers to outlives the loader
  const Tokenizer& tokenizer_;
  const GenePatching& patching_;
  int64_t batch_size_;
  uint64_t seed_;
  BatchShard shard_;
  int64_t next_index_;
  size_t prefetch_;

  // Loading thread only: the current shuffle group, its counts (rows in ascending cell order) and
  // each group position's row there.
  ShuffleGroup group_;
  CsrMatrix group_counts_;
  std::vector<int64_t> group_row_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<TokenBatch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace lingshu
