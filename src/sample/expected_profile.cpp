#include "sample/expected_profile.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "core/seed.h"
#include "data/conditions.h"
#include "data/pseudobulk_cells.h"
#include "eval/stats.h"
#include "model/model.h"
#include "sample/cell_batches.h"

namespace lingshu {

namespace {
constexpr double kTargetSum = 1e4;

// anchor_tilts: Newton rounds on each gene's tilt, and bounds on them. The mean log value is convex
// in the tilt, most of all for a gene the model rarely expresses (variance ~0 at no tilt, and a tilt
// of 2 made one with a mean of 0.01 come out at 2.8): steps are capped and the variance floored.
constexpr int kTiltRounds = 3;
constexpr double kMinTiltVariance = 0.05;
constexpr double kMaxTiltStep = 0.5;
constexpr double kMaxTilt = 4.0;
// A moved target gene's tilt (anchor_tilts): a highly expressed gene that the model almost never
// draws at 0 needs more than kMaxTilt to fall 10-fold; its steps are capped at kMaxTilt.
constexpr double kMaxMovedTilt = 12.0;
// A context without perturbed cells in a model of one perturbation: the share of its anchored
// profile taken from its controls moved as the other contexts' move (the additive baseline's
// prediction) rather than by the model's shift. The model's shift is shorter than the real response
// (its label combinations are shrunk towards all cells, and a logit shift carries a strong responder's
// effect only in part) and the average move carries the other contexts' own responses; their errors
// differ, and a quarter of the average move (measured with equal weights, before the move weighted
// contexts by their controls' likeness) beat either alone and half of it (BENCHMARKS.md, "A held-out
// context of one perturbation").
constexpr double kAverageMoveWeight = 0.25;
// perturbed_from_controls: how fast a context's weight falls with the correlation of its controls
// with the predicted context's (centred). 0.5 measured best of 0.1 / 0.25 / 0.5 on Kang's seven cell
// types held out in turn (BENCHMARKS.md, "A held-out context of one perturbation").
constexpr double kSimilarityScale = 0.5;

// The sampler's distribution of each gene's token: softmax at the temperature (0: the most likely
// token); a pre-filled gene keeps its token. logits [n, G, K], initial [n, G].
torch::Tensor token_probabilities(const torch::Tensor& logits, const torch::Tensor& initial,
                                  double temperature, int64_t mask_token) {
  const int64_t K = logits.size(-1);
  auto p = temperature > 0 ? torch::softmax(logits / temperature, -1)
                           : torch::one_hot(logits.argmax(-1), K).to(torch::kFloat);
  const auto given = initial.lt(mask_token);
  if (given.any().item<bool>()) {
    const auto fixed = torch::one_hot(initial.clamp_max(K - 1), K).to(torch::kFloat);
    p = torch::where(given.unsqueeze(-1), fixed, p);
  }
  return p;
}
}  // namespace

std::vector<ExpectedProfile> expected_profiles(const LoadedModel& loaded,
                                               const std::vector<CellGroup>& groups,
                                               const SamplingSettings& settings,
                                               const std::vector<std::vector<std::string>>& references,
                                               const std::vector<GroupTilt>& tilts) {
  const ModelMetadata& meta = loaded.meta;
  check_guidance(meta, settings);
  const GroupPlan plan = plan_groups(loaded, groups);
  const auto device = resolve_device(loaded.device);
  const auto precision = resolve_precision(settings.precision, device);
  MaskedDiffusionModelImpl& model = *loaded.network;
  torch::NoGradGuard no_grad;
  const int64_t G = meta.config.n_genes;
  const int64_t pert = meta.config.perturbation_field;
  const int64_t state_field = state_field_index(meta.conditions);
  // Each group's reference tokens (perturbation, state), or none.
  std::vector<std::optional<std::pair<int64_t, int64_t>>> reference_tokens(groups.size());
  for (size_t g = 0; g < references.size() && pert >= 0; ++g) {
    if (references[g].empty()) continue;
    const auto tokens = encode_labels(meta, references[g]).tokens;
    reference_tokens[g] = {tokens[static_cast<size_t>(pert)],
                           state_field >= 0 ? tokens[static_cast<size_t>(state_field)] : 0};
  }
  const bool with_reference = std::any_of(reference_tokens.begin(), reference_tokens.end(),
                                          [](const auto& r) { return r.has_value(); });
  const int64_t library = library_field_index(meta.conditions);
  const auto representative = representative_counts(meta);
  // Each cell's expected log1p CP10k [n, G], its variance [n, G] and the expected total [n] under the
  // denoiser's logits (plus `tilt`, when defined).
  struct CellValues {
    torch::Tensor mean, variance, total;
  };
  const auto expected_values = [&](const BatchInputs& inputs, const torch::Tensor& tilt) {
    const GuidedDenoiser denoiser(model, inputs, settings, library, device, precision);
    auto logits = denoiser(inputs.initial.to(device)).to(torch::kCPU, torch::kFloat);
    if (tilt.defined()) logits += tilt;
    const auto p = token_probabilities(logits.slice(1, 0, G), inputs.initial.slice(1, 0, G),
                                       settings.temperature, meta.config.n_tokens);
    const auto total = (p * representative).sum({1, 2});
    const auto scale = (kTargetSum / total.clamp_min(1e-6)).view({-1, 1, 1});
    const auto v = torch::log1p(representative * scale);
    const auto mean = (p * v).sum(-1);
    return CellValues{mean.to(torch::kDouble), ((p * v * v).sum(-1) - mean * mean).to(torch::kDouble), total};
  };
  std::vector<torch::Tensor> sums(groups.size()), variance_sums(groups.size()), reference_sums(groups.size());
  for (auto* all : {&sums, &variance_sums, &reference_sums}) {
    for (auto& s : *all) s = torch::zeros({G}, torch::kDouble);
  }
  std::vector<std::vector<double>> totals(groups.size());
  BalancedDraw states(settings.seed);
  const auto n_total = static_cast<int64_t>(plan.rows.size());
  for (int64_t begin = 0; begin < n_total; begin += settings.batch_size) {
    const int64_t n = std::min(settings.batch_size, n_total - begin);
    const BatchInputs inputs = batch_inputs(plan, model, begin, n, states);
    const auto cells = expected_values(inputs, tilt_logits(meta, tilts, plan, representative, begin, n));
    torch::Tensor reference_values;
    if (with_reference) {  // the same cells, states and sizes under their reference labels
      BatchInputs reference = inputs;
      reference.conditions = inputs.conditions.clone();
      reference.targets = torch::full_like(inputs.targets, -1);
      reference.transfer = torch::Tensor();
      for (int64_t i = 0; i < n; ++i) {
        const auto& tokens = reference_tokens[plan.request[plan.rows[static_cast<size_t>(begin + i)].group]];
        if (!tokens) continue;
        reference.conditions[i][pert] = tokens->first;
        if (state_field >= 0) reference.conditions[i][state_field] = tokens->second;
      }
      reference_values = expected_values(reference, torch::Tensor()).mean;
    }
    for (int64_t i = 0; i < n; ++i) {
      const CellRow& row = plan.rows[static_cast<size_t>(begin + i)];
      const size_t g = plan.request[row.group];
      sums[g] += cells.mean[i];
      variance_sums[g] += cells.variance[i];
      if (reference_tokens[g]) reference_sums[g] += reference_values[i];
      const auto [lo, hi] = plan.sizes[row.group];
      totals[g].push_back(std::clamp(cells.total[i].item<double>(), lo, hi));
    }
  }
  // Per group, a [G] sum in sequence order as a mean per gene in the model's gene order.
  const auto by_gene = [&](const torch::Tensor& sum, int64_t n_cells) {
    const auto mean = (sum / static_cast<double>(n_cells)).contiguous();
    const double* by_position = mean.data_ptr<double>();
    std::vector<double> out(static_cast<size_t>(G), 0.0);
    for (int64_t pos = 0; pos < G; ++pos)
      out[static_cast<size_t>(meta.patching.order[static_cast<size_t>(pos)])] = by_position[pos];
    return out;
  };
  std::vector<ExpectedProfile> out(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    out[g].log_profile = by_gene(sums[g], groups[g].n_cells);
    out[g].log_variance = by_gene(variance_sums[g], groups[g].n_cells);
    if (reference_tokens[g]) out[g].reference_log_profile = by_gene(reference_sums[g], groups[g].n_cells);
    out[g].library_size = median(totals[g]);
  }
  return out;
}

namespace {

// Where each group's anchored profile starts (nullptr: nowhere, the model's own profile) and the
// labels its model shift is taken from (empty: none, the start itself): see anchored_profiles.
struct Anchors {
  std::vector<const ObservedState*> start;
  std::vector<std::vector<std::string>> references;
  // Per group, the gene columns its perturbation targets where no context measured that target
  // (ConditionField::target_log_ratio moves them).
  std::vector<std::vector<int64_t>> unmeasured_targets;
  // Per group of a model without a state field (one perturbation) whose context has no perturbed
  // cells: its controls moved as the other contexts' controls move to their perturbed cells, which a
  // share kAverageMoveWeight of its anchored profile comes from (nullptr: none).
  std::vector<const ObservedState*> average_move;
  // The observed states as estimated across contexts, which predicted groups start from, and the
  // perturbed states of contexts that measured only controls (perturbed_from_controls); shared so
  // that `start` and `average_move` stay valid in every copy.
  std::shared_ptr<const std::vector<ObservedState>> estimated;
  std::shared_ptr<std::vector<ObservedState>> imputed;
  bool any() const {
    return std::any_of(start.begin(), start.end(), [](const auto* s) { return s != nullptr; });
  }
};

// The gene columns that `label` targets and that no training label names alone.
std::vector<int64_t> targets_never_measured(const ModelMetadata& meta, const ConditionField& field,
                                            const std::string& label) {
  std::vector<int64_t> out;
  for (const auto& part : split_perturbation_label(label)) {
    const auto gene = std::find(meta.gene_names.begin(), meta.gene_names.end(), part);
    if (gene != meta.gene_names.end() && !field.find(part)) out.push_back(gene - meta.gene_names.begin());
  }
  return out;
}

// A level moved as `reference` -> `to` moves: a rise added, a fall scaled. A mean log value cannot
// fall below 0; a fall taken as a difference from a higher reference emptied genes on a lower start
// (Kang's CD4T: 208 genes its controls express predicted at exactly 0, each then a top-ranked
// spurious DE gene); as a ratio the gene falls as far in proportion, and where the start is the
// reference the two agree.
double moved_level(double start, double to, double reference) {
  return to >= reference ? start + to - reference : start * to / reference;
}

// The perturbed state of a context whose perturbed cells were all held out (a patient's treated
// cells): its controls moved as the contexts that measured both states moved from their controls to
// their perturbed cells, on average, each context weighted by how alike its controls are to these
// (exp(r / kSimilarityScale), r the correlation of the two control profiles, both centred on the mean
// of every context's controls). Without it, what every perturbation of a context shares (carried by
// the state's own label, which the context never had) is missing: the perturbation's label carries
// only its tilt of that state. Weighted, a monocyte type takes the other monocytes' far larger
// response; contexts that all look alike get near-equal weights. Appended to `into`; nullptr when no
// other context measured both.
const ObservedState* perturbed_from_controls(const std::vector<ObservedState>& states,
                                             const ObservedState& control, std::vector<ObservedState>& into) {
  constexpr std::string_view kControl = "control", kPerturbed = "perturbed";
  const size_t n_genes = control.log_profile.size();
  std::vector<double> centre(n_genes, 0.0);
  int n_controls = 0;
  for (const auto& s : states) {
    if (!s.label.ends_with(kControl)) continue;
    for (size_t j = 0; j < n_genes; ++j) centre[j] += s.log_profile[j];
    ++n_controls;
  }
  const auto centred = [&](const ObservedState& s) {
    std::vector<double> out(n_genes);
    for (size_t j = 0; j < n_genes; ++j) out[j] = s.log_profile[j] - centre[j] / n_controls;
    return out;
  };
  const auto own = centred(control);
  std::vector<double> to(n_genes, 0.0), from(n_genes, 0.0);
  double library_ratio = 0, total_weight = 0;
  for (const auto& perturbed : states) {
    if (!perturbed.label.ends_with(kPerturbed)) continue;
    const auto context = perturbed.label.substr(0, perturbed.label.size() - kPerturbed.size());
    const ObservedState* its_control = find_state(states, context + std::string(kControl));
    if (!its_control) continue;
    const double r = pearson_correlation(own, centred(*its_control));
    const double weight = std::exp((std::isfinite(r) ? r : 0.0) / kSimilarityScale);
    for (size_t j = 0; j < n_genes; ++j) {
      to[j] += weight * perturbed.log_profile[j];
      from[j] += weight * its_control->log_profile[j];
    }
    library_ratio += weight * perturbed.library_size / its_control->library_size;
    total_weight += weight;
  }
  if (total_weight == 0) return nullptr;
  ObservedState& out = into.emplace_back(control);
  out.label = control.label.substr(0, control.label.size() - kControl.size()) + std::string(kPerturbed);
  out.n_cells = 0;
  out.library_size = control.library_size * library_ratio / total_weight;
  for (size_t j = 0; j < n_genes; ++j)
    out.log_profile[j] = moved_level(control.log_profile[j], to[j] / total_weight, from[j] / total_weight);
  return &out;
}

Anchors plan_anchors(const ModelMetadata& meta, const std::vector<CellGroup>& groups) {
  const auto& observed = meta.observed_states;
  Anchors out{std::vector<const ObservedState*>(groups.size(), nullptr),
              std::vector<std::vector<std::string>>(groups.size()),
              std::vector<std::vector<int64_t>>(groups.size()),
              std::vector<const ObservedState*>(groups.size(), nullptr),
              std::make_shared<const std::vector<ObservedState>>(estimated_across_contexts(observed)),
              std::make_shared<std::vector<ObservedState>>()};
  out.imputed->reserve(groups.size());  // `start` and `average_move` point into it
  const int pert = meta.config.perturbation_field;
  if (pert < 0) return out;
  const int state = state_field_index(meta.conditions);
  const ConditionField& field = meta.conditions[static_cast<size_t>(pert)];
  const auto estimate_of = [&](const ObservedState* s) { return &(*out.estimated)[s - observed.data()]; };
  std::map<const ObservedState*, const ObservedState*> moved_controls;  // perturbed_from_controls
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& labels = groups[g].shown_labels.empty() ? groups[g].labels : groups[g].shown_labels;
    auto control_labels = labels;
    control_labels[static_cast<size_t>(pert)] = field.control;
    const ObservedState* own = find_state(observed, state_label(meta.conditions, labels));
    const ObservedState* control = find_state(observed, state_label(meta.conditions, control_labels));
    // Controls, and without a state field (one perturbation) a measured pair: the cells themselves.
    if (labels[static_cast<size_t>(pert)] == field.control || (own && state < 0)) {
      out.start[g] = own;
      continue;
    }
    auto reference = groups[g].labels;
    const ObservedState* perturbed = nullptr;
    if (!own && control) {  // one move per context, however many of its pairs are asked for
      const auto [it, is_new] = moved_controls.try_emplace(control, nullptr);
      if (is_new) it->second = perturbed_from_controls(*out.estimated, *estimate_of(control), *out.imputed);
      perturbed = it->second;
    }
    if (own) {  // the context's perturbed state, perturbation NULL
      reference[static_cast<size_t>(pert)].clear();
      reference[static_cast<size_t>(state)] = own->label;
      out.start[g] = estimate_of(own);
    } else if (perturbed && state >= 0) {
      // the context's controls moved into the perturbed state, plus the model's shift from them
      reference[static_cast<size_t>(pert)] = field.control;
      reference[static_cast<size_t>(state)] = control->label;
      out.start[g] = perturbed;
    } else if (control) {  // the context's controls
      reference[static_cast<size_t>(pert)] = field.control;
      if (state >= 0) reference[static_cast<size_t>(state)] = control->label;
      out.start[g] = estimate_of(control);
      out.average_move[g] = perturbed;
    } else {
      continue;
    }
    out.references[g] = std::move(reference);
    if (field.target_effects > 0)
      out.unmeasured_targets[g] = targets_never_measured(meta, field, labels[static_cast<size_t>(pert)]);
  }
  return out;
}

// The anchored profile of a group whose model profile is `p`: the start moved as the model moves
// from its reference.
std::vector<double> anchored(const ExpectedProfile& p, const ObservedState& start, bool shifted) {
  if (!shifted) return start.log_profile;
  std::vector<double> out(p.log_profile.size());
  for (size_t j = 0; j < out.size(); ++j) {
    out[j] = moved_level(start.log_profile[j], p.log_profile[j], p.reference_log_profile[j]);
  }
  return out;
}

}  // namespace

std::string describe_anchors(const ModelMetadata& meta, const std::vector<CellGroup>& groups) {
  const Anchors anchors = plan_anchors(meta, groups);
  int64_t observed = 0, from_state = 0, from_controls = 0, imputed = 0, model_only = 0, estimated = 0;
  const auto& made = *anchors.imputed;
  for (size_t g = 0; g < groups.size(); ++g) {
    const ObservedState* start = anchors.start[g];
    if (!start) {
      ++model_only;
    } else if (anchors.references[g].empty()) {
      ++observed;
    } else if (!made.empty() && start >= made.data() && start < made.data() + made.size()) {
      ++imputed;
    } else {
      ++(start->label.ends_with("control") ? from_controls : from_state);
      estimated += start->log_profile != find_state(meta.observed_states, start->label)->log_profile;
    }
  }
  std::vector<std::string> parts;
  const auto add = [&](int64_t n, const char* what) {
    if (n > 0) parts.push_back(fmt::format("{} group(s) {}", n, what));
  };
  add(observed, "as their training cells measured them");
  add(from_state, "from their context's observed perturbed state plus the model's shift");
  add(from_controls, "from their context's observed controls plus the model's shift from them");
  add(imputed,
      "from their context's observed controls moved as the other contexts' controls move to their "
      "perturbed cells, plus the model's shift from its controls (the context has no perturbed state)");
  add(model_only, "from the model alone (nothing observed to start from)");
  std::string note =
      estimated > 0
          ? fmt::format(" (for {} of them, that start is estimated across contexts, not its cells' mean)",
                        estimated)
          : "";
  const auto averaged = std::count_if(anchors.average_move.begin(), anchors.average_move.end(),
                                      [](const auto* m) { return m != nullptr; });
  if (averaged > 0) {
    note += fmt::format(
        "; for {} of them, {:g}% of the profile is their controls moved as the other contexts' controls "
        "move to their perturbed cells",
        averaged, 100 * kAverageMoveWeight);
  }
  int64_t moved = 0;
  for (const auto& t : anchors.unmeasured_targets) moved += std::ssize(t);
  if (moved > 0) {
    const auto& field = meta.conditions[static_cast<size_t>(meta.config.perturbation_field)];
    note += fmt::format(
        "; {} target gene(s) no training label names alone moved x{:.3g}, the median effect of a trained "
        "perturbation on its own target ({} measured)",
        moved, std::exp(field.target_log_ratio), field.target_effects);
  }
  return fmt::format("started {}{}", fmt::join(parts, "; "), note);
}

namespace {

// The model's profiles (with each anchored group's reference) and each anchored group's target.
struct AnchoredRun {
  Anchors anchors;
  std::vector<ExpectedProfile> model;
  std::vector<std::vector<double>> targets;  // empty for a group with nothing observed
};

AnchoredRun run_anchored(const LoadedModel& loaded, const std::vector<CellGroup>& groups,
                         const SamplingSettings& settings, Anchors anchors) {
  AnchoredRun run{std::move(anchors), {}, std::vector<std::vector<double>>(groups.size())};
  run.model = expected_profiles(loaded, groups, settings, run.anchors.references);
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!run.anchors.start[g]) continue;
    run.targets[g] = anchored(run.model[g], *run.anchors.start[g], !run.anchors.references[g].empty());
    if (const ObservedState* moved = run.anchors.average_move[g]) {
      for (size_t j = 0; j < run.targets[g].size(); ++j)
        run.targets[g][j] += kAverageMoveWeight * (moved->log_profile[j] - run.targets[g][j]);
    }
    const auto& field = loaded.meta.conditions[static_cast<size_t>(loaded.meta.config.perturbation_field)];
    for (const int64_t j : run.anchors.unmeasured_targets[g])
      run.targets[g][static_cast<size_t>(j)] *= std::exp(field.target_log_ratio);
  }
  return run;
}

// The tilts tried on one gene nearest its target from below and from above (its mean log value
// rises with the tilt). Given the latest, the next tilt is where the straight line between the two
// meets the target (false position): it stays between them however far from linear the level is.
struct TiltBracket {
  std::optional<std::pair<double, double>> below, above;  // (tilt, level)
  std::optional<double> next(double tilt, double level, double target) {
    (level < target ? below : above) = std::pair{tilt, level};
    if (!below || !above || above->second <= below->second) return std::nullopt;
    return below->first +
           (target - below->second) * (above->first - below->first) / (above->second - below->second);
  }
};

}  // namespace

std::vector<ExpectedProfile> anchored_profiles(const LoadedModel& loaded,
                                               const std::vector<CellGroup>& groups,
                                               const SamplingSettings& settings) {
  AnchoredRun run = run_anchored(loaded, groups, settings, plan_anchors(loaded.meta, groups));
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!run.anchors.start[g]) continue;
    run.model[g].log_profile = std::move(run.targets[g]);
    run.model[g].library_size = run.anchors.start[g]->library_size;
  }
  return run.model;
}

std::vector<GroupTilt> anchor_tilts(const LoadedModel& loaded, const std::vector<CellGroup>& groups,
                                    const SamplingSettings& settings) {
  Anchors anchors = plan_anchors(loaded.meta, groups);
  if (!anchors.any()) return {};
  const AnchoredRun run = run_anchored(loaded, groups, settings, std::move(anchors));
  std::vector<GroupTilt> tilts(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!run.targets[g].empty())
      tilts[g] = {std::vector<double>(run.targets[g].size(), 0.0), run.model[g].library_size};
  }
  // Newton steps on each gene's tilt: the mean log value moves by about its variance per unit of t.
  // A target gene moved by the typical effect on a perturbation's own target (often 10-fold down) is
  // far from anything the model draws: its steps and its tilt go further, and once two tilts lie
  // either side of its target, the next is taken between them. (Its mean log value is S-shaped in
  // the tilt: capped at kMaxTilt, a highly expressed target stopped at 1.4 of a targeted 0.34; one
  // uncapped Newton step overshot to 0.001.)
  std::vector<std::vector<TiltBracket>> brackets(groups.size());
  std::vector<ExpectedProfile> tilted;
  for (int round = 0; round < kTiltRounds; ++round) {
    if (round > 0) tilted = expected_profiles(loaded, groups, settings, {}, tilts);
    const auto& profiles = round > 0 ? tilted : run.model;
    for (size_t g = 0; g < groups.size(); ++g) {
      const auto& target = run.targets[g];
      const auto& level = profiles[g].log_profile;
      const auto& moved = run.anchors.unmeasured_targets[g];
      std::vector<double> max_step(target.size(), kMaxTiltStep), max_tilt(target.size(), kMaxTilt);
      std::vector<std::optional<double>> between(target.size());
      brackets[g].resize(moved.size());
      for (size_t k = 0; k < moved.size(); ++k) {
        const auto j = static_cast<size_t>(moved[k]);
        max_step[j] = kMaxTilt;
        max_tilt[j] = kMaxMovedTilt;
        between[j] = brackets[g][k].next(tilts[g].t[j], level[j], target[j]);
      }
      for (size_t j = 0; j < target.size(); ++j) {
        if (between[j]) {
          tilts[g].t[j] = *between[j];
          continue;
        }
        const double step = (target[j] - level[j]) / std::max(profiles[g].log_variance[j], kMinTiltVariance);
        tilts[g].t[j] = std::clamp(tilts[g].t[j] + std::clamp(step, -max_step[j], max_step[j]), -max_tilt[j],
                                   max_tilt[j]);
      }
    }
  }
  return tilts;
}

AnnData expected_cells(const LoadedModel& loaded, const std::vector<CellGroup>& groups,
                       const SamplingSettings& settings, const CellSink& sink) {
  AnnData out;
  out.X.n_cols = loaded.meta.config.n_genes;
  // Every process makes the (cheap, seeded) cells of every group and keeps its share of the rows,
  // so the shares laid end to end are the file one process writes.
  int64_t n_total = 0;
  for (const auto& g : groups) n_total += g.n_cells;
  const int64_t first = n_total * settings.shard.index / settings.shard.count;
  const int64_t end = n_total * (settings.shard.index + 1) / settings.shard.count;
  const auto profiles = anchored_profiles(loaded, groups, settings);
  CsrMatrix mine;
  mine.n_cols = out.X.n_cols;
  int64_t row = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const int64_t n = groups[g].n_cells;
    if (row + n > first && row < end) {
      const CsrMatrix cells = counts_for_log_pseudobulk(profiles[g].log_profile, n, profiles[g].library_size,
                                                        mix_seed(settings.seed, g));
      std::vector<int64_t> keep;
      for (int64_t i = std::max(first - row, int64_t{0}); i < std::min(end - row, n); ++i) keep.push_back(i);
      mine.append_rows(cells.select_rows(keep));
    }
    row += n;
  }
  if (sink) {
    sink(mine);
  } else {
    out.X = std::move(mine);
  }
  std::vector<CellGroup> shown = groups;
  for (auto& g : shown) {
    fill_state_label(loaded.meta, g.labels);
    if (!g.shown_labels.empty()) fill_state_label(loaded.meta, g.shown_labels);
  }
  describe_cells(loaded, shown, out);
  out.uns_strings.emplace_back("lingshu_prediction", "expected profile");
  out.uns_strings.emplace_back(
      "lingshu_sampler", fmt::format("expected over drawn states, temperature={} cfg={} guide={} seed={}",
                                     settings.temperature, settings.cfg, settings.guide, settings.seed));
  return out;
}

}  // namespace lingshu
