#include "data/conditions.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace lingshu {

std::string join_labels(const std::vector<std::string>& labels, size_t limit) {
  std::string out;
  for (size_t i = 0; i < labels.size() && i < limit; ++i) out += (i ? ", " : "") + labels[i];
  if (labels.size() > limit) out += fmt::format(", ... ({} in all)", labels.size());
  return out;
}

namespace {

std::vector<std::string> distinct_labels(const Column& column) {
  if (column.kind == Column::Kind::Categorical) return column.categories;
  std::map<std::string, bool> seen;
  for (int64_t i = 0; i < column.size(); ++i) {
    if (auto label = column.label(i)) seen.emplace(*label, true);
  }
  std::vector<std::string> out;
  for (const auto& [label, unused] : seen) out.push_back(label);
  return out;
}

}  // namespace

std::vector<std::string> split_perturbation_label(const std::string& label) {
  std::vector<std::string> parts;
  std::string current;
  for (const char c : label) {
    if (c == '+' || c == '_' || c == ',' || c == ';') {
      parts.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  parts.push_back(current);
  return parts;
}

std::optional<int64_t> ConditionField::find(const std::string& label) const {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == label) return static_cast<int64_t>(i) + 1;
  }
  return std::nullopt;
}

int64_t ConditionField::token(const std::string& label) const {
  if (auto t = find(label)) return *t;
  throw UserError(fmt::format("'{}' is not a value of condition '{}' seen in training; known: {}", label,
                              column, join_labels(labels)));
}

nlohmann::json ConditionField::to_json() const {
  nlohmann::json j = {
      {"column", column}, {"labels", labels}, {"is_perturbation", is_perturbation}, {"control", control}};
  if (is_library) j["library_edges"] = library_edges;
  if (is_state) j["is_state"] = true;
  if (!transfer.empty()) j["transfer"] = transfer;
  if (target_effects > 0)
    j["target_gene_effect"] = {{"log_ratio", target_log_ratio}, {"measured", target_effects}};
  return j;
}

ConditionField ConditionField::from_json(const nlohmann::json& j) {
  ConditionField f;
  f.column = j.at("column").get<std::string>();
  f.labels = j.at("labels").get<std::vector<std::string>>();
  f.is_perturbation = j.at("is_perturbation").get<bool>();
  f.control = j.at("control").get<std::string>();
  f.is_state = j.value("is_state", false);
  if (j.contains("transfer")) {
    f.transfer = j.at("transfer").get<std::vector<double>>();
    if (f.transfer.size() != f.labels.size()) {
      throw UserError(fmt::format("conditions.json: field '{}' has {} transfer weights for {} labels",
                                  f.column, f.transfer.size(), f.labels.size()));
    }
  }
  if (j.contains("target_gene_effect")) {
    const auto& e = j.at("target_gene_effect");
    f.target_log_ratio = e.at("log_ratio").get<double>();
    f.target_effects = e.at("measured").get<int64_t>();
  }
  if (j.contains("library_edges")) {
    f.is_library = true;
    f.library_edges = j.at("library_edges").get<std::vector<double>>();
    if (f.library_edges.size() + 1 != f.labels.size()) {
      throw UserError(fmt::format("conditions.json: library field '{}' has {} labels for {} bin edges",
                                  f.column, f.labels.size(), f.library_edges.size()));
    }
  }
  return f;
}

ConditionField make_condition_field(const DataFrame& obs, const std::string& column) {
  const Column& col = obs.require(column, "obs");
  ConditionField field;
  field.column = column;
  field.labels = distinct_labels(col);
  if (field.labels.empty()) {
    throw UserError(fmt::format("obs column '{}' has no values to condition on", column));
  }
  return field;
}

ConditionField make_perturbation_field(const DataFrame& obs, const std::string& column,
                                       const std::string& control) {
  ConditionField field = make_condition_field(obs, column);
  if (!field.find(control)) {
    throw UserError(
        fmt::format("control label '{}' does not occur in obs column '{}'; its values: {}; "
                    "set --control to the label of unperturbed cells",
                    control, column, join_labels(field.labels)));
  }
  field.is_perturbation = true;
  field.control = control;
  return field;
}

std::optional<ConditionField> make_library_field(const std::vector<double>& totals, int bins) {
  if (totals.empty() || bins < 2) return std::nullopt;
  std::vector<double> sorted = totals;
  std::sort(sorted.begin(), sorted.end());
  const auto n = static_cast<double>(sorted.size());
  ConditionField field;
  field.column = kLibraryColumn;
  field.is_library = true;
  for (int b = 1; b < bins; ++b) {
    // Lower edge of bin b: the total of the cell at quantile b / bins (edges are totals that occur,
    // so no bin is empty).
    const double edge = sorted[static_cast<size_t>(std::floor(n * b / bins))];
    if (edge > sorted.front() && (field.library_edges.empty() || edge > field.library_edges.back())) {
      field.library_edges.push_back(edge);
    }
  }
  if (field.library_edges.empty()) return std::nullopt;
  for (size_t b = 0; b <= field.library_edges.size(); ++b) {
    const double lo = b == 0 ? sorted.front() : field.library_edges[b - 1];
    if (b == field.library_edges.size()) {
      field.labels.push_back(fmt::format("{:.0f}+", lo));
    } else {
      field.labels.push_back(fmt::format("{:.0f}-{:.0f}", lo, field.library_edges[b] - 1));
    }
  }
  return field;
}

std::vector<std::string> library_labels(const ConditionField& field, const std::vector<double>& totals) {
  std::vector<std::string> out;
  out.reserve(totals.size());
  for (const double t : totals) {
    const auto bin = std::upper_bound(field.library_edges.begin(), field.library_edges.end(), t) -
                     field.library_edges.begin();
    out.push_back(field.labels[static_cast<size_t>(bin)]);
  }
  return out;
}

std::pair<double, double> library_range(const ConditionField& field, const std::string& label) {
  const auto bin = static_cast<size_t>(field.token(label) - 1);
  const auto& edges = field.library_edges;
  return {bin == 0 ? 0.0 : edges[bin - 1],
          bin == edges.size() ? std::numeric_limits<double>::infinity() : edges[bin]};
}

int library_field_index(const std::vector<ConditionField>& fields) {
  const auto it = std::find_if(fields.begin(), fields.end(), [](const auto& f) { return f.is_library; });
  return it == fields.end() ? -1 : static_cast<int>(it - fields.begin());
}

std::string state_label(const std::vector<ConditionField>& fields, const std::vector<std::string>& labels) {
  std::string context;
  std::string state;
  for (size_t f = 0; f < fields.size(); ++f) {
    if (fields[f].is_library || fields[f].is_state) continue;
    if (labels[f].empty()) return "";
    if (fields[f].is_perturbation)
      state = labels[f] == fields[f].control ? "control" : "perturbed";
    else
      context += labels[f] + "/";
  }
  return state.empty() ? "" : context + state;
}

std::optional<ConditionField> make_state_field(const std::vector<ConditionField>& fields,
                                               const std::vector<std::vector<std::string>>& cell_labels) {
  // What perturbations share needs two of them: with one (Kang's "stimulated") the state says
  // what the label says, and training can move the effect from the label into the states of the
  // contexts that have it, away from a context whose perturbed cells were all held out.
  const auto pert =
      std::find_if(fields.begin(), fields.end(), [](const auto& f) { return f.is_perturbation; });
  if (pert == fields.end() || pert->labels.size() < 3) return std::nullopt;
  std::set<std::string> labels;
  for (const auto& cell : cell_labels) {
    if (auto label = state_label(fields, cell); !label.empty()) labels.insert(std::move(label));
  }
  ConditionField field;
  field.column = kStateColumn;
  field.is_state = true;
  field.labels.assign(labels.begin(), labels.end());
  return field;
}

int state_field_index(const std::vector<ConditionField>& fields) {
  const auto it = std::find_if(fields.begin(), fields.end(), [](const auto& f) { return f.is_state; });
  return it == fields.end() ? -1 : static_cast<int>(it - fields.begin());
}

std::vector<int64_t> encode_conditions(const DataFrame& obs, const std::vector<ConditionField>& fields) {
  const int64_t n = obs.size();
  const auto n_fields = static_cast<int64_t>(fields.size());
  std::vector<int64_t> tokens(static_cast<size_t>(n * n_fields), 0);
  for (int64_t f = 0; f < n_fields; ++f) {
    const ConditionField& field = fields[static_cast<size_t>(f)];
    const Column& col = obs.require(field.column, "obs");
    std::map<std::string, int64_t> lookup;
    for (size_t i = 0; i < field.labels.size(); ++i)
      lookup.emplace(field.labels[i], static_cast<int64_t>(i) + 1);
    for (int64_t i = 0; i < n; ++i) {
      const auto label = col.label(i);
      if (!label) continue;
      const auto it = lookup.find(*label);
      if (it != lookup.end()) tokens[static_cast<size_t>(i * n_fields + f)] = it->second;
    }
  }
  return tokens;
}

namespace {

std::map<std::string, int32_t> index_of(const std::vector<std::string>& names) {
  std::map<std::string, int32_t> index;
  for (size_t j = 0; j < names.size(); ++j) index.emplace(names[j], static_cast<int32_t>(j));
  return index;
}

// The gene and gene-knowledge lookups of target_positions, built once for many labels (a screen's
// labels, or a knowledge file of 18,000 genes).
class TargetLookup {
 public:
  TargetLookup(const std::vector<std::string>& gene_names, const GenePatching& patching,
               const std::vector<std::string>& knowledge_genes)
      : gene_index_(index_of(gene_names)),
        knowledge_index_(index_of(knowledge_genes)),
        position_of_(patching.position_of_gene()),
        first_knowledge_(static_cast<int32_t>(patching.n_positions())) {}

  std::vector<int32_t> positions(const ConditionField& field, const std::string& label) const {
    if (!field.is_perturbation || label == field.control || label.empty()) return {};
    std::vector<int32_t> positions;
    for (const auto& part : split_perturbation_label(label)) {
      const auto gene = gene_index_.find(part);
      const auto known = knowledge_index_.find(part);
      if (gene == gene_index_.end() && known == knowledge_index_.end()) return {};  // a plain category
      if (gene != gene_index_.end()) positions.push_back(position_of_[static_cast<size_t>(gene->second)]);
      if (known != knowledge_index_.end()) positions.push_back(first_knowledge_ + known->second);
    }
    return positions;
  }

 private:
  std::map<std::string, int32_t> gene_index_, knowledge_index_;
  std::vector<int32_t> position_of_;
  int32_t first_knowledge_;
};

}  // namespace

std::vector<int32_t> target_positions(const ConditionField& field, const std::string& label,
                                      const std::vector<std::string>& gene_names,
                                      const GenePatching& patching,
                                      const std::vector<std::string>& knowledge_genes) {
  if (!field.is_perturbation) return {};
  return TargetLookup(gene_names, patching, knowledge_genes).positions(field, label);
}

std::vector<std::vector<int32_t>> target_positions_by_token(const ConditionField& field,
                                                            const std::vector<std::string>& gene_names,
                                                            const GenePatching& patching,
                                                            const std::vector<std::string>& knowledge_genes) {
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(field.vocab_size()));
  if (!field.is_perturbation) return out;
  const TargetLookup lookup(gene_names, patching, knowledge_genes);
  for (size_t i = 0; i < field.labels.size(); ++i) out[i + 1] = lookup.positions(field, field.labels[i]);
  return out;
}

ConditionSpec ConditionSpec::parse(const std::string& text) {
  ConditionSpec spec;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string term = text.substr(start, comma - start);
    const size_t eq = term.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == term.size()) {
      throw UserError(
          fmt::format("cannot read condition '{}': expected column=value[,column=value...], "
                      "e.g. cell_type=CD4T,condition=stimulated",
                      text));
    }
    spec.terms.emplace_back(term.substr(0, eq), term.substr(eq + 1));
    start = comma + 1;
  }
  return spec;
}

std::string ConditionSpec::to_string() const {
  std::string out;
  for (const auto& [column, label] : terms)
    out += fmt::format("{}{}={}", out.empty() ? "" : ",", column, label);
  return out;
}

std::vector<bool> ConditionSpec::matches(const DataFrame& obs) const {
  std::vector<bool> match(static_cast<size_t>(obs.size()), true);
  for (const auto& [column, label] : terms) {
    const Column& col = obs.require(column, "obs");
    for (int64_t i = 0; i < obs.size(); ++i) {
      if (!match[static_cast<size_t>(i)]) continue;
      const auto value = col.label(i);
      match[static_cast<size_t>(i)] = value && *value == label;
    }
  }
  return match;
}

std::vector<int64_t> rows_kept_after_holdouts(const DataFrame& obs,
                                              const std::vector<std::string>& holdouts) {
  std::vector<bool> held(static_cast<size_t>(obs.size()), false);
  for (const auto& text : holdouts) {
    const auto matches = ConditionSpec::parse(text).matches(obs);
    const auto n = std::count(matches.begin(), matches.end(), true);
    if (n == 0) {
      throw UserError(
          fmt::format("--holdout '{}' matches no cell; check the column values (`lingshu info` lists "
                      "them)",
                      text));
    }
    for (size_t i = 0; i < held.size(); ++i) held[i] = held[i] || matches[i];
  }
  std::vector<int64_t> kept;
  for (size_t i = 0; i < held.size(); ++i) {
    if (!held[i]) kept.push_back(static_cast<int64_t>(i));
  }
  if (kept.empty()) throw UserError("--holdout removes every cell; nothing is left to train on");
  return kept;
}

AnnData remove_holdouts(const AnnData& data, const std::vector<std::string>& holdouts) {
  const auto kept = rows_kept_after_holdouts(data.obs, holdouts);
  if (kept.size() == static_cast<size_t>(data.n_obs())) return data;
  AnnData out;
  out.X = data.X.select_rows(kept);
  out.obs = data.obs.select_rows(kept);
  out.var = data.var;
  out.uns_strings = data.uns_strings;
  return out;
}

}  // namespace lingshu
