#include "sample/predict.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "core/error.h"
#include "core/seed.h"
#include "data/conditions.h"
#include "io/pairs.h"
#include "io/read_counts.h"
#include "model/model_dir.h"
#include "sample/expected_profile.h"

namespace lingshu {

namespace {

std::string field_list(const ModelMetadata& meta) {
  std::string out;
  for (const auto& f : meta.conditions) out += (out.empty() ? "" : ", ") + f.column;
  return out.empty() ? "none (an unconditional model)" : out;
}

// Column of each model condition field in the pairs file (-1 = absent: NULL).
std::vector<int> pairs_columns(const ModelMetadata& meta, const PredictionPairs& pairs, int pert_field) {
  for (const auto& c : pairs.columns) {
    if (std::none_of(meta.conditions.begin(), meta.conditions.end(),
                     [&](auto& f) { return f.column == c; })) {
      throw UserError(fmt::format("pairs column '{}' is not a condition of this model; its conditions: {}", c,
                                  field_list(meta)));
    }
  }
  std::vector<int> out;
  for (const auto& f : meta.conditions) out.push_back(pairs.column(f.column));
  if (out[static_cast<size_t>(pert_field)] < 0) {
    throw UserError(fmt::format("the pairs file has no '{}' column (the model's perturbation column)",
                                meta.conditions[static_cast<size_t>(pert_field)].column));
  }
  return out;
}

// Whether the model can place each row's perturbation (seen in training, or naming genes of the
// model). Every label is checked before anything is generated, so one message names every row
// the model cannot place; unknown perturbations pass only with `allow_unknown`.
std::vector<bool> unknown_perturbations(const ModelMetadata& meta, const PredictionPairs& pairs,
                                        const std::vector<int>& columns, bool allow_unknown) {
  constexpr size_t kListed = 12;
  std::vector<bool> unknown(pairs.rows.size(), false);
  std::vector<std::string> problems;
  const ConditionField* unknown_context = nullptr;
  for (size_t r = 0; r < pairs.rows.size(); ++r) {
    for (size_t f = 0; f < columns.size(); ++f) {
      if (columns[f] < 0) continue;
      const ConditionField& field = meta.conditions[f];
      const std::string& label = pairs.rows[r][static_cast<size_t>(columns[f])];
      if (label.empty() || field.find(label)) continue;
      if (field.is_perturbation) {
        if (!target_positions(field, label, meta.gene_names, meta.patching, meta.knowledge_genes).empty())
          continue;
        unknown[r] = true;
        if (allow_unknown) continue;
      } else if (!unknown_context) {
        unknown_context = &field;
      }
      if (problems.size() < kListed)
        problems.push_back(fmt::format("row {} {} '{}'", r + 1, field.column, label));
      else if (problems.size() == kListed)
        problems.emplace_back("...");
    }
  }
  if (problems.empty()) return unknown;
  const auto n_rows = std::count(unknown.begin(), unknown.end(), true);
  throw UserError(fmt::format(
      "the pairs file names labels the model never saw ({}); {}", fmt::join(problems, ", "),
      unknown_context
          ? fmt::format("known values of '{}': {}", unknown_context->column,
                        join_labels(unknown_context->labels))
          : fmt::format("{} row(s) name a perturbation that is neither a training label nor genes of "
                        "the model{}: pass --allow-unknown to predict them as their context's "
                        "perturbed state{}",
                        n_rows, meta.knowledge_genes.empty() ? "" : " or of its gene knowledge",
                        meta.knowledge_genes.empty()
                            ? ", or train with --gene-knowledge (README) so that named genes are known"
                            : "")));
}

// The prior of README "Prior injection" for one (context, perturbation) row.
class PriorInjector {
 public:
  PriorInjector(const PredictOptions& options, const ModelMetadata& meta, const ConditionField& pert_field,
                std::vector<std::string> context_cols)
      : options_(options),
        meta_(meta),
        pert_(pert_field),
        context_cols_(std::move(context_cols)),
        data_(read_counts_file(options.prior_data, options.prior_layer)) {
    std::map<std::string, int32_t> data_column;
    for (int64_t j = 0; j < data_.n_vars(); ++j)
      data_column.emplace(data_.gene_names()[j], static_cast<int32_t>(j));
    position_of_gene_ = meta.patching.position_of_gene();
    for (size_t g = 0; g < meta.gene_names.size(); ++g) {
      gene_index_.emplace(meta.gene_names[g], static_cast<int32_t>(g));
      const auto it = data_column.find(meta.gene_names[g]);
      if (it != data_column.end()) position_of_column_.emplace(it->second, position_of_gene_[g]);
    }
    if (position_of_column_.empty()) {
      throw UserError(
          fmt::format("--prior {}: none of the model's genes is in this file; pass the training data",
                      options.prior_data.string()));
    }
    row_contexts_ = contexts_of_rows(data_.obs, context_cols_);
    data_.obs.require(pert_.column, "obs");
  }

  const std::vector<std::string>& context_columns() const { return context_cols_; }

  // Pre-filled genes for `n` cells of `perturbation` in `context` (a label per context column),
  // and a note saying what they are.
  std::pair<std::vector<std::vector<PrefilledGene>>, std::string> prefill(
      const std::vector<std::string>& context, const std::string& perturbation, int64_t n,
      uint64_t seed) const {
    const auto down = consistently_down_genes(data_.X, data_.obs, context_cols_, pert_.column, pert_.control,
                                              perturbation, context, options_.prior);
    const auto controls = cells_of(context, pert_.control);
    const std::string context_name = fmt::format("{}", fmt::join(context, "/"));
    if (controls.empty()) {
      throw UserError(
          fmt::format("--prior: context '{}' has no '{}' cells in {} to start perturbed cells from",
                      context_name, pert_.control, options_.prior_data.string()));
    }
    // Targets: pre-filled at zero as a knock-down only when no other context measured the
    // perturbation; otherwise the data decide (a target that went down is in `down`).
    require_gene_targets(perturbation);
    std::vector<int32_t> zero_targets;
    const bool measured_elsewhere = contexts_measuring(perturbation, context) > 0;
    if (!measured_elsewhere && perturbation != pert_.control) {
      for (const auto& part : split_perturbation_label(perturbation)) {
        const auto gene = gene_index_.find(part);  // a target only the gene knowledge names stays free
        if (gene != gene_index_.end())
          zero_targets.push_back(position_of_gene_[static_cast<size_t>(gene->second)]);
      }
    }
    std::vector<std::pair<int32_t, const DownRegulatedGene*>> thinned;  // (position, gene)
    for (const auto& d : down) {
      const auto it = position_of_column_.find(d.gene);
      if (it != position_of_column_.end()) thinned.emplace_back(it->second, &d);
    }
    std::vector<std::vector<PrefilledGene>> cells(static_cast<size_t>(n));
    std::mt19937_64 rng(seed);
    for (auto& cell : cells) {
      const int64_t source = controls[std::uniform_int_distribution<size_t>(0, controls.size() - 1)(rng)];
      const auto cols = data_.X.row_indices(source);
      const auto vals = data_.X.row_values(source);
      for (const auto& [pos, gene] : thinned) {
        const auto at = std::lower_bound(cols.begin(), cols.end(), gene->gene);
        const float count =
            at != cols.end() && *at == gene->gene ? vals[static_cast<size_t>(at - cols.begin())] : 0.f;
        const int64_t kept = std::binomial_distribution<int64_t>(static_cast<int64_t>(count),
                                                                 std::clamp(gene->ratio, 0.0, 1.0))(rng);
        cell.emplace_back(pos, static_cast<uint8_t>(meta_.tokenizer.encode(static_cast<float>(kept))));
      }
      for (const int32_t pos : zero_targets)
        cell.emplace_back(pos, static_cast<uint8_t>(meta_.tokenizer.encode(0.f)));
    }
    std::string note = fmt::format(
        "prior for {} in {}: {} genes consistently down in other contexts thinned from "
        "{} control cells",
        perturbation, context_name, thinned.size(), controls.size());
    if (!zero_targets.empty())
      note += fmt::format("; {} target gene(s) set to 0 (knock-down)", zero_targets.size());
    if (!measured_elsewhere && zero_targets.empty() && thinned.empty()) {
      note +=
          " (no other context measured it and its targets are not genes of the model: nothing to pre-fill)";
    }
    return {std::move(cells), note};
  }

 private:
  // A label that names some genes of the model (measured or in its gene knowledge) but not all of
  // them is most likely a typo or a gene the model was not trained on: the prior cannot place it.
  void require_gene_targets(const std::string& perturbation) const {
    const auto parts = split_perturbation_label(perturbation);
    const auto& known = meta_.knowledge_genes;
    std::vector<std::string> missing;
    for (const auto& p : parts) {
      if (!gene_index_.contains(p) && std::find(known.begin(), known.end(), p) == known.end())
        missing.push_back(p);
    }
    if (!missing.empty() && missing.size() < parts.size()) {
      throw UserError(
          fmt::format("--prior: target '{}' of '{}' is not a gene of the model; fix the label or "
                      "train on a gene list that includes it",
                      missing.front(), perturbation));
    }
  }

  std::vector<int64_t> cells_of(const std::vector<std::string>& context, const std::string& label) const {
    const Column& p = *data_.obs.find(pert_.column);
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < data_.n_obs(); ++i) {
      if (row_contexts_[static_cast<size_t>(i)] == context && p.label(i) == label) rows.push_back(i);
    }
    return rows;
  }

  int64_t contexts_measuring(const std::string& perturbation, const std::vector<std::string>& except) const {
    const Column& p = *data_.obs.find(pert_.column);
    std::map<std::vector<std::string>, int64_t> n;
    for (int64_t i = 0; i < data_.n_obs(); ++i) {
      const auto& ctx = row_contexts_[static_cast<size_t>(i)];
      if (ctx && *ctx != except && p.label(i) == perturbation) ++n[*ctx];
    }
    return std::count_if(n.begin(), n.end(), [&](auto& kv) { return kv.second >= options_.prior.min_cells; });
  }

  const PredictOptions& options_;
  const ModelMetadata& meta_;
  const ConditionField& pert_;
  std::vector<std::string> context_cols_;
  AnnData data_;
  std::vector<std::optional<std::vector<std::string>>> row_contexts_;  // each data row's context labels
  std::map<std::string, int32_t> gene_index_;                          // model gene name -> model gene index
  std::vector<int32_t> position_of_gene_;          // model gene index -> sequence position
  std::map<int32_t, int32_t> position_of_column_;  // prior data column -> sequence position
};

}  // namespace

Prediction predict_perturbations(const PredictOptions& options, const CellSink& sink) {
  const LoadedModel model = load_model(options.model_dir, options.sampling.device);
  const ModelMetadata& meta = model.meta;
  const int pert = meta.config.perturbation_field;
  if (pert < 0) {
    throw UserError(fmt::format("{} has no perturbation field; train it with --perturbation COLUMN",
                                options.model_dir.string()));
  }
  const ConditionField& pert_field = meta.conditions[static_cast<size_t>(pert)];
  const PredictionPairs pairs = read_prediction_pairs(options.pairs);
  const auto columns = pairs_columns(meta, pairs, pert);
  const auto unknown = unknown_perturbations(meta, pairs, columns, options.allow_unknown);

  std::optional<PriorInjector> prior;
  if (!options.prior_data.empty()) {
    std::vector<std::string> contexts;
    for (const auto& c : pairs.columns) {
      if (c != pert_field.column) contexts.push_back(c);
    }
    if (contexts.empty()) {
      throw UserError(fmt::format(
          "--prior needs a context column (e.g. cell_type) beside '{}' in the pairs file: the prior comes "
          "from the perturbation's effect in the other contexts",
          pert_field.column));
    }
    prior.emplace(options, meta, pert_field, std::move(contexts));
  }

  Prediction out;
  std::vector<CellGroup> perturbed, controls;
  std::map<std::vector<std::string>, size_t> control_of_context;
  std::vector<std::string> unknown_labels;
  for (size_t r = 0; r < pairs.rows.size(); ++r) {
    std::vector<std::string> labels(meta.conditions.size());
    for (size_t f = 0; f < labels.size(); ++f) {
      if (columns[f] >= 0) labels[f] = pairs.rows[r][static_cast<size_t>(columns[f])];
    }
    const std::string& label = labels[static_cast<size_t>(pert)];
    auto context = labels;
    context[static_cast<size_t>(pert)] = pert_field.control;
    const int64_t n_control = options.n_control > 0 ? options.n_control : pairs.n_cells[r];
    const auto [it, inserted] = control_of_context.emplace(context, controls.size());
    if (inserted) {
      controls.push_back({context, n_control, {}, {}});
    } else if (options.n_control <= 0) {
      controls[it->second].n_cells = std::max(controls[it->second].n_cells, n_control);
    }
    if (label == pert_field.control) continue;  // its control cells are generated once per context
    CellGroup group{labels, pairs.n_cells[r], {}, {}};
    if (unknown[r]) {
      fill_state_label(meta, group.labels);
      group.shown_labels = group.labels;
      group.labels[static_cast<size_t>(pert)].clear();
      unknown_labels.push_back(label);
      out.notes.push_back(
          fmt::format("{} is not a perturbation of the model: predicted as the perturbed state of "
                      "its context (--allow-unknown)",
                      label));
    } else if (prior) {
      std::vector<std::string> ctx;
      for (const auto& column : prior->context_columns())
        ctx.push_back(pairs.rows[r][static_cast<size_t>(pairs.column(column))]);
      auto [cells, note] = prior->prefill(ctx, label, group.n_cells, mix_seed(options.sampling.seed, r));
      group.prefilled = std::move(cells);
      out.notes.push_back(std::move(note));
    }
    perturbed.push_back(std::move(group));
  }
  std::vector<CellGroup> groups = std::move(perturbed);
  groups.insert(groups.end(), controls.begin(), controls.end());
  if (options.expected) {
    out.cells = expected_cells(model, groups, options.sampling, sink);
  } else {
    out.cells =
        generate_groups(model, groups, options.sampling, sink, anchor_tilts(model, groups, options.sampling));
    out.cells.uns_strings.emplace_back("lingshu_prediction", "sampled cells");
  }
  out.start = describe_anchors(meta, groups);
  out.cells.uns_strings.emplace_back("lingshu_start", out.start);
  out.cells.uns_strings.emplace_back("lingshu_predict_pairs", options.pairs.string());
  out.cells.uns_strings.emplace_back(
      "lingshu_unknown_perturbations",
      unknown_labels.empty() ? "none" : fmt::format("{}", fmt::join(unknown_labels, ",")));
  out.cells.uns_strings.emplace_back("lingshu_prior",
                                     options.prior_data.empty() ? "none" : options.prior_data.string());
  return out;
}

}  // namespace lingshu
