#pragma once
// The model's shape as one small value type (README "How it works"), with named presets. Free of
// LibTorch so that the CLI and the model directory code can use it without the heavy headers.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace lingshu {

struct ModelConfig {
  std::string preset = "small";
  int64_t n_genes = 0;  // genes of the training file (all of them, in the file's order)
  int patch_size = 32;  // P genes per token
  int n_tokens = 64;    // K value tokens per gene; MASK is token K
  int gene_dim = 16;    // width of one gene's value + identity embedding
  int d_model = 128;    // transformer width
  int n_layers = 3;
  int n_heads = 4;
  int mlp_ratio = 4;  // hidden width of the feed-forward block = mlp_ratio * d_model
  // One prepended, never-masked token per condition field; entry 0 of each vocabulary is NULL.
  // Empty for an unconditional model.
  std::vector<int64_t> condition_vocab_sizes;
  // The condition field whose labels name target genes (-1: none). Its token adds a learned
  // projection of the targets' summed gene-identity embeddings, so an unseen label whose targets
  // are genes of the model still has a meaningful token.
  int perturbation_field = -1;
  // (Every condition label also has its own output bias [n_positions, K], NULL's zero: a cell
  // type's marginals set in closed form, and labels of different fields adding up in log space for
  // unseen combinations.)

  // Per-gene loadings, the factor-model part of the network (as scVI's decoder or PCA give every
  // gene its own weights): each observed gene's level enters its patch token along the gene's own
  // input loading, and each gene reads R scalars off its patch's final state along its own output
  // loadings, which tilt its value distribution along R learned value profiles. 0: none (the
  // paper's slot-shared patch projection and head only).
  int gene_factors = 16;

  // Gene knowledge (train --gene-knowledge): vectors of `knowledge_dim` numbers for
  // `n_knowledge_genes` gene symbols, measured or not, stored with the weights; a perturbation's
  // targets with a row there add its learned projection to the perturbation token. 0: none.
  int knowledge_dim = 0;
  int64_t n_knowledge_genes = 0;

  // `tiny` (tests), `small` (CPU), `base`, `large` (GPU). Throws UserError for other names.
  static ModelConfig from_preset(const std::string& name);
  static const std::vector<std::string>& preset_names();
  // One line per preset (name, width, layers, heads, gene dim, what it is meant for), for --help.
  static std::string presets_help();

  int64_t n_patches() const { return (n_genes + patch_size - 1) / patch_size; }
  int64_t n_positions() const { return n_patches() * patch_size; }  // genes + padding
  int64_t n_conditions() const { return static_cast<int64_t>(condition_vocab_sizes.size()); }
  int64_t sequence_length() const { return n_conditions() + n_patches(); }

  // Throws UserError naming the offending field if the shape cannot be built.
  void validate() const;

  // Multiply-add FLOPs (2 per MAC) of one cell's forward pass: matrix products and attention.
  double forward_flops_per_cell() const;

  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j);
};

}  // namespace lingshu
