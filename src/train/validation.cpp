#include "train/validation.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/seed.h"
#include "train/batch_loader.h"
#include "train/objective.h"

namespace lingshu {

namespace {

// Runs the model over the validation cells [0, mask.size(0)) in batches, with `mask`'s genes
// masked; calls visit(tokens, mask, conditions, t, logits) for each batch (all on the device).
template <typename Visit>
void for_each_masked_batch(MaskedDiffusionModel& model, const ValidationSet& v, const torch::Tensor& mask,
                           const TargetTable& targets, int64_t batch_size, Precision precision,
                           const torch::Device& device, int64_t mask_token, Visit&& visit) {
  for (int64_t begin = 0; begin < mask.size(0); begin += batch_size) {
    const int64_t end = std::min(mask.size(0), begin + batch_size);
    const auto tokens = v.tokens.slice(0, begin, end).to(device);
    const auto batch_mask = mask.slice(0, begin, end).to(device);
    const auto conditions = v.conditions.slice(0, begin, end).to(device);
    torch::Tensor logits;
    {
      const AutocastScope autocast(precision, device);
      logits = model->forward(apply_mask(tokens, batch_mask, mask_token), conditions, targets.of(conditions));
    }
    visit(tokens, batch_mask, conditions, v.t.slice(0, begin, end).to(device), logits);
  }
}

}  // namespace

ValidationSet make_validation_set(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                  const GenePatching& patching, const torch::Tensor& is_gene, uint64_t seed,
                                  const std::vector<std::vector<int64_t>>& codes) {
  ValidationSet v;
  std::vector<int64_t> rows(static_cast<size_t>(counts.n_rows));
  std::iota(rows.begin(), rows.end(), 0);
  v.tokens = encode_cells(counts, rows, tokenizer, patching);
  const auto n = static_cast<double>(counts.n_rows);
  v.t =
      (kMinDiffusionTime + (1 - kMinDiffusionTime) * (torch::arange(counts.n_rows, torch::kDouble) + 0.5) / n)
          .to(torch::kFloat);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 0xDA7AULL << 32));
  v.mask = forward_mask(v.t, is_gene, generator);
  const int64_t n_context = std::min(counts.n_rows, kContextCells);
  for (const double rate : kContextRates) {
    v.rate_masks.push_back(forward_mask(torch::full({n_context}, rate, torch::kFloat), is_gene, generator));
  }
  v.conditions = codes_tensor(codes, counts.n_rows);
  return v;
}

nlohmann::json ValidationLoss::to_json(int64_t step) const {
  nlohmann::json line = {{"step", step}, {"val_loss", loss}, {"val_masked_ce", masked_ce}};
  for (size_t i = 0; i < model_ce.size(); ++i) {
    const auto rate = fmt::format("{:g}", kContextRates[i]);
    line["val_context"][rate] = {
        {"model_ce", model_ce[i]}, {"prior_ce", prior_ce[i]}, {"gain", prior_ce[i] - model_ce[i]}};
  }
  return line;
}

ValidationLoss validation_loss(MaskedDiffusionModel& model, const ValidationSet& v,
                               const TargetTable& targets, int64_t batch_size, Precision precision,
                               const torch::Device& device, int64_t n_genes, int64_t mask_token) {
  if (!v.tokens.defined() || v.tokens.size(0) == 0) return {};
  torch::NoGradGuard no_grad;
  model->eval();
  double loss_sum = 0, ce_sum = 0, masked = 0;
  for_each_masked_batch(model, v, v.mask, targets, batch_size, precision, device, mask_token,
                        [&](const torch::Tensor& tokens, const torch::Tensor& mask, const torch::Tensor&,
                            const torch::Tensor& t, const torch::Tensor& logits) {
                          loss_sum += masked_diffusion_loss(logits, tokens, mask, t, n_genes).item<double>() *
                                      static_cast<double>(tokens.size(0));
                          const double m = mask.sum().item<double>();
                          ce_sum += masked_cross_entropy(logits, tokens, mask).item<double>() * m;
                          masked += m;
                        });
  ValidationLoss out{
      loss_sum / static_cast<double>(v.tokens.size(0)), ce_sum / std::max(masked, 1.0), {}, {}};
  for (const torch::Tensor& rate_mask : v.rate_masks) {
    double model_sum = 0, prior_sum = 0, count = 0;
    for_each_masked_batch(
        model, v, rate_mask, targets, batch_size, precision, device, mask_token,
        [&](const torch::Tensor& tokens, const torch::Tensor& mask, const torch::Tensor& conditions,
            const torch::Tensor&, const torch::Tensor& logits) {
          const double m = mask.sum().item<double>();
          model_sum += masked_cross_entropy(logits, tokens, mask).item<double>() * m;
          prior_sum +=
              masked_cross_entropy(model->output_bias_logits(conditions), tokens, mask).item<double>() * m;
          count += m;
        });
    out.model_ce.push_back(model_sum / std::max(count, 1.0));
    out.prior_ce.push_back(prior_sum / std::max(count, 1.0));
  }
  model->train();
  return out;
}

}  // namespace lingshu
