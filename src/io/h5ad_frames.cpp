#include "io/h5ad_frames.h"

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "io/hdf5.h"

namespace lingshu {

namespace fs = std::filesystem;
using hdf5::Handle;

namespace {

// Python's str() of a float, near enough for category labels: 1.0 -> "1.0", 0.5 -> "0.5".
std::string python_float_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// Category labels: strings, or numbers / booleans turned into text.
std::vector<std::string> read_labels(hid_t dataset, const std::string& where) {
  hdf5::require_readable_filters(dataset, where);
  const H5T_class_t cls = hdf5::type_class(dataset);
  if (cls == H5T_STRING) return hdf5::read_strings(dataset, where);
  std::vector<std::string> out;
  if (hdf5::is_bool_enum(dataset)) {
    for (const uint8_t b : hdf5::read_bool_bytes(dataset, where)) out.emplace_back(b ? "True" : "False");
  } else if (cls == H5T_INTEGER) {
    for (const int64_t v : hdf5::read_1d_all<int64_t>(dataset, where)) out.push_back(std::to_string(v));
  } else if (cls == H5T_FLOAT) {
    for (const double v : hdf5::read_1d_all<double>(dataset, where)) out.push_back(python_float_text(v));
  } else {
    throw UserError(fmt::format("{}: categories of this type are not supported", where));
  }
  return out;
}

Column categorical_column(const std::string& name, hid_t codes, std::vector<std::string> categories,
                          bool ordered, const std::string& where) {
  hdf5::require_readable_filters(codes, where);
  if (hdf5::type_class(codes) != H5T_INTEGER) {
    throw UserError(fmt::format("{}: categorical codes must be integers", where));
  }
  Column col;
  col.name = name;
  col.kind = Column::Kind::Categorical;
  col.codes = hdf5::read_1d_all<int32_t>(codes, where);
  col.categories = std::move(categories);
  col.ordered = ordered;
  const auto n_categories = static_cast<int32_t>(col.categories.size());
  for (size_t i = 0; i < col.codes.size(); ++i) {
    if (col.codes[i] < -1 || col.codes[i] >= n_categories) {
      throw UserError(
          fmt::format("{}: code {} at row {} is outside -1..{} (there are {} categories); the file "
                      "is corrupt",
                      where, col.codes[i], i, n_categories - 1, n_categories));
    }
  }
  return col;
}

// A 1-D array of flags stored as h5py bools or as integers.
std::vector<uint8_t> read_flags(hid_t dataset, const std::string& where) {
  if (hdf5::is_bool_enum(dataset)) return hdf5::read_bool_bytes(dataset, where);
  if (hdf5::type_class(dataset) != H5T_INTEGER) {
    throw UserError(fmt::format("{} should hold booleans", where));
  }
  const auto values = hdf5::read_1d_all<int32_t>(dataset, where);
  std::vector<uint8_t> flags(values.size());
  std::transform(values.begin(), values.end(), flags.begin(), [](int32_t v) { return v != 0; });
  return flags;
}

// Nullable integer / boolean / float arrays (values + mask, mask true = missing) -> numbers with NaN.
Column nullable_column(hid_t frame, const std::string& name, const std::string& where) {
  const Handle values = hdf5::open_dataset(frame, name + "/values", where + "/values");
  const Handle mask = hdf5::open_dataset(frame, name + "/mask", where + "/mask");
  hdf5::require_readable_filters(values.get(), where + "/values");
  hdf5::require_readable_filters(mask.get(), where + "/mask");
  std::vector<double> numbers;
  if (hdf5::is_bool_enum(values.get())) {
    for (const uint8_t b : hdf5::read_bool_bytes(values.get(), where + "/values")) numbers.push_back(b);
  } else {
    hdf5::require_numeric(values.get(), where + "/values");
    numbers = hdf5::read_1d_all<double>(values.get(), where + "/values");
  }
  const auto missing = read_flags(mask.get(), where + "/mask");
  if (missing.size() != numbers.size()) {
    throw UserError(fmt::format("{}: mask and values differ in length; the file is corrupt", where));
  }
  for (size_t i = 0; i < numbers.size(); ++i) {
    if (missing[i]) numbers[i] = std::nan("");
  }
  return Column::numeric(name, std::move(numbers));
}

// One dataframe column; nullopt for encodings lingshu does not use (skipped, never an error).
std::optional<Column> read_column(hid_t frame, const std::string& name, const std::string& where) {
  if (hdf5::is_group(frame, name)) {
    const Handle group = hdf5::open_group(frame, name, where);
    const std::string encoding = hdf5::string_attr(group.get(), "encoding-type").value_or("");
    if (encoding == "categorical") {
      const Handle codes = hdf5::open_dataset(group.get(), "codes", where + "/codes");
      const Handle categories = hdf5::open_dataset(group.get(), "categories", where + "/categories");
      return categorical_column(name, codes.get(), read_labels(categories.get(), where + "/categories"),
                                hdf5::bool_attr(group.get(), "ordered").value_or(false), where + "/codes");
    }
    if (encoding.starts_with("nullable-")) return nullable_column(frame, name, where);
    return std::nullopt;
  }
  if (!hdf5::is_dataset(frame, name)) return std::nullopt;
  const Handle ds = hdf5::open_dataset(frame, name, where);
  if (hdf5::dims(ds.get()).size() != 1) return std::nullopt;
  // anndata 0.7: integer codes with an object reference to __categories/NAME.
  if (auto categories = hdf5::dereference_attr(ds.get(), "categories")) {
    const std::string cat_where = where + " (categories)";
    return categorical_column(name, ds.get(), read_labels(categories->get(), cat_where),
                              hdf5::bool_attr(ds.get(), "ordered").value_or(false), where);
  }
  hdf5::require_readable_filters(ds.get(), where);
  switch (hdf5::type_class(ds.get())) {
    case H5T_STRING:
      return Column::string(name, hdf5::read_strings(ds.get(), where));
    case H5T_ENUM: {
      if (!hdf5::is_bool_enum(ds.get())) return std::nullopt;
      Column col;
      col.name = name;
      col.kind = Column::Kind::Boolean;
      col.bools = hdf5::read_bool_bytes(ds.get(), where);
      return col;
    }
    case H5T_INTEGER:
    case H5T_FLOAT:
      return Column::numeric(name, hdf5::read_1d_all<double>(ds.get(), where));
    default:
      return std::nullopt;
  }
}

std::vector<std::string> numbered_index(int64_t n) {
  std::vector<std::string> index(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) index[static_cast<size_t>(i)] = std::to_string(i);
  return index;
}

}  // namespace

// `table` is "obs" or "var" (for messages), `rows` the length the matrix implies.
DataFrame read_frame(hid_t root, const fs::path& file, const std::string& path, const char* table,
                     int64_t rows, const char* unit) {
  DataFrame frame;
  if (hdf5::is_dataset(root, path)) {
    throw UserError(
        fmt::format("{} is stored in the pre-0.7 anndata layout (a table dataset), which lingshu "
                    "does not read; re-save it with a recent anndata: "
                    "anndata.read_h5ad(path).write_h5ad('new.h5ad')",
                    hdf5::where(file, path)));
  }
  if (!hdf5::is_group(root, path)) {
    // No table at all: keep the matrix usable with a numbered index, as anndata does.
    frame.index = numbered_index(rows);
    return frame;
  }
  const std::string where = hdf5::where(file, path);
  const Handle group = hdf5::open_group(root, path, where);
  std::string index_name = hdf5::string_attr(group.get(), "_index").value_or("");
  if (index_name.empty()) {
    for (const char* candidate : {"_index", "index"}) {
      if (hdf5::is_dataset(group.get(), candidate)) index_name = candidate;
    }
  }
  if (!index_name.empty()) {
    if (!hdf5::is_dataset(group.get(), index_name)) {
      throw UserError(
          fmt::format("{}: the index dataset '{}' named by the _index attribute is missing; the file "
                      "is corrupt",
                      where, index_name));
    }
    const Handle ds = hdf5::open_dataset(group.get(), index_name, where + "/" + index_name);
    hdf5::require_readable_filters(ds.get(), where + "/" + index_name);
    frame.index = read_labels(ds.get(), where + "/" + index_name);
    frame.index_name = index_name;
  } else {
    frame.index = numbered_index(rows);
  }
  if (frame.size() != rows) {
    throw UserError(
        fmt::format("{} has {} rows but the matrix has {} {}; the file is inconsistent "
                    "(obs must match X's rows, var its columns)",
                    where, frame.size(), rows, unit));
  }

  std::vector<std::string> names;
  if (hdf5::has_attr(group.get(), "column-order")) {
    names = hdf5::string_array_attr(group.get(), "column-order");
  } else {
    for (auto& m : hdf5::members(group.get())) {
      if (m != index_name && m != "__categories") names.push_back(std::move(m));
    }
  }
  for (const auto& name : names) {
    if (name == index_name || !hdf5::exists(group.get(), name)) continue;
    auto column = read_column(group.get(), name, where + "/" + name);
    if (!column) continue;
    if (column->size() != rows) {
      throw UserError(fmt::format("{}/{} has {} values but {} has {} rows; the file is inconsistent", where,
                                  name, column->size(), table, rows));
    }
    frame.columns.push_back(std::move(*column));
  }
  return frame;
}

void require_unique_genes(const DataFrame& var, const fs::path& file) {
  std::unordered_map<std::string_view, size_t> first_row;
  first_row.reserve(var.index.size());
  for (size_t i = 0; i < var.index.size(); ++i) {
    const auto [it, inserted] = first_row.emplace(var.index[i], i);
    if (!inserted) {
      throw UserError(
          fmt::format("{}: gene name '{}' appears more than once in var (rows {} and {}); make names "
                      "unique, e.g. adata.var_names_make_unique(), and save again",
                      file.string(), var.index[i], it->second, i));
    }
  }
}

// uns entries that are scalar strings; everything else in uns is skipped.
std::vector<std::pair<std::string, std::string>> read_uns_strings(hid_t root, const fs::path& file) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!hdf5::is_group(root, "uns")) return out;
  const Handle uns = hdf5::open_group(root, "uns", hdf5::where(file, "uns"));
  for (const auto& name : hdf5::members(uns.get())) {
    if (!hdf5::is_dataset(uns.get(), name)) continue;
    const std::string where = hdf5::where(file, "uns/" + name);
    const Handle ds = hdf5::open_dataset(uns.get(), name, where);
    if (!hdf5::dims(ds.get()).empty() || hdf5::type_class(ds.get()) != H5T_STRING) continue;
    auto values = hdf5::read_strings(ds.get(), where);
    if (values.size() == 1) out.emplace_back(name, std::move(values.front()));
  }
  return out;
}

}  // namespace lingshu
