#include "eval/expression.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "data/counts_check.h"
#include "data/preprocess.h"
#include "data/random.h"
#include "io/h5ad.h"

namespace lingshu {

namespace {

std::string first_names(const std::vector<std::string>& names, size_t shown = 3) {
  std::string out;
  for (size_t i = 0; i < std::min(shown, names.size()); ++i)
    out += fmt::format("{}'{}'", i ? ", " : "", names[i]);
  return out;
}

int64_t duplicate_count(const std::vector<std::string>& names) {
  std::unordered_set<std::string_view> seen;
  int64_t duplicates = 0;
  for (const auto& n : names) duplicates += seen.insert(n).second ? 0 : 1;
  return duplicates;
}

// Raw counts are required unless the caller accepts non-integer values; negative, NaN and infinite
// values are never accepted since no normalisation makes sense of them.
void check_values(const AnnData& data, const std::string& name, const ExpressionOptions& options) {
  const auto bad = find_non_count(data.X);
  if (!bad) return;
  if (bad->problem == NonCountValue::Problem::NonInteger && options.allow_non_integer) {
    for (const float v : data.X.values) {
      if (!(v >= 0.0f) || std::isinf(v)) {
        throw UserError(fmt::format("{} holds negative, NaN or infinite values: expected counts", name));
      }
    }
    return;
  }
  std::string message = describe_non_count(*bad, data, name);
  if (bad->problem == NonCountValue::Problem::NonInteger) {
    message += " (or --allow-non-integer if these are expected counts, not log values)";
  }
  throw UserError(message);
}

}  // namespace

std::vector<int64_t> subsample_indices(int64_t n, int64_t k, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::iota(all.begin(), all.end(), 0);
  if (k >= n) return all;
  // Partial Fisher-Yates: the first k slots become a uniform sample without replacement.
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < k; ++i) {
    const auto j = i + static_cast<int64_t>(rnd::uniform_below(rng, static_cast<uint64_t>(n - i)));
    std::swap(all[static_cast<size_t>(i)], all[static_cast<size_t>(j)]);
  }
  all.resize(static_cast<size_t>(k));
  std::sort(all.begin(), all.end());
  return all;
}

SharedGenes shared_genes(const std::vector<std::string>& ours, const std::vector<std::string>& theirs) {
  std::unordered_map<std::string_view, int64_t> position;
  position.reserve(theirs.size());
  for (size_t i = 0; i < theirs.size(); ++i) position.emplace(theirs[i], static_cast<int64_t>(i));
  SharedGenes shared;
  std::unordered_set<std::string_view> taken;
  for (size_t i = 0; i < ours.size(); ++i) {
    const auto it = position.find(ours[i]);
    if (it == position.end() || !taken.insert(ours[i]).second) continue;
    shared.ours.push_back(static_cast<int64_t>(i));
    shared.theirs.push_back(it->second);
    shared.names.push_back(ours[i]);
  }
  return shared;
}

ExpressionPair match_expression(const AnnData& real, const AnnData& generated,
                                const ExpressionOptions& options, const std::string& real_name,
                                const std::string& generated_name) {
  if (real.n_obs() == 0) throw UserError(fmt::format("{} holds no cells", real_name));
  if (generated.n_obs() == 0) throw UserError(fmt::format("{} holds no cells", generated_name));
  check_values(real, real_name, options);
  check_values(generated, generated_name, options);

  const SharedGenes shared = shared_genes(real.gene_names(), generated.gene_names());
  if (shared.names.empty()) {
    throw UserError(fmt::format(
        "{} and {} share no gene names ({} genes, e.g. {}; {} genes, e.g. {}): both files must name genes "
        "the same way in var_names (symbols vs Ensembl IDs, same species)",
        real_name, generated_name, real.n_vars(), first_names(real.gene_names()), generated.n_vars(),
        first_names(generated.gene_names())));
  }

  ExpressionPair pair;
  pair.real_name = real_name;
  pair.generated_name = generated_name;
  pair.genes = shared.names;
  pair.real_cells_in_file = real.n_obs();
  pair.generated_cells_in_file = generated.n_obs();
  pair.real_genes_in_file = real.n_vars();
  pair.generated_genes_in_file = generated.n_vars();
  const auto n_shared = static_cast<int64_t>(shared.names.size());
  if (n_shared < real.n_vars() || n_shared < generated.n_vars()) {
    pair.notes.push_back(
        fmt::format("{} of {} real and {} generated genes are shared; metrics use those only", n_shared,
                    real.n_vars(), generated.n_vars()));
  }
  for (const auto& [data, name] : {std::pair{&real, &real_name}, std::pair{&generated, &generated_name}}) {
    if (const int64_t d = duplicate_count(data->gene_names()); d > 0) {
      pair.notes.push_back(fmt::format("{} repeats {} gene names; the first of each is used", *name, d));
    }
  }

  int64_t n = std::min(real.n_obs(), generated.n_obs());
  if (options.max_cells > 0) n = std::min(n, options.max_cells);
  const auto real_rows = subsample_indices(real.n_obs(), n, rnd::derive_seed(options.seed, 1));
  const auto generated_rows = subsample_indices(generated.n_obs(), n, rnd::derive_seed(options.seed, 2));
  if (real.n_obs() != generated.n_obs() || options.max_cells > 0) {
    pair.notes.push_back(
        fmt::format("{} cells of each side are compared (of {} real and {} generated; seed {})", n,
                    real.n_obs(), generated.n_obs(), options.seed));
  }

  pair.real = log_normalize(real.X.select_rows(real_rows).select_cols(shared.ours));
  pair.generated = log_normalize(generated.X.select_rows(generated_rows).select_cols(shared.theirs));
  pair.real_obs = real.obs.select_rows(real_rows);
  pair.generated_obs = generated.obs.select_rows(generated_rows);
  return pair;
}

ExpressionPair load_expression_pair(const std::filesystem::path& real, const std::filesystem::path& generated,
                                    const ExpressionOptions& options) {
  H5adReadOptions read_options;
  read_options.layer = options.layer;
  const AnnData real_data = read_h5ad(real, read_options);
  const AnnData generated_data = read_h5ad(generated, read_options);
  return match_expression(real_data, generated_data, options, real.filename().string(),
                          generated.filename().string());
}

}  // namespace lingshu
