#include "train/perturbation_transfer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "data/preprocess.h"
#include "eval/stats.h"

namespace lingshu {

namespace {
// Pearson correlation of a and b over the columns not in `skip` (sorted); 0 when either is flat.
double correlation_without(const std::vector<double>& a, const std::vector<double>& b,
                           const std::vector<int64_t>& skip) {
  double n = 0, sa = 0, sb = 0;
  for (size_t j = 0; j < a.size(); ++j) {
    if (std::binary_search(skip.begin(), skip.end(), static_cast<int64_t>(j))) continue;
    n += 1;
    sa += a[j];
    sb += b[j];
  }
  const double ma = sa / n, mb = sb / n;
  double ab = 0, aa = 0, bb = 0;
  for (size_t j = 0; j < a.size(); ++j) {
    if (std::binary_search(skip.begin(), skip.end(), static_cast<int64_t>(j))) continue;
    ab += (a[j] - ma) * (b[j] - mb);
    aa += (a[j] - ma) * (a[j] - ma);
    bb += (b[j] - mb) * (b[j] - mb);
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

// The gene columns a perturbation label names, sorted.
std::vector<int64_t> target_columns(const std::string& label, const std::vector<std::string>& gene_names) {
  std::vector<int64_t> out;
  for (const auto& part : split_perturbation_label(label)) {
    const auto it = std::find(gene_names.begin(), gene_names.end(), part);
    if (it != gene_names.end()) out.push_back(it - gene_names.begin());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Rows of every context's perturbed cells, and of every (perturbation, context): the context is the
// state field's label, or one context for all cells when there is no state field.
struct PerturbedRows {
  std::map<int64_t, std::vector<int64_t>> of_state;
  std::map<std::pair<int64_t, int64_t>, std::vector<int64_t>> of_pair;  // key (perturbation, state)
};

PerturbedRows perturbed_rows(int64_t n_rows, const std::vector<std::vector<int64_t>>& codes, size_t pert,
                             int state, int64_t control) {
  PerturbedRows out;
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t s = state >= 0 ? codes[static_cast<size_t>(state)][static_cast<size_t>(r)] : 1;
    const int64_t p = codes[pert][static_cast<size_t>(r)];
    if (s == 0 || p == 0 || p == control) continue;
    out.of_state[s].push_back(r);
    out.of_pair[{p, s}].push_back(r);
  }
  return out;
}

const ConditionField* perturbation_field_of(const std::vector<ConditionField>& fields) {
  const auto it = std::find_if(fields.begin(), fields.end(), [](const auto& f) { return f.is_perturbation; });
  return it == fields.end() ? nullptr : &*it;
}
}  // namespace

std::vector<double> perturbation_transfer(const CsrMatrix& expression,
                                          const std::vector<std::vector<int64_t>>& codes,
                                          const std::vector<ConditionField>& fields,
                                          const std::vector<std::string>& gene_names, int64_t min_cells) {
  const ConditionField* field = perturbation_field_of(fields);
  const int state = state_field_index(fields);
  if (!field) return {};
  std::vector<double> weight(field->labels.size(), 1.0);
  if (state < 0) return weight;
  const auto control = field->find(field->control);
  const auto rows = perturbed_rows(expression.n_rows, codes, static_cast<size_t>(field - fields.data()),
                                   state, control.value_or(-1));
  std::map<int64_t, std::vector<double>> state_mean;
  for (const auto& [s, r] : rows.of_state) state_mean[s] = column_means(expression.select_rows(r));
  // Each perturbation's own effect in every state (context) that measured it well enough.
  std::map<int64_t, std::vector<std::vector<double>>> effects;
  for (const auto& [key, r] : rows.of_pair) {
    if (static_cast<int64_t>(r.size()) < min_cells) continue;
    auto effect = column_means(expression.select_rows(r));
    const auto& base = state_mean[key.second];
    for (size_t j = 0; j < effect.size(); ++j) effect[j] -= base[j];
    effects[key.first].push_back(std::move(effect));
  }
  double sum = 0;
  int measured = 0;
  std::vector<bool> known(weight.size(), false);
  for (const auto& [p, list] : effects) {
    const auto m = static_cast<double>(list.size());
    if (list.size() < 2) continue;
    const auto skip = target_columns(field->labels[static_cast<size_t>(p - 1)], gene_names);
    double r = 0;
    int pairs = 0;
    for (size_t a = 0; a < list.size(); ++a)
      for (size_t b = a + 1; b < list.size(); ++b, ++pairs) r += correlation_without(list[a], list[b], skip);
    r = std::max(0.0, r / pairs);
    weight[static_cast<size_t>(p - 1)] = m * r / (1 + (m - 1) * r);
    known[static_cast<size_t>(p - 1)] = true;
    sum += weight[static_cast<size_t>(p - 1)];
    ++measured;
  }
  if (measured == 0) return weight;
  for (size_t i = 0; i < weight.size(); ++i)
    if (!known[i] && static_cast<int64_t>(i + 1) != control) weight[i] = sum / measured;
  return weight;
}

TargetGeneEffect target_gene_effect(const CsrMatrix& expression,
                                    const std::vector<std::vector<int64_t>>& codes,
                                    const std::vector<ConditionField>& fields,
                                    const std::vector<std::string>& gene_names, int64_t min_cells) {
  const ConditionField* field = perturbation_field_of(fields);
  if (!field) return {};
  const auto rows = perturbed_rows(expression.n_rows, codes, static_cast<size_t>(field - fields.data()),
                                   state_field_index(fields), field->find(field->control).value_or(-1));
  const auto mean_of = [&](const std::vector<int64_t>& r) { return column_means(expression.select_rows(r)); };
  std::map<int64_t, std::vector<double>> state_mean;
  for (const auto& [s, r] : rows.of_state) state_mean[s] = mean_of(r);
  // A knock-out leaves no counts at all: the ratio is floored at a 100-fold fall.
  constexpr double kMinRatio = 0.01;
  std::vector<double> log_ratios;
  for (const auto& [key, r] : rows.of_pair) {
    const auto targets = target_columns(field->labels[static_cast<size_t>(key.first - 1)], gene_names);
    const auto n_pair = static_cast<double>(r.size());
    const auto n_others = static_cast<double>(rows.of_state.at(key.second).size()) - n_pair;
    if (targets.empty() || n_pair < static_cast<double>(min_cells) ||
        n_others < static_cast<double>(min_cells))
      continue;
    const auto pair_mean = mean_of(r);
    const auto& all = state_mean[key.second];
    for (const int64_t t : targets) {
      const auto j = static_cast<size_t>(t);
      const double others = (all[j] * (n_pair + n_others) - pair_mean[j] * n_pair) / n_others;
      if (others >= kMinTargetLevel)
        log_ratios.push_back(std::log(std::max(pair_mean[j] / others, kMinRatio)));
    }
  }
  if (log_ratios.size() < 3) return {};
  const double typical = median(log_ratios);
  const auto agreeing =
      std::count_if(log_ratios.begin(), log_ratios.end(), [&](double x) { return x * typical > 0; });
  if (3 * agreeing < 2 * static_cast<int64_t>(log_ratios.size())) return {};
  return {typical, static_cast<int64_t>(log_ratios.size())};
}

}  // namespace lingshu
