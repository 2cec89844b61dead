#include "baselines/label_groups.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>

#include "core/error.h"

namespace lingshu {

LabelGroups group_cells(const AnnData& train, const std::string& label) {
  LabelGroups g;
  if (label.empty()) {
    g.rows.emplace_back(static_cast<size_t>(train.n_obs()));
    std::iota(g.rows[0].begin(), g.rows[0].end(), 0);
    g.category_of_group.push_back(-1);
    return g;
  }
  const Column* column = train.obs.find(label);
  if (column == nullptr) {
    std::string names;
    for (const auto& c : train.obs.columns) names += (names.empty() ? "" : ", ") + c.name;
    throw UserError(fmt::format("--label {}: the training data has no obs column '{}'; available: {}", label,
                                label, names.empty() ? "(none)" : names));
  }
  std::vector<std::optional<std::string>> labels(static_cast<size_t>(train.n_obs()));
  for (int64_t i = 0; i < train.n_obs(); ++i) labels[static_cast<size_t>(i)] = column->label(i);
  if (column->kind == Column::Kind::Categorical) {
    g.categories = column->categories;
  } else {
    for (const auto& l : labels) {
      if (l) g.categories.push_back(*l);
    }
    std::sort(g.categories.begin(), g.categories.end());
    g.categories.erase(std::unique(g.categories.begin(), g.categories.end()), g.categories.end());
  }
  std::vector<std::vector<int64_t>> by_category(g.categories.size());
  std::map<std::string, size_t> index;
  for (size_t c = 0; c < g.categories.size(); ++c) index.emplace(g.categories[c], c);
  for (int64_t i = 0; i < train.n_obs(); ++i) {
    if (const auto& l = labels[static_cast<size_t>(i)]) by_category[index.at(*l)].push_back(i);
  }
  for (size_t c = 0; c < by_category.size(); ++c) {
    if (by_category[c].empty()) continue;
    g.category_of_group.push_back(static_cast<int32_t>(c));
    g.rows.push_back(std::move(by_category[c]));
  }
  if (g.rows.empty()) {
    throw UserError(fmt::format("--label {}: the column '{}' holds no labels", label, label));
  }
  return g;
}

Column label_column(const LabelGroups& groups, const std::string& label,
                    const std::vector<int32_t>& group_of_cell) {
  Column column;
  column.name = label;
  column.kind = Column::Kind::Categorical;
  column.categories = groups.categories;
  for (const int32_t g : group_of_cell)
    column.codes.push_back(groups.category_of_group[static_cast<size_t>(g)]);
  return column;
}

}  // namespace lingshu
