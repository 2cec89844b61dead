#pragma once
// Counts -> value tokens (README "How it works"). K value tokens plus MASK (= K): counts below
// `exact_limit` map to themselves; larger counts fall in log-spaced bins up to a fitted cap.
// Each bin keeps representative counts (the mean training count that fell in it, per gene where
// the gene had values there, else over all genes) so decoding keeps mean expression.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <random>
#include <span>
#include <vector>

#include "data/count_matrix.h"

namespace lingshu {

struct TokenizerConfig {
  int n_tokens = 64;             // K value tokens; MASK is token K
  int exact_limit = 32;          // counts 0 .. exact_limit-1 are their own token
  double cap_quantile = 0.9999;  // cap = this quantile of non-zero training counts

  bool operator==(const TokenizerConfig&) const = default;
};

class Tokenizer {
 public:
  static Tokenizer fit(const CsrMatrix& counts, const TokenizerConfig& config = {});

  int n_tokens() const;  // K
  int mask_token() const { return n_tokens(); }
  int n_genes() const;
  const TokenizerConfig& config() const { return config_; }
  // The fitted cap: counts from here up share the last log bins (the last bin is open-ended).
  double cap() const { return cap_; }
  int32_t encode(float count) const;  // count -> token in [0, K)
  // Lower edge of each token's count range (K entries, increasing).
  const std::vector<double>& lower_edges() const;
  // Representative (mean) count of `token` for `gene`.
  double representative(int gene, int token) const;

  // Row `row` of `counts` as n_genes tokens, in gene order (not patched).
  void encode_row(const CsrMatrix& counts, int64_t row, std::span<uint8_t> out) const;
  // Tokens of one cell (n_genes, gene order) -> integer counts: the representative count,
  // stochastically rounded so the expected count equals the representative.
  void decode_row(std::span<const uint8_t> tokens, std::mt19937_64& rng, std::span<float> out) const;

  nlohmann::json to_json() const;
  static Tokenizer from_json(const nlohmann::json& j);

  friend bool operator==(const Tokenizer&, const Tokenizer&) = default;

 private:
  TokenizerConfig config_;
  int n_genes_ = 0;
  double cap_ = 0.0;
  std::vector<double> lower_edges_;  // K
  std::vector<double> global_rep_;   // K
  // Per-gene representatives where they differ from the global ones: (gene * K + token) -> value.
  std::vector<std::pair<int64_t, double>> gene_rep_;
  std::vector<int64_t> gene_rep_offsets_;  // n_genes + 1 into gene_rep_ (sorted by key)
};

// Fixed seeded gene order and grouping into patches of P genes (the last patch padded).
// Position p of patch q holds gene order()[q * P + p], or padding when that index >= n_genes.
struct GenePatching {
  int64_t n_genes = 0;
  int patch_size = 32;
  uint64_t seed = 0;
  std::vector<int32_t> order;  // a permutation of 0..n_genes-1

  static GenePatching make(int64_t n_genes, int patch_size, uint64_t seed);
  int64_t n_patches() const { return (n_genes + patch_size - 1) / patch_size; }
  int64_t n_positions() const { return n_patches() * patch_size; }
  // Gene at sequence position `pos` (0 .. n_positions-1), or -1 for padding.
  int32_t gene_at(int64_t pos) const;
  // The inverse of `order`: the sequence position of each gene (n_genes entries).
  std::vector<int32_t> position_of_gene() const;

  // One cell's tokens in gene order (n_genes) -> sequence order (n_positions), padding = `pad`.
  void to_positions(std::span<const uint8_t> by_gene, uint8_t pad, std::span<uint8_t> by_position) const;
  // The inverse: sequence order (n_positions) -> gene order (n_genes); padding is dropped.
  void to_genes(std::span<const uint8_t> by_position, std::span<uint8_t> by_gene) const;

  bool operator==(const GenePatching&) const = default;

  nlohmann::json to_json() const;
  static GenePatching from_json(const nlohmann::json& j);
};

}  // namespace lingshu
