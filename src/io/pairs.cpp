#include "io/pairs.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"

namespace lingshu {

int PredictionPairs::column(const std::string& name) const {
  const auto it = std::find(columns.begin(), columns.end(), name);
  return it == columns.end() ? -1 : static_cast<int>(it - columns.begin());
}

namespace {

// One CSV record: comma-separated, double-quoted fields may hold commas and "" for a quote.
std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  for (auto& f : fields) {
    const auto first = f.find_first_not_of(" \t");
    const auto last = f.find_last_not_of(" \t");
    f = first == std::string::npos ? std::string() : f.substr(first, last - first + 1);
  }
  return fields;
}

}  // namespace

PredictionPairs parse_prediction_pairs(const std::string& csv_text, const std::string& source) {
  std::istringstream in(csv_text);
  std::string line;
  int line_number = 0;
  PredictionPairs pairs;
  std::map<std::vector<std::string>, int> first_line;  // labels -> the line that named them first
  int n_cells_col = -1;
  size_t n_fields = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto fields = split_csv_line(line);
    if (n_fields == 0) {
      const auto it = std::find(fields.begin(), fields.end(), "n_cells");
      if (it == fields.end()) {
        throw UserError(
            fmt::format("{}: the header '{}' has no n_cells column; write e.g. "
                        "'cell_type,condition,n_cells'",
                        source, line));
      }
      n_cells_col = static_cast<int>(it - fields.begin());
      n_fields = fields.size();
      fields.erase(it);
      pairs.columns = fields;
      continue;
    }
    if (fields.size() != n_fields) {
      throw UserError(fmt::format("{} line {}: {} fields where the header has {}", source, line_number,
                                  fields.size(), n_fields));
    }
    const std::string count_text = fields[static_cast<size_t>(n_cells_col)];
    size_t used = 0;
    int64_t count = 0;
    try {
      count = std::stoll(count_text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != count_text.size() || count < 1) {
      throw UserError(fmt::format("{} line {}: n_cells '{}' is not a positive whole number", source,
                                  line_number, count_text));
    }
    fields.erase(fields.begin() + n_cells_col);
    const auto [seen, added] = first_line.emplace(fields, line_number);
    if (!added) {
      throw UserError(
          fmt::format("{} line {}: the same labels as line {}; give each combination one row "
                      "(add their n_cells)",
                      source, line_number, seen->second));
    }
    pairs.rows.push_back(std::move(fields));
    pairs.n_cells.push_back(count);
  }
  if (n_fields == 0 || pairs.rows.empty()) {
    throw UserError(
        fmt::format("{} lists no cells to predict; write a header and one row per "
                    "(context, perturbation), e.g. 'cell_type,condition,n_cells' then 'K562,KLF1,100'",
                    source));
  }
  return pairs;
}

PredictionPairs read_prediction_pairs(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw UserError(fmt::format("cannot open the pairs file {}", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  return parse_prediction_pairs(text.str(), path.string());
}

}  // namespace lingshu
