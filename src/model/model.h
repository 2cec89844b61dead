#pragma once
// The masked discrete diffusion transformer (README "How it works"; Lingshu-Cell, arXiv 2603.25240), readable
// top to bottom:
//
//   tokens [B, L] --value_emb + gene_emb--> [B, L, g] --concat P genes--> [B, L/P, P*g]
//     --patch_in + patch_pos--> [B, L/P, d] --prepend condition tokens--> [B, F + L/P, d]
//     --n_layers x (pre-LN attention, pre-LN MLP)--> LayerNorm --head--> [B, L/P, P*K]
//     --> logits [B, L, K] (+ a per-gene output bias set from the marginals)
//
// With config.gene_factors = R > 0, genes also have parameters of their own (a factor model
// inside the transformer): an observed gene's level (a learned level per value token, minus the
// gene's learned mean level) times its input loading [d] is added to its patch token, and each
// gene reads R scalars off its patch's final state with its output loadings [R, d]; they tilt its
// logits along R learned value profiles [R, K]. The slot-shared projection and head alone let a
// gene's value reach the network only through the slot it occupies.
// The same R also sizes the cell factors, a linear factor model around the transformer: the
// observed genes' deviations from their label's expected level, projected on per-gene input
// loadings, give the cell's state: R scores (shrunk towards 0 when few genes are observed) that
// enter every patch token, and that each gene's output loadings turn into an exponential tilt of its
// levels. They start as principal components of the training cells (train/cell_factor_init.h).
//
// Positions are sequence positions of GenePatching (gene order()[pos] sits at pos; positions past
// the last gene are padding). The gene-identity embedding is indexed by position, which is the
// same as by gene because the order is fixed for a model.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "model/config.h"

namespace lingshu {

// Pre-LayerNorm bidirectional transformer block: x + attn(ln(x)), then x + mlp(ln(x)).
class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor attention(const torch::Tensor& x);

  int64_t n_heads_;
  torch::nn::LayerNorm ln_attn_{nullptr}, ln_mlp_{nullptr};
  torch::nn::Linear qkv_{nullptr}, attn_out_{nullptr}, mlp_in_{nullptr}, mlp_out_{nullptr};
};
TORCH_MODULE(TransformerBlock);

class MaskedDiffusionModelImpl : public torch::nn::Module {
 public:
  explicit MaskedDiffusionModelImpl(ModelConfig config);

  // tokens: [B, n_positions] int64 in [0, K] (K = MASK; padding positions may hold anything).
  // conditions: [B, n_conditions] int64 (0 = NULL); may be undefined for an unconditional model.
  // targets: optional [B, T] int64 sequence positions of each cell's perturbation target genes
  // (-1 = none), added to the perturbation field's token (config().perturbation_field).
  // Returns float32 logits [B, n_positions, K].
  // states: optional [B, R] cell states that set the output tilt instead of the states read from
  // the observed genes (sampling: each cell's state drawn from the bank, banked_cell_states).
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& conditions = {},
                        const torch::Tensor& targets = {}, const torch::Tensor& states = {});

  // The same logits, only at (rows[m], positions[m]) for m < M: float32 [M, K]. The output head
  // runs for those genes only, a 1/S share of it per sampling step (random unmasking order).
  torch::Tensor forward_at(const torch::Tensor& tokens, const torch::Tensor& conditions,
                           const torch::Tensor& targets, const torch::Tensor& rows,
                           const torch::Tensor& positions, const torch::Tensor& states = {});

  // The banked states [B, R] of bank rows [B] (on the CPU).
  torch::Tensor banked_cell_states(const torch::Tensor& rows) const;
  // The label codes [kCellStateBank, max(F, 1)] of the bank's training cells (-1: a row the last
  // set_cell_state_bank left unused), on the CPU; undefined without gene factors.
  torch::Tensor cell_state_labels() const;
  // Sets the bank to the states [N, R] of N <= kCellStateBank training cells (cell_states with every
  // gene observed) and their labels [N, F].
  void set_cell_state_bank(const torch::Tensor& states, const torch::Tensor& conditions);
  // The cell states [B, R] read from the observed genes (undefined without gene factors).
  torch::Tensor cell_states(const torch::Tensor& tokens, const torch::Tensor& conditions) const;
  static constexpr int64_t kCellStateBank = 4096;

  // The logits of the output biases alone (per gene, plus each row's labels): what the model
  // predicts before the network sees any gene. [B, n_positions, K] float32.
  torch::Tensor output_bias_logits(const torch::Tensor& conditions) const;

  // Sets the per-gene output bias ([n_positions, K], e.g. each gene's token log-marginals), so a
  // fresh model starts from the marginals and learns only how the other genes change them.
  void set_gene_logit_bias(const torch::Tensor& bias);
  // The gene knowledge's vectors [n_knowledge_genes, knowledge_dim] (set once, not trained).
  void set_gene_knowledge(const torch::Tensor& vectors);
  // Sets the value level of each token ([K], e.g. log1p of its lower count edge) and each gene's
  // mean level ([n_positions]), the start of the gene-factor input (gene_factors > 0 models).
  void set_value_levels(const torch::Tensor& levels, const torch::Tensor& gene_mean_levels);
  // Sets the cell factors' input and output loadings ([n_positions, R] each) and each gene's
  // narrowing of its levels around the label's mean level ([n_positions]).
  void set_cell_factors(const torch::Tensor& in_loading, const torch::Tensor& out_loading,
                        const torch::Tensor& narrowing);
  // Sets field f's per-label output bias [vocab_f, n_positions, K] .
  void set_condition_logit_bias(int64_t field, const torch::Tensor& bias);

  const ModelConfig& config() const { return config_; }

 private:
  // `cell`: the cell states [B, R] (undefined without gene factors).
  torch::Tensor embed_patches(const torch::Tensor& tokens, const torch::Tensor& cell);
  // The level each gene is expected to have under each row's output biases: [B, n_positions], no grad.
  torch::Tensor expected_levels(const torch::Tensor& conditions, int64_t rows) const;
  // Each row's expected gene levels under its output biases [B, n_positions] and the cell states
  // [B, R] its observed genes imply (both undefined without gene factors).
  struct CellRead {
    torch::Tensor centres, states;
  };
  CellRead read_cells(const torch::Tensor& tokens, const torch::Tensor& conditions) const;
  // The cell states [B, R] from the observed genes and each gene's expected level [B, n_positions].
  torch::Tensor cell_states_around(const torch::Tensor& tokens, const torch::Tensor& expected) const;
  // The cell factors' logits, up to a constant per gene: tilt [..] x level - narrowing [..] x
  // (level - centre [..])^2, [.., K].
  torch::Tensor cell_factor_logits(const torch::Tensor& tilt, const torch::Tensor& narrowing,
                                   const torch::Tensor& centre) const;
  // Sum over each patch's observed genes of (level - gene mean level) x input loading: [B, n_patches, d].
  torch::Tensor gene_factor_input(const torch::Tensor& tokens);
  // Gene-specific logits from the patch states: [B, n_positions, K], or [M, K] at (rows, positions).
  torch::Tensor gene_factor_logits(const torch::Tensor& states) const;
  torch::Tensor gene_factor_logits_at(const torch::Tensor& x, const torch::Tensor& rows,
                                      const torch::Tensor& positions) const;
  torch::Tensor embed_conditions(const torch::Tensor& conditions, const torch::Tensor& targets);
  torch::Tensor embed_targets(const torch::Tensor& targets);
  // Final hidden states of the patch tokens: [B, n_patches, d_model].
  torch::Tensor patch_states(const torch::Tensor& tokens, const torch::Tensor& conditions,
                             const torch::Tensor& targets, const torch::Tensor& cell);
  // Sum over fields of each row's label bias at the given positions: [B, n_positions, K] when
  // `positions` is undefined, else [M, K] for (rows[m], positions[m]). Undefined without biases.
  torch::Tensor label_bias(const torch::Tensor& conditions, const torch::Tensor& rows,
                           const torch::Tensor& positions) const;

  ModelConfig config_;
  torch::nn::Embedding value_emb_{nullptr};  // K values + MASK
  torch::Tensor gene_emb_;                   // [n_positions, gene_dim]
  torch::nn::Linear patch_in_{nullptr};      // P * gene_dim -> d_model
  torch::Tensor patch_pos_;                  // [n_patches, d_model]
  torch::nn::ModuleList condition_emb_{nullptr};
  torch::nn::Linear target_proj_{nullptr};     // gene_dim -> d_model (perturbation models only)
  torch::Tensor gene_knowledge_;               // [n_knowledge_genes, knowledge_dim] (optional)
  torch::nn::Linear knowledge_proj_{nullptr};  // knowledge_dim -> d_model
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm ln_final_{nullptr};
  torch::nn::Linear head_{nullptr};  // d_model -> P * K
  torch::Tensor gene_logit_bias_;    // [n_positions, K]: each gene's marginal (set, not trained)
  std::vector<torch::Tensor> condition_logit_bias_;  // per field [vocab, n_positions, K] (optional)
  // Gene factors (gene_factors > 0): value level per token (MASK's unused), gene mean levels,
  // input loadings [n_positions, d], output loadings [n_positions, R, d], value profiles [R, K].
  torch::Tensor value_level_, gene_level_mean_, gene_in_, gene_out_, value_profile_;
  torch::Tensor depth_in_;  // [2, d]: directions of the cell's depth and of its observed share
  // Cell factors: input and output loadings [n_positions, R], scores -> patch tokens [R, d], the log
  // of the shrinkage (in shares of observed genes) of scores from few genes, and each gene's
  // narrowing [n_positions] of its levels around its label's mean once the state is known.
  torch::Tensor cell_in_, cell_out_, cell_to_patch_, cell_shrink_, cell_narrow_;
  // [kCellStateBank, R] training cells' states and [kCellStateBank, max(F, 1)] their label codes
  // (-1: an unused row); set, not trained.
  torch::Tensor cell_state_bank_, cell_state_labels_;
};
TORCH_MODULE(MaskedDiffusionModel);

// Target positions per row padded with -1: [rows, max(1, longest row)] int64 (forward's `targets`).
torch::Tensor padded_targets(const std::vector<std::vector<int32_t>>& rows);

}  // namespace lingshu
