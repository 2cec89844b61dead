#include "data/summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "data/counts_check.h"

namespace lingshu {

namespace {

const char* kind_name(Column::Kind kind) {
  switch (kind) {
    case Column::Kind::Categorical:
      return "categorical";
    case Column::Kind::String:
      return "string";
    case Column::Kind::Numeric:
      return "numeric";
    case Column::Kind::Boolean:
      return "boolean";
  }
  return "unknown";
}

std::string describe_column(const ColumnSummary& c, int top_categories) {
  const std::string missing = c.n_missing > 0 ? fmt::format(" (+{} missing)", with_commas(c.n_missing)) : "";
  if (c.kind == "categorical") {
    std::string top;
    const size_t shown = std::min(c.category_counts.size(), static_cast<size_t>(top_categories));
    for (size_t i = 0; i < shown; ++i) {
      top += fmt::format("{}{} {}", i ? "; " : "", c.category_counts[i].first,
                         with_commas(c.category_counts[i].second));
    }
    if (shown < c.category_counts.size()) top += "; ...";
    return fmt::format("categorical, {} categories{}: {}", c.category_counts.size(), missing, top);
  }
  if (c.kind == "numeric") {
    if (std::isnan(c.median)) return "numeric, all missing";
    return fmt::format("numeric{}: min {}, median {}, max {}", missing, with_commas(c.min),
                       with_commas(c.median), with_commas(c.max));
  }
  if (c.kind == "boolean") return fmt::format("boolean: {} true", with_commas(c.n_true));
  return fmt::format("string, {} distinct values", with_commas(c.n_unique));
}

nlohmann::json column_json(const ColumnSummary& c) {
  nlohmann::json j{{"name", c.name}, {"kind", c.kind}, {"n_missing", c.n_missing}};
  if (c.kind == "categorical") {
    nlohmann::json counts = nlohmann::json::array();
    for (const auto& [label, n] : c.category_counts) counts.push_back({{"category", label}, {"count", n}});
    j["n_categories"] = c.category_counts.size();
    j["categories"] = counts;
  } else if (c.kind == "numeric") {
    j["min"] = c.min;
    j["median"] = c.median;
    j["max"] = c.max;
  } else if (c.kind == "boolean") {
    j["n_true"] = c.n_true;
  } else {
    j["n_unique"] = c.n_unique;
  }
  return j;
}

}  // namespace

std::string with_commas(double value) {
  if (std::isnan(value)) return "nan";
  if (std::fabs(value) < 1000 && value != std::round(value)) return fmt::format("{:.2f}", value);
  const auto rounded = static_cast<int64_t>(std::llround(value));
  const std::string digits = std::to_string(rounded < 0 ? -rounded : rounded);
  std::string out = rounded < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double position = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  const auto below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  const double frac = position - static_cast<double>(below);
  return values[below] + frac * (values[above] - values[below]);
}

ColumnSummary summarize_column(const Column& column) {
  ColumnSummary s;
  s.name = column.name;
  s.kind = kind_name(column.kind);
  switch (column.kind) {
    case Column::Kind::Categorical: {
      std::vector<int64_t> counts(column.categories.size(), 0);
      for (const int32_t code : column.codes) {
        if (code < 0 || code >= static_cast<int32_t>(counts.size())) {
          ++s.n_missing;
        } else {
          ++counts[static_cast<size_t>(code)];
        }
      }
      for (size_t k = 0; k < counts.size(); ++k)
        s.category_counts.emplace_back(column.categories[k], counts[k]);
      std::stable_sort(s.category_counts.begin(), s.category_counts.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      break;
    }
    case Column::Kind::String: {
      s.n_unique = static_cast<int64_t>(
          std::unordered_set<std::string>(column.strings.begin(), column.strings.end()).size());
      break;
    }
    case Column::Kind::Numeric: {
      std::vector<double> present;
      for (const double v : column.numbers) {
        if (std::isnan(v)) {
          ++s.n_missing;
        } else {
          present.push_back(v);
        }
      }
      s.min = quantile(present, 0.0);
      s.median = quantile(present, 0.5);
      s.max = quantile(present, 1.0);
      break;
    }
    case Column::Kind::Boolean: {
      for (const uint8_t b : column.bools) s.n_true += b ? 1 : 0;
      break;
    }
  }
  return s;
}

DatasetSummary summarize(const AnnData& data, const std::string& source) {
  DatasetSummary s;
  s.n_obs = data.n_obs();
  s.n_vars = data.n_vars();
  s.nnz = data.X.nnz();
  const double cells = static_cast<double>(s.n_obs) * static_cast<double>(s.n_vars);
  s.zero_fraction = cells > 0 ? 1.0 - static_cast<double>(s.nnz) / cells : 0.0;
  if (const auto bad = find_non_count(data.X)) {
    s.is_counts = false;
    s.counts_problem = describe_non_count(*bad, data, source);
  }
  const std::vector<double> totals = data.X.row_sums();
  for (const auto& [name, q] : {std::pair{"min", 0.0},
                                {"5%", 0.05},
                                {"25%", 0.25},
                                {"50%", 0.5},
                                {"75%", 0.75},
                                {"95%", 0.95},
                                {"max", 1.0}}) {
    s.library_size.emplace_back(name, quantile(totals, q));
  }
  std::vector<double> genes(static_cast<size_t>(s.n_obs));
  for (int64_t r = 0; r < s.n_obs; ++r) {
    int64_t expressed = 0;
    for (const float v : data.X.row_values(r)) expressed += v != 0.0f ? 1 : 0;
    genes[static_cast<size_t>(r)] = static_cast<double>(expressed);
  }
  s.median_genes_per_cell = quantile(std::move(genes), 0.5);
  for (const auto& c : data.obs.columns) s.obs.push_back(summarize_column(c));
  for (const auto& c : data.var.columns) s.var.push_back(summarize_column(c));
  return s;
}

nlohmann::json to_json(const DatasetSummary& s) {
  nlohmann::json library = nlohmann::json::object();
  for (const auto& [name, value] : s.library_size) library[name] = value;
  nlohmann::json obs = nlohmann::json::array();
  for (const auto& c : s.obs) obs.push_back(column_json(c));
  nlohmann::json var = nlohmann::json::array();
  for (const auto& c : s.var) var.push_back(column_json(c));
  return nlohmann::json{
      {"n_obs", s.n_obs},
      {"n_vars", s.n_vars},
      {"nnz", s.nnz},
      {"zero_fraction", s.zero_fraction},
      {"is_counts", s.is_counts},
      {"counts_problem", s.is_counts ? nlohmann::json(nullptr) : nlohmann::json(s.counts_problem)},
      {"library_size", library},
      {"median_genes_per_cell", s.median_genes_per_cell},
      {"obs", obs},
      {"var", var}};
}

std::string format_summary(const DatasetSummary& s, int top_categories) {
  std::string out;
  out += fmt::format("  shape         {} cells x {} genes\n", with_commas(static_cast<double>(s.n_obs)),
                     with_commas(static_cast<double>(s.n_vars)));
  out += fmt::format("  values        {}\n", s.is_counts ? "raw counts (non-negative integers)"
                                                         : "NOT raw counts: " + s.counts_problem);
  out += fmt::format("  sparsity      {:.1f}% zeros ({} stored values)\n", 100.0 * s.zero_fraction,
                     with_commas(static_cast<double>(s.nnz)));
  std::string library;
  for (const auto& [name, value] : s.library_size) {
    library += fmt::format("{}{} {}", library.empty() ? "" : ", ", name, with_commas(value));
  }
  out += fmt::format("  library size  {}\n", library);
  out += fmt::format("  genes/cell    median {}\n", with_commas(s.median_genes_per_cell));
  const auto table = [&](const char* name, const std::vector<ColumnSummary>& columns) {
    out += fmt::format("{} ({} column{})\n", name, columns.size(), columns.size() == 1 ? "" : "s");
    size_t width = 12;
    for (const auto& c : columns) width = std::max(width, c.name.size() + 2);
    for (const auto& c : columns)
      out += fmt::format("  {:<{}}{}\n", c.name, width, describe_column(c, top_categories));
  };
  table("obs", s.obs);
  table("var", s.var);
  return out;
}

}  // namespace lingshu
