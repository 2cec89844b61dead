#include "model/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace lingshu {

namespace {
struct Preset {
  const char* name;
  int gene_dim, d_model, n_layers, n_heads;
  const char* meant_for;
};
// Widths chosen for ~430 tokens per cell at P = 32 (pbmc3k's 13,714 genes). `small`, the default,
// has no transformer layers: at equal wall time 3 layers scored the same on pbmc3k, paul15 and Kang
// (BENCHMARKS.md, "What each part contributes") at half the training and 0.6x the sampling speed,
// so the default stops paying for them; `base` and `large` keep theirs for a GPU.
constexpr Preset kPresets[] = {
    {"tiny", 8, 64, 2, 2, "tests, smoke runs"},
    {"small", 16, 128, 0, 4, "CPU, the default: no transformer layers (--layers 3 adds them)"},
    {"base", 32, 512, 8, 8, "GPU"},
    {"large", 64, 1024, 16, 16, "GPU"},
};
}  // namespace

const std::vector<std::string>& ModelConfig::preset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& p : kPresets) v.emplace_back(p.name);
    return v;
  }();
  return names;
}

std::string ModelConfig::presets_help() {
  std::string out;
  for (const auto& p : kPresets) {
    out += fmt::format("  {:<6} d={:<5} {:>2} layers {:>2} heads  gene dim {:<3} ({})\n", p.name, p.d_model,
                       p.n_layers, p.n_heads, p.gene_dim, p.meant_for);
  }
  return out;
}

ModelConfig ModelConfig::from_preset(const std::string& name) {
  for (const auto& p : kPresets) {
    if (name == p.name) {
      ModelConfig c;
      c.preset = name;
      c.gene_dim = p.gene_dim;
      c.d_model = p.d_model;
      c.n_layers = p.n_layers;
      c.n_heads = p.n_heads;
      return c;
    }
  }
  throw UserError(
      fmt::format("unknown model preset '{}'; choose one of: {}", name, fmt::join(preset_names(), ", ")));
}

void ModelConfig::validate() const {
  const auto fail = [](const std::string& what) { throw UserError("invalid model settings: " + what); };
  if (n_genes < 1) fail("the data has no genes");
  if (patch_size < 1) fail(fmt::format("patch size {} must be at least 1", patch_size));
  if (patch_size > n_genes) {
    fail(fmt::format("patch size {} is larger than the {} genes of the data; use --patch-size {} or less",
                     patch_size, n_genes, n_genes));
  }
  if (n_tokens < 2 || n_tokens > 255) fail(fmt::format("{} value tokens; use 2 to 255", n_tokens));
  if (gene_dim < 1 || d_model < 1 || n_layers < 0 || n_heads < 1 || mlp_ratio < 1) {
    fail("widths and head counts must be positive, layers at least 0");
  }
  if (d_model % n_heads != 0) {
    fail(fmt::format("d_model {} is not divisible by {} heads; change --d-model or --heads", d_model,
                     n_heads));
  }
  if (gene_factors < 0 || gene_factors > 64) fail(fmt::format("{} gene factors; use 0 to 64", gene_factors));
  for (const int64_t v : condition_vocab_sizes) {
    if (v < 1) fail("a condition vocabulary needs at least its NULL entry");
  }
  if (perturbation_field < -1 || perturbation_field >= n_conditions()) {
    fail(fmt::format("perturbation field {} is not one of the {} condition fields", perturbation_field,
                     n_conditions()));
  }
  if (knowledge_dim < 0 || n_knowledge_genes < 0 || (knowledge_dim > 0) != (n_knowledge_genes > 0)) {
    fail(fmt::format("gene knowledge of {} genes x {} numbers", n_knowledge_genes, knowledge_dim));
  }
  if (knowledge_dim > 0 && perturbation_field < 0) fail("gene knowledge needs a perturbation field");
}

double ModelConfig::forward_flops_per_cell() const {
  const double d = d_model, T = static_cast<double>(sequence_length()), NP = static_cast<double>(n_patches());
  const double P = patch_size, K = n_tokens, g = gene_dim, hidden = static_cast<double>(mlp_ratio) * d;
  double f = 2 * NP * P * g * d;                                 // patch projection
  f += n_layers * (2 * T * (3 * d * d + d * d + 2 * d * hidden)  // projections + MLP
                   + 2 * 2 * T * T * d);                         // q k^T and attn v
  f += 2 * NP * d * P * K;                                       // output head
  if (gene_factors > 0) f += 2 * NP * P * d * (1 + gene_factors) + 2 * NP * P * gene_factors * K;
  return f;
}

nlohmann::json ModelConfig::to_json() const {
  return {{"preset", preset},
          {"n_genes", n_genes},
          {"patch_size", patch_size},
          {"n_tokens", n_tokens},
          {"gene_dim", gene_dim},
          {"d_model", d_model},
          {"n_layers", n_layers},
          {"n_heads", n_heads},
          {"mlp_ratio", mlp_ratio},
          {"condition_vocab_sizes", condition_vocab_sizes},
          {"perturbation_field", perturbation_field},
          {"gene_factors", gene_factors},
          {"knowledge_dim", knowledge_dim},
          {"n_knowledge_genes", n_knowledge_genes}};
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  try {
    ModelConfig c;
    c.preset = j.at("preset").get<std::string>();
    c.n_genes = j.at("n_genes").get<int64_t>();
    c.patch_size = j.at("patch_size").get<int>();
    c.n_tokens = j.at("n_tokens").get<int>();
    c.gene_dim = j.at("gene_dim").get<int>();
    c.d_model = j.at("d_model").get<int>();
    c.n_layers = j.at("n_layers").get<int>();
    c.n_heads = j.at("n_heads").get<int>();
    c.mlp_ratio = j.at("mlp_ratio").get<int>();
    c.condition_vocab_sizes = j.at("condition_vocab_sizes").get<std::vector<int64_t>>();
    c.perturbation_field = j.at("perturbation_field").get<int>();
    c.gene_factors = j.at("gene_factors").get<int>();
    c.knowledge_dim = j.at("knowledge_dim").get<int>();
    c.n_knowledge_genes = j.at("n_knowledge_genes").get<int64_t>();
    c.validate();
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw UserError(fmt::format("model config is incomplete or malformed ({}); retrain the model", e.what()));
  }
}

}  // namespace lingshu
