#include "data/frame.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "core/error.h"

namespace lingshu {

int64_t Column::size() const {
  switch (kind) {
    case Kind::Categorical:
      return static_cast<int64_t>(codes.size());
    case Kind::String:
      return static_cast<int64_t>(strings.size());
    case Kind::Numeric:
      return static_cast<int64_t>(numbers.size());
    case Kind::Boolean:
      return static_cast<int64_t>(bools.size());
  }
  return 0;
}

std::string Column::text(int64_t i) const {
  const auto k = static_cast<size_t>(i);
  switch (kind) {
    case Kind::Categorical:
      return codes[k] < 0 ? "" : categories[static_cast<size_t>(codes[k])];
    case Kind::String:
      return strings[k];
    case Kind::Numeric:
      return std::isnan(numbers[k]) ? "nan" : fmt::format("{}", numbers[k]);
    case Kind::Boolean:
      return bools[k] ? "True" : "False";
  }
  return "";
}

std::optional<std::string> Column::label(int64_t i) const {
  const auto k = static_cast<size_t>(i);
  if (kind == Kind::Categorical && codes[k] < 0) return std::nullopt;
  if (kind == Kind::Numeric && std::isnan(numbers[k])) return std::nullopt;
  return text(i);
}

Column Column::categorical(std::string name, const std::vector<std::string>& labels) {
  Column c;
  c.name = std::move(name);
  c.kind = Kind::Categorical;
  std::map<std::string, int32_t> seen;
  for (const auto& l : labels) seen.emplace(l, 0);
  for (auto& [label, code] : seen) {
    code = static_cast<int32_t>(c.categories.size());
    c.categories.push_back(label);
  }
  c.codes.reserve(labels.size());
  for (const auto& l : labels) c.codes.push_back(seen.at(l));
  return c;
}

Column Column::numeric(std::string name, std::vector<double> values) {
  Column c;
  c.name = std::move(name);
  c.kind = Kind::Numeric;
  c.numbers = std::move(values);
  return c;
}

Column Column::string(std::string name, std::vector<std::string> values) {
  Column c;
  c.name = std::move(name);
  c.kind = Kind::String;
  c.strings = std::move(values);
  return c;
}

const Column* DataFrame::find(const std::string& name) const {
  for (const auto& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const Column& DataFrame::require(const std::string& name, const char* table) const {
  if (const Column* c = find(name)) return *c;
  std::string names;
  for (const auto& c : columns) names += (names.empty() ? "" : ", ") + c.name;
  throw UserError(
      fmt::format("column '{}' is not in {}; available: {}", name, table, names.empty() ? "(none)" : names));
}

void DataFrame::set(Column column) {
  for (auto& c : columns) {
    if (c.name == column.name) {
      c = std::move(column);
      return;
    }
  }
  columns.push_back(std::move(column));
}

DataFrame DataFrame::select_rows(const std::vector<int64_t>& rows) const {
  DataFrame out;
  out.index_name = index_name;
  out.index.reserve(rows.size());
  for (const int64_t r : rows) out.index.push_back(index[static_cast<size_t>(r)]);
  for (const auto& c : columns) {
    Column s = c;
    s.codes.clear();
    s.strings.clear();
    s.numbers.clear();
    s.bools.clear();
    for (const int64_t r : rows) {
      const auto k = static_cast<size_t>(r);
      switch (c.kind) {
        case Column::Kind::Categorical:
          s.codes.push_back(c.codes[k]);
          break;
        case Column::Kind::String:
          s.strings.push_back(c.strings[k]);
          break;
        case Column::Kind::Numeric:
          s.numbers.push_back(c.numbers[k]);
          break;
        case Column::Kind::Boolean:
          s.bools.push_back(c.bools[k]);
          break;
      }
    }
    out.columns.push_back(std::move(s));
  }
  return out;
}

namespace {

// Whether every part holds a column of that name with the same kind (and the same categories).
bool same_layout(const std::vector<const Column*>& parts) {
  for (const Column* c : parts) {
    if (c->kind != parts.front()->kind) return false;
    if (c->kind == Column::Kind::Categorical && c->categories != parts.front()->categories) return false;
  }
  return true;
}

Column concat_as_labels(const std::vector<const Column*>& parts) {
  Column out;
  out.name = parts.front()->name;
  out.kind = Column::Kind::Categorical;
  std::map<std::string, int32_t> code;
  for (const Column* c : parts) {
    for (int64_t i = 0; i < c->size(); ++i) {
      if (const auto label = c->label(i)) code.emplace(*label, 0);
    }
  }
  for (auto& [label, k] : code) {
    k = static_cast<int32_t>(out.categories.size());
    out.categories.push_back(label);
  }
  for (const Column* c : parts) {
    for (int64_t i = 0; i < c->size(); ++i) {
      const auto label = c->label(i);
      out.codes.push_back(label ? code.at(*label) : -1);
    }
  }
  return out;
}

Column concat_column(const std::vector<const Column*>& parts) {
  if (!same_layout(parts)) return concat_as_labels(parts);
  Column out = *parts.front();
  for (size_t p = 1; p < parts.size(); ++p) {
    const Column& c = *parts[p];
    out.codes.insert(out.codes.end(), c.codes.begin(), c.codes.end());
    out.strings.insert(out.strings.end(), c.strings.begin(), c.strings.end());
    out.numbers.insert(out.numbers.end(), c.numbers.begin(), c.numbers.end());
    out.bools.insert(out.bools.end(), c.bools.begin(), c.bools.end());
  }
  return out;
}

}  // namespace

DataFrame concat_rows(std::vector<DataFrame> parts) {
  if (parts.empty()) return {};
  if (parts.size() == 1) return std::move(parts.front());
  DataFrame out;
  out.index_name = parts.front().index_name;
  for (const auto& part : parts) out.index.insert(out.index.end(), part.index.begin(), part.index.end());
  for (const auto& first : parts.front().columns) {
    std::vector<const Column*> same_name;
    for (const auto& part : parts) {
      if (const Column* c = part.find(first.name)) same_name.push_back(c);
    }
    if (same_name.size() == parts.size()) out.columns.push_back(concat_column(same_name));
  }
  return out;
}

}  // namespace lingshu
