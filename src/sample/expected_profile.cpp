#include "sample/expected_profile.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <optional>

#include "core/seed.h"
#include "data/conditions.h"
#include "data/pseudobulk_cells.h"
#include "eval/stats.h"
#include "model/model.h"
#include "sample/cell_batches.h"

namespace lingshu {

namespace {
constexpr double kTargetSum = 1e4;

// Integer cells carry a profile only to the step one count makes in their mean log value, about
// log1p(1e4 / library) / cells (0.04 per gene for 100 cells of 120 counts, as in a CRISPR screen),
// which a Pearson-delta sees as noise; so every profile is written as at least this many cells.
constexpr int64_t kMinRenderedCells = 1000;

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
                                               const SamplingSettings& settings,
                                               const std::vector<std::vector<std::string>>& references) {
  const ModelMetadata& meta = loaded.meta;
  check_guidance(meta, settings);
  const GroupPlan plan = plan_groups(loaded, groups);
  const auto device = resolve_device(loaded.device);
  const auto precision = resolve_precision(settings.precision, device);
  MaskedDiffusionModelImpl& model = *loaded.network;
  torch::NoGradGuard no_grad;
  const int64_t G = meta.config.n_genes;
  const int64_t pert = meta.config.perturbation_field;
  const int64_t state_field = state_field_index(meta.conditions);
  // Each group's reference tokens (perturbation, state), or none.
  std::vector<std::optional<std::pair<int64_t, int64_t>>> reference_tokens(groups.size());
  for (size_t g = 0; g < references.size() && pert >= 0; ++g) {
    if (references[g].empty()) continue;
    const auto tokens = encode_labels(meta, references[g]).tokens;
    reference_tokens[g] = {tokens[static_cast<size_t>(pert)],
                           state_field >= 0 ? tokens[static_cast<size_t>(state_field)] : 0};
  }
  const bool with_reference = std::any_of(reference_tokens.begin(), reference_tokens.end(),
                                          [](const auto& r) { return r.has_value(); });
  const int64_t library = library_field_index(meta.conditions);
  const auto representative = representative_counts(meta);
  // Each cell's expected log1p CP10k [n, G] and expected total [n] under the denoiser's logits.
  const auto expected_values = [&](const BatchInputs& inputs) {
    const GuidedDenoiser denoiser(model, inputs, settings, library, device, precision);
    const auto logits = denoiser(inputs.initial.to(device)).slice(1, 0, G).to(torch::kCPU, torch::kFloat);
    const auto p = token_probabilities(logits, inputs.initial.slice(1, 0, G), settings.temperature,
                                       meta.config.n_tokens);
    const auto total = (p * representative).sum({1, 2});
    const auto scale = (kTargetSum / total.clamp_min(1e-6)).view({-1, 1, 1});
    return std::pair{(p * torch::log1p(representative * scale)).sum(-1).to(torch::kDouble), total};
  };
  std::vector<torch::Tensor> sums(groups.size()), reference_sums(groups.size());
  for (auto& s : sums) s = torch::zeros({G}, torch::kDouble);
  for (auto& s : reference_sums) s = torch::zeros({G}, torch::kDouble);
  std::vector<std::vector<double>> totals(groups.size());
  BalancedDraw states(settings.seed);
  const auto n_total = static_cast<int64_t>(plan.rows.size());
  for (int64_t begin = 0; begin < n_total; begin += settings.batch_size) {
    const int64_t n = std::min(settings.batch_size, n_total - begin);
    const BatchInputs inputs = batch_inputs(plan, model, begin, n, states);
    const auto [log_values, total] = expected_values(inputs);
    torch::Tensor reference_values;
    if (with_reference) {  // the same cells, states and sizes under their reference labels
      BatchInputs reference = inputs;
      reference.conditions = inputs.conditions.clone();
      reference.targets = torch::full_like(inputs.targets, -1);
      reference.transfer = torch::Tensor();
      for (int64_t i = 0; i < n; ++i) {
        const auto& tokens = reference_tokens[plan.request[plan.rows[static_cast<size_t>(begin + i)].group]];
        if (!tokens) continue;
        reference.conditions[i][pert] = tokens->first;
        if (state_field >= 0) reference.conditions[i][state_field] = tokens->second;
      }
      reference_values = expected_values(reference).first;
    }
    for (int64_t i = 0; i < n; ++i) {
      const CellRow& row = plan.rows[static_cast<size_t>(begin + i)];
      const size_t g = plan.request[row.group];
      sums[g] += log_values[i];
      if (reference_tokens[g]) reference_sums[g] += reference_values[i];
      const auto [lo, hi] = plan.sizes[row.group];
      totals[g].push_back(std::clamp(total[i].item<double>(), lo, hi));
    }
  }
  // Per group, a [G] sum in sequence order as a mean per gene in the model's gene order.
  const auto by_gene = [&](const torch::Tensor& sum, int64_t n_cells) {
    const auto mean = (sum / static_cast<double>(n_cells)).contiguous();
    const double* by_position = mean.data_ptr<double>();
    std::vector<double> out(static_cast<size_t>(G), 0.0);
    for (int64_t pos = 0; pos < G; ++pos)
      out[static_cast<size_t>(meta.patching.order[static_cast<size_t>(pos)])] = by_position[pos];
    return out;
  };
  std::vector<ExpectedProfile> out(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    out[g].log_profile = by_gene(sums[g], groups[g].n_cells);
    if (reference_tokens[g]) out[g].reference_log_profile = by_gene(reference_sums[g], groups[g].n_cells);
    out[g].library_size = median(totals[g]);
  }
  return out;
}

std::vector<ExpectedProfile> anchored_profiles(const LoadedModel& loaded,
                                               const std::vector<CellGroup>& groups,
                                               const SamplingSettings& settings) {
  const ModelMetadata& meta = loaded.meta;
  const int pert = meta.config.perturbation_field;
  if (pert < 0 || meta.observed_states.empty()) return expected_profiles(loaded, groups, settings);
  const int state = state_field_index(meta.conditions);
  const ConditionField& field = meta.conditions[static_cast<size_t>(pert)];
  const auto& observed = meta.observed_states;
  std::vector<const ObservedState*> anchor(groups.size(), nullptr);
  std::vector<std::vector<std::string>> references(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& labels = groups[g].shown_labels.empty() ? groups[g].labels : groups[g].shown_labels;
    auto control_labels = labels;
    control_labels[static_cast<size_t>(pert)] = field.control;
    const ObservedState* own = find_state(observed, state_label(meta.conditions, labels));
    const ObservedState* control = find_state(observed, state_label(meta.conditions, control_labels));
    // Controls, and without a state field (one perturbation) a measured pair: the cells themselves.
    if (labels[static_cast<size_t>(pert)] == field.control || (own && state < 0)) {
      anchor[g] = own;
      continue;
    }
    auto reference = groups[g].labels;
    if (own) {  // the context's perturbed state, perturbation NULL
      reference[static_cast<size_t>(pert)].clear();
      reference[static_cast<size_t>(state)] = own->label;
      anchor[g] = own;
    } else if (control) {  // the context's controls
      reference[static_cast<size_t>(pert)] = field.control;
      if (state >= 0) reference[static_cast<size_t>(state)] = control->label;
      anchor[g] = control;
    } else {
      continue;
    }
    references[g] = std::move(reference);
  }
  auto profiles = expected_profiles(loaded, groups, settings, references);
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!anchor[g]) continue;
    ExpectedProfile& p = profiles[g];
    if (references[g].empty()) {
      p.log_profile = anchor[g]->log_profile;
    } else {
      for (size_t j = 0; j < p.log_profile.size(); ++j)
        p.log_profile[j] =
            std::max(0.0, anchor[g]->log_profile[j] + p.log_profile[j] - p.reference_log_profile[j]);
    }
    p.library_size = anchor[g]->library_size;
  }
  return profiles;
}

AnnData expected_cells(const LoadedModel& loaded, const std::vector<CellGroup>& groups,
                       const SamplingSettings& settings, const CellSink& sink) {
  AnnData out;
  out.X.n_cols = loaded.meta.config.n_genes;
  // Every process makes the (cheap, seeded) cells of every group and keeps its share of the rows,
  // so the shares laid end to end are the file one process writes.
  std::vector<CellGroup> shown = groups;
  int64_t n_total = 0;
  for (auto& g : shown) {
    g.n_cells = std::max(g.n_cells, kMinRenderedCells);
    n_total += g.n_cells;
  }
  const int64_t first = n_total * settings.shard.index / settings.shard.count;
  const int64_t end = n_total * (settings.shard.index + 1) / settings.shard.count;
  const auto profiles = anchored_profiles(loaded, groups, settings);
  CsrMatrix mine;
  mine.n_cols = out.X.n_cols;
  int64_t row = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const int64_t n = shown[g].n_cells;
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
