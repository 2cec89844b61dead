#pragma once
// Turns CSR count rows into token tensors on a background thread, a few batches ahead of the
// training loop, so the model never waits for data. The order of cells is a deterministic
// function of (seed, batch index): an endless stream of seeded epoch permutations, batch n taking
// stream positions [n*B, (n+1)*B). Resuming at batch n therefore replays exactly the same data.
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

#include "data/count_matrix.h"
#include "data/tokenizer.h"

namespace lingshu {

// Which rows of every batch a process of a data-parallel job takes: an even split of [0, B).
struct BatchShard {
  int rank = 0;
  int size = 1;
  int64_t begin(int64_t batch_size) const { return batch_size * rank / size; }
  int64_t end(int64_t batch_size) const { return batch_size * (rank + 1) / size; }
};

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

class BatchLoader {
 public:
  // `counts`, `tokenizer`, `patching` and `conditions` must outlive the loader. conditions holds
  // one code vector per field (codes per row of `counts`, 0 = NULL); empty when unconditional.
  BatchLoader(const CsrMatrix& counts, const Tokenizer& tokenizer, const GenePatching& patching,
              const std::vector<std::vector<int64_t>>& conditions, int64_t batch_size, uint64_t seed,
              int64_t first_batch = 0, BatchShard shard = {}, int prefetch = 4);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Blocks until the next batch is ready; rethrows an error raised on the loading thread.
  TokenBatch next();

  // Rows of batch `index` (what the background thread encodes), exposed for tests.
  static std::vector<int64_t> batch_rows(int64_t n_rows, int64_t batch_size, uint64_t seed, int64_t index);

 private:
  void run();
  TokenBatch make_batch(int64_t index) const;

  const CsrMatrix& counts_;
  const Tokenizer& tokenizer_;
  const GenePatching& patching_;
  const std::vector<std::vector<int64_t>>& conditions_;
  int64_t batch_size_;
  uint64_t seed_;
  BatchShard shard_;
  int64_t next_index_;
  size_t prefetch_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<TokenBatch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace lingshu
