#include "model/model.h"

#include <ATen/ops/_scaled_dot_product_attention.h>
#include <fmt/format.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>

#include <cmath>

namespace lingshu {

TransformerBlockImpl::TransformerBlockImpl(const ModelConfig& config) : n_heads_(config.n_heads) {
  const int64_t d = config.d_model;
  const int64_t hidden = static_cast<int64_t>(config.mlp_ratio) * d;
  ln_attn_ = register_module("ln_attn", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  qkv_ = register_module("qkv", torch::nn::Linear(d, 3 * d));
  attn_out_ = register_module("attn_out", torch::nn::Linear(d, d));
  ln_mlp_ = register_module("ln_mlp", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  mlp_in_ = register_module("mlp_in", torch::nn::Linear(d, hidden));
  mlp_out_ = register_module("mlp_out", torch::nn::Linear(hidden, d));
  // GPT-2 style: residual projections start small so the stack begins near the identity.
  const double residual_std = 0.02 / std::sqrt(2.0 * config.n_layers);
  torch::NoGradGuard no_grad;
  for (auto* linear : {&qkv_, &mlp_in_}) {
    torch::nn::init::normal_((*linear)->weight, 0.0, 0.02);
    torch::nn::init::zeros_((*linear)->bias);
  }
  for (auto* linear : {&attn_out_, &mlp_out_}) {
    torch::nn::init::normal_((*linear)->weight, 0.0, residual_std);
    torch::nn::init::zeros_((*linear)->bias);
  }
}

torch::Tensor TransformerBlockImpl::attention(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), d = x.size(2);
  // [B, T, 3d] -> 3 x [B, heads, T, d/heads]
  const auto qkv = qkv_(x).view({B, T, 3, n_heads_, d / n_heads_}).permute({2, 0, 3, 1, 4});
  // LibTorch 1.13's (private) scaled-dot-product attention scales q before q k^T: fewer FLOPs
  // than the textbook softmax(q k^T / sqrt(d)) v. Bidirectional: no causal mask.
  auto [y, unused_weights] = at::_scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], {}, 0.0, false, false);
  return attn_out_(y.transpose(1, 2).reshape({B, T, d}));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x) {
  const auto h = x + attention(ln_attn_(x));
  return h + mlp_out_(torch::gelu(mlp_in_(ln_mlp_(h))));
}

MaskedDiffusionModelImpl::MaskedDiffusionModelImpl(ModelConfig config) : config_(std::move(config)) {
  config_.validate();
  const int64_t d = config_.d_model, g = config_.gene_dim, P = config_.patch_size, K = config_.n_tokens;
  value_emb_ = register_module("value_emb", torch::nn::Embedding(K + 1, g));
  gene_emb_ = register_parameter("gene_emb", torch::randn({config_.n_positions(), g}) * 0.02);
  patch_in_ = register_module("patch_in", torch::nn::Linear(P * g, d));
  patch_pos_ = register_parameter("patch_pos", torch::randn({config_.n_patches(), d}) * 0.02);
  condition_emb_ = register_module("condition_emb", torch::nn::ModuleList());
  for (const int64_t vocab : config_.condition_vocab_sizes) {
    condition_emb_->push_back(torch::nn::Embedding(vocab, d));
  }
  if (config_.perturbation_field >= 0) {
    target_proj_ =
        register_module("target_proj", torch::nn::Linear(torch::nn::LinearOptions(g, d).bias(false)));
  }
  if (const int64_t D = config_.knowledge_dim; D > 0) {
    gene_knowledge_ = register_parameter("gene_knowledge", torch::zeros({config_.n_knowledge_genes, D}),
                                         /*requires_grad=*/false);
    knowledge_proj_ =
        register_module("knowledge_proj", torch::nn::Linear(torch::nn::LinearOptions(D, d).bias(false)));
  }
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < config_.n_layers; ++i) blocks_->push_back(TransformerBlock(config_));
  ln_final_ = register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  head_ = register_module("head", torch::nn::Linear(d, P * K));
  // Output biases are set once from the data's marginals and never trained (requires_grad false):
  // trained, they drifted in directions the network then undid (cell-line controls a third too
  // small, validation loss higher), and they are what the cell states are centred on.
  gene_logit_bias_ = register_parameter("gene_logit_bias", torch::zeros({config_.n_positions(), K}),
                                        /*requires_grad=*/false);
  for (size_t f = 0; f < config_.condition_vocab_sizes.size(); ++f) {
    condition_logit_bias_.push_back(
        register_parameter(fmt::format("condition_logit_bias_{}", f),
                           torch::zeros({config_.condition_vocab_sizes[f], config_.n_positions(), K}),
                           /*requires_grad=*/false));
  }
  if (const int64_t R = config_.gene_factors; R > 0) {
    const int64_t L = config_.n_positions();
    // Until set_value_levels: the token index as a level (a monotone stand-in).
    value_level_ = register_parameter("value_level", torch::log1p(torch::arange(K + 1, torch::kFloat)));
    gene_level_mean_ = register_parameter("gene_level_mean", torch::zeros({L}));
    gene_in_ = register_parameter("gene_in_loading", torch::randn({L, d}) * 0.02);
    // Zero output loadings: a fresh model's logits are exactly its output biases (the marginals).
    gene_out_ = register_parameter("gene_out_loading", torch::zeros({L, R, d}));
    value_profile_ = register_parameter("value_profile", torch::randn({R, K}) * 0.3);
    depth_in_ = register_parameter("depth_in", torch::randn({2, d}) * 0.3);
    cell_in_ = register_parameter("cell_in_loading", torch::zeros({L, R}));
    cell_out_ = register_parameter("cell_out_loading", torch::zeros({L, R}));
    cell_to_patch_ = register_parameter("cell_to_patch", torch::randn({R, d}) * (0.3 / std::sqrt(R)));
    cell_shrink_ = register_parameter("cell_shrink", torch::full({1}, std::log(0.02)));
    cell_narrow_ = register_parameter("cell_narrowing", torch::zeros({L}));
    cell_state_bank_ = register_parameter("cell_state_bank", torch::zeros({kCellStateBank, R}),
                                          /*requires_grad=*/false);
    const auto F = std::max<int64_t>(static_cast<int64_t>(config_.condition_vocab_sizes.size()), 1);
    // Stored with the weights (which hold parameters only), as floats: label codes are small integers.
    cell_state_labels_ = register_parameter("cell_state_labels", torch::zeros({kCellStateBank, F}),
                                            /*requires_grad=*/false);
  }

  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(value_emb_->weight, 0.0, 1.0);
  // Comparable to the patch vectors they are added to (patch_states adds them to every patch), so cell types
  // differ from the first step instead of after hundreds of steps of growth.
  for (const auto& m : *condition_emb_) {
    torch::nn::init::normal_(m->as<torch::nn::Embedding>()->weight, 0.0, 0.3);
  }
  if (target_proj_) torch::nn::init::normal_(target_proj_->weight, 0.0, 0.02);
  if (knowledge_proj_) torch::nn::init::normal_(knowledge_proj_->weight, 0.0, 0.02);
  // A fresh model predicts exactly its output biases (the marginals it starts from): a random head
  // added logit noise that differed from label to label, so an untrained model's perturbed and
  // control cells differed by noise as large as a perturbation's effect.
  torch::nn::init::zeros_(head_->weight);
  torch::nn::init::zeros_(head_->bias);
}

void MaskedDiffusionModelImpl::set_gene_logit_bias(const torch::Tensor& bias) {
  TORCH_CHECK(bias.sizes() == gene_logit_bias_.sizes(), "gene logit bias must be ", gene_logit_bias_.sizes(),
              ", got ", bias.sizes());
  torch::NoGradGuard no_grad;
  gene_logit_bias_.copy_(bias);
}

void MaskedDiffusionModelImpl::set_gene_knowledge(const torch::Tensor& vectors) {
  TORCH_CHECK(
      gene_knowledge_.defined() && vectors.sizes() == gene_knowledge_.sizes(), "gene knowledge must be ",
      gene_knowledge_.defined() ? gene_knowledge_.sizes() : c10::IntArrayRef{}, ", got ", vectors.sizes());
  torch::NoGradGuard no_grad;
  gene_knowledge_.copy_(vectors);
}

void MaskedDiffusionModelImpl::set_value_levels(const torch::Tensor& levels,
                                                const torch::Tensor& gene_mean_levels) {
  TORCH_CHECK(config_.gene_factors > 0, "this model has no gene factors");
  TORCH_CHECK(levels.dim() == 1 && levels.size(0) == config_.n_tokens, "value levels must be [K]");
  TORCH_CHECK(gene_mean_levels.sizes() == gene_level_mean_.sizes(), "gene mean levels must be [n_positions]");
  torch::NoGradGuard no_grad;
  value_level_.slice(0, 0, config_.n_tokens).copy_(levels);
  gene_level_mean_.copy_(gene_mean_levels);
  // The first profile starts as the centred levels: loading x state then acts like a shift of the
  // gene's log-mean (an exponential tilt), the simplest way a cell state changes a gene.
  const auto centred = levels - levels.mean();
  value_profile_[0].copy_(centred / centred.norm().clamp_min(1e-6) * std::sqrt(config_.n_tokens));
}

void MaskedDiffusionModelImpl::set_cell_factors(const torch::Tensor& in_loading,
                                                const torch::Tensor& out_loading,
                                                const torch::Tensor& narrowing) {
  TORCH_CHECK(config_.gene_factors > 0, "this model has no gene factors");
  TORCH_CHECK(in_loading.sizes() == cell_in_.sizes() && out_loading.sizes() == cell_out_.sizes(),
              "cell factor loadings must be ", cell_in_.sizes());
  TORCH_CHECK(narrowing.sizes() == cell_narrow_.sizes(), "cell narrowing must be ", cell_narrow_.sizes());
  torch::NoGradGuard no_grad;
  cell_in_.copy_(in_loading);
  cell_out_.copy_(out_loading);
  cell_narrow_.copy_(narrowing);
}

void MaskedDiffusionModelImpl::set_condition_logit_bias(int64_t field, const torch::Tensor& bias) {
  TORCH_CHECK(field >= 0 && field < static_cast<int64_t>(condition_logit_bias_.size()),
              "no per-label logit bias for field ", field);
  auto& table = condition_logit_bias_[static_cast<size_t>(field)];
  TORCH_CHECK(bias.sizes() == table.sizes(), "label logit bias must be ", table.sizes(), ", got ",
              bias.sizes());
  torch::NoGradGuard no_grad;
  table.copy_(bias);
}

torch::Tensor MaskedDiffusionModelImpl::label_bias(const torch::Tensor& conditions, const torch::Tensor& rows,
                                                   const torch::Tensor& positions) const {
  torch::Tensor sum;
  for (size_t f = 0; f < condition_logit_bias_.size(); ++f) {
    const auto labels = conditions.select(1, static_cast<int64_t>(f));
    const auto& table = condition_logit_bias_[f];
    auto b = positions.defined() ? table.index({labels.index_select(0, rows), positions})
                                 : table.index_select(0, labels);
    sum = sum.defined() ? sum + b : b;
  }
  return sum;
}

torch::Tensor MaskedDiffusionModelImpl::output_bias_logits(const torch::Tensor& conditions) const {
  const int64_t B = conditions.defined() ? conditions.size(0) : 1;
  auto out = gene_logit_bias_.unsqueeze(0).expand({B, -1, -1});
  if (const auto by_label = label_bias(conditions, {}, {}); by_label.defined()) out = out + by_label;
  return out;
}

torch::Tensor MaskedDiffusionModelImpl::expected_levels(const torch::Tensor& conditions, int64_t rows) const {
  torch::NoGradGuard no_grad;
  const auto levels = value_level_.slice(0, 0, config_.n_tokens);
  if (!conditions.defined() || conditions.size(1) == 0 || condition_logit_bias_.empty())
    return torch::matmul(torch::softmax(gene_logit_bias_, -1), levels).unsqueeze(0).expand({rows, -1});
  // A batch holds few distinct label rows: the [rows, L, K] softmax once per distinct row.
  const auto [distinct, row_of, unused] = torch::unique_dim(conditions, 0, false, true, false);
  return torch::matmul(torch::softmax(output_bias_logits(distinct), -1), levels).index_select(0, row_of);
}

MaskedDiffusionModelImpl::CellRead MaskedDiffusionModelImpl::read_cells(
    const torch::Tensor& tokens, const torch::Tensor& conditions) const {
  if (config_.gene_factors == 0) return {};
  auto centres = expected_levels(conditions, tokens.size(0));
  auto states = cell_states_around(tokens, centres);
  return {std::move(centres), std::move(states)};
}

torch::Tensor MaskedDiffusionModelImpl::cell_factor_logits(const torch::Tensor& tilt,
                                                           const torch::Tensor& narrowing,
                                                           const torch::Tensor& centre) const {
  // tilt x level shifts the label's distribution of levels; narrowing x (level - centre)^2 takes
  // off the spread that the cell's state accounts for, so what is left for the gene is its
  // variation given the state, not the whole label's (a tilt alone kept each gene as wide as its
  // marginal, and training kept the tilts small to pay for it).
  // Expanded, -c (level - centre)^2 is -c level^2 + 2 c centre level less c centre^2, which is the
  // same for every token of a gene and drops out of its softmax: two passes over [.., K], not five.
  const auto levels = value_level_.slice(0, 0, config_.n_tokens);
  return (tilt + 2.0 * narrowing * centre).unsqueeze(-1) * levels - narrowing.unsqueeze(-1) * levels.pow(2);
}

torch::Tensor MaskedDiffusionModelImpl::cell_states(const torch::Tensor& tokens,
                                                    const torch::Tensor& conditions) const {
  if (config_.gene_factors == 0) return {};
  return cell_states_around(tokens, expected_levels(conditions, tokens.size(0)));
}

torch::Tensor MaskedDiffusionModelImpl::cell_states_around(const torch::Tensor& tokens,
                                                           const torch::Tensor& expected) const {
  const int64_t G = config_.n_genes;
  const auto genes = tokens.slice(1, 0, G);
  const auto observed = genes.lt(config_.n_tokens).to(value_level_.scalar_type());
  const auto level = value_level_.index_select(0, genes.flatten()).view(genes.sizes());
  const auto deviation = (level - expected.slice(1, 0, G)) * observed;
  // A random share of the genes estimates the full projection times that share: dividing by
  // (share + shrink) undoes the share and, with few genes, pulls the noisy estimate towards 0.
  const auto share = observed.mean(1, /*keepdim=*/true);
  const auto scores = torch::matmul(deviation, cell_in_.slice(0, 0, G)) / (share + cell_shrink_.exp());
  // Unit-variance scores, bounded at 3 sd: unbounded, a cell whose sampled genes came out high
  // raised the scores, which raised its other genes, until a few cells in twenty had every gene in
  // the hundreds (paul15).
  constexpr double kBound = 3.0;
  return kBound * torch::tanh(scores / kBound);
}

torch::Tensor MaskedDiffusionModelImpl::embed_patches(const torch::Tensor& tokens,
                                                      const torch::Tensor& cell) {
  const int64_t B = tokens.size(0);
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) == config_.n_positions(), "tokens must be [B, ",
              config_.n_positions(), "], got ", tokens.sizes());
  const auto genes = value_emb_(tokens) + gene_emb_;  // [B, L, g]
  const auto patches = genes.view({B, config_.n_patches(), config_.patch_size * config_.gene_dim});
  auto x = patch_in_(patches) + patch_pos_;
  if (config_.gene_factors > 0) {
    x = x +
        (gene_factor_input(tokens) + torch::matmul(cell, cell_to_patch_).unsqueeze(1)).to(x.scalar_type());
  }
  return x;
}

torch::Tensor MaskedDiffusionModelImpl::gene_factor_input(const torch::Tensor& tokens) {
  const int64_t B = tokens.size(0), N = config_.n_patches(), P = config_.patch_size;
  const auto observed = tokens.lt(config_.n_tokens).to(value_level_.scalar_type());
  const auto level =
      (value_level_.index_select(0, tokens.flatten()).view(tokens.sizes()) - gene_level_mean_) *
      observed;  // [B, L]; masked genes add nothing
  // Per patch, [B, P] x [P, d]: one batched product over patches.
  const auto x =
      torch::einsum("bnp,npd->bnd", {level.reshape({B, N, P}), gene_in_.view({N, P, config_.d_model})});
  // The cell's depth, the largest source of variation in every dataset, as one number that every
  // patch sees from the first layer: the mean level deviation of the observed genes (none
  // observed: 0), and the share of genes observed. Through the input loadings alone every gene's
  // loading would have to learn the shared depth direction first (paul15, 10 minutes: AUC 0.910 /
  // MMD 0.029 / gene-gene 0.365 with it, 0.940 / 0.091 / 0.216 without).
  const auto n_observed = observed.sum(1);
  const auto depth = level.sum(1) / n_observed.clamp_min(1);             // [B]
  const auto share = n_observed / static_cast<double>(config_.n_genes);  // [B]
  return x + (depth.unsqueeze(1) * depth_in_[0] + share.unsqueeze(1) * depth_in_[1]).unsqueeze(1);
}

torch::Tensor MaskedDiffusionModelImpl::gene_factor_logits(const torch::Tensor& states) const {
  const int64_t B = states.size(0), N = config_.n_patches(), P = config_.patch_size;
  const int64_t R = config_.gene_factors, d = config_.d_model;
  const auto scores =
      torch::einsum("bnd,nqd->bnq", {states, gene_out_.view({N, P * R, d}).to(states.scalar_type())});
  return torch::matmul(scores.reshape({B, N * P, R}).to(torch::kFloat32), value_profile_);  // [B, L, K]
}

torch::Tensor MaskedDiffusionModelImpl::gene_factor_logits_at(const torch::Tensor& x,
                                                              const torch::Tensor& rows,
                                                              const torch::Tensor& positions) const {
  // Many genes at once (the first steps, one-step sampling): every gene's logits in one product
  // beat gathering an [M, R, d] copy of the loadings (3 GB and 13 s for 1,000 cells of a tiny
  // model on 2,000 genes in one step, against 8 s in four).
  if (positions.size(0) * 4 >= x.size(0) * config_.n_positions())
    return gene_factor_logits(x).index({rows, positions});
  const auto states = x.index({rows, torch::div(positions, config_.patch_size, "floor")});  // [M, d]
  const auto loadings = gene_out_.index_select(0, positions).to(states.scalar_type());      // [M, R, d]
  const auto scores = torch::bmm(loadings, states.unsqueeze(2)).squeeze(2);                 // [M, R]
  return torch::matmul(scores.to(torch::kFloat32), value_profile_);                         // [M, K]
}

torch::Tensor MaskedDiffusionModelImpl::embed_targets(const torch::Tensor& targets) {
  // Sums of the targets' rows, projected: gene-identity embeddings for positions below
  // n_positions, gene-knowledge vectors above (padding -1 contributes nothing).
  const auto summed = [&](const torch::Tensor& table, const torch::Tensor& rows, const torch::Tensor& valid) {
    const auto picked =
        table.index_select(0, rows.clamp_min(0).flatten()).view({rows.size(0), rows.size(1), -1});
    return (picked * valid.unsqueeze(-1).to(picked.scalar_type())).sum(1);
  };
  const int64_t L = config_.n_positions();
  auto out =
      target_proj_(summed(gene_emb_, targets.clamp_max(L - 1), targets.ge(0).logical_and(targets.lt(L))));
  if (knowledge_proj_) out = out + knowledge_proj_(summed(gene_knowledge_, targets - L, targets.ge(L)));
  return out;  // [B, d]
}

torch::Tensor MaskedDiffusionModelImpl::embed_conditions(const torch::Tensor& conditions,
                                                         const torch::Tensor& targets) {
  std::vector<torch::Tensor> fields;
  for (int64_t f = 0; f < config_.n_conditions(); ++f) {
    auto token = condition_emb_[f]->as<torch::nn::Embedding>()->forward(conditions.select(1, f));
    if (f == config_.perturbation_field && targets.defined() && targets.size(1) > 0) {
      TORCH_CHECK(targets.dim() == 2 && targets.size(0) == conditions.size(0), "targets must be [B, T]");
      token = token + embed_targets(targets);
    }
    fields.push_back(token);
  }
  return torch::stack(fields, 1);  // [B, F, d]
}

torch::Tensor MaskedDiffusionModelImpl::patch_states(const torch::Tensor& tokens,
                                                     const torch::Tensor& conditions,
                                                     const torch::Tensor& targets,
                                                     const torch::Tensor& cell) {
  const int64_t B = tokens.size(0), F = config_.n_conditions();
  auto x = embed_patches(tokens, cell);
  if (F > 0) {
    TORCH_CHECK(
        conditions.defined() && conditions.dim() == 2 && conditions.size(0) == B && conditions.size(1) == F,
        "conditions must be [B, ", F, "]");
    const auto condition_tokens = embed_conditions(conditions, targets).to(x.scalar_type());  // [B, F, d]
    // Every patch also sees its cell's labels from the first layer on, instead of having to learn
    // to attend to one token among ~430.
    x = x + condition_tokens.sum(1, /*keepdim=*/true);
    x = torch::cat({condition_tokens, x}, 1);
  }
  for (const auto& block : *blocks_) x = block->as<TransformerBlock>()->forward(x);
  x = ln_final_(x);
  return F > 0 ? x.slice(1, F) : x;
}

torch::Tensor MaskedDiffusionModelImpl::cell_state_labels() const {
  if (config_.gene_factors == 0) return {};
  return cell_state_labels_.detach().cpu().to(torch::kLong);
}

torch::Tensor MaskedDiffusionModelImpl::banked_cell_states(const torch::Tensor& rows) const {
  return cell_state_bank_.detach().cpu().index_select(0, rows.cpu());
}

void MaskedDiffusionModelImpl::set_cell_state_bank(const torch::Tensor& states,
                                                   const torch::Tensor& conditions) {
  const int64_t N = states.size(0);
  TORCH_CHECK(config_.gene_factors > 0 && states.dim() == 2 && N > 0 && N <= kCellStateBank &&
                  states.size(1) == config_.gene_factors && conditions.size(0) == N,
              "cell state bank: need [N <= ", kCellStateBank, ", ", config_.gene_factors,
              "] states and [N, F] labels, got ", states.sizes(), " and ", conditions.sizes());
  torch::NoGradGuard no_grad;
  cell_state_bank_.zero_();
  cell_state_bank_.slice(0, 0, N).copy_(states);
  cell_state_labels_.fill_(-1);
  auto labels = cell_state_labels_.slice(0, 0, N);
  labels.zero_();
  const int64_t F = std::min(conditions.size(1), labels.size(1));
  if (F > 0) labels.slice(1, 0, F).copy_(conditions.slice(1, 0, F).to(labels.scalar_type()));
}

torch::Tensor MaskedDiffusionModelImpl::forward(const torch::Tensor& tokens, const torch::Tensor& conditions,
                                                const torch::Tensor& targets, const torch::Tensor& states) {
  const auto [expected, read] = read_cells(tokens, conditions);
  const auto x = patch_states(tokens, conditions, targets, read);
  const auto cell = states.defined() && read.defined() ? states.to(read.device(), read.scalar_type()) : read;
  const auto logits = head_(x).view({tokens.size(0), config_.n_positions(), config_.n_tokens});
  // Under bf16 autocast the head runs in bf16; the loss and the sampler want float32.
  auto out = logits.to(torch::kFloat32) + gene_logit_bias_;
  if (config_.gene_factors > 0) {
    const auto tilt = torch::matmul(cell, cell_out_.t());  // [B, L]
    out = out + gene_factor_logits(x) + cell_factor_logits(tilt, cell_narrow_, expected);
  }
  if (const auto by_label = label_bias(conditions, {}, {}); by_label.defined()) out = out + by_label;
  return out;
}

torch::Tensor MaskedDiffusionModelImpl::forward_at(const torch::Tensor& tokens,
                                                   const torch::Tensor& conditions,
                                                   const torch::Tensor& targets, const torch::Tensor& rows,
                                                   const torch::Tensor& positions,
                                                   const torch::Tensor& states) {
  const int64_t P = config_.patch_size, K = config_.n_tokens;
  const auto [expected, read] = read_cells(tokens, conditions);
  const auto x = patch_states(tokens, conditions, targets, read);
  const auto cell = states.defined() && read.defined() ? states.to(read.device(), read.scalar_type()) : read;
  const auto hidden = x.index({rows, torch::div(positions, P, "floor")});  // [M, d]
  const auto slot = torch::remainder(positions, P);
  const auto weight = head_->weight.view({P, K, -1});
  const auto bias = head_->bias.view({P, K});
  auto out = torch::empty({positions.size(0), K}, hidden.options().dtype(torch::kFloat32));
  // One small product per slot of the patch: the head's rows for that slot only.
  for (int64_t j = 0; j < P; ++j) {
    const auto picked = slot.eq(j).nonzero().squeeze(1);
    if (picked.numel() == 0) continue;
    const auto logits = torch::nn::functional::linear(hidden.index_select(0, picked), weight[j], bias[j]);
    out.index_copy_(0, picked, logits.to(torch::kFloat32));
  }
  out = out + gene_logit_bias_.index_select(0, positions);
  if (config_.gene_factors > 0) {
    const auto tilt = (cell.index_select(0, rows) * cell_out_.index_select(0, positions)).sum(1);  // [M]
    out =
        out + gene_factor_logits_at(x, rows, positions) +
        cell_factor_logits(tilt, cell_narrow_.index_select(0, positions), expected.index({rows, positions}));
  }
  if (const auto by_label = label_bias(conditions, rows, positions); by_label.defined()) out = out + by_label;
  return out;
}

torch::Tensor padded_targets(const std::vector<std::vector<int32_t>>& rows) {
  size_t longest = 1;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  auto out =
      torch::full({static_cast<int64_t>(rows.size()), static_cast<int64_t>(longest)}, -1, torch::kLong);
  auto acc = out.accessor<int64_t, 2>();
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t j = 0; j < rows[i].size(); ++j)
      acc[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = rows[i][j];
  }
  return out;
}

}  // namespace lingshu
