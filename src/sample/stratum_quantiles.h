#pragma once
// The quantiles a run's genes are drawn at, stratified over strata of alike cells (a requested
// group's cells; strata_of_rows in cell_batches.h), not over a batch's.
//
// One-step sampling draws every gene of a cell at a quantile of its predicted distribution. Drawn
// independently, the quantiles give a group's pseudobulk the sampling noise of its cell count;
// stratified down each gene (Latin hypercube: a stratum's n cells take one quantile in each of
// [i / n, (i + 1) / n), in random order, a fresh order per gene), each cell still draws from its
// own distribution with independent genes, while their mean of each gene lands far nearer
// the model's expectation. Stratifying within a batch instead mixed groups (a batch's quantiles
// were shared out over its cells of every label) and cut each group at the batch's edges: on
// pbmc3k's generated cells the per-type means kept half the sampling noise of independent draws,
// against a fifth here.
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace lingshu {

class StratumQuantiles {
 public:
  // Blocks hold at most this many cells: a larger stratum is stratified in blocks of about this
  // size, so that the quantiles of one block (kept while its rows are drawn) stay small.
  static constexpr int64_t kMaxBlock = 512;

  // stratum[r]: the stratum of row r of the run (its rows consecutive); positions: tokens per cell.
  StratumQuantiles(const std::vector<int64_t>& stratum, int64_t positions, uint64_t seed);

  // Quantiles [n, positions] float64 of rows [begin, begin + n). Rows are asked for in order, as
  // batches are made: each block's quantiles are made once, when its first row is asked for.
  torch::Tensor rows(int64_t begin, int64_t n);

 private:
  const torch::Tensor& block_quantiles(size_t block);

  std::vector<int64_t> block_begin_;  // first row of each block, then the number of rows
  int64_t positions_;
  uint64_t seed_;
  size_t cached_block_ = static_cast<size_t>(-1);
  torch::Tensor cached_;
};

// Uniforms [rows, positions] float64 stratified down each column: position j's values in the rows
// fall one in each of the intervals [i / rows, (i + 1) / rows), in random order.
torch::Tensor stratified_uniforms(int64_t rows, int64_t positions, at::Generator& generator);

}  // namespace lingshu
