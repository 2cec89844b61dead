#include "train/trainer.h"

// clang-format off
#include <torch/types.h>  // first: clip_grad.h uses torch::Tensor without including it
// clang-format on

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <random>

#include "core/error.h"
#include "core/progress.h"
#include "core/seed.h"
#include "data/counts_check.h"
#include "data/gene_knowledge.h"
#include "model/model.h"
#include "model/model_dir.h"
#include "model/precision.h"
#include "model/weights.h"
#include "train/batch_loader.h"
#include "train/cell_factor_init.h"
#include "train/cell_state_bank.h"
#include "train/checkpoint.h"
#include "train/conditioning.h"
#include "train/distributed.h"
#include "train/lr_schedule.h"
#include "train/marginal_init.h"
#include "train/objective.h"

namespace lingshu {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kMinCells = 10;
// A run that names no --steps makes at most this many passes over its training cells: on a few
// thousand cells the validation loss is lowest after 5-8 passes and rises after (paul15, 1,264
// cells: best at pass 5 of 20 when the schedule was planned for the whole budget), and only a
// schedule that has decayed by then keeps what was learnt (BENCHMARKS, session 13).
constexpr int64_t kMaxEpochs = 8;
constexpr int64_t kDefaultSteps = 2000;   // without --minutes either
constexpr int64_t kSpeedProbeSteps = 10;  // steps timed before a --minutes run plans its schedule
constexpr int64_t kReplanEvery = 25;      // a --minutes run re-plans its step count this often

// The masks and times of step `step` depend only on (seed, step): a resumed run replays them.
at::Generator step_generator(uint64_t seed, int64_t step) {
  return at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, static_cast<uint64_t>(step)));
}

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

// Parameter groups as in GPT-2/nanoGPT: weight decay on matrices, none on embeddings, biases and
// LayerNorm gains. The output biases are not trained (requires_grad false): they stay at the
// marginals they start from.
torch::optim::AdamW make_optimizer(MaskedDiffusionModel& model, const TrainOptions& o) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : model->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const auto& name = item.key();
    const bool is_table = name.find("emb") != std::string::npos || name == "patch_pos";
    (item.value().dim() >= 2 && !is_table ? decay : no_decay).push_back(item.value());
  }
  const auto options = torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).eps(1e-8);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (auto* group : {&decay, &no_decay}) {
    const double decay_rate = group == &decay ? o.weight_decay : 0.0;
    groups.emplace_back(*group, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(options).weight_decay(decay_rate)));
  }
  return torch::optim::AdamW(std::move(groups), options);
}

void set_learning_rate(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

// Held-out cells with fixed diffusion times (evenly spaced in (eps, 1)) and fixed masks, so every
// evaluation measures the same estimator of the validation loss.
struct ValidationSet {
  torch::Tensor tokens, t, mask, conditions;
  // The context gain's masks: every gene masked with a fixed probability (kContextRates), on the
  // first kContextCells cells.
  std::vector<torch::Tensor> rate_masks;
};

// How much seeing the other genes helps: masked cross-entropy of the output biases alone (the
// marginals the model starts from) minus that of the model, at fixed mask rates.
constexpr double kContextRates[] = {0.1, 0.5, 0.9};
constexpr int64_t kContextCells = 64;

// The perturbation field's target genes, looked up per cell from its label token.
struct TargetTable {
  int field = -1;
  torch::Tensor positions;  // [vocab, T] int64, -1 = none

  torch::Tensor of(const torch::Tensor& conditions) const {
    if (field < 0) return {};
    return positions.index_select(0, conditions.select(1, field).cpu()).to(conditions.device());
  }
};

struct ConditionInputs {
  torch::Tensor conditions, targets;
};

// Classifier-free-guidance dropout: each field's token becomes NULL with probability p (its targets
// with it), except the library field, which generation always fills in. A perturbation token whose
// label names genes also loses only its label with probability p, keeping its targets: the
// targets-only tokens that unseen labels get at generation.
ConditionInputs drop_for_guidance(const torch::Tensor& labels, double p, const TargetTable& table,
                                  int library_field, at::Generator& generator) {
  ConditionInputs out{drop_conditions(labels, p, generator), table.of(labels)};
  if (p <= 0) return out;
  if (library_field >= 0) out.conditions.select(1, library_field).copy_(labels.select(1, library_field));
  if (table.field < 0) return out;
  out.conditions = out.conditions.clone();
  auto field = out.conditions.select(1, table.field);
  out.targets.masked_fill_(field.eq(0).unsqueeze(1), -1);
  const auto has_targets = out.targets.ge(0).any(1);
  const auto label_only = (at::rand({labels.size(0)}, generator, at::kFloat) < p).logical_and(has_targets);
  field.masked_fill_(label_only, 0);
  return out;
}

// Condition codes (one vector per field) as the model's [rows, fields] input.
torch::Tensor codes_tensor(const std::vector<std::vector<int64_t>>& codes, int64_t rows) {
  auto out = torch::zeros({rows, static_cast<int64_t>(codes.size())}, torch::kLong);
  for (size_t f = 0; f < codes.size(); ++f) {
    out.select(1, static_cast<int64_t>(f)).copy_(torch::tensor(codes[f], torch::kLong));
  }
  return out;
}

ValidationSet make_validation_set(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                  const GenePatching& patching, const torch::Tensor& is_gene, uint64_t seed,
                                  const std::vector<std::vector<int64_t>>& codes) {
  ValidationSet v;
  std::vector<int64_t> rows(static_cast<size_t>(counts.n_rows));
  std::iota(rows.begin(), rows.end(), 0);
  v.tokens = encode_cells(counts, rows, tokenizer, patching);
  const auto n = static_cast<double>(counts.n_rows);
  v.t =
      (kMinDiffusionTime + (1 - kMinDiffusionTime) * (torch::arange(counts.n_rows, torch::kDouble) + 0.5) / n)
          .to(torch::kFloat);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 0xDA7AULL << 32));
  v.mask = forward_mask(v.t, is_gene, generator);
  const int64_t n_context = std::min(counts.n_rows, kContextCells);
  for (const double rate : kContextRates) {
    v.rate_masks.push_back(forward_mask(torch::full({n_context}, rate, torch::kFloat), is_gene, generator));
  }
  v.conditions = codes_tensor(codes, counts.n_rows);
  return v;
}

struct ValidationLoss {
  double loss = std::numeric_limits<double>::quiet_NaN();
  double masked_ce = std::numeric_limits<double>::quiet_NaN();
  // Per kContextRates entry: masked cross-entropy of the model and of its output biases alone.
  std::vector<double> model_ce, prior_ce;

  nlohmann::json to_json(int64_t step) const {
    nlohmann::json line = {{"step", step}, {"val_loss", loss}, {"val_masked_ce", masked_ce}};
    for (size_t i = 0; i < model_ce.size(); ++i) {
      const auto rate = fmt::format("{:g}", kContextRates[i]);
      line["val_context"][rate] = {
          {"model_ce", model_ce[i]}, {"prior_ce", prior_ce[i]}, {"gain", prior_ce[i] - model_ce[i]}};
    }
    return line;
  }
  // The gain at mask rate 0.5 (NaN without validation cells).
  double context_gain() const {
    return model_ce.size() > 1 ? prior_ce[1] - model_ce[1] : std::numeric_limits<double>::quiet_NaN();
  }
};

// Runs the model over the validation cells [0, mask.size(0)) in batches, with `mask`'s genes
// masked; calls visit(tokens, mask, conditions, t, logits) for each batch (all on the device).
template <typename Visit>
void for_each_masked_batch(MaskedDiffusionModel& model, const ValidationSet& v, const torch::Tensor& mask,
                           const TargetTable& targets, int64_t batch_size, Precision precision,
                           const torch::Device& device, int64_t mask_token, Visit&& visit) {
  for (int64_t begin = 0; begin < mask.size(0); begin += batch_size) {
    const int64_t end = std::min(mask.size(0), begin + batch_size);
    const auto tokens = v.tokens.slice(0, begin, end).to(device);
    const auto batch_mask = mask.slice(0, begin, end).to(device);
    const auto conditions = v.conditions.slice(0, begin, end).to(device);
    torch::Tensor logits;
    {
      const AutocastScope autocast(precision, device);
      logits = model->forward(apply_mask(tokens, batch_mask, mask_token), conditions, targets.of(conditions));
    }
    visit(tokens, batch_mask, conditions, v.t.slice(0, begin, end).to(device), logits);
  }
}

ValidationLoss validation_loss(MaskedDiffusionModel& model, const ValidationSet& v,
                               const TargetTable& targets, int64_t batch_size, Precision precision,
                               const torch::Device& device, int64_t n_genes, int64_t mask_token) {
  if (!v.tokens.defined() || v.tokens.size(0) == 0) return {};
  torch::NoGradGuard no_grad;
  model->eval();
  double loss_sum = 0, ce_sum = 0, masked = 0;
  for_each_masked_batch(model, v, v.mask, targets, batch_size, precision, device, mask_token,
                        [&](const torch::Tensor& tokens, const torch::Tensor& mask, const torch::Tensor&,
                            const torch::Tensor& t, const torch::Tensor& logits) {
                          loss_sum += masked_diffusion_loss(logits, tokens, mask, t, n_genes).item<double>() *
                                      static_cast<double>(tokens.size(0));
                          const double m = mask.sum().item<double>();
                          ce_sum += masked_cross_entropy(logits, tokens, mask).item<double>() * m;
                          masked += m;
                        });
  ValidationLoss out{
      loss_sum / static_cast<double>(v.tokens.size(0)), ce_sum / std::max(masked, 1.0), {}, {}};
  for (const torch::Tensor& rate_mask : v.rate_masks) {
    double model_sum = 0, prior_sum = 0, count = 0;
    for_each_masked_batch(
        model, v, rate_mask, targets, batch_size, precision, device, mask_token,
        [&](const torch::Tensor& tokens, const torch::Tensor& mask, const torch::Tensor& conditions,
            const torch::Tensor&, const torch::Tensor& logits) {
          const double m = mask.sum().item<double>();
          model_sum += masked_cross_entropy(logits, tokens, mask).item<double>() * m;
          prior_sum +=
              masked_cross_entropy(model->output_bias_logits(conditions), tokens, mask).item<double>() * m;
          count += m;
        });
    out.model_ce.push_back(model_sum / std::max(count, 1.0));
    out.prior_ce.push_back(prior_sum / std::max(count, 1.0));
  }
  model->train();
  return out;
}

// A fresh model's output biases: each gene's token marginals, and each label's shift of them.
void start_from_marginals(MaskedDiffusionModelImpl& model, const CsrMatrix& counts,
                          const std::vector<std::vector<int64_t>>& codes, const ModelMetadata& meta) {
  model.set_gene_logit_bias(token_log_marginals(counts, meta.tokenizer, meta.patching));
  if (meta.config.gene_factors > 0) {
    const auto levels = torch::log1p(torch::tensor(meta.tokenizer.lower_edges(), torch::kDouble));
    const std::vector<int64_t> one_group(static_cast<size_t>(counts.n_rows), 0);
    const auto n = token_counts(counts, meta.tokenizer, meta.patching, one_group, 1)[0];  // [L, K]
    const auto mean_levels = n.matmul(levels) / static_cast<double>(std::max<int64_t>(counts.n_rows, 1));
    model.set_value_levels(levels.to(torch::kFloat), mean_levels.to(torch::kFloat));
    const auto cell =
        cell_factor_start(counts, meta.tokenizer, meta.patching, levels, codes, meta.config.gene_factors);
    model.set_cell_factors(cell.in_loading, cell.out_loading);
  }
  if (!meta.config.condition_logit_bias) return;
  const int perturbation = perturbation_field_index(meta.conditions);
  const auto shifts = label_log_shifts(
      counts, meta.tokenizer, meta.patching, codes, meta.config.condition_vocab_sizes,
      {library_field_index(meta.conditions), perturbation, state_field_index(meta.conditions)},
      label_prior_cells(perturbation >= 0));
  for (size_t f = 0; f < shifts.size(); ++f)
    model.set_condition_logit_bias(static_cast<int64_t>(f), shifts[f]);
}

void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.starts_with(".") && name.find(".tmp") != std::string::npos) fs::remove(entry.path(), ec);
  }
}

class TrainLog {
 public:
  explicit TrainLog(fs::path path) : path_(std::move(path)), out_(path_, std::ios::app) {
    if (!out_) throw UserError(fmt::format("cannot write the training log {}", path_.string()));
  }
  void write(const nlohmann::json& line) {
    out_ << line.dump() << '\n';
    out_.flush();
    if (!out_) throw UserError(fmt::format("cannot write the training log {} (disk full?)", path_.string()));
  }

 private:
  fs::path path_;
  std::ofstream out_;
};

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

namespace {

// Everything a run needs before its first step: the settings (the stored ones when resuming), the
// model directory's metadata, where the training cells are and their condition codes, the
// validation cells, and the sample of training cells the starting statistics come from.
struct PreparedRun {
  TrainOptions options;
  ModelMetadata meta;
  bool resuming = false;
  std::unique_ptr<CountCheckedRows> counts;  // every cell of the data, checked as read
  std::vector<int64_t> train_rows;           // rows of `counts`, ascending
  std::vector<std::vector<int64_t>> train_codes, val_codes, sample_codes;
  CsrMatrix val_counts, sample_counts;
  GeneKnowledge knowledge;        // a new run's --gene-knowledge (a resumed one has it in its weights)
  bool steps_are_passes = false;  // options.steps is kMaxEpochs passes, not the user's --steps
};

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

// The length of a run without --steps: kMaxEpochs passes over the training cells, and without
// --minutes at most kDefaultSteps; with --minutes, whichever ends first.
int64_t default_steps(const TrainOptions& options, int64_t n_train) {
  const int64_t passes = (kMaxEpochs * n_train + options.batch_size - 1) / options.batch_size;
  return options.minutes > 0 ? passes : std::min(passes, kDefaultSteps);
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

template <typename T>
std::vector<T> pick(const std::vector<T>& values, const std::vector<int64_t>& at) {
  std::vector<T> out;
  out.reserve(at.size());
  for (const int64_t i : at) out.push_back(values[static_cast<size_t>(i)]);
  return out;
}

std::vector<std::vector<int64_t>> codes_of_rows(const std::vector<std::vector<int64_t>>& codes,
                                                const std::vector<int64_t>& rows) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& field : codes) out.push_back(pick(field, rows));
  return out;
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

// What the measured speed makes of the budget: the steps that fit, or the fewer ones that end the
// run first (--steps, or kMaxEpochs passes over the training cells).
void print_plan(int64_t total, double steps_per_second, const PreparedRun& run) {
  const TrainOptions& o = run.options;
  if (total < o.steps) {
    fmt::print(stderr, "train: {:.2f} steps/s measured; planning {} steps for the {} minute budget\n",
               steps_per_second, total, o.minutes);
    return;
  }
  fmt::print(stderr, "train: {:.2f} steps/s measured; {} steps ({}) take about {:.0f} of the {} minutes\n",
             steps_per_second, total,
             run.steps_are_passes ? fmt::format("{} passes over the training cells", kMaxEpochs) : "--steps",
             static_cast<double>(total) / steps_per_second / 60.0, o.minutes);
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

// Checks the request, leaves out the held-out cells, splits off the validation cells, reads them
// and the statistics sample, and (for a new run) writes the model directory's metadata.
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
    if (root) write_model_metadata(dir, run.meta);
    if (root && !options.quiet && run.knowledge.dim > 0) print_knowledge_coverage(run.meta);
  }
  return run;
}

// The number of steps and the learning-rate schedule. A --steps run is planned from the start; a
// --minutes run warms up as if it were long until it has timed kSpeedProbeSteps steps, then plans
// the steps that fit in the remaining budget, and re-plans every kReplanEvery steps as the speed
// changes (a shared machine speeds up and slows down).
class StepPlan {
 public:
  StepPlan(const TrainOptions& options, int64_t total_steps, bool planned)
      : options_(options), total_(total_steps), planned_(planned) {
    schedule_ = planned ? schedule_for(total_steps)
                        : LrSchedule{options.lr, std::max<int64_t>(options.warmup, 1),
                                     std::numeric_limits<int32_t>::max(), options.min_lr_ratio};
  }
  bool planned() const { return planned_; }
  int64_t total() const { return total_; }
  bool is_last(int64_t step) const { return planned_ && step == total_; }
  bool done(int64_t step) const { return planned_ && step >= total_; }
  double lr(int64_t step) const { return schedule_.at(step); }
  bool wants_replan(int64_t step, int64_t timed_steps) const {
    return options_.minutes > 0 && timed_steps >= kSpeedProbeSteps && (!planned_ || step % kReplanEvery == 0);
  }
  // Plans for the steps that fit in the rest of the budget; true when that is news for the user
  // (the first plan, or a change of more than 5%).
  bool replan(int64_t step, double steps_per_second, double elapsed_seconds) {
    const double remaining = options_.minutes * 60.0 - elapsed_seconds;
    int64_t total = step + static_cast<int64_t>(std::max(remaining, 0.0) * steps_per_second);
    if (options_.steps > 0) total = std::min(total, options_.steps);
    total = std::max(total, step + 1);
    const bool news =
        !planned_ || std::abs(static_cast<double>(total - total_)) > 0.05 * static_cast<double>(total_);
    total_ = total;
    schedule_ = schedule_for(total);
    planned_ = true;
    return news;
  }
  // The budget ended before the planned steps (the machine slowed down): the run ends here.
  void end_at(int64_t step) { total_ = step; }

 private:
  LrSchedule schedule_for(int64_t total) const {
    return LrSchedule{options_.lr, std::max<int64_t>(1, std::min(options_.warmup, total / 10)), total,
                      options_.min_lr_ratio};
  }
  const TrainOptions& options_;
  int64_t total_;
  bool planned_;
  LrSchedule schedule_;
};

// Steps per second of this invocation, from the end of its first step (allocations, warm-up).
class StepTimer {
 public:
  void step_done() {
    if (!from_) {
      from_ = Clock::now();
    } else {
      ++timed_;
    }
  }
  int64_t timed_steps() const { return timed_; }
  double seconds() const {
    return from_ ? std::chrono::duration<double>(Clock::now() - *from_).count() : 0.0;
  }
  double steps_per_second() const { return timed_ > 0 ? static_cast<double>(timed_) / seconds() : 0.0; }

 private:
  std::optional<Clock::time_point> from_;
  int64_t timed_ = 0;
};

// Every parameter's gradient (zeros where this step left it undefined, so that all ranks send the
// same tensors), for the all-reduce.
std::vector<torch::Tensor> trained_gradients(MaskedDiffusionModel& model) {
  std::vector<torch::Tensor> grads;
  for (auto& p : model->parameters()) {
    if (!p.requires_grad()) continue;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  return grads;
}

// Makes every rank's weights and buffers rank 0's.
void broadcast_model(Collective& collective, MaskedDiffusionModel& model) {
  std::vector<torch::Tensor> state;
  for (const auto& p : model->parameters()) state.push_back(p.detach());
  for (const auto& b : model->buffers()) state.push_back(b.detach());
  collective.broadcast_from_root(state);
}

// One optimiser step and the validation loss of a model on a prepared run. In a data-parallel job
// each rank runs its share of the batch and the gradients are summed over the ranks before the
// clip, so the ranks take the step one process would take with the whole batch.
class Stepper {
 public:
  Stepper(const PreparedRun& run, MaskedDiffusionModel& model, torch::optim::AdamW& optimizer,
          const torch::Device& device, Precision precision, Collective* collective)
      : run_(run),
        model_(model),
        optimizer_(optimizer),
        device_(device),
        precision_(precision),
        collective_(collective) {
    const ModelConfig& config = run.meta.config;
    is_gene_ = torch::zeros({config.n_positions()}, torch::kBool);
    is_gene_.slice(0, 0, config.n_genes).fill_(true);
    library_field_ = library_field_index(run.meta.conditions);
    targets_.field = config.perturbation_field;
    if (targets_.field >= 0) {
      targets_.positions = padded_targets(
          target_positions_by_token(run.meta.conditions[static_cast<size_t>(targets_.field)],
                                    run.meta.gene_names, run.meta.patching, run.meta.knowledge_genes));
    }
    if (run.options.world.is_root()) {
      validation_ = make_validation_set(run.val_counts, run.meta.tokenizer, run.meta.patching, is_gene_,
                                        run.options.seed, run.val_codes);
    }
  }

  // Masks the batch as step `step` of the seed does (a resumed run replays it), steps the optimiser
  // at `lr` and returns the loss of the whole batch.
  double step(const TokenBatch& batch, int64_t step, double lr) {
    const TrainOptions& o = run_.options;
    auto generator = step_generator(o.seed, step);
    // Drawn for the whole batch, of which this rank takes its rows: the draws do not depend on the
    // number of processes.
    const auto all_t = sample_diffusion_times(o.batch_size, generator);
    const auto all_mask = forward_mask(all_t, is_gene_, generator);
    const auto all_inputs =
        drop_for_guidance(batch.conditions, o.p_uncond, targets_, library_field_, generator);
    const int64_t begin = batch.shard_begin, rows = batch.tokens.size(0);
    const auto mine = [&](const torch::Tensor& x) {
      return x.defined() ? x.narrow(0, begin, rows).to(device_) : torch::Tensor();
    };
    const auto tokens = batch.tokens.to(device_);
    const auto mask = mine(all_mask);
    torch::Tensor loss;
    {
      const AutocastScope autocast(precision_, device_);
      const auto logits = model_->forward(apply_mask(tokens, mask, mask_token()), mine(all_inputs.conditions),
                                          mine(all_inputs.targets));
      // The mean over the batch is the sum over ranks of each rank's share of it.
      loss = masked_diffusion_loss(logits, tokens, mask, mine(all_t), run_.meta.config.n_genes) *
             (static_cast<double>(rows) / static_cast<double>(o.batch_size));
    }
    set_learning_rate(optimizer_, lr);
    optimizer_.zero_grad();
    loss.backward();
    auto batch_loss = loss.detach().to(torch::kCPU, torch::kFloat).reshape({1});
    if (collective_ != nullptr) {
      auto tensors = trained_gradients(model_);
      tensors.push_back(batch_loss);
      collective_->sum_over_ranks(tensors);
    }
    torch::nn::utils::clip_grad_norm_(model_->parameters(), o.grad_clip);
    optimizer_.step();
    const double value = batch_loss.item<double>();
    if (!std::isfinite(value)) {
      throw UserError(
          fmt::format("training diverged at step {} (loss {}); lower --lr (now {})", step, value, o.lr));
    }
    return value;
  }

  ValidationLoss validate() {
    return validation_loss(model_, validation_, targets_, run_.options.batch_size * 2, precision_, device_,
                           run_.meta.config.n_genes, mask_token());
  }

 private:
  int64_t mask_token() const { return run_.meta.config.n_tokens; }

  const PreparedRun& run_;
  MaskedDiffusionModel& model_;
  torch::optim::AdamW& optimizer_;
  torch::Device device_;
  Precision precision_;
  Collective* collective_;
  torch::Tensor is_gene_;
  int library_field_ = -1;
  TargetTable targets_;
  ValidationSet validation_;
};

// Up to kCellScoreBank training cells (indices into them, ascending), the same share of each label
// combination (evenly spaced within it), so that every combination's cells have states to draw from.
std::vector<int64_t> cell_score_bank_cells(const PreparedRun& run) {
  std::map<std::vector<int64_t>, std::vector<int64_t>> by_labels;
  for (size_t r = 0; r < run.train_rows.size(); ++r) {
    std::vector<int64_t> key;
    for (const auto& codes : run.train_codes) key.push_back(codes[r]);
    by_labels[key].push_back(static_cast<int64_t>(r));
  }
  const auto quota = std::max<int64_t>(1, MaskedDiffusionModelImpl::kCellScoreBank /
                                              static_cast<int64_t>(std::max<size_t>(by_labels.size(), 1)));
  std::vector<int64_t> cells;
  for (const auto& [labels, members] : by_labels) {
    const auto group = static_cast<int64_t>(members.size());
    const int64_t n = std::min(group, quota);
    for (int64_t i = 0;
         i < n && static_cast<int64_t>(cells.size()) < MaskedDiffusionModelImpl::kCellScoreBank; ++i)
      cells.push_back(members[static_cast<size_t>(i * group / n)]);
  }
  std::sort(cells.begin(), cells.end());
  return cells;
}

// The states of those cells (read from every gene, their noise share taken out, and from each half
// of the genes for that: train/cell_state_bank.h) and their labels: what generation draws from,
// set before each save of the weights.
// Returns each factor's reliability (empty without cell factors).
std::vector<float> refresh_cell_score_bank(MaskedDiffusionModel& model, const PreparedRun& run,
                                           const torch::Device& device) {
  if (run.meta.config.gene_factors == 0 || run.train_rows.empty()) return {};
  const auto cells = cell_score_bank_cells(run);
  const auto n = static_cast<int64_t>(cells.size());
  const auto counts = run.counts->read(pick(run.train_rows, cells));
  const auto conditions = codes_tensor(codes_of_rows(run.train_codes, cells), n).to(device);
  const int64_t mask = run.meta.config.n_tokens;
  const auto odd = (torch::arange(run.meta.config.n_positions(), device) % 2).eq(1).unsqueeze(0);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> scores, half_a, half_b;
  constexpr int64_t kChunk = 64;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t size = std::min(kChunk, n - begin);
    std::vector<int64_t> chunk(static_cast<size_t>(size));
    std::iota(chunk.begin(), chunk.end(), begin);
    const auto tokens = encode_cells(counts, chunk, run.meta.tokenizer, run.meta.patching).to(device);
    const auto labels = conditions.slice(0, begin, begin + size);
    scores.push_back(model->cell_scores(tokens, labels));
    half_a.push_back(model->cell_scores(tokens.masked_fill(odd, mask), labels));
    half_b.push_back(model->cell_scores(tokens.masked_fill(odd.logical_not(), mask), labels));
  }
  const auto bank =
      reliable_cell_states(torch::cat(scores), torch::cat(half_a), torch::cat(half_b), conditions);
  model->set_cell_score_bank(bank.states, conditions);
  const auto reliability = bank.reliability.cpu().contiguous();
  return {reliability.data_ptr<float>(), reliability.data_ptr<float>() + reliability.numel()};
}

// A fresh model starts from the training marginals; a resumed one is filled from its checkpoint.
MaskedDiffusionModel build_model(const PreparedRun& run, const torch::Device& device) {
  torch::manual_seed(mix_seed(run.options.seed, 0x1417ULL << 32));  // weight initialisation
  MaskedDiffusionModel model(run.meta.config);
  if (!run.resuming) start_from_marginals(*model, run.sample_counts, run.sample_codes, run.meta);
  if (!run.resuming && run.knowledge.dim > 0) {
    model->set_gene_knowledge(torch::tensor(run.knowledge.values).view({-1, run.knowledge.dim}));
  }
  model->to(device);
  model->train();
  return model;
}

// What rank 0 tells the others before every step: whether there is one, and its learning rate.
// Only rank 0 keeps the clock and the plan, so the ranks can never disagree on when to stop.
struct StepOrder {
  bool go = false;
  double lr = 0;
};

StepOrder share_order(Collective* collective, StepOrder order) {
  if (collective == nullptr) return order;
  const auto message = torch::tensor({order.go ? 1.0 : 0.0, order.lr}, torch::kDouble);
  collective->broadcast_from_root({message});
  return {message[0].item<double>() > 0.5, message[1].item<double>()};
}

void print_model_summary(const MaskedDiffusionModel& model, const ModelConfig& c, Precision precision,
                         const WorldInfo& world) {
  int64_t n_parameters = 0;
  for (const auto& p : model->parameters()) n_parameters += p.numel();
  fmt::print(
      stderr,
      "train: {} model, {:.1f}M parameters (width {}, {} layers, {} gene factors, {} tokens per cell), "
      "{}{}\n",
      c.preset, static_cast<double>(n_parameters) / 1e6, c.d_model, c.n_layers, c.gene_factors,
      c.sequence_length(), precision_name(precision),
      world.distributed() ? fmt::format(", {} processes", world.size) : "");
}

}  // namespace

TrainResult train_model(const AnnData& data, const TrainOptions& options, const TrainHooks& hooks) {
  // Not owned: `data` outlives the call (an aliasing pointer with no owner).
  const std::shared_ptr<const CsrMatrix> counts(std::shared_ptr<void>(), &data.X);
  return train_model(TrainingCells{data.obs, data.var, std::make_shared<MatrixRows>(counts)}, options, hooks);
}

TrainResult train_model(const TrainingCells& cells, const TrainOptions& requested, const TrainHooks& hooks) {
  PreparedRun run = prepare_run(cells, requested);
  const TrainOptions& options = run.options;
  const bool root = options.world.is_root();
  const bool talk = root && !options.quiet;
  const fs::path& dir = options.out;
  const auto device = resolve_device(options.device);
  const auto precision = resolve_precision(options.precision, device);
  std::optional<Collective> collective;
  if (options.world.distributed()) collective.emplace(options.world);
  Collective* const group = collective ? &*collective : nullptr;
  auto model = build_model(run, device);
  // The start is set: the statistics sample (up to 20,000 cells) need not stay in memory.
  run.sample_counts = CsrMatrix{};
  run.sample_codes.clear();
  auto optimizer = make_optimizer(model, options);
  if (talk) print_model_summary(model, run.meta.config, precision, options.world);

  nlohmann::json state = {{"step", 0},
                          {"total_steps", options.steps},
                          {"planned", options.minutes <= 0},
                          {"elapsed_seconds", 0.0},
                          {"best_step", -1},
                          {"best_val_loss", 0.0}};
  // Every rank reads the checkpoint (the model directory is shared, as on a cluster's file system):
  // the optimiser state is not broadcast.
  const fs::path checkpoint_path = dir / "checkpoint.pt";
  if (run.resuming && fs::exists(checkpoint_path))
    state = load_checkpoint(checkpoint_path, model, optimizer, device);
  if (group != nullptr) broadcast_model(*group, model);
  int64_t step = state.at("step");
  StepPlan plan(options, state.at("total_steps"), state.at("planned"));
  const double elapsed_before = state.at("elapsed_seconds");
  const auto start = Clock::now();
  const auto elapsed_total = [&] {
    return elapsed_before + std::chrono::duration<double>(Clock::now() - start).count();
  };
  const auto out_of_time = [&] { return options.minutes > 0 && elapsed_total() >= options.minutes * 60.0; };
  // The model directory's weights are those of the best validation loss so far: on a few thousand
  // cells a long run overfits (paul15, 45 minutes: validation masked CE 0.700 at step 800, 0.729 at
  // step 6,744), and a user should not have to guess the number of steps. Without validation cells
  // the last weights are kept. The checkpoint always holds the latest state, for --resume.
  std::optional<TrainLog> log;
  if (root) log.emplace(dir / "train_log.jsonl");
  const auto save_weights_and_states = [&] {
    const auto reliability = refresh_cell_score_bank(model, run, device);
    save_weights(dir, model);
    if (!reliability.empty()) log->write({{"step", step}, {"cell_state_reliability", reliability}});
  };
  int64_t best_step = state.at("best_step");
  double best_val_loss = state.at("best_val_loss");
  const auto keep_if_best = [&](const ValidationLoss& v) {
    if (std::isnan(v.loss) || (best_step >= 0 && v.loss >= best_val_loss)) return;
    best_step = step;
    best_val_loss = v.loss;
    save_weights_and_states();
  };
  const auto save_all = [&] {
    save_checkpoint(checkpoint_path, model, optimizer,
                    {{"step", step},
                     {"total_steps", plan.total()},
                     {"planned", plan.planned()},
                     {"elapsed_seconds", elapsed_total()},
                     {"best_step", best_step},
                     {"best_val_loss", best_val_loss}});
    if (best_step < 0) save_weights_and_states();
  };

  Stepper stepper(run, model, optimizer, device, precision, group);
  const TrainingRows training{*run.counts, run.train_rows, run.train_codes};
  BatchLoader loader(training, run.meta.tokenizer, run.meta.patching, options.batch_size, options.seed, step,
                     {options.world.rank, options.world.size});
  std::optional<Progress> progress;
  if (talk && plan.planned()) progress.emplace("train", plan.total(), "steps", step);
  StepTimer timer;
  ValidationLoss val;
  double window_loss = 0, train_loss = 0;
  int64_t window_steps = 0, steps_this_run = 0;

  while (true) {
    const bool stopped_by_hook = hooks.stop_after_steps > 0 && steps_this_run >= hooks.stop_after_steps;
    const StepOrder order = share_order(
        group, {!plan.done(step) && !out_of_time() && !stopped_by_hook, root ? plan.lr(step) : 0.0});
    if (!order.go) break;
    const double loss = stepper.step(loader.next(), step, order.lr);
    ++step;
    ++steps_this_run;
    if (!root) continue;
    window_loss += loss;
    ++window_steps;
    timer.step_done();
    if (plan.wants_replan(step, timer.timed_steps())) {
      if (plan.replan(step, timer.steps_per_second(), elapsed_total()) && talk) {
        print_plan(plan.total(), timer.steps_per_second(), run);
      }
      if (talk && !progress) progress.emplace("train", plan.total(), "steps", step);
      if (progress) progress->set_total(plan.total());
    }
    const bool last = plan.is_last(step);
    if (step % options.log_every == 0 || last) {
      train_loss = window_loss / static_cast<double>(window_steps);
      log->write({{"step", step},
                  {"lr", order.lr},
                  {"loss", train_loss},
                  {"cells_per_s", timer.steps_per_second() * static_cast<double>(options.batch_size)},
                  {"elapsed_s", elapsed_total()}});
      window_loss = 0;
      window_steps = 0;
    }
    if (step % options.eval_every == 0 || last) {
      val = stepper.validate();
      log->write(val.to_json(step));
      keep_if_best(val);
    }
    if (step % options.checkpoint_every == 0 && !last) save_all();
    if (progress) {
      progress->update(step, std::isnan(val.loss)
                                 ? fmt::format("loss {:.4f}", loss)
                                 : fmt::format("loss {:.4f} | val {:.4f} | context gain {:.4f}", loss,
                                               val.loss, val.context_gain()));
    }
  }
  TrainResult result;
  result.precision = precision_name(precision);
  result.steps = step;
  if (!root) return result;  // the model directory is rank 0's to write

  if (window_steps > 0) train_loss = window_loss / static_cast<double>(window_steps);
  if (out_of_time() && !plan.done(step)) {
    plan.end_at(step);
    val = stepper.validate();
    log->write(val.to_json(step));
    keep_if_best(val);
  }
  save_all();
  if (progress) progress->finish(fmt::format("loss {:.4f} | val {:.4f}", train_loss, val.loss));

  result.total_steps = plan.total();
  result.train_loss = train_loss;
  result.val_loss = val.loss;
  result.val_masked_ce = val.masked_ce;
  result.context_gain = val.context_gain();
  result.best_step = best_step;
  result.best_val_loss = best_step >= 0 ? best_val_loss : std::numeric_limits<double>::quiet_NaN();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (timer.timed_steps() > 0) {
    result.cells_per_second = static_cast<double>(timer.timed_steps() * options.batch_size) / timer.seconds();
  }
  return result;
}

}  // namespace lingshu
