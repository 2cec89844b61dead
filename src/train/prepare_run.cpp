#include "train/prepare_run.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <string>

#include "core/error.h"
#include "core/seed.h"
#include "data/conditions.h"
#include "data/observed_states.h"
#include "data/preprocess.h"
#include "train/conditioning.h"
#include "train/perturbation_transfer.h"
#include "train/step_plan.h"

namespace lingshu {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMinCells = 10;

// The training settings stored in config.json, listed once: `visit(name, field)` for each, on a
// const TrainOptions (writing) or a mutable one (reading).
template <typename Options, typename Visit>
void visit_stored_options(Options& o, Visit&& visit) {
  visit("batch_size", o.batch_size);
  visit("steps", o.steps);
  visit("minutes", o.minutes);
  visit("lr", o.lr);
  visit("min_lr_ratio", o.min_lr_ratio);
  visit("warmup", o.warmup);
  visit("weight_decay", o.weight_decay);
  visit("grad_clip", o.grad_clip);
  visit("val_fraction", o.val_fraction);
  visit("max_val_cells", o.max_val_cells);
  visit("eval_every", o.eval_every);
  visit("log_every", o.log_every);
  visit("checkpoint_every", o.checkpoint_every);
  visit("seed", o.seed);
  visit("precision", o.precision);
  visit("p_uncond", o.p_uncond);
  visit("condition_fields", o.condition_fields);
  visit("perturbation", o.perturbation);
  visit("control", o.control);
  visit("holdouts", o.holdouts);
  visit("library_bins", o.library_bins);
  visit("gene_knowledge", o.gene_knowledge);
}

nlohmann::json options_to_json(const TrainOptions& o, int64_t n_cells) {
  nlohmann::json j = {{"n_cells", n_cells}};
  visit_stored_options(o, [&](const char* name, const auto& field) { j[name] = field; });
  return j;
}

// The stored settings of a model directory, with this invocation's run-time choices kept.
TrainOptions options_from_json(const nlohmann::json& j, const TrainOptions& now) {
  TrainOptions o = now;
  visit_stored_options(o, [&](const char* name, auto& field) { j.at(name).get_to(field); });
  return o;
}

// A resumed run's directory may hold the temporaries of writes a killed run never finished.
void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.starts_with(".") && name.find(".tmp") != std::string::npos) fs::remove(entry.path(), ec);
  }
}

// The stored settings of the model directory being resumed, checked against the data.
TrainOptions resumed_options(const ModelMetadata& meta, const TrainOptions& requested,
                             const TrainingCells& cells) {
  TrainOptions options;
  try {
    options = options_from_json(meta.training, requested);
  } catch (const nlohmann::json::exception&) {
    throw UserError(fmt::format("{}/config.json lacks the training settings; it cannot be resumed",
                                requested.out.string()));
  }
  const auto stored_cells = meta.training.value("n_cells", int64_t{-1});
  if (meta.gene_names != cells.var.index || stored_cells != cells.obs.size()) {
    throw UserError(
        fmt::format("--resume: the data ({} cells x {} genes) is not the file this model was trained on "
                    "({} cells x {} genes); pass the same file and --layer/--genes",
                    cells.obs.size(), cells.var.size(), stored_cells, meta.gene_names.size()));
  }
  return options;
}

void check_request(const TrainOptions& options, int64_t n_cells) {
  if (options.batch_size < 1) throw UserError("--batch-size must be at least 1");
  if (options.world.size > options.batch_size) {
    throw UserError(
        fmt::format("{} processes cannot share a batch of {} cells: each needs at least one; "
                    "use fewer processes (--nproc) or a larger --batch-size",
                    options.world.size, options.batch_size));
  }
  if (n_cells < kMinCells) {
    throw UserError(
        fmt::format("only {} cells in the data; training needs at least {} (more is better: "
                    "thousands)",
                    n_cells, kMinCells));
  }
  if (!options.gene_knowledge.empty() && options.perturbation.empty()) {
    throw UserError(
        "--gene-knowledge embeds the target genes of perturbations; it needs --perturbation COLUMN");
  }
}

// Each row's total count, read a chunk at a time (the library-size field needs every cell's).
std::vector<double> row_totals(const CellRows& counts, const std::vector<int64_t>& rows) {
  constexpr size_t kChunk = 4096;
  std::vector<double> totals;
  totals.reserve(rows.size());
  for (size_t begin = 0; begin < rows.size(); begin += kChunk) {
    const size_t end = std::min(rows.size(), begin + kChunk);
    const auto chunk = counts.read(std::span(rows).subspan(begin, end - begin)).row_sums();
    totals.insert(totals.end(), chunk.begin(), chunk.end());
  }
  return totals;
}

// Up to kStatisticsCells of the training cells (indices into them), ascending: a seeded sample
// when there are more.
std::vector<int64_t> statistics_sample(int64_t n_train, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(n_train));
  std::iota(all.begin(), all.end(), 0);
  if (n_train <= kStatisticsCells) return all;
  std::mt19937_64 rng(mix_seed(seed, 0x57A7ULL << 32));
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(static_cast<size_t>(kStatisticsCells));
  std::sort(all.begin(), all.end());
  return all;
}

// How many perturbation labels the gene knowledge reaches, so a file of the wrong species or
// naming scheme shows at once.
void print_knowledge_coverage(const ModelMetadata& meta) {
  const ConditionField& field = meta.conditions[static_cast<size_t>(meta.config.perturbation_field)];
  const auto first_row = static_cast<int32_t>(meta.config.n_positions());
  const auto targets = target_positions_by_token(field, meta.gene_names, meta.patching, meta.knowledge_genes);
  int64_t reached = 0;
  for (const auto& t : targets)
    reached += std::any_of(t.begin(), t.end(), [&](int32_t position) { return position >= first_row; });
  const auto perturbations = std::ssize(field.labels) - 1;  // all but the control
  fmt::print(stderr,
             "train: gene knowledge of {} genes x {} numbers; it names a target of {} of {} perturbations\n",
             meta.config.n_knowledge_genes, meta.config.knowledge_dim, reached, perturbations);
}

// A new model directory's metadata: the shape, tokenizer and gene order fitted to the training cells.
ModelMetadata new_metadata(const TrainOptions& options, const TrainingCells& cells, const CsrMatrix& sample,
                           const std::vector<ConditionField>& fields, const DataFrame& obs,
                           const GeneKnowledge& knowledge) {
  const auto n_genes = cells.var.size();
  ModelMetadata meta;
  meta.config = options.model;
  meta.config.n_genes = n_genes;
  meta.config.n_tokens = options.tokenizer.n_tokens;
  meta.config.condition_vocab_sizes.clear();
  for (const auto& f : fields) meta.config.condition_vocab_sizes.push_back(f.vocab_size());
  meta.config.perturbation_field = perturbation_field_index(fields);
  meta.config.knowledge_dim = static_cast<int>(knowledge.dim);
  meta.config.n_knowledge_genes = std::ssize(knowledge.genes);
  meta.config.validate();
  meta.tokenizer = Tokenizer::fit(sample, options.tokenizer);
  meta.patching = GenePatching::make(n_genes, meta.config.patch_size, options.seed);
  meta.gene_names = cells.var.index;
  meta.knowledge_genes = knowledge.genes;
  meta.conditions = fields;
  meta.holdouts = options.holdouts;
  meta.combinations = count_combinations(obs, fields);
  meta.training = options_to_json(options, cells.obs.size());
  return meta;
}

// Each row's perturbation state label (data/conditions.h), from its condition codes.
std::vector<std::string> state_labels_of_rows(const std::vector<ConditionField>& fields,
                                              const std::vector<std::vector<int64_t>>& codes) {
  const size_t n_rows = codes.empty() ? 0 : codes.front().size();
  std::vector<std::string> out(n_rows), labels(fields.size());
  for (size_t r = 0; r < n_rows; ++r) {
    for (size_t f = 0; f < fields.size(); ++f) {
      const int64_t code = codes[f][r];
      labels[f] = code > 0 ? fields[f].labels[static_cast<size_t>(code - 1)] : std::string();
    }
    out[r] = state_label(fields, labels);
  }
  return out;
}

}  // namespace

Split split_cells(int64_t n_cells, double val_fraction, int64_t max_val_cells, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n_cells));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(mix_seed(seed, 0x5B117ULL << 32));
  std::shuffle(order.begin(), order.end(), rng);
  int64_t n_val =
      val_fraction > 0 ? std::max<int64_t>(1, std::llround(val_fraction * static_cast<double>(n_cells))) : 0;
  n_val = std::min({n_val, max_val_cells, n_cells / 2});
  Split s;
  s.validation.assign(order.begin(), order.begin() + n_val);
  s.train.assign(order.begin() + n_val, order.end());
  std::sort(s.validation.begin(), s.validation.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

std::vector<std::vector<int64_t>> codes_of_rows(const std::vector<std::vector<int64_t>>& codes,
                                                const std::vector<int64_t>& rows) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& field : codes) out.push_back(pick(field, rows));
  return out;
}

PreparedRun prepare_run(const TrainingCells& cells, const TrainOptions& requested) {
  PreparedRun run;
  run.resuming = requested.resume;
  run.options = requested;
  const fs::path& dir = requested.out;
  const bool root = requested.world.is_root();
  if (run.resuming) {
    run.meta = read_model_metadata(dir);
    run.options = resumed_options(run.meta, requested, cells);
    if (root) remove_stale_temporaries(dir);
  } else if (root && is_model_dir(dir)) {
    throw UserError(fmt::format(
        "{} already holds a model; pass --resume to continue training it, or choose another --out",
        dir.string()));
  }
  const TrainOptions& options = run.options;
  check_request(options, cells.obs.size());
  if (!run.resuming && !options.gene_knowledge.empty())
    run.knowledge = read_gene_knowledge(options.gene_knowledge);
  run.counts = std::make_unique<CountCheckedRows>(*cells.counts, cells.obs, cells.var, cells.source);

  std::vector<int64_t> kept(static_cast<size_t>(cells.obs.size()));
  std::iota(kept.begin(), kept.end(), 0);
  if (!options.holdouts.empty()) kept = rows_kept_after_holdouts(cells.obs, options.holdouts);
  const auto n_kept = static_cast<int64_t>(kept.size());
  if (n_kept < kMinCells) {
    throw UserError(
        fmt::format("only {} cells are left after --holdout; training needs at least {}", n_kept, kMinCells));
  }
  std::optional<DataFrame> reduced;
  const DataFrame& kept_obs =
      n_kept == cells.obs.size() ? cells.obs : reduced.emplace(cells.obs.select_rows(kept));
  const ConditioningRequest request{options.condition_fields, options.perturbation, options.control,
                                    options.holdouts, options.library_bins};
  const bool library_field =
      run.resuming ? library_field_index(run.meta.conditions) >= 0 : options.library_bins > 0;
  const auto totals = library_field ? row_totals(*run.counts, kept) : std::vector<double>{};
  const auto fields = run.resuming ? run.meta.conditions : build_condition_fields(kept_obs, request, totals);
  std::optional<DataFrame> with_derived;  // a copy only when fields derive columns
  const bool derives = library_field || state_field_index(fields) >= 0;
  if (derives) set_derived_columns(with_derived.emplace(kept_obs), fields, totals);
  const DataFrame& obs = derives ? *with_derived : kept_obs;
  const auto codes = condition_codes(obs, fields);

  const Split split = split_cells(n_kept, options.val_fraction, options.max_val_cells, options.seed);
  run.train_rows = pick(kept, split.train);
  if (run.options.steps == 0) {
    run.options.steps = default_steps(options, std::ssize(run.train_rows));
    run.steps_are_passes = true;
  }
  run.train_codes = codes_of_rows(codes, split.train);
  run.val_counts = run.counts->read(pick(kept, split.validation));
  run.val_codes = codes_of_rows(codes, split.validation);
  const auto sample = statistics_sample(static_cast<int64_t>(split.train.size()), options.seed);
  run.sample_counts = run.counts->read(pick(run.train_rows, sample));
  run.sample_codes = codes_of_rows(run.train_codes, sample);
  if (!run.resuming) {
    run.meta = new_metadata(options, cells, run.sample_counts, fields, obs, run.knowledge);
    if (const int p = run.meta.config.perturbation_field; p >= 0) {
      ConditionField& field = run.meta.conditions[static_cast<size_t>(p)];
      const CsrMatrix expression = log_normalize(run.sample_counts);
      field.transfer =
          perturbation_transfer(expression, run.sample_codes, run.meta.conditions, run.meta.gene_names);
      const auto target =
          target_gene_effect(expression, run.sample_codes, run.meta.conditions, run.meta.gene_names);
      field.target_log_ratio = target.log_ratio;
      field.target_effects = target.measured;
      run.meta.observed_states =
          observed_states(*run.counts, kept, state_labels_of_rows(run.meta.conditions, codes));
    }
    if (root) write_model_metadata(dir, run.meta);
    if (root && !options.quiet && run.knowledge.dim > 0) print_knowledge_coverage(run.meta);
  }
  return run;
}

}  // namespace lingshu
