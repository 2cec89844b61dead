#include "eval/expression.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/random.h"
#include "data/counts_check.h"
#include "data/preprocess.h"
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

namespace {

// The cells compared: as many per side as the smaller side has (at most max_cells), drawn with the
// seed; a note when that is not every cell of both files.
struct ComparedCells {
  std::vector<int64_t> real_rows, generated_rows;
  std::optional<std::string> note;
};

ComparedCells compared_cells(int64_t n_real, int64_t n_generated, const ExpressionOptions& options) {
  int64_t n = std::min(n_real, n_generated);
  if (options.max_cells > 0) n = std::min(n, options.max_cells);
  ComparedCells c{subsample_indices(n_real, n, rnd::derive_seed(options.seed, 1)),
                  subsample_indices(n_generated, n, rnd::derive_seed(options.seed, 2)), std::nullopt};
  if (n < n_real || n < n_generated) {
    c.note = fmt::format("{} cells of each side are compared (of {} real and {} generated; seed {}{})", n,
                         n_real, n_generated, options.seed,
                         options.max_cells > 0 && n == options.max_cells
                             ? fmt::format("; --max-cells {}, 0 for all", options.max_cells)
                             : "");
  }
  return c;
}

// The pair from `real` and `generated` rows already chosen (every row of each is compared);
// `in_file` are the files' cell counts, for the record.
ExpressionPair match_chosen(const AnnData& real, const AnnData& generated, const ExpressionOptions& options,
                            const std::string& real_name, const std::string& generated_name,
                            std::pair<int64_t, int64_t> in_file, const std::optional<std::string>& note) {
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
  pair.real_cells_in_file = in_file.first;
  pair.generated_cells_in_file = in_file.second;
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
  if (note) pair.notes.push_back(*note);
  pair.real = log_normalize(real.X.select_cols(shared.ours));
  pair.generated = log_normalize(generated.X.select_cols(shared.theirs));
  pair.real_obs = real.obs;
  pair.generated_obs = generated.obs;
  return pair;
}

AnnData rows_of(const AnnData& data, const std::vector<int64_t>& rows) {
  AnnData out;
  out.X = data.X.select_rows(rows);
  out.obs = data.obs.select_rows(rows);
  out.var = data.var;
  return out;
}

// The listed rows (increasing) of an .h5ad, read a chunk at a time: memory holds the chosen rows
// and one chunk, never the whole file.
AnnData read_chosen_rows(H5adRowReader& reader, const std::vector<int64_t>& rows) {
  AnnData out;
  out.X.n_cols = reader.n_cols();
  const int64_t chunk = std::max<int64_t>(reader.suggested_chunk_rows(), 1);
  size_t next = 0;
  for (int64_t begin = 0; begin < reader.n_rows() && next < rows.size(); begin += chunk) {
    const int64_t end = std::min(reader.n_rows(), begin + chunk);
    if (rows[next] >= end) continue;
    const CsrMatrix part = reader.read_rows(begin, end);
    for (; next < rows.size() && rows[next] < end; ++next) {
      out.X.append_row(part.row_indices(rows[next] - begin), part.row_values(rows[next] - begin));
    }
  }
  out.obs = reader.obs().select_rows(rows);
  out.var = reader.var();
  return out;
}

}  // namespace

ExpressionPair match_expression(const AnnData& real, const AnnData& generated,
                                const ExpressionOptions& options, const std::string& real_name,
                                const std::string& generated_name) {
  const auto cells = compared_cells(real.n_obs(), generated.n_obs(), options);
  return match_chosen(rows_of(real, cells.real_rows), rows_of(generated, cells.generated_rows), options,
                      real_name, generated_name, {real.n_obs(), generated.n_obs()}, cells.note);
}

ExpressionPair load_expression_pair(const std::filesystem::path& real, const std::filesystem::path& generated,
                                    const ExpressionOptions& options) {
  H5adReadOptions read_options;
  read_options.layer = options.layer;
  H5adRowReader real_reader(real, read_options);
  H5adRowReader generated_reader(generated, read_options);
  const auto cells = compared_cells(real_reader.n_rows(), generated_reader.n_rows(), options);
  return match_chosen(read_chosen_rows(real_reader, cells.real_rows),
                      read_chosen_rows(generated_reader, cells.generated_rows), options,
                      real.filename().string(), generated.filename().string(),
                      {real_reader.n_rows(), generated_reader.n_rows()}, cells.note);
}

void attach_training_cells(ExpressionPair& pair, const std::filesystem::path& path,
                           const ExpressionOptions& options) {
  H5adReadOptions read_options;
  read_options.layer = options.layer;
  H5adRowReader reader(path, read_options);
  const int64_t n = options.max_cells > 0 ? std::min(reader.n_rows(), options.max_cells) : reader.n_rows();
  const AnnData train =
      read_chosen_rows(reader, subsample_indices(reader.n_rows(), n, rnd::derive_seed(options.seed, 3)));
  const std::string name = path.filename().string();
  if (train.n_obs() < 2) throw UserError(fmt::format("--train {}: need at least 2 cells", name));
  check_values(train, name, options);
  const SharedGenes shared = shared_genes(pair.genes, train.gene_names());
  const auto n_pair = static_cast<int64_t>(pair.genes.size());
  const auto n_shared = static_cast<int64_t>(shared.names.size());
  if (2 * n_shared < n_pair) {
    throw UserError(fmt::format(
        "--train {}: it holds {} of the {} genes scored (e.g. {}); the copy check needs the training file of "
        "the model that made the cells, with the same var_names",
        name, n_shared, n_pair, first_names(pair.genes)));
  }
  if (n_shared < n_pair) {
    pair.notes.push_back(fmt::format("--train {} holds {} of the {} scored genes; the copy check uses those",
                                     name, n_shared, n_pair));
  }
  pair.train = log_normalize(train.X.select_cols(shared.theirs));
  pair.train_columns = shared.ours;
}

}  // namespace lingshu
