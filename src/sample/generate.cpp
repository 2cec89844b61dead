#include "sample/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>

#include "core/balanced_draw.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/seed.h"
#include "data/conditions.h"
#include "io/pairs.h"
#include "model/model.h"
#include "model/precision.h"
#include "model/weights.h"
#include "sample/cell_batches.h"
#include "sample/cell_size.h"
#include "sample/guidance.h"
#include "sample/sampler.h"
#include "sample/stratum_quantiles.h"

namespace lingshu {

namespace {
UnmaskOrder parse_order(const std::string& name) {
  if (name == "confidence") return UnmaskOrder::Confidence;
  if (name == "random") return UnmaskOrder::Random;
  throw UserError(fmt::format("unknown --order '{}'; use confidence or random", name));
}

UnmaskSchedule parse_schedule(const std::string& name) {
  if (name == "cosine") return UnmaskSchedule::Cosine;
  if (name == "linear") return UnmaskSchedule::Linear;
  throw UserError(fmt::format("unknown --schedule '{}'; use cosine or linear", name));
}

void validate(const SamplingSettings& s) {
  if (s.shard.count < 1 || s.shard.index < 0 || s.shard.index >= s.shard.count) {
    throw UserError(fmt::format("no process {} in a job of {}", s.shard.index, s.shard.count));
  }
  if (s.steps < 1) throw UserError("--steps must be at least 1");
  if (s.batch_size < 1) throw UserError("--batch-size must be at least 1");
  if (s.temperature < 0) throw UserError("--temperature must be 0 or more");
  if (s.cfg < 0) throw UserError("--cfg must be 0 or more");
}

// Tokens of one cell in sequence order -> counts in the training file's gene order.
void decode_cell(const int64_t* tokens, const ModelMetadata& meta, std::mt19937_64& rng,
                 std::vector<uint8_t>& gene_tokens, std::vector<float>& counts) {
  for (int64_t pos = 0; pos < meta.patching.n_genes; ++pos) {
    gene_tokens[static_cast<size_t>(meta.patching.order[pos])] = static_cast<uint8_t>(tokens[pos]);
  }
  meta.tokenizer.decode_row(gene_tokens, rng, counts);
}

// The batches [first, end) of `n_cells` that settings.shard makes.
std::pair<int64_t, int64_t> shard_batches(const SamplingSettings& s, int64_t n_cells) {
  const int64_t batches = (n_cells + s.batch_size - 1) / s.batch_size;
  return {batches * s.shard.index / s.shard.count, batches * (s.shard.index + 1) / s.shard.count};
}

// Categorical obs columns (one per field) of the generated cells.
void add_condition_columns(const ModelMetadata& meta, const std::vector<CellGroup>& groups, DataFrame& obs) {
  for (size_t f = 0; f < meta.conditions.size(); ++f) {
    std::vector<std::string> labels;
    for (const auto& g : groups) {
      const auto& shown = g.shown_labels.empty() ? g.labels : g.shown_labels;
      labels.insert(labels.end(), static_cast<size_t>(g.n_cells), shown[f]);
    }
    Column column = Column::categorical(meta.conditions[f].column, labels);
    // "" marks an unconditioned field: missing in AnnData terms.
    const auto empty = std::find(column.categories.begin(), column.categories.end(), std::string());
    if (empty != column.categories.end()) {
      const auto code = static_cast<int32_t>(empty - column.categories.begin());
      column.categories.erase(empty);
      for (auto& c : column.codes) c = c == code ? -1 : (c > code ? c - 1 : c);
    }
    obs.set(std::move(column));
  }
}

}  // namespace

EncodedLabels encode_labels(const ModelMetadata& meta, const std::vector<std::string>& labels) {
  if (labels.size() != meta.conditions.size()) {
    throw UserError(fmt::format("{} condition labels given; the model has {} condition fields", labels.size(),
                                meta.conditions.size()));
  }
  EncodedLabels out;
  for (size_t f = 0; f < labels.size(); ++f) {
    const ConditionField& field = meta.conditions[f];
    if (labels[f].empty()) {
      out.tokens.push_back(0);
      continue;
    }
    const auto token = field.find(labels[f]);
    const auto targets =
        target_positions(field, labels[f], meta.gene_names, meta.patching, meta.knowledge_genes);
    if (!token && targets.empty()) {
      // Raises the error that lists the known labels.
      static_cast<void>(field.token(labels[f]));
    }
    out.tokens.push_back(token.value_or(0));  // an unseen label: NULL plus its targets' embedding
    if (field.is_perturbation) out.targets = targets;
  }
  return out;
}

std::vector<std::string> labels_from_terms(const ModelMetadata& meta, const std::vector<std::string>& terms) {
  std::vector<std::string> labels(meta.conditions.size());
  for (const auto& text : terms) {
    for (const auto& [column, label] : ConditionSpec::parse(text).terms) {
      const auto it = std::find_if(meta.conditions.begin(), meta.conditions.end(),
                                   [&](const ConditionField& f) { return f.column == column; });
      if (it == meta.conditions.end()) {
        std::string known;
        for (const auto& f : meta.conditions) known += (known.empty() ? "" : ", ") + f.column;
        throw UserError(fmt::format("'{}' is not a condition of this model; its conditions: {}", column,
                                    known.empty() ? "none (an unconditional model)" : known));
      }
      labels[static_cast<size_t>(it - meta.conditions.begin())] = label;
    }
  }
  return labels;
}

namespace {
// `n` split in proportion to `weights` (largest remainders; ties to the earlier entry).
std::vector<int64_t> apportion(const std::vector<double>& weights, int64_t n) {
  double total = 0;
  for (const double w : weights) total += w;
  std::vector<int64_t> out;
  std::vector<std::pair<double, size_t>> remainders;
  int64_t assigned = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double exact = static_cast<double>(n) * weights[i] / total;
    out.push_back(static_cast<int64_t>(exact));
    remainders.emplace_back(exact - static_cast<double>(out.back()), i);
    assigned += out.back();
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (int64_t k = 0; k < n - assigned; ++k) ++out[remainders[static_cast<size_t>(k)].second];
  return out;
}

// Training cells per library label among the combinations that agree with `labels` on every set
// field that `compare` accepts.
std::vector<double> library_weights(const ModelMetadata& meta, const std::vector<std::string>& labels,
                                    size_t library, const std::function<bool(size_t)>& compare) {
  const ConditionField& field = meta.conditions[library];
  std::vector<double> weights(field.labels.size(), 0.0);
  for (const auto& c : meta.combinations) {
    bool agrees = true;
    for (size_t f = 0; f < labels.size() && agrees; ++f) {
      agrees = f == library || labels[f].empty() || !compare(f) || c.labels[f] == labels[f];
    }
    const auto token = field.find(c.labels[library]);
    if (agrees && token) weights[static_cast<size_t>(*token - 1)] += static_cast<double>(c.n_cells);
  }
  return weights;
}
}  // namespace

std::vector<CellGroup> training_proportions(const ModelMetadata& meta, int64_t n) {
  const auto& combos = meta.combinations;
  if (combos.empty()) return {{std::vector<std::string>(meta.conditions.size()), n, {}, {}}};
  std::vector<double> weights;
  for (const auto& c : combos) weights.push_back(static_cast<double>(c.n_cells));
  const auto counts = apportion(weights, n);
  std::vector<CellGroup> groups;
  for (size_t i = 0; i < combos.size(); ++i) {
    if (counts[i] > 0) groups.push_back({combos[i].labels, counts[i], {}, {}});
  }
  return groups;
}

void fill_state_label(const ModelMetadata& meta, std::vector<std::string>& labels) {
  const int state = state_field_index(meta.conditions);
  if (state < 0 || labels.size() != meta.conditions.size() || !labels[static_cast<size_t>(state)].empty())
    return;
  const auto& field = meta.conditions[static_cast<size_t>(state)];
  if (auto label = state_label(meta.conditions, labels); field.find(label))
    labels[static_cast<size_t>(state)] = std::move(label);
}

std::vector<CellGroup> with_library_labels(const ModelMetadata& meta, const std::vector<CellGroup>& groups) {
  const int library = library_field_index(meta.conditions);
  if (library < 0) return groups;
  const auto lib = static_cast<size_t>(library);
  const auto pert = static_cast<size_t>(meta.config.perturbation_field);  // npos-like when -1
  const std::vector<std::function<bool(size_t)>> fallbacks = {
      [](size_t) { return true; }, [pert](size_t f) { return f != pert; }, [](size_t) { return false; }};
  std::vector<CellGroup> out;
  for (const auto& g : groups) {
    if (g.labels.size() != meta.conditions.size() || !g.labels[lib].empty()) {
      out.push_back(g);  // encode_labels reports a wrong label count
      continue;
    }
    std::vector<double> weights;
    for (const auto& compare : fallbacks) {
      weights = library_weights(meta, g.labels, lib, compare);
      if (std::any_of(weights.begin(), weights.end(), [](double w) { return w > 0; })) break;
    }
    const auto counts = apportion(weights, g.n_cells);
    int64_t first = 0;
    for (size_t b = 0; b < counts.size(); ++b) {
      if (counts[b] == 0) continue;
      CellGroup part{g.labels, counts[b], {}, g.shown_labels};
      part.labels[lib] = meta.conditions[lib].labels[b];
      if (!part.shown_labels.empty()) part.shown_labels[lib] = part.labels[lib];
      if (!g.prefilled.empty()) {
        part.prefilled.assign(g.prefilled.begin() + first, g.prefilled.begin() + first + counts[b]);
      }
      first += counts[b];
      out.push_back(std::move(part));
    }
  }
  return out;
}

LoadedModel load_model(const std::filesystem::path& dir, const std::string& device) {
  LoadedModel model{dir, read_model_metadata(dir), nullptr, device};
  model.network = load_weights(dir, model.meta.config, resolve_device(device)).ptr();
  return model;
}

AnnData generate_groups(const LoadedModel& loaded, const std::vector<CellGroup>& requested,
                        const SamplingSettings& settings, const CellSink& sink,
                        const std::vector<GroupTilt>& tilts) {
  validate(settings);
  const ModelMetadata& meta = loaded.meta;
  check_guidance(meta, settings);
  const GroupPlan plan = plan_groups(loaded, requested);
  const SamplerOptions sampler{settings.steps, settings.temperature, parse_order(settings.order),
                               parse_schedule(settings.schedule)};
  const auto device = resolve_device(loaded.device);
  const auto precision = resolve_precision(settings.precision, device);
  const int64_t library = library_field_index(meta.conditions);
  MaskedDiffusionModelImpl& model = *loaded.network;
  torch::NoGradGuard no_grad;

  const int64_t mask_token = meta.config.n_tokens, L = meta.config.n_positions();
  auto is_gene = torch::zeros({L}, torch::kBool);
  is_gene.slice(0, 0, meta.config.n_genes).fill_(true);
  if (!tilts.empty() && tilts.size() != requested.size())
    throw std::invalid_argument("generate_groups: one tilt per group, or none");
  const torch::Tensor representative = tilts.empty() ? torch::Tensor() : representative_counts(meta);
  AnnData out;
  out.X.n_cols = meta.config.n_genes;
  // Each cell's state is drawn first (from training cells with its labels), as a factor model
  // samples its latent before its genes.
  BalancedDraw states(settings.seed);
  std::vector<uint8_t> gene_tokens(static_cast<size_t>(meta.config.n_genes));
  std::vector<float> counts(static_cast<size_t>(meta.config.n_genes));
  const auto n_total = static_cast<int64_t>(plan.rows.size());
  const auto [first_batch, end_batch] = shard_batches(settings, n_total);
  const int64_t shard_begin = first_batch * settings.batch_size;
  const int64_t shard_end = std::min(n_total, end_batch * settings.batch_size);
  StratumQuantiles quantiles(strata_of_rows(plan), L, mix_seed(settings.seed, 0x9A4711E5ULL));
  std::optional<Progress> progress;
  if (!settings.quiet) progress.emplace("generate", shard_end - shard_begin, "cells");
  for (int64_t batch = first_batch; batch < end_batch; ++batch) {
    const int64_t begin = batch * settings.batch_size;
    const int64_t n = std::min(settings.batch_size, n_total - begin);
    const BatchInputs inputs = batch_inputs(plan, model, begin, n, states);
    const GuidedDenoiser denoiser(model, inputs, settings, library, device, precision);
    auto tilt = tilt_logits(meta, tilts, plan, representative, begin, n);
    if (tilt.defined()) tilt = tilt.to(device);
    auto generator =
        at::make_generator<at::CPUGeneratorImpl>(mix_seed(settings.seed, static_cast<uint64_t>(batch)));
    const auto tokens =
        sample_tokens(
            [&](const torch::Tensor& z) { return tilt.defined() ? denoiser(z) + tilt : denoiser(z); },
            inputs.initial.to(device), is_gene, mask_token, sampler, generator,
            [&](const torch::Tensor& z, const torch::Tensor& rows, const torch::Tensor& positions) {
              const auto logits = denoiser.at(z, rows, positions);
              return tilt.defined() ? logits + tilt.index({rows, positions}) : logits;
            },
            sampler.order == UnmaskOrder::Random ? quantiles.rows(begin, n) : torch::Tensor())
            .to(torch::kCPU)
            .contiguous();
    CsrMatrix streamed;
    streamed.n_cols = meta.config.n_genes;
    CsrMatrix& rows_out = sink ? streamed : out.X;
    for (int64_t i = 0; i < n; ++i) {
      std::mt19937_64 rng(mix_seed(settings.seed ^ 0xDEC0DEULL, static_cast<uint64_t>(begin + i)));
      decode_cell(tokens.data_ptr<int64_t>() + i * L, meta, rng, gene_tokens, counts);
      const auto [lo, hi] = plan.sizes[plan.rows[static_cast<size_t>(begin + i)].group];
      fit_total_to_range(counts, lo, hi, rng);
      rows_out.append_dense_row(counts);
    }
    if (sink) sink(streamed);
    if (progress) progress->update(begin + n - shard_begin);
  }
  if (progress) progress->finish();
  describe_cells(loaded, plan.groups, out);
  out.uns_strings.emplace_back(
      "lingshu_sampler",
      fmt::format(
          "steps={} temperature={} order={} schedule={} cfg={} guide={} seed={} batch_size={} precision={}",
          settings.steps, settings.temperature, settings.order, settings.schedule, settings.cfg,
          settings.guide, settings.seed, settings.batch_size, precision_name(precision)));
  return out;
}

void describe_cells(const LoadedModel& loaded, const std::vector<CellGroup>& groups, AnnData& cells) {
  int64_t n = 0;
  for (const auto& g : groups) n += g.n_cells;
  for (int64_t i = 0; i < n; ++i) cells.obs.index.push_back(fmt::format("gen_{}", i));
  cells.var.index = loaded.meta.gene_names;
  add_condition_columns(loaded.meta, groups, cells.obs);
  cells.uns_strings.emplace_back("lingshu_model", loaded.dir.string());
  cells.uns_strings.emplace_back("lingshu_preset", loaded.meta.config.preset);
}

AnnData generate_cells(const GenerateOptions& options, const CellSink& sink) {
  const LoadedModel model = load_model(options.model_dir, options.sampling.device);
  const ModelMetadata& meta = model.meta;
  std::vector<CellGroup> groups;
  if (!options.plan.empty()) {
    if (!options.conditions.empty()) throw UserError("give --plan or --condition, not both");
    const PredictionPairs plan = read_prediction_pairs(options.plan);
    for (size_t r = 0; r < plan.rows.size(); ++r) {
      std::vector<std::string> terms;
      for (size_t c = 0; c < plan.columns.size(); ++c)
        terms.push_back(plan.columns[c] + "=" + plan.rows[r][c]);
      groups.push_back({labels_from_terms(meta, terms), plan.n_cells[r], {}, {}});
    }
  } else {
    if (options.n_cells < 1) throw UserError("--n must be at least 1");
    if (!options.conditions.empty()) {
      groups.push_back({labels_from_terms(meta, options.conditions), options.n_cells, {}, {}});
    } else {
      groups = training_proportions(meta, options.n_cells);
    }
  }
  return generate_groups(model, groups, options.sampling, sink);
}

}  // namespace lingshu
