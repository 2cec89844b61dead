#include "baselines/perturbation_baselines.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <utility>

#include "core/error.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "core/random.h"
#include "core/upper_median.h"
#include "data/preprocess.h"
#include "eval/de.h"

namespace lingshu {

// ---- kinds ---------------------------------------------------------------------------------------

namespace {
// Each kind with its name, for parsing and printing alike.
constexpr std::pair<BaselineKind, const char*> kKindNames[] = {
    {BaselineKind::Mean, "mean"}, {BaselineKind::Control, "control"}, {BaselineKind::Additive, "additive"}};
}  // namespace

BaselineKind parse_baseline_kind(const std::string& name) {
  for (const auto& [kind, kind_name] : kKindNames) {
    if (name == kind_name) return kind;
  }
  throw UserError(fmt::format("unknown baseline '{}'; choose mean, control or additive", name));
}

const char* baseline_kind_name(BaselineKind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "?";
}

// ---- the predictors -----------------------------------------------------------------------------

namespace {

struct TrainingProfiles {
  int64_t n_genes = 0;
  // (context, label) -> mean log-normalised profile and cell count.
  std::map<std::pair<std::string, std::string>, std::vector<double>> mean;
  std::map<std::string, std::vector<int64_t>> control_cells;  // context -> training rows
  std::map<std::string, double> control_library;              // context -> median total counts
};

std::optional<std::string> label_at(const Column* column, int64_t row) {
  if (!column) return std::string();
  return column->label(row);
}

TrainingProfiles profile_training(const AnnData& train, const Column& pert, const Column* context,
                                  const std::string& control) {
  TrainingProfiles profiles;
  profiles.n_genes = train.n_vars();
  std::map<std::pair<std::string, std::string>, int32_t> group_of;
  CellGroups groups;
  groups.group_of_cell.assign(static_cast<size_t>(train.n_obs()), -1);
  for (int64_t i = 0; i < train.n_obs(); ++i) {
    const auto p = pert.label(i);
    const auto c = label_at(context, i);
    if (!p || !c) continue;
    const auto [it, added] = group_of.emplace(std::make_pair(*c, *p), static_cast<int32_t>(group_of.size()));
    groups.group_of_cell[static_cast<size_t>(i)] = it->second;
    if (*p == control) profiles.control_cells[*c].push_back(i);
  }
  groups.n_groups = static_cast<int32_t>(group_of.size());
  if (groups.n_groups == 0) throw UserError("the training file has no labelled cells");
  const auto means = group_column_means(log_normalize(train.X), groups);
  for (const auto& [key, g] : group_of) {
    const auto* row = means.data() + static_cast<size_t>(g) * static_cast<size_t>(profiles.n_genes);
    profiles.mean[key].assign(row, row + profiles.n_genes);
  }
  const auto totals = train.X.row_sums();
  for (const auto& [c, rows] : profiles.control_cells) {
    std::vector<double> t;
    for (const int64_t r : rows) t.push_back(totals[static_cast<size_t>(r)]);
    profiles.control_library[c] = upper_median(t);
  }
  return profiles;
}

std::vector<double> average_of(const std::vector<const std::vector<double>*>& profiles, int64_t n_genes) {
  std::vector<double> avg(static_cast<size_t>(n_genes), 0.0);
  for (const auto* p : profiles) {
    for (size_t j = 0; j < avg.size(); ++j) avg[j] += (*p)[j] / static_cast<double>(profiles.size());
  }
  return avg;
}

class BaselinePredictor {
 public:
  BaselinePredictor(const TrainingProfiles& profiles, const std::string& control,
                    std::vector<std::string>& notes)
      : profiles_(profiles), control_(control), notes_(notes) {}

  // The mean of the per-perturbation profiles of `context`, or of every context when it has none.
  std::vector<double> mean_profile(const std::string& context) const {
    std::vector<const std::vector<double>*> in_context, everywhere;
    for (const auto& [key, mean] : profiles_.mean) {
      if (key.second == control_) continue;
      everywhere.push_back(&mean);
      if (key.first == context) in_context.push_back(&mean);
    }
    if (everywhere.empty()) throw UserError("the training file has no perturbed cells to average");
    if (in_context.empty()) {
      notes_.push_back(
          fmt::format("mean: context '{}' has no training perturbations; used every context's", context));
      return average_of(everywhere, profiles_.n_genes);
    }
    return average_of(in_context, profiles_.n_genes);
  }

  const std::vector<double>& control_profile(const std::string& context) const {
    const auto it = profiles_.mean.find({context, control_});
    if (it == profiles_.mean.end()) throw missing_control(context);
    return it->second;
  }

  UserError missing_control(const std::string& context) const {
    return UserError(
        fmt::format("the training file has no control cells (label '{}'){}; every context to "
                    "predict needs its controls (check --control and --context-col)",
                    control_, context.empty() ? "" : fmt::format(" in context '{}'", context)));
  }

  // Context control + the perturbation's shift (see the header); nullopt when nothing is known.
  std::optional<std::vector<double>> additive_shift(const std::string& context,
                                                    const std::string& pert) const {
    std::vector<std::vector<double>> elsewhere, here;
    for (const auto& [key, mean] : profiles_.mean) {
      if (key.second != pert) continue;
      const auto ctrl = profiles_.mean.find({key.first, control_});
      if (ctrl == profiles_.mean.end()) continue;
      std::vector<double> shift(mean.size());
      for (size_t j = 0; j < shift.size(); ++j) shift[j] = mean[j] - ctrl->second[j];
      (key.first == context ? here : elsewhere).push_back(std::move(shift));
    }
    const auto& use = elsewhere.empty() ? here : elsewhere;
    if (!use.empty()) {
      std::vector<const std::vector<double>*> ptrs;
      for (const auto& s : use) ptrs.push_back(&s);
      return average_of(ptrs, profiles_.n_genes);
    }
    if (pert.find('+') == std::string::npos) return std::nullopt;
    std::vector<double> sum(static_cast<size_t>(profiles_.n_genes), 0.0);
    size_t start = 0;
    while (start <= pert.size()) {
      const size_t end = std::min(pert.find('+', start), pert.size());
      const auto part = additive_shift(context, pert.substr(start, end - start));
      if (!part) return std::nullopt;
      for (size_t j = 0; j < sum.size(); ++j) sum[j] += (*part)[j];
      start = end + 1;
    }
    return sum;
  }

  std::vector<double> additive_profile(const std::string& context, const std::string& pert) const {
    std::vector<double> profile = control_profile(context);
    auto shift = additive_shift(context, pert);
    if (!shift) {
      notes_.push_back(
          fmt::format("additive: '{}' was never seen in training (nor all parts of it); predicted the "
                      "mean perturbation shift for it",
                      pert));
      const auto mean = mean_profile(context);
      shift = std::vector<double>(mean.size());
      for (size_t j = 0; j < mean.size(); ++j) (*shift)[j] = mean[j] - profile[j];
    }
    for (size_t j = 0; j < profile.size(); ++j) profile[j] = std::max(0.0, profile[j] + (*shift)[j]);
    return profile;
  }

 private:
  const TrainingProfiles& profiles_;
  const std::string& control_;
  std::vector<std::string>& notes_;
};

// Rows of `pool` to copy: all of them in order when `n` <= 0, else n drawn (without replacement
// while the pool lasts).
std::vector<int64_t> pick_cells(const std::vector<int64_t>& pool, int64_t n, std::mt19937_64& rng) {
  if (n <= 0) return pool;
  std::vector<int64_t> picked;
  std::vector<int64_t> bag;
  while (static_cast<int64_t>(picked.size()) < n) {
    if (bag.empty()) bag = pool;
    const auto i = static_cast<size_t>(rnd::uniform_below(rng, bag.size()));
    picked.push_back(bag[i]);
    bag[i] = bag.back();
    bag.pop_back();
  }
  return picked;
}

// The output file, built block by block: cells with their obs labels (one per pairs column).
class OutputBuilder {
 public:
  OutputBuilder(const AnnData& train, const PredictionPairs& pairs) : train_(train), pairs_(pairs) {
    out_.X.n_cols = train.n_vars();
    out_.var = train.var;
    labels_.resize(pairs.columns.size());
  }

  void add_generated(const CsrMatrix& cells, const std::vector<std::string>& row_labels) {
    for (int64_t r = 0; r < cells.n_rows; ++r) {
      out_.X.append_row(cells.row_indices(r), cells.row_values(r));
      for (size_t c = 0; c < labels_.size(); ++c) labels_[c].push_back(row_labels[c]);
    }
  }

  // Training cells copied as they are, labelled `labels`; an empty label is filled from the
  // training obs when it has that column (e.g. the other condition columns of control cells).
  void add_training_cells(const std::vector<int64_t>& rows, const std::vector<std::string>& labels) {
    for (const int64_t r : rows) {
      out_.X.append_row(train_.X.row_indices(r), train_.X.row_values(r));
      for (size_t c = 0; c < labels_.size(); ++c) {
        std::optional<std::string> label = labels[c];
        if (label->empty()) {
          const Column* column = train_.obs.find(pairs_.columns[c]);
          label = column ? column->label(r) : std::nullopt;
        }
        labels_[c].push_back(label.value_or(""));
      }
    }
  }

  AnnData finish(const char* kind) {
    for (size_t c = 0; c < labels_.size(); ++c)
      out_.obs.set(Column::categorical(pairs_.columns[c], labels_[c]));
    for (int64_t i = 0; i < out_.X.n_rows; ++i) out_.obs.index.push_back(fmt::format("{}_{}", kind, i));
    out_.uns_strings.emplace_back("lingshu_baseline", kind);
    return std::move(out_);
  }

 private:
  const AnnData& train_;
  const PredictionPairs& pairs_;
  AnnData out_;
  std::vector<std::vector<std::string>> labels_;
};

}  // namespace

BaselinePrediction predict_baseline(BaselineKind kind, const AnnData& train, const PredictionPairs& pairs,
                                    const BaselineOptions& options) {
  const int pert_at = pairs.column(options.pert_col);
  if (pert_at < 0) {
    throw UserError(
        fmt::format("the pairs file has no '{}' column (its header names: {}); name the perturbation "
                    "column with --pert-col",
                    options.pert_col, fmt::join(pairs.columns, ", ")));
  }
  if (options.context_col == options.pert_col) {
    throw UserError(
        fmt::format("the context and perturbation columns are both '{}'; name the context column with "
                    "--context-col (or '' for none)",
                    options.pert_col));
  }
  const int context_at = options.context_col.empty() ? -1 : pairs.column(options.context_col);
  if (!options.context_col.empty() && context_at < 0) {
    throw UserError(
        fmt::format("the pairs file has no '{}' column (its header names: {}); add it or pass "
                    "--context-col ''",
                    options.context_col, fmt::join(pairs.columns, ", ")));
  }
  auto require_train_column = [&](const std::string& name, const char* option) -> const Column& {
    if (const Column* c = train.obs.find(name)) return *c;
    std::vector<std::string> names;
    for (const auto& c : train.obs.columns) names.push_back(c.name);
    throw UserError(fmt::format("the training file has no obs column '{}' (it has: {}); set {}", name,
                                fmt::join(names, ", "), option));
  };
  const Column& pert = require_train_column(options.pert_col, "--pert-col");
  const Column* context =
      context_at < 0 ? nullptr : &require_train_column(options.context_col, "--context-col");
  train.X.validate("the training file");

  BaselinePrediction result;
  const TrainingProfiles profiles = profile_training(train, pert, context, options.control);
  const BaselinePredictor predictor(profiles, options.control, result.notes);
  OutputBuilder output(train, pairs);
  std::mt19937_64 rng(rnd::derive_seed(options.seed, 0x5eed));

  auto context_of = [&](size_t row) {
    return context_at < 0 ? std::string() : pairs.rows[row][static_cast<size_t>(context_at)];
  };
  // Controls first, one block per context in order of appearance.
  std::vector<std::string> contexts;
  for (size_t r = 0; r < pairs.rows.size(); ++r) {
    if (std::find(contexts.begin(), contexts.end(), context_of(r)) == contexts.end())
      contexts.push_back(context_of(r));
  }
  for (const auto& c : contexts) {
    const auto pool = profiles.control_cells.find(c);
    if (pool == profiles.control_cells.end()) throw predictor.missing_control(c);
    int64_t wanted = 0;  // all training controls unless the pairs file asks for a number
    std::vector<std::string> labels;
    for (size_t r = 0; r < pairs.rows.size(); ++r) {
      if (context_of(r) == c && pairs.rows[r][static_cast<size_t>(pert_at)] == options.control) {
        wanted = pairs.n_cells[r];
        labels = pairs.rows[r];
      }
    }
    if (labels.empty()) {
      labels.assign(pairs.columns.size(), "");
      labels[static_cast<size_t>(pert_at)] = options.control;
      if (context_at >= 0) labels[static_cast<size_t>(context_at)] = c;
    }
    output.add_training_cells(pick_cells(pool->second, wanted, rng), labels);
  }

  Progress progress(fmt::format("baseline {}", baseline_kind_name(kind)),
                    static_cast<int64_t>(pairs.rows.size()), "pairs");
  for (size_t r = 0; r < pairs.rows.size(); ++r) {
    const std::string c = context_of(r);
    const std::string& p = pairs.rows[r][static_cast<size_t>(pert_at)];
    if (p == options.control) continue;
    if (kind == BaselineKind::Control) {
      output.add_training_cells(pick_cells(profiles.control_cells.at(c), pairs.n_cells[r], rng),
                                pairs.rows[r]);
    } else {
      const auto target =
          kind == BaselineKind::Mean ? predictor.mean_profile(c) : predictor.additive_profile(c, p);
      const double library =
          options.library_size > 0 ? options.library_size : std::max(1.0, profiles.control_library.at(c));
      const auto cells = counts_for_log_pseudobulk(target, pairs.n_cells[r], library,
                                                   rnd::derive_seed(options.seed, r + 1), options.threads);
      output.add_generated(cells, pairs.rows[r]);
    }
    progress.update(static_cast<int64_t>(r + 1));
  }
  progress.finish();
  std::sort(result.notes.begin(), result.notes.end());
  result.notes.erase(std::unique(result.notes.begin(), result.notes.end()), result.notes.end());
  result.cells = output.finish(baseline_kind_name(kind));
  return result;
}

}  // namespace lingshu
