#include "sample/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <optional>
#include <random>

#include "core/error.h"
#include "core/progress.h"
#include "model/model_dir.h"
#include "model/precision.h"
#include "model/weights.h"
#include "sample/sampler.h"

namespace lingshu {

namespace {
uint64_t mix_seed(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

UnmaskOrder parse_order(const std::string& name) {
  if (name == "confidence") return UnmaskOrder::Confidence;
  if (name == "random") return UnmaskOrder::Random;
  throw UserError(fmt::format("unknown --order '{}'; use confidence or random", name));
}

// Tokens of one cell in sequence order -> counts in the training file's gene order.
void decode_cell(const int64_t* tokens, const ModelMetadata& meta, std::mt19937_64& rng,
                 std::vector<uint8_t>& gene_tokens, std::vector<float>& counts) {
  for (int64_t pos = 0; pos < meta.patching.n_genes; ++pos) {
    gene_tokens[static_cast<size_t>(meta.patching.order[pos])] = static_cast<uint8_t>(tokens[pos]);
  }
  meta.tokenizer.decode_row(gene_tokens, rng, counts);
}
}  // namespace

AnnData generate_cells(const GenerateOptions& options) {
  if (options.n_cells < 1) throw UserError("--n must be at least 1");
  if (options.steps < 1) throw UserError("--steps must be at least 1");
  if (options.batch_size < 1) throw UserError("--batch-size must be at least 1");
  if (options.temperature < 0) throw UserError("--temperature must be 0 or more");
  const SamplerOptions sampler{options.steps, options.temperature, parse_order(options.order)};
  const ModelMetadata meta = read_model_metadata(options.model_dir);
  if (meta.config.n_conditions() > 0) {
    throw UserError(fmt::format("{} is a conditional model; conditional generation is not available yet",
                                options.model_dir.string()));
  }
  const auto device = resolve_device(options.device);
  const auto precision = resolve_precision(options.precision, device);
  auto model = load_weights(options.model_dir, meta.config, device);
  torch::NoGradGuard no_grad;

  const ModelConfig& config = meta.config;
  const int64_t mask_token = config.n_tokens;
  auto is_gene = torch::zeros({config.n_positions()}, torch::kBool);
  is_gene.slice(0, 0, config.n_genes).fill_(true);
  const auto conditions = torch::zeros({options.batch_size, 0}, torch::kLong).to(device);

  AnnData out;
  out.X.n_cols = config.n_genes;
  std::vector<uint8_t> gene_tokens(static_cast<size_t>(config.n_genes));
  std::vector<float> counts(static_cast<size_t>(config.n_genes));
  std::optional<Progress> progress;
  if (!options.quiet) progress.emplace("generate", options.n_cells, "cells");
  for (int64_t begin = 0, batch = 0; begin < options.n_cells; begin += options.batch_size, ++batch) {
    const int64_t n = std::min(options.batch_size, options.n_cells - begin);
    const auto cond = conditions.slice(0, 0, n);
    const Denoiser denoiser = [&](const torch::Tensor& z) {
      const AutocastScope autocast(precision, device);
      return model->forward(z, cond);
    };
    auto generator = at::make_generator<at::CPUGeneratorImpl>(mix_seed(options.seed, static_cast<uint64_t>(batch)));
    const auto initial = torch::full({n, config.n_positions()}, mask_token, torch::TensorOptions(torch::kLong).device(device));
    const auto tokens = sample_tokens(denoiser, initial, is_gene, mask_token, sampler, generator).to(torch::kCPU).contiguous();
    for (int64_t i = 0; i < n; ++i) {
      std::mt19937_64 rng(mix_seed(options.seed ^ 0xDEC0DEULL, static_cast<uint64_t>(begin + i)));
      decode_cell(tokens.data_ptr<int64_t>() + i * config.n_positions(), meta, rng, gene_tokens, counts);
      out.X.append_dense_row(counts);
      out.obs.index.push_back(fmt::format("gen_{}", begin + i));
    }
    if (progress) progress->update(begin + n);
  }
  if (progress) progress->finish();
  out.var.index = meta.gene_names;
  out.uns_strings = {
      {"lingshu_model", options.model_dir.string()},
      {"lingshu_preset", config.preset},
      {"lingshu_sampler",
       fmt::format("steps={} temperature={} order={} seed={} batch_size={} precision={}", options.steps,
                   options.temperature, options.order, options.seed, options.batch_size, precision_name(precision))},
  };
  return out;
}

}  // namespace lingshu
