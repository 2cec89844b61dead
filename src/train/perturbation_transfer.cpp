#include "train/perturbation_transfer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "data/preprocess.h"

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
}  // namespace

std::vector<double> perturbation_transfer(const CsrMatrix& counts,
                                          const std::vector<std::vector<int64_t>>& codes,
                                          const std::vector<ConditionField>& fields,
                                          const std::vector<std::string>& gene_names, int64_t min_cells) {
  const auto pert_it =
      std::find_if(fields.begin(), fields.end(), [](const auto& f) { return f.is_perturbation; });
  const int state = state_field_index(fields);
  if (pert_it == fields.end()) return {};
  const auto pert = static_cast<size_t>(pert_it - fields.begin());
  std::vector<double> weight(pert_it->labels.size(), 1.0);
  if (state < 0) return weight;
  const auto control = pert_it->find(pert_it->control);
  // Rows of every state's perturbed cells, and of every (state, perturbation).
  std::map<int64_t, std::vector<int64_t>> of_state;
  std::map<std::pair<int64_t, int64_t>, std::vector<int64_t>> of_pair;
  for (int64_t r = 0; r < counts.n_rows; ++r) {
    const int64_t s = codes[static_cast<size_t>(state)][static_cast<size_t>(r)];
    const int64_t p = codes[pert][static_cast<size_t>(r)];
    if (s == 0 || p == 0 || p == control) continue;
    of_state[s].push_back(r);
    of_pair[{p, s}].push_back(r);
  }
  const CsrMatrix expression = log_normalize(counts);
  std::map<int64_t, std::vector<double>> state_mean;
  for (const auto& [s, rows] : of_state) state_mean[s] = column_means(expression.select_rows(rows));
  // Each perturbation's own effect in every state (context) that measured it well enough.
  std::map<int64_t, std::vector<std::vector<double>>> effects;
  for (const auto& [key, rows] : of_pair) {
    if (static_cast<int64_t>(rows.size()) < min_cells) continue;
    auto effect = column_means(expression.select_rows(rows));
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
    const auto skip = target_columns(pert_it->labels[static_cast<size_t>(p - 1)], gene_names);
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

}  // namespace lingshu
