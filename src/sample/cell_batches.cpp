#include "sample/cell_batches.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "core/error.h"
#include "data/conditions.h"
#include "data/preprocess.h"
#include "model/model.h"
#include "sample/cell_size.h"

namespace lingshu {

namespace {
// The requested group each planned group came from: a request's groups split into consecutive
// parts whose cells add up to its own.
std::vector<size_t> request_of_groups(const std::vector<CellGroup>& requested,
                                      const std::vector<CellGroup>& groups) {
  std::vector<size_t> out;
  size_t r = 0;
  int64_t left = requested.empty() ? 0 : requested[0].n_cells;
  for (const auto& g : groups) {
    while (left == 0 && r + 1 < requested.size()) left = requested[++r].n_cells;
    out.push_back(r);
    left -= g.n_cells;
  }
  return out;
}
}  // namespace

torch::Tensor cell_state_candidates(const MaskedDiffusionModelImpl& model, const torch::Tensor& labels) {
  const auto bank_labels = model.cell_state_labels();
  if (!bank_labels.defined()) return {};
  const auto used = bank_labels.select(1, 0).ge(0);
  // Agreement of every bank row with the labels: context fields weigh 2, the perturbation 1.
  const int64_t F = std::min(labels.size(0), bank_labels.size(1));
  auto agree = torch::zeros({bank_labels.size(0)}, torch::kDouble);
  if (F > 0) {
    auto weight = torch::full({F}, 2.0, torch::kDouble);
    const int64_t perturbation = model.config().perturbation_field;
    if (perturbation >= 0 && perturbation < F) weight[perturbation] = 1.0;
    const auto same = bank_labels.slice(1, 0, F).eq(labels.cpu().slice(0, 0, F).unsqueeze(0));
    agree = (same.to(torch::kDouble) * weight).sum(1);
  }
  agree.masked_fill_(used.logical_not(), -1.0);
  return agree.eq(agree.max()).nonzero().squeeze(1);
}

double transfer_weight(const ModelMetadata& meta, const std::vector<std::string>& labels) {
  const int pert = meta.config.perturbation_field;
  const int state = state_field_index(meta.conditions);
  if (pert < 0 || state < 0 || labels[static_cast<size_t>(state)].empty() ||
      labels[static_cast<size_t>(pert)].empty())
    return 1.0;
  const ConditionField& field = meta.conditions[static_cast<size_t>(pert)];
  if (field.transfer.empty()) return 1.0;
  const auto token = field.find(labels[static_cast<size_t>(pert)]);
  if (!token) {
    // A label training never saw (placed by its target genes): the measured perturbations' mean.
    double sum = 0;
    int n = 0;
    for (size_t i = 0; i < field.labels.size(); ++i) {
      if (field.labels[i] == field.control) continue;
      sum += field.transfer[i];
      ++n;
    }
    return n > 0 ? sum / n : 1.0;
  }
  // A pair some training cells had is predicted from them, whole.
  const int library = library_field_index(meta.conditions);
  for (const auto& c : meta.combinations) {
    bool same = true;
    for (size_t f = 0; f < labels.size() && same; ++f)
      same = static_cast<int>(f) == library || c.labels[f] == labels[f];
    if (same) return 1.0;
  }
  return field.transfer[static_cast<size_t>(*token - 1)];
}

GroupPlan plan_groups(const LoadedModel& loaded, const std::vector<CellGroup>& requested) {
  const ModelMetadata& meta = loaded.meta;
  for (const auto& g : requested) {
    if (g.n_cells < 1) throw UserError("every group of cells needs n_cells >= 1");
    if (!g.prefilled.empty() && static_cast<int64_t>(g.prefilled.size()) != g.n_cells) {
      throw UserError("pre-filled genes must be given for every cell of a group, or for none");
    }
  }
  std::vector<CellGroup> stated = requested;
  for (auto& g : stated) {
    fill_state_label(meta, g.labels);
    if (!g.shown_labels.empty()) fill_state_label(meta, g.shown_labels);
  }
  GroupPlan plan;
  plan.groups = with_library_labels(meta, stated);
  plan.request = request_of_groups(requested, plan.groups);
  const int64_t library = library_field_index(meta.conditions);
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    const auto& labels = plan.groups[g].labels;
    plan.encoded.push_back(encode_labels(meta, labels));
    plan.max_targets = std::max(plan.max_targets, static_cast<int64_t>(plan.encoded.back().targets.size()));
    plan.sizes.push_back(library >= 0 ? library_range(meta.conditions[static_cast<size_t>(library)],
                                                      labels[static_cast<size_t>(library)])
                                      : std::pair{0.0, std::numeric_limits<double>::infinity()});
    plan.transfer.push_back(transfer_weight(meta, labels));
    for (int64_t i = 0; i < plan.groups[g].n_cells; ++i) plan.rows.push_back({g, i});
    if (meta.config.gene_factors > 0) {
      const auto pool =
          cell_state_candidates(*loaded.network, torch::tensor(plan.encoded.back().tokens)).contiguous();
      plan.candidates.emplace_back(pool.data_ptr<int64_t>(), pool.data_ptr<int64_t>() + pool.numel());
    }
  }
  if (plan.rows.empty()) throw UserError("no cells to generate");
  return plan;
}

torch::Tensor representative_counts(const ModelMetadata& meta) {
  const int64_t G = meta.patching.n_genes, K = meta.config.n_tokens;
  auto out = torch::zeros({G, K}, torch::kFloat);
  auto acc = out.accessor<float, 2>();
  for (int64_t pos = 0; pos < G; ++pos) {
    const int gene = meta.patching.order[static_cast<size_t>(pos)];
    for (int64_t k = 1; k < K; ++k)
      acc[pos][k] = static_cast<float>(meta.tokenizer.representative(gene, static_cast<int>(k)));
  }
  return out;
}

torch::Tensor tilt_logits(const ModelMetadata& meta, const std::vector<GroupTilt>& tilts,
                          const GroupPlan& plan, const torch::Tensor& representative, int64_t begin,
                          int64_t n) {
  if (tilts.empty()) return {};
  const int64_t G = representative.size(0), K = representative.size(1);
  auto out = torch::zeros({n, meta.config.n_positions(), K}, torch::kFloat);
  std::map<size_t, torch::Tensor> of_group;  // [G, K] per requested group
  for (int64_t i = 0; i < n; ++i) {
    const size_t g = plan.request[plan.rows[static_cast<size_t>(begin + i)].group];
    const GroupTilt& tilt = tilts[g];
    if (tilt.t.empty()) continue;
    auto it = of_group.find(g);
    if (it == of_group.end()) {
      std::vector<float> by_position(static_cast<size_t>(G));
      for (int64_t pos = 0; pos < G; ++pos)
        by_position[static_cast<size_t>(pos)] =
            static_cast<float>(tilt.t[static_cast<size_t>(meta.patching.order[static_cast<size_t>(pos)])]);
      const auto t = torch::tensor(by_position).view({G, 1});
      it = of_group
               .emplace(g,
                        t * torch::log1p(representative * (kDefaultTargetSum / std::max(tilt.library, 1.0))))
               .first;
    }
    out[i].slice(0, 0, G).copy_(it->second);
  }
  return out;
}

BatchInputs batch_inputs(const GroupPlan& plan, const MaskedDiffusionModelImpl& model, int64_t begin,
                         int64_t n, BalancedDraw& states) {
  const ModelConfig& config = model.config();
  const int64_t F = config.n_conditions();
  BatchInputs in{torch::full({n, config.n_positions()}, config.n_tokens, torch::kLong),
                 torch::zeros({n, F}, torch::kLong),
                 torch::full({n, plan.max_targets}, -1, torch::kLong),
                 {},
                 {}};
  std::vector<int64_t> bank_rows;
  std::vector<double> transfer;
  for (int64_t i = 0; i < n; ++i) {
    const CellRow& row = plan.rows[static_cast<size_t>(begin + i)];
    const EncodedLabels& e = plan.encoded[row.group];
    for (int64_t f = 0; f < F; ++f) in.conditions[i][f] = e.tokens[static_cast<size_t>(f)];
    for (size_t k = 0; k < e.targets.size(); ++k) in.targets[i][static_cast<int64_t>(k)] = e.targets[k];
    transfer.push_back(plan.transfer[row.group]);
    const auto& prefilled = plan.groups[row.group].prefilled;
    if (!prefilled.empty()) {
      auto cell = in.initial[i];
      for (const auto& [pos, token] : prefilled[static_cast<size_t>(row.cell)]) cell[pos] = token;
    }
    if (!plan.candidates.empty()) {
      const auto& pool = plan.candidates[row.group];
      bank_rows.push_back(
          pool[static_cast<size_t>(states.pick(row.group, row.cell, static_cast<int64_t>(pool.size())))]);
    }
  }
  if (!bank_rows.empty()) in.states = model.banked_cell_states(torch::tensor(bank_rows));
  if (std::any_of(transfer.begin(), transfer.end(), [](double b) { return b < 1; }))
    in.transfer = torch::tensor(transfer, torch::kDouble);
  return in;
}

void check_guidance(const ModelMetadata& meta, const SamplingSettings& settings) {
  const GuideMode guide = parse_guide(settings.guide);
  const bool has_library = library_field_index(meta.conditions) >= 0;
  if ((settings.cfg > 0 || guide == GuideMode::Compose) &&
      meta.config.n_conditions() - (has_library ? 1 : 0) == 0) {
    throw UserError(
        "--cfg and --guide compose need a conditional model (trained with --condition); this one is "
        "unconditional");
  }
  if (guide == GuideMode::Perturbation && meta.config.perturbation_field < 0) {
    throw UserError("--guide perturbation needs a model trained with --perturbation; use --guide all");
  }
}

GuidedDenoiser::GuidedDenoiser(MaskedDiffusionModelImpl& model, const BatchInputs& inputs,
                               const SamplingSettings& settings, int64_t library_field,
                               const c10::Device& device, Precision precision)
    : model_(model), n_(inputs.conditions.size(0)), device_(device), precision_(precision) {
  const int64_t pert = model.config().perturbation_field;
  std::vector<torch::Tensor> conditions, targets;
  const auto add = [&](const torch::Tensor& c, const torch::Tensor& t, const torch::Tensor& weight) {
    conditions.push_back(c);
    targets.push_back(t);
    weights_.push_back(weight);
  };
  for (const auto& p : guidance_passes(inputs.conditions, inputs.targets, parse_guide(settings.guide),
                                       settings.cfg, pert, library_field)) {
    const auto weight = torch::full({n_}, p.weight, torch::kDouble);
    // A perturbation the model never saw is NULL plus its targets: it is seen through those.
    const bool sees_perturbation = pert >= 0 && (p.conditions.select(1, pert).ne(0).any().item<bool>() ||
                                                 p.targets.ge(0).any().item<bool>());
    if (!inputs.transfer.defined() || !sees_perturbation) {
      add(p.conditions, p.targets, weight);
      continue;
    }
    add(p.conditions, p.targets, weight * inputs.transfer);
    auto without = p.conditions.clone();
    without.select(1, pert).zero_();
    add(without, torch::full_like(p.targets, -1), weight * (1 - inputs.transfer));
  }
  conditions_ = torch::cat(conditions).to(device);
  targets_ = torch::cat(targets).to(device);
  // Every pass of a cell shares its state.
  if (inputs.states.defined()) states_ = inputs.states.repeat({static_cast<int64_t>(weights_.size()), 1});
}

torch::Tensor GuidedDenoiser::combine(const torch::Tensor& stacked, const torch::Tensor& rows) const {
  const int64_t m = stacked.size(0) / static_cast<int64_t>(weights_.size());
  std::vector<int64_t> shape(static_cast<size_t>(stacked.dim()), 1);
  shape[0] = m;
  const auto rows_cpu = rows.cpu();
  torch::Tensor out;
  for (size_t r = 0; r < weights_.size(); ++r) {
    const auto first = static_cast<int64_t>(r) * m;
    const auto weight =
        weights_[r].index_select(0, rows_cpu).to(stacked.device(), stacked.scalar_type()).view(shape);
    const auto term = weight * stacked.slice(0, first, first + m);
    out = out.defined() ? out + term : term;
  }
  return out;
}

torch::Tensor GuidedDenoiser::operator()(const torch::Tensor& z) const {
  const AutocastScope autocast(precision_, device_);
  const auto passes = static_cast<int64_t>(weights_.size());
  return combine(model_.forward(z.repeat({passes, 1}), conditions_, targets_, states_),
                 torch::arange(n_, torch::kLong));
}

torch::Tensor GuidedDenoiser::at(const torch::Tensor& z, const torch::Tensor& rows,
                                 const torch::Tensor& positions) const {
  const AutocastScope autocast(precision_, device_);
  const auto passes = static_cast<int64_t>(weights_.size());
  const auto offsets = (torch::arange(passes, rows.options()) * n_).repeat_interleave(rows.size(0));
  return combine(model_.forward_at(z.repeat({passes, 1}), conditions_, targets_,
                                   rows.repeat({passes}) + offsets, positions.repeat({passes}), states_),
                 rows);
}

std::vector<int64_t> strata_of_rows(const GroupPlan& plan) {
  const size_t n = plan.rows.size();
  std::vector<int64_t> stratum(n);
  int64_t id = -1;
  size_t start = 0;         // the current stratum's first row
  bool has_before = false;  // a stratum of the same request precedes it
  // Within a request a stratum ends only once it is large enough, so only a request's last one
  // can be small: it then joins the one before it.
  const auto end_request = [&](size_t end) {
    if (end - start < static_cast<size_t>(kMinStratum) && has_before)
      std::fill(stratum.begin() + static_cast<std::ptrdiff_t>(start),
                stratum.begin() + static_cast<std::ptrdiff_t>(end), id - 1);
  };
  for (size_t r = 0; r < n; ++r) {
    const size_t group = plan.rows[r].group;
    const bool new_request = r == 0 || plan.request[group] != plan.request[plan.rows[r - 1].group];
    const bool new_bin = r > 0 && group != plan.rows[r - 1].group;
    if (new_request || (new_bin && r - start >= static_cast<size_t>(kMinStratum))) {
      if (new_request) end_request(r);
      has_before = !new_request;
      ++id;
      start = r;
    }
    stratum[r] = id;
  }
  end_request(n);
  return stratum;
}

}  // namespace lingshu
