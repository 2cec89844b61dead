#include "data/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>

#include "core/error.h"
#include "core/random.h"

namespace lingshu {

namespace {

// Tokens travel as uint8 with MASK = K, so K can be at most 255.
constexpr int kMaxTokens = 255;
// Counts at or above this share one histogram slot when locating the cap (they are far above any
// sensible cap and exact in float only up to 2^24 anyway).
constexpr int64_t kHistogramLimit = int64_t{1} << 22;

void validate_config(const TokenizerConfig& config) {
  if (config.n_tokens < 2 || config.n_tokens > kMaxTokens) {
    throw UserError(
        fmt::format("tokenizer: n_tokens is {}; it must be between 2 and {}", config.n_tokens, kMaxTokens));
  }
  if (config.exact_limit < 1) {
    throw UserError(fmt::format("tokenizer: exact_limit is {}; it must be at least 1", config.exact_limit));
  }
  if (config.n_tokens < config.exact_limit) {
    throw UserError(fmt::format(
        "tokenizer: n_tokens ({}) is smaller than exact_limit ({}); raise n_tokens or lower exact_limit",
        config.n_tokens, config.exact_limit));
  }
  if (!(config.cap_quantile > 0.0 && config.cap_quantile <= 1.0)) {
    throw UserError(fmt::format("tokenizer: cap_quantile is {}; it must be in (0, 1]", config.cap_quantile));
  }
}

// The smallest integer count c such that at least `q` of the non-zero values are <= c.
double nonzero_quantile(const CsrMatrix& counts, double q) {
  std::vector<int64_t> histogram;
  int64_t n = 0;
  for (const float v : counts.values) {
    if (!(v > 0.0f)) continue;
    const auto slot = static_cast<size_t>(std::min<double>(std::floor(v), kHistogramLimit));
    if (slot >= histogram.size()) histogram.resize(slot + 1, 0);
    ++histogram[slot];
    ++n;
  }
  if (n == 0) return 0.0;
  const auto needed = static_cast<int64_t>(std::ceil(q * static_cast<double>(n)));
  int64_t seen = 0;
  for (size_t c = 0; c < histogram.size(); ++c) {
    seen += histogram[c];
    if (seen >= needed) return static_cast<double>(c);
  }
  return static_cast<double>(histogram.size() - 1);
}

// Lower edges: 0 .. exact_limit-1 exactly, then integer edges spaced evenly in log from
// exact_limit to cap + 1. Each edge re-spreads the remaining bins over what is left of the range,
// so where log spacing would give bins narrower than one count the bins simply stay exact (this
// is also what happens when all counts are small: no log bins are needed).
std::vector<double> bin_edges(const TokenizerConfig& config, double cap) {
  const int k = config.n_tokens;
  std::vector<double> edges(static_cast<size_t>(k));
  for (int t = 0; t < config.exact_limit; ++t) edges[static_cast<size_t>(t)] = t;
  const double top = std::max(cap, static_cast<double>(config.exact_limit)) + 1.0;
  for (int t = config.exact_limit; t < k; ++t) {
    if (t == config.exact_limit) {
      edges[static_cast<size_t>(t)] = t;
      continue;
    }
    const double previous = edges[static_cast<size_t>(t - 1)];
    const int bins_left = k - t + 1;  // bins still to place, counting the one starting at `previous`
    const double step = std::pow(top / previous, 1.0 / bins_left);
    edges[static_cast<size_t>(t)] = std::max(previous + 1.0, std::round(previous * step));
  }
  return edges;
}

// Width of token t's count range; the last token is open-ended.
double bin_width(const std::vector<double>& edges, size_t t) {
  return t + 1 < edges.size() ? edges[t + 1] - edges[t] : std::numeric_limits<double>::infinity();
}

// Representative of a bin no training value fell in: the mean of the integers it covers.
double empty_bin_representative(const std::vector<double>& edges, size_t t) {
  const double width = bin_width(edges, t);
  return std::isinf(width) ? edges[t] : edges[t] + (width - 1.0) / 2.0;
}

// A random double in [0, 1) from the caller's generator (see random.h for why not std::).
double unit_draw(std::mt19937_64& rng) {
  return rnd::uniform01(rng);
}

}  // namespace

Tokenizer Tokenizer::fit(const CsrMatrix& counts, const TokenizerConfig& config) {
  validate_config(config);
  if (counts.n_cols > std::numeric_limits<int>::max()) {
    throw UserError(fmt::format("tokenizer: {} genes are more than this tokenizer supports", counts.n_cols));
  }
  Tokenizer tok;
  tok.config_ = config;
  tok.n_genes_ = static_cast<int>(counts.n_cols);
  tok.cap_ = nonzero_quantile(counts, config.cap_quantile);
  tok.lower_edges_ = bin_edges(config, tok.cap_);

  const int k = config.n_tokens;
  // Bins one count wide decode to their edge exactly; only wider bins need fitted means. The
  // first wide bin is where per-gene tables start (all later bins are wide or exact too).
  size_t first_wide = static_cast<size_t>(k);
  for (size_t t = 0; t < static_cast<size_t>(k); ++t) {
    if (bin_width(tok.lower_edges_, t) > 1.0) {
      first_wide = t;
      break;
    }
  }
  const size_t n_wide = static_cast<size_t>(k) - first_wide;
  std::vector<double> global_sum(static_cast<size_t>(k), 0.0);
  std::vector<int64_t> global_n(static_cast<size_t>(k), 0);
  std::vector<double> gene_sum(static_cast<size_t>(tok.n_genes_) * n_wide, 0.0);
  std::vector<int64_t> gene_n(gene_sum.size(), 0);
  for (size_t i = 0; i < counts.values.size(); ++i) {
    const auto t = static_cast<size_t>(tok.encode(counts.values[i]));
    if (t < first_wide) continue;
    const size_t slot = static_cast<size_t>(counts.indices[i]) * n_wide + (t - first_wide);
    global_sum[t] += counts.values[i];
    ++global_n[t];
    gene_sum[slot] += counts.values[i];
    ++gene_n[slot];
  }

  tok.global_rep_.resize(static_cast<size_t>(k));
  for (size_t t = 0; t < static_cast<size_t>(k); ++t) {
    tok.global_rep_[t] = t < first_wide || global_n[t] == 0
                             ? empty_bin_representative(tok.lower_edges_, t)
                             : global_sum[t] / static_cast<double>(global_n[t]);
  }
  tok.gene_rep_offsets_.assign(static_cast<size_t>(tok.n_genes_) + 1, 0);
  for (size_t g = 0; g < static_cast<size_t>(tok.n_genes_); ++g) {
    for (size_t w = 0; w < n_wide; ++w) {
      const size_t slot = g * n_wide + w;
      if (gene_n[slot] == 0) continue;
      const double mean = gene_sum[slot] / static_cast<double>(gene_n[slot]);
      const size_t t = first_wide + w;
      if (mean == tok.global_rep_[t]) continue;
      tok.gene_rep_.emplace_back(static_cast<int64_t>(g) * k + static_cast<int64_t>(t), mean);
    }
    tok.gene_rep_offsets_[g + 1] = static_cast<int64_t>(tok.gene_rep_.size());
  }
  return tok;
}

int Tokenizer::n_tokens() const {
  return config_.n_tokens;
}

int Tokenizer::n_genes() const {
  return n_genes_;
}

const std::vector<double>& Tokenizer::lower_edges() const {
  return lower_edges_;
}

int32_t Tokenizer::encode(float count) const {
  if (!(count >= 1.0f)) return 0;  // zero, fractions below one, negatives and NaN
  if (count < static_cast<float>(config_.exact_limit)) return static_cast<int32_t>(count);
  const auto above = std::upper_bound(lower_edges_.begin(), lower_edges_.end(), static_cast<double>(count));
  return static_cast<int32_t>(above - lower_edges_.begin()) - 1;
}

double Tokenizer::representative(int gene, int token) const {
  if (token < 0 || token >= config_.n_tokens) {
    throw std::out_of_range(fmt::format("Tokenizer::representative: token {} is not a value token (K = {})",
                                        token, config_.n_tokens));
  }
  if (gene < 0 || gene >= n_genes_) {
    throw std::out_of_range(
        fmt::format("Tokenizer::representative: gene {} outside 0..{}", gene, n_genes_ - 1));
  }
  const auto begin = gene_rep_.begin() + gene_rep_offsets_[static_cast<size_t>(gene)];
  const auto end = gene_rep_.begin() + gene_rep_offsets_[static_cast<size_t>(gene) + 1];
  const int64_t key = static_cast<int64_t>(gene) * config_.n_tokens + token;
  const auto it =
      std::lower_bound(begin, end, key, [](const auto& entry, int64_t k) { return entry.first < k; });
  if (it != end && it->first == key) return it->second;
  return global_rep_[static_cast<size_t>(token)];
}

void Tokenizer::encode_row(const CsrMatrix& counts, int64_t row, std::span<uint8_t> out) const {
  if (counts.n_cols != n_genes_) {
    throw UserError(
        fmt::format("the tokenizer was fitted on {} genes but the data have {}; use the model's "
                    "gene list to align the data first",
                    n_genes_, counts.n_cols));
  }
  if (out.size() != static_cast<size_t>(n_genes_)) {
    throw std::invalid_argument(
        fmt::format("Tokenizer::encode_row: output has {} slots for {} genes", out.size(), n_genes_));
  }
  std::fill(out.begin(), out.end(), uint8_t{0});
  const auto cols = counts.row_indices(row);
  const auto vals = counts.row_values(row);
  for (size_t i = 0; i < cols.size(); ++i)
    out[static_cast<size_t>(cols[i])] = static_cast<uint8_t>(encode(vals[i]));
}

void Tokenizer::decode_row(std::span<const uint8_t> tokens, std::mt19937_64& rng,
                           std::span<float> out) const {
  if (tokens.size() != static_cast<size_t>(n_genes_) || out.size() != tokens.size()) {
    throw std::invalid_argument(fmt::format("Tokenizer::decode_row: {} tokens and {} outputs for {} genes",
                                            tokens.size(), out.size(), n_genes_));
  }
  for (size_t g = 0; g < tokens.size(); ++g) {
    const int token = tokens[g];
    if (token == 0) {
      out[g] = 0.0f;
      continue;
    }
    const double rep = representative(static_cast<int>(g), token);
    const double whole = std::floor(rep);
    // Round up with probability equal to the fraction, so the expected count is `rep`.
    out[g] = static_cast<float>(whole + (unit_draw(rng) < rep - whole ? 1.0 : 0.0));
  }
}

nlohmann::json Tokenizer::to_json() const {
  std::vector<int64_t> keys;
  std::vector<double> values;
  keys.reserve(gene_rep_.size());
  values.reserve(gene_rep_.size());
  for (const auto& [key, value] : gene_rep_) {
    keys.push_back(key);
    values.push_back(value);
  }
  return nlohmann::json{
      {"format", "lingshu-tokenizer"},
      {"version", 1},
      {"n_tokens", config_.n_tokens},
      {"exact_limit", config_.exact_limit},
      {"cap_quantile", config_.cap_quantile},
      {"cap", cap_},
      {"n_genes", n_genes_},
      {"lower_edges", lower_edges_},
      {"global_representatives", global_rep_},
      {"gene_representatives", {{"keys", keys}, {"values", values}}},
  };
}

Tokenizer Tokenizer::from_json(const nlohmann::json& j) {
  const auto damaged = [](const std::string& why) {
    return UserError(
        fmt::format("tokenizer JSON is damaged ({}); refit or restore the model directory", why));
  };
  Tokenizer tok;
  std::vector<int64_t> keys;
  std::vector<double> values;
  try {
    if (j.at("format").get<std::string>() != "lingshu-tokenizer") throw damaged("not a lingshu tokenizer");
    tok.config_.n_tokens = j.at("n_tokens").get<int>();
    tok.config_.exact_limit = j.at("exact_limit").get<int>();
    tok.config_.cap_quantile = j.at("cap_quantile").get<double>();
    tok.cap_ = j.at("cap").get<double>();
    tok.n_genes_ = j.at("n_genes").get<int>();
    tok.lower_edges_ = j.at("lower_edges").get<std::vector<double>>();
    tok.global_rep_ = j.at("global_representatives").get<std::vector<double>>();
    keys = j.at("gene_representatives").at("keys").get<std::vector<int64_t>>();
    values = j.at("gene_representatives").at("values").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    throw damaged(e.what());
  }
  validate_config(tok.config_);
  const auto k = static_cast<size_t>(tok.config_.n_tokens);
  if (tok.n_genes_ < 0) throw damaged("negative gene count");
  if (tok.lower_edges_.size() != k || tok.global_rep_.size() != k)
    throw damaged("tables do not have K entries");
  if (!std::is_sorted(tok.lower_edges_.begin(), tok.lower_edges_.end(), std::less_equal<>())) {
    throw damaged("bin edges are not increasing");
  }
  if (keys.size() != values.size()) throw damaged("per-gene keys and values differ in length");
  if (!std::is_sorted(keys.begin(), keys.end(), std::less_equal<>())) throw damaged("per-gene keys unsorted");
  const int64_t key_limit = static_cast<int64_t>(tok.n_genes_) * tok.config_.n_tokens;
  tok.gene_rep_offsets_.assign(static_cast<size_t>(tok.n_genes_) + 1, 0);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] < 0 || keys[i] >= key_limit) throw damaged("per-gene key out of range");
    tok.gene_rep_.emplace_back(keys[i], values[i]);
    ++tok.gene_rep_offsets_[static_cast<size_t>(keys[i] / tok.config_.n_tokens) + 1];
  }
  std::partial_sum(tok.gene_rep_offsets_.begin(), tok.gene_rep_offsets_.end(), tok.gene_rep_offsets_.begin());
  return tok;
}

// ---------------------------------------------------------------------------------------------
// Gene patching

GenePatching GenePatching::make(int64_t n_genes, int patch_size, uint64_t seed) {
  if (patch_size < 1) throw UserError(fmt::format("patch size is {}; it must be at least 1", patch_size));
  if (n_genes < 0 || n_genes > std::numeric_limits<int32_t>::max()) {
    throw UserError(fmt::format("cannot order {} genes", n_genes));
  }
  GenePatching p;
  p.n_genes = n_genes;
  p.patch_size = patch_size;
  p.seed = seed;
  p.order.resize(static_cast<size_t>(n_genes));
  std::iota(p.order.begin(), p.order.end(), 0);
  // Fisher-Yates with our own bounded draw: std::shuffle's output is implementation-defined.
  std::mt19937_64 rng(seed);
  for (int64_t i = n_genes - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rnd::uniform_below(rng, static_cast<uint64_t>(i) + 1));
    std::swap(p.order[static_cast<size_t>(i)], p.order[static_cast<size_t>(j)]);
  }
  return p;
}

int32_t GenePatching::gene_at(int64_t pos) const {
  return pos >= 0 && pos < n_genes ? order[static_cast<size_t>(pos)] : -1;
}

std::vector<int32_t> GenePatching::position_of_gene() const {
  std::vector<int32_t> position(order.size());
  for (size_t pos = 0; pos < order.size(); ++pos)
    position[static_cast<size_t>(order[pos])] = static_cast<int32_t>(pos);
  return position;
}

void GenePatching::to_positions(std::span<const uint8_t> by_gene, uint8_t pad,
                                std::span<uint8_t> by_position) const {
  if (by_gene.size() != static_cast<size_t>(n_genes) ||
      by_position.size() != static_cast<size_t>(n_positions())) {
    throw std::invalid_argument(
        fmt::format("GenePatching::to_positions: {} genes -> {} positions, expected {} -> {}", by_gene.size(),
                    by_position.size(), n_genes, n_positions()));
  }
  for (size_t pos = 0; pos < order.size(); ++pos) by_position[pos] = by_gene[static_cast<size_t>(order[pos])];
  std::fill(by_position.begin() + static_cast<std::ptrdiff_t>(order.size()), by_position.end(), pad);
}

void GenePatching::to_genes(std::span<const uint8_t> by_position, std::span<uint8_t> by_gene) const {
  if (by_gene.size() != static_cast<size_t>(n_genes) ||
      by_position.size() != static_cast<size_t>(n_positions())) {
    throw std::invalid_argument(
        fmt::format("GenePatching::to_genes: {} positions -> {} genes, expected {} -> {}", by_position.size(),
                    by_gene.size(), n_positions(), n_genes));
  }
  for (size_t pos = 0; pos < order.size(); ++pos) by_gene[static_cast<size_t>(order[pos])] = by_position[pos];
}

nlohmann::json GenePatching::to_json() const {
  return nlohmann::json{{"format", "lingshu-gene-patching"}, {"version", 1}, {"n_genes", n_genes},
                        {"patch_size", patch_size},          {"seed", seed}, {"order", order}};
}

GenePatching GenePatching::from_json(const nlohmann::json& j) {
  const auto damaged = [](const std::string& why) {
    return UserError(fmt::format("gene patching JSON is damaged ({}); restore the model directory", why));
  };
  GenePatching p;
  try {
    if (j.at("format").get<std::string>() != "lingshu-gene-patching")
      throw damaged("not a lingshu gene order");
    p.n_genes = j.at("n_genes").get<int64_t>();
    p.patch_size = j.at("patch_size").get<int>();
    p.seed = j.at("seed").get<uint64_t>();
    p.order = j.at("order").get<std::vector<int32_t>>();
  } catch (const nlohmann::json::exception& e) {
    throw damaged(e.what());
  }
  if (p.patch_size < 1) throw damaged("patch size below 1");
  if (static_cast<int64_t>(p.order.size()) != p.n_genes)
    throw damaged("order length differs from gene count");
  std::vector<uint8_t> seen(p.order.size(), 0);
  for (const int32_t g : p.order) {
    if (g < 0 || g >= p.n_genes || seen[static_cast<size_t>(g)]) throw damaged("order is not a permutation");
    seen[static_cast<size_t>(g)] = 1;
  }
  return p;
}

}  // namespace lingshu
