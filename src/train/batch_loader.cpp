#include "train/batch_loader.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <random>

namespace lingshu {

void encode_cell(const CsrMatrix& counts, int64_t row, const Tokenizer& tokenizer,
                 const GenePatching& patching, std::span<uint8_t> gene_scratch, std::span<int64_t> out) {
  tokenizer.encode_row(counts, row, gene_scratch);
  const auto n_genes = static_cast<int64_t>(patching.order.size());
  for (int64_t pos = 0; pos < n_genes; ++pos) out[pos] = gene_scratch[patching.order[pos]];
  std::fill(out.begin() + n_genes, out.end(), tokenizer.mask_token());
}

torch::Tensor encode_cells(const CsrMatrix& counts, std::span<const int64_t> rows, const Tokenizer& tokenizer,
                           const GenePatching& patching) {
  const auto n = static_cast<int64_t>(rows.size());
  auto tokens = at::empty({n, patching.n_positions()}, at::kLong);
  std::vector<uint8_t> scratch(static_cast<size_t>(patching.n_genes));
  auto* data = tokens.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    encode_cell(counts, rows[i], tokenizer, patching, scratch,
                {data + i * patching.n_positions(), static_cast<size_t>(patching.n_positions())});
  }
  return tokens;
}

std::vector<int64_t> BatchLoader::batch_rows(int64_t n_rows, int64_t batch_size, uint64_t seed,
                                             int64_t index) {
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(batch_size));
  int64_t cached_epoch = -1;
  std::vector<int64_t> permutation(static_cast<size_t>(n_rows));
  for (int64_t k = index * batch_size; k < (index + 1) * batch_size; ++k) {
    const int64_t epoch = k / n_rows;
    if (epoch != cached_epoch) {
      std::iota(permutation.begin(), permutation.end(), 0);
      std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
      std::shuffle(permutation.begin(), permutation.end(), rng);
      cached_epoch = epoch;
    }
    rows.push_back(permutation[static_cast<size_t>(k % n_rows)]);
  }
  return rows;
}

BatchLoader::BatchLoader(const CsrMatrix& counts, const Tokenizer& tokenizer, const GenePatching& patching,
                         const std::vector<std::vector<int64_t>>& conditions, int64_t batch_size,
                         uint64_t seed, int64_t first_batch, BatchShard shard, int prefetch)
    : counts_(counts),
      tokenizer_(tokenizer),
      patching_(patching),
      conditions_(conditions),
      batch_size_(batch_size),
      seed_(seed),
      shard_(shard),
      next_index_(first_batch),
      prefetch_(static_cast<size_t>(std::max(prefetch, 1))),
      worker_([this] { run(); }) {}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

TokenBatch BatchLoader::make_batch(int64_t index) const {
  const auto rows = batch_rows(counts_.n_rows, batch_size_, seed_, index);
  TokenBatch batch;
  batch.index = index;
  batch.shard_begin = shard_.begin(batch_size_);
  batch.tokens = encode_cells(
      counts_, std::span(rows).subspan(batch.shard_begin, shard_.end(batch_size_) - batch.shard_begin),
      tokenizer_, patching_);
  const auto n_fields = static_cast<int64_t>(conditions_.size());
  batch.conditions = at::zeros({batch_size_, n_fields}, at::kLong);
  auto acc = batch.conditions.accessor<int64_t, 2>();
  for (int64_t f = 0; f < n_fields; ++f) {
    for (int64_t i = 0; i < batch_size_; ++i) acc[i][f] = conditions_[f][rows[i]];
  }
  return batch;
}

void BatchLoader::run() {
  int64_t index = next_index_;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return stop_ || ready_.size() < prefetch_; });
      if (stop_) return;
    }
    try {
      auto batch = make_batch(index++);
      std::lock_guard lock(mutex_);
      ready_.push_back(std::move(batch));
    } catch (...) {
      std::lock_guard lock(mutex_);
      error_ = std::current_exception();
      stop_ = true;
    }
    changed_.notify_all();
  }
}

TokenBatch BatchLoader::next() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return !ready_.empty() || error_; });
  if (ready_.empty()) std::rethrow_exception(error_);
  auto batch = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  return batch;
}

}  // namespace lingshu
