#include "sample/stratum_quantiles.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <stdexcept>

#include "core/seed.h"

namespace lingshu {

torch::Tensor stratified_uniforms(int64_t rows, int64_t positions, at::Generator& generator) {
  // A random order of the rows for each position, sorted along contiguous memory (positions x
  // rows), then turned to rows x positions.
  const auto slot =
      at::argsort(at::rand({positions, rows}, generator, at::kDouble), /*dim=*/int64_t{1}, false)
          .t()
          .to(at::kDouble);
  return (slot + at::rand({rows, positions}, generator, at::kDouble)) /
         static_cast<double>(std::max<int64_t>(rows, 1));
}

StratumQuantiles::StratumQuantiles(const std::vector<int64_t>& stratum, int64_t positions, uint64_t seed)
    : positions_(positions), seed_(seed) {
  const auto n = static_cast<int64_t>(stratum.size());
  for (int64_t first = 0; first < n;) {
    int64_t end = first;
    while (end < n && stratum[static_cast<size_t>(end)] == stratum[static_cast<size_t>(first)]) ++end;
    // A run of one stratum, split into equal blocks of at most kMaxBlock rows.
    const int64_t size = end - first, blocks = (size + kMaxBlock - 1) / kMaxBlock;
    for (int64_t b = 0; b < blocks; ++b) block_begin_.push_back(first + b * size / blocks);
    first = end;
  }
  block_begin_.push_back(n);
}

const torch::Tensor& StratumQuantiles::block_quantiles(size_t block) {
  if (block != cached_block_) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed_, block));
    cached_ = stratified_uniforms(block_begin_[block + 1] - block_begin_[block], positions_, generator);
    cached_block_ = block;
  }
  return cached_;
}

torch::Tensor StratumQuantiles::rows(int64_t begin, int64_t n) {
  if (begin < 0 || n < 0 || begin + n > block_begin_.back())
    throw std::out_of_range("StratumQuantiles::rows: rows outside the run");
  std::vector<torch::Tensor> parts;
  for (int64_t row = begin; row < begin + n;) {
    const auto block = static_cast<size_t>(std::upper_bound(block_begin_.begin(), block_begin_.end(), row) -
                                           block_begin_.begin() - 1);
    const int64_t end = std::min(begin + n, block_begin_[block + 1]);
    parts.push_back(block_quantiles(block).slice(0, row - block_begin_[block], end - block_begin_[block]));
    row = end;
  }
  return parts.empty() ? at::empty({0, positions_}, at::kDouble) : at::cat(parts);
}

}  // namespace lingshu
