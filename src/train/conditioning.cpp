#include "train/conditioning.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"

namespace lingshu {

namespace {
// Drops labels no cell carries (unused categories, labels of held-out cells only): their tokens
// would never be trained, and generation treats such labels like unseen ones.
void keep_occurring_labels(ConditionField& field, const DataFrame& obs) {
  const Column& col = obs.require(field.column, "obs");
  std::set<std::string> seen;
  for (int64_t i = 0; i < col.size(); ++i) {
    if (auto label = col.label(i)) seen.insert(*label);
  }
  std::erase_if(field.labels, [&](const std::string& l) { return !seen.contains(l); });
}
// Every cell's label in each field whose column obs has ("" where missing or absent).
std::vector<std::vector<std::string>> cell_labels(const DataFrame& obs,
                                                  const std::vector<ConditionField>& fields) {
  std::vector<std::vector<std::string>> out(static_cast<size_t>(obs.size()),
                                            std::vector<std::string>(fields.size()));
  for (size_t f = 0; f < fields.size(); ++f) {
    const Column* column = obs.find(fields[f].column);
    if (column == nullptr) continue;
    for (int64_t i = 0; i < obs.size(); ++i) out[static_cast<size_t>(i)][f] = column->label(i).value_or("");
  }
  return out;
}
}  // namespace

std::vector<ConditionField> build_condition_fields(const DataFrame& obs, const ConditioningRequest& request,
                                                   const std::vector<double>& totals) {
  std::vector<std::string> columns = request.columns;
  if (!request.perturbation.empty() &&
      std::find(columns.begin(), columns.end(), request.perturbation) == columns.end()) {
    columns.push_back(request.perturbation);
  }
  std::vector<ConditionField> fields;
  std::set<std::string> seen;
  for (const auto& column : columns) {
    if (!seen.insert(column).second) throw UserError(fmt::format("--condition '{}' is given twice", column));
    ConditionField field = column == request.perturbation
                               ? make_perturbation_field(obs, column, request.control)
                               : make_condition_field(obs, column);
    keep_occurring_labels(field, obs);
    fields.push_back(std::move(field));
  }
  if (request.library_bins > 0) {
    if (obs.find(kLibraryColumn) != nullptr) {
      throw UserError(
          fmt::format("obs already has a column '{}', the name of the library-size condition; "
                      "rename it, or pass --library-bins 0",
                      kLibraryColumn));
    }
    if (auto field = make_library_field(totals, request.library_bins)) fields.push_back(std::move(*field));
  }
  if (auto state = make_state_field(fields, cell_labels(obs, fields))) {
    if (obs.find(kStateColumn) != nullptr) {
      throw UserError(fmt::format(
          "obs already has a column '{}', the name of the perturbation-state condition; rename it",
          kStateColumn));
    }
    fields.push_back(std::move(*state));
  }
  return fields;
}

void set_derived_columns(DataFrame& obs, const std::vector<ConditionField>& fields,
                         const std::vector<double>& totals) {
  for (const auto& f : fields) {
    if (f.is_library) obs.set(Column::categorical(f.column, library_labels(f, totals)));
  }
  // The state derives from the other labels, the library bins among them.
  if (const int state = state_field_index(fields); state >= 0) {
    std::vector<std::string> labels;
    for (const auto& cell : cell_labels(obs, fields)) labels.push_back(state_label(fields, cell));
    obs.set(Column::categorical(fields[static_cast<size_t>(state)].column, labels));
  }
}

int perturbation_field_index(const std::vector<ConditionField>& fields) {
  const auto it = std::find_if(fields.begin(), fields.end(), [](const auto& f) { return f.is_perturbation; });
  return it == fields.end() ? -1 : static_cast<int>(it - fields.begin());
}

std::vector<ConditionCombination> count_combinations(const DataFrame& obs,
                                                     const std::vector<ConditionField>& fields) {
  std::vector<const Column*> columns;
  for (const auto& f : fields) columns.push_back(&obs.require(f.column, "obs"));
  std::map<std::vector<std::string>, size_t> index;
  std::vector<ConditionCombination> out;
  for (int64_t i = 0; i < obs.size(); ++i) {
    std::vector<std::string> labels;
    for (const Column* c : columns) labels.push_back(c->label(i).value_or(""));
    const auto [it, inserted] = index.emplace(labels, out.size());
    if (inserted) out.push_back({labels, 0});
    ++out[it->second].n_cells;
  }
  return out;
}

std::vector<std::vector<int64_t>> condition_codes(const DataFrame& obs,
                                                  const std::vector<ConditionField>& fields) {
  const auto flat = encode_conditions(obs, fields);
  const size_t n_fields = fields.size();
  std::vector<std::vector<int64_t>> out(n_fields, std::vector<int64_t>(static_cast<size_t>(obs.size())));
  for (size_t i = 0; i < static_cast<size_t>(obs.size()); ++i) {
    for (size_t f = 0; f < n_fields; ++f) out[f][i] = flat[i * n_fields + f];
  }
  return out;
}

}  // namespace lingshu
