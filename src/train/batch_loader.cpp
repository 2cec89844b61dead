#include "train/batch_loader.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "core/seed.h"

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

ShuffleGroup shuffle_group_at(int64_t n_cells, uint64_t seed, int64_t position) {
  const int64_t epoch = position / n_cells, offset = position % n_cells;
  const int64_t n_blocks = (n_cells + kShuffleBlockRows - 1) / kShuffleBlockRows;
  std::vector<int64_t> blocks(static_cast<size_t>(n_blocks));
  std::iota(blocks.begin(), blocks.end(), 0);
  std::mt19937_64 rng(mix_seed(seed, 2 * static_cast<uint64_t>(epoch)));
  std::shuffle(blocks.begin(), blocks.end(), rng);
  ShuffleGroup group;
  int64_t start = 0;  // epoch offset of the group's first cell
  for (int64_t g = 0; g * kShuffleGroupBlocks < n_blocks; ++g) {
    group.cells.clear();
    for (int64_t b = g * kShuffleGroupBlocks; b < std::min(n_blocks, (g + 1) * kShuffleGroupBlocks); ++b) {
      const int64_t first = blocks[static_cast<size_t>(b)] * kShuffleBlockRows;
      for (int64_t c = first; c < std::min(n_cells, first + kShuffleBlockRows); ++c) group.cells.push_back(c);
    }
    const auto size = static_cast<int64_t>(group.cells.size());
    if (offset < start + size) {
      std::mt19937_64 within(mix_seed(seed, 2 * static_cast<uint64_t>(epoch) + 1) + static_cast<uint64_t>(g));
      std::shuffle(group.cells.begin(), group.cells.end(), within);
      group.first_position = epoch * n_cells + start;
      return group;
    }
    start += size;
  }
  throw std::logic_error("shuffle_group_at: position beyond the epoch");
}

std::vector<int64_t> BatchLoader::batch_rows(int64_t n_cells, int64_t batch_size, uint64_t seed,
                                             int64_t index) {
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(batch_size));
  ShuffleGroup group;
  for (int64_t p = index * batch_size; p < (index + 1) * batch_size; ++p) {
    if (!group.holds(p)) group = shuffle_group_at(n_cells, seed, p);
    rows.push_back(group.cells[static_cast<size_t>(p - group.first_position)]);
  }
  return rows;
}

BatchLoader::BatchLoader(const TrainingRows& data, const Tokenizer& tokenizer, const GenePatching& patching,
                         int64_t batch_size, uint64_t seed, int64_t first_batch, BatchShard shard,
                         int prefetch)
    : data_(data),
      tokenizer_(tokenizer),
      patching_(patching),
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

void BatchLoader::load_group(int64_t position) {
  group_ = shuffle_group_at(static_cast<int64_t>(data_.rows.size()), seed_, position);
  std::vector<int64_t> sorted = group_.cells;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> file_rows;
  file_rows.reserve(sorted.size());
  for (const int64_t c : sorted) file_rows.push_back(data_.rows[static_cast<size_t>(c)]);
  group_counts_ = data_.cells.read(file_rows);
  group_row_.resize(group_.cells.size());
  for (size_t k = 0; k < group_.cells.size(); ++k) {
    const auto at = std::lower_bound(sorted.begin(), sorted.end(), group_.cells[k]);
    group_row_[k] = at - sorted.begin();
  }
}

TokenBatch BatchLoader::make_batch(int64_t index) {
  TokenBatch batch;
  batch.index = index;
  batch.shard_begin = shard_.begin(batch_size_);
  const int64_t mine_end = shard_.end(batch_size_);
  const auto n_fields = static_cast<int64_t>(data_.conditions.size());
  batch.conditions = at::zeros({batch_size_, n_fields}, at::kLong);
  auto acc = batch.conditions.accessor<int64_t, 2>();
  // Each row is encoded straight from its group's counts (a batch can span two groups).
  const int64_t L = patching_.n_positions();
  batch.tokens = at::empty({mine_end - batch.shard_begin, L}, at::kLong);
  auto* tokens = batch.tokens.data_ptr<int64_t>();
  std::vector<uint8_t> scratch(static_cast<size_t>(patching_.n_genes));
  for (int64_t i = 0; i < batch_size_; ++i) {
    const int64_t position = index * batch_size_ + i;
    if (!group_.holds(position)) load_group(position);
    const auto k = static_cast<size_t>(position - group_.first_position);
    const auto cell = static_cast<size_t>(group_.cells[k]);
    for (int64_t f = 0; f < n_fields; ++f) acc[i][f] = data_.conditions[f][cell];
    if (i >= batch.shard_begin && i < mine_end) {
      encode_cell(group_counts_, group_row_[k], tokenizer_, patching_, scratch,
                  {tokens + (i - batch.shard_begin) * L, static_cast<size_t>(L)});
    }
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
