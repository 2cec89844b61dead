#include "sample/expected_profile.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>

#include "core/seed.h"
#include "data/conditions.h"
#include "data/pseudobulk_cells.h"
#include "eval/stats.h"
#include "model/model.h"
#include "sample/cell_batches.h"

namespace lingshu {

namespace {
constexpr double kTargetSum = 1e4;

// Each token's representative count per gene, in sequence order: [n_genes, K] float (token 0 is 0).
torch::Tensor representative_counts(const ModelMetadata& meta) {
  const int64_t G = meta.patching.n_genes, K = meta.config.n_tokens;
  auto out = torch::zeros({G, K}, torch::kFloat);
  auto acc = out.accessor<float, 2>();
  for (int64_t pos = 0; pos < G; ++pos) {
    const int gene = meta.patching.order[static_cast<size_t>(pos)];
    for (int64_t k = 1; k < K; ++k)
      acc[pos][k] = static_cast<float>(meta.tokenizer.representative(gene, static_cast<int>(k)));
  }
  return out;
}

// The sampler's distribution of each gene's token: softmax at the temperature (0: the most likely
// token); a pre-filled gene keeps its token. logits [n, G, K], initial [n, G].
torch::Tensor token_probabilities(const torch::Tensor& logits, const torch::Tensor& initial,
                                  double temperature, int64_t mask_token) {
  const int64_t K = logits.size(-1);
  auto p = temperature > 0 ? torch::softmax(logits / temperature, -1)
                           : torch::one_hot(logits.argmax(-1), K).to(torch::kFloat);
  const auto given = initial.lt(mask_token);
  if (given.any().item<bool>()) {
    const auto fixed = torch::one_hot(initial.clamp_max(K - 1), K).to(torch::kFloat);
    p = torch::where(given.unsqueeze(-1), fixed, p);
  }
  return p;
}
}  // namespace

std::vector<ExpectedProfile> expected_profiles(const LoadedModel& loaded,
                                               const std::vector<CellGroup>& groups,
                                               const SamplingSettings& settings) {
  const ModelMetadata& meta = loaded.meta;
  check_guidance(meta, settings);
  const GroupPlan plan = plan_groups(loaded, groups);
  const auto device = resolve_device(loaded.device);
  const auto precision = resolve_precision(settings.precision, device);
  MaskedDiffusionModelImpl& model = *loaded.network;
  torch::NoGradGuard no_grad;
  const int64_t G = meta.config.n_genes;
  const auto representative = representative_counts(meta);
  std::vector<torch::Tensor> sums(groups.size());
  for (auto& s : sums) s = torch::zeros({G}, torch::kDouble);
  std::vector<std::vector<double>> totals(groups.size());
  BalancedDraw states(settings.seed);
  const auto n_total = static_cast<int64_t>(plan.rows.size());
  for (int64_t begin = 0; begin < n_total; begin += settings.batch_size) {
    const int64_t n = std::min(settings.batch_size, n_total - begin);
    const BatchInputs inputs = batch_inputs(plan, model, begin, n, states);
    const GuidedDenoiser denoiser(model, inputs, settings, library_field_index(meta.conditions), device,
                                  precision);
    const auto logits = denoiser(inputs.initial.to(device)).slice(1, 0, G).to(torch::kCPU, torch::kFloat);
    const auto p = token_probabilities(logits, inputs.initial.slice(1, 0, G), settings.temperature,
                                       meta.config.n_tokens);
    const auto total = (p * representative).sum({1, 2});  // [n] expected counts of each cell
    const auto scale = (kTargetSum / total.clamp_min(1e-6)).view({n, 1, 1});
    const auto log_values = (p * torch::log1p(representative * scale)).sum(-1).to(torch::kDouble);  // [n, G]
    for (int64_t i = 0; i < n; ++i) {
      const CellRow& row = plan.rows[static_cast<size_t>(begin + i)];
      const size_t g = plan.request[row.group];
      sums[g] += log_values[i];
      const auto [lo, hi] = plan.sizes[row.group];
      totals[g].push_back(std::clamp(total[i].item<double>(), lo, hi));
    }
  }
  std::vector<ExpectedProfile> out(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto mean = (sums[g] / static_cast<double>(groups[g].n_cells)).contiguous();
    const double* by_position = mean.data_ptr<double>();
    out[g].log_profile.assign(static_cast<size_t>(G), 0.0);
    for (int64_t pos = 0; pos < G; ++pos)
      out[g].log_profile[static_cast<size_t>(meta.patching.order[static_cast<size_t>(pos)])] =
          by_position[pos];
    out[g].library_size = median(totals[g]);
  }
  return out;
}

AnnData expected_cells(const LoadedModel& loaded, const std::vector<CellGroup>& groups,
                       const SamplingSettings& settings, const CellSink& sink) {
  AnnData out;
  out.X.n_cols = loaded.meta.config.n_genes;
  // Every process makes the (cheap, seeded) cells of every group and keeps its share of the rows,
  // so the shares laid end to end are the file one process writes.
  int64_t n_total = 0;
  for (const auto& g : groups) n_total += g.n_cells;
  const int64_t first = n_total * settings.shard.index / settings.shard.count;
  const int64_t end = n_total * (settings.shard.index + 1) / settings.shard.count;
  const auto profiles = expected_profiles(loaded, groups, settings);
  CsrMatrix mine;
  mine.n_cols = out.X.n_cols;
  int64_t row = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const int64_t n = groups[g].n_cells;
    if (row + n > first && row < end) {
      const CsrMatrix cells = counts_for_log_pseudobulk(profiles[g].log_profile, n, profiles[g].library_size,
                                                        mix_seed(settings.seed, g));
      std::vector<int64_t> keep;
      for (int64_t i = std::max(first - row, int64_t{0}); i < std::min(end - row, n); ++i) keep.push_back(i);
      mine.append_rows(cells.select_rows(keep));
    }
    row += n;
  }
  if (sink) {
    sink(mine);
  } else {
    out.X = std::move(mine);
  }
  std::vector<CellGroup> shown = groups;
  for (auto& g : shown) {
    fill_state_label(loaded.meta, g.labels);
    if (!g.shown_labels.empty()) fill_state_label(loaded.meta, g.shown_labels);
  }
  describe_cells(loaded, shown, out);
  out.uns_strings.emplace_back("lingshu_prediction", "expected profile");
  out.uns_strings.emplace_back(
      "lingshu_sampler", fmt::format("expected over drawn states, temperature={} cfg={} guide={} seed={}",
                                     settings.temperature, settings.cfg, settings.guide, settings.seed));
  return out;
}

}  // namespace lingshu
