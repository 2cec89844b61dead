#include "train/cell_state_bank.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <numeric>
#include <tuple>

#include "model/model.h"
#include "train/batch_loader.h"
#include "train/condition_inputs.h"
#include "train/group_means.h"
#include "train/label_combinations.h"
#include "train/prepare_run.h"

namespace lingshu {

namespace {
// Up to kCellStateBank training cells (indices into them, ascending), the same share of each label
// combination (evenly spaced within it), so that every combination's cells have states to draw from.
std::vector<int64_t> cell_state_bank_cells(const PreparedRun& run) {
  const auto groups =
      label_combinations(run.train_codes, every_field(run.train_codes), std::ssize(run.train_rows));
  std::vector<std::vector<int64_t>> by_labels(groups.labels.size());
  for (size_t r = 0; r < groups.of_row.size(); ++r)
    by_labels[static_cast<size_t>(groups.of_row[r])].push_back(static_cast<int64_t>(r));
  const auto quota = std::max<int64_t>(1, MaskedDiffusionModelImpl::kCellStateBank /
                                              static_cast<int64_t>(std::max<size_t>(by_labels.size(), 1)));
  std::vector<int64_t> cells;
  for (const auto& members : by_labels) {
    const auto group = static_cast<int64_t>(members.size());
    const int64_t n = std::min(group, quota);
    for (int64_t i = 0;
         i < n && static_cast<int64_t>(cells.size()) < MaskedDiffusionModelImpl::kCellStateBank; ++i)
      cells.push_back(members[static_cast<size_t>(i * group / n)]);
  }
  std::sort(cells.begin(), cells.end());
  return cells;
}
}  // namespace

ReliableCellStates reliable_cell_states(const torch::Tensor& scores, const torch::Tensor& half_a,
                                        const torch::Tensor& half_b, const torch::Tensor& labels) {
  TORCH_CHECK(scores.dim() == 2 && half_a.sizes() == scores.sizes() && half_b.sizes() == scores.sizes() &&
                  labels.dim() == 2 && labels.size(0) == scores.size(0),
              "reliable_cell_states: need [N, R] scores and halves and [N, F] labels, got ", scores.sizes(),
              ", ", half_a.sizes(), ", ", half_b.sizes(), " and ", labels.sizes());
  const auto x = scores.to(at::kDouble);
  const auto key = labels.size(1) > 0 ? labels.to(at::kLong) : at::zeros({scores.size(0), 1}, at::kLong);
  const auto [distinct, group, unused] = at::unique_dim(key, 0, false, true, false);
  const int64_t n_groups = distinct.size(0);
  const auto deviation = minus_group_means(x, group, n_groups);
  const auto a = minus_group_means(half_a.to(at::kDouble), group, n_groups);
  const auto b = minus_group_means(half_b.to(at::kDouble), group, n_groups);
  const auto r = (a * b).sum(0) / ((a * a).sum(0) * (b * b).sum(0)).sqrt();
  // A factor that never varies within a combination has no deviation to scale: any value will do.
  const auto reliability = (2 * r / (1 + r)).nan_to_num(1.0).clamp(0.0, 1.0);
  const auto states = x - deviation + deviation * reliability.sqrt().unsqueeze(0);
  return {states.to(scores.scalar_type()), reliability.to(at::kFloat)};
}

std::vector<float> refresh_cell_state_bank(MaskedDiffusionModel& model, const PreparedRun& run,
                                           const torch::Device& device) {
  if (run.meta.config.gene_factors == 0 || run.train_rows.empty()) return {};
  const auto cells = cell_state_bank_cells(run);
  const auto n = static_cast<int64_t>(cells.size());
  const auto counts = run.counts->read(pick(run.train_rows, cells));
  const auto conditions = codes_tensor(codes_of_rows(run.train_codes, cells), n).to(device);
  const int64_t mask = run.meta.config.n_tokens;
  const auto odd = (torch::arange(run.meta.config.n_positions(), device) % 2).eq(1).unsqueeze(0);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> scores, half_a, half_b;
  constexpr int64_t kChunk = 64;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t size = std::min(kChunk, n - begin);
    std::vector<int64_t> chunk(static_cast<size_t>(size));
    std::iota(chunk.begin(), chunk.end(), begin);
    const auto tokens = encode_cells(counts, chunk, run.meta.tokenizer, run.meta.patching).to(device);
    const auto labels = conditions.slice(0, begin, begin + size);
    scores.push_back(model->cell_states(tokens, labels));
    half_a.push_back(model->cell_states(tokens.masked_fill(odd, mask), labels));
    half_b.push_back(model->cell_states(tokens.masked_fill(odd.logical_not(), mask), labels));
  }
  const auto bank =
      reliable_cell_states(torch::cat(scores), torch::cat(half_a), torch::cat(half_b), conditions);
  model->set_cell_state_bank(bank.states, conditions);
  const auto reliability = bank.reliability.cpu().contiguous();
  return {reliability.data_ptr<float>(), reliability.data_ptr<float>() + reliability.numel()};
}

}  // namespace lingshu
