#pragma once
// obs / var tables as AnnData stores them: an index of strings and named columns that are
// categorical (codes into categories, -1 = missing), string, numeric or boolean.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lingshu {

struct Column {
  enum class Kind { Categorical, String, Numeric, Boolean };
  std::string name;
  Kind kind = Kind::String;
  std::vector<std::string> categories;  // Categorical
  std::vector<int32_t> codes;           // Categorical, -1 = missing
  bool ordered = false;                 // Categorical
  std::vector<std::string> strings;     // String
  std::vector<double> numbers;          // Numeric (NaN = missing)
  std::vector<uint8_t> bools;           // Boolean

  int64_t size() const;
  // Value of row i as text ("" for a missing categorical / NaN shown as "nan").
  std::string text(int64_t i) const;
  // Row i's label for grouping: categories for categoricals, the text otherwise; nullopt if missing.
  std::optional<std::string> label(int64_t i) const;

  static Column categorical(std::string name, const std::vector<std::string>& labels);
  static Column numeric(std::string name, std::vector<double> values);
  static Column string(std::string name, std::vector<std::string> values);
};

struct DataFrame {
  std::string index_name = "_index";
  std::vector<std::string> index;
  std::vector<Column> columns;

  int64_t size() const { return static_cast<int64_t>(index.size()); }
  const Column* find(const std::string& name) const;
  // Throws UserError naming the available columns if `name` is missing; `table` is "obs"/"var".
  const Column& require(const std::string& name, const char* table) const;
  // Adds or replaces a column of the same name.
  void set(Column column);
  // The rows listed, in that order.
  DataFrame select_rows(const std::vector<int64_t>& rows) const;
};

// The rows of several tables one after another (the obs of a corpus's shards). Columns missing
// from any part are left out; a column whose kind or categories differ between parts becomes
// categorical over the union of its labels.
DataFrame concat_rows(std::vector<DataFrame> parts);

}  // namespace lingshu
