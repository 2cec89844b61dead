#include "data/gene_knowledge.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>

#include "core/error.h"

namespace lingshu {

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return fields;
    start = tab + 1;
  }
}

std::optional<float> finite_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(v)) return std::nullopt;
  return static_cast<float>(v);
}

}  // namespace

GeneKnowledge read_gene_knowledge(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw UserError(
        fmt::format("--gene-knowledge {}: cannot open the file (make one with "
                    "scripts/gene_knowledge.sh)",
                    path.string()));
  }
  GeneKnowledge k;
  std::set<std::string> seen;
  std::string line;
  bool first_row = true;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    const auto fields = split_tabs(line);
    const auto where = fmt::format("--gene-knowledge {} line {}", path.string(), number);
    if (fields.size() < 2) {
      throw UserError(fmt::format("{}: expected a gene symbol and its numbers separated by tabs", where));
    }
    if (first_row && !finite_number(fields[1])) {  // a header
      first_row = false;
      continue;
    }
    first_row = false;
    const auto dim = static_cast<int64_t>(fields.size()) - 1;
    if (k.dim == 0) k.dim = dim;
    if (dim != k.dim) {
      throw UserError(fmt::format("{}: {} numbers where the lines before have {}", where, dim, k.dim));
    }
    if (fields[0].empty() || !seen.insert(fields[0]).second) {
      throw UserError(fields[0].empty() ? fmt::format("{}: the gene symbol is empty", where)
                                        : fmt::format("{}: gene '{}' is named twice", where, fields[0]));
    }
    for (size_t j = 1; j < fields.size(); ++j) {
      const auto v = finite_number(fields[j]);
      if (!v)
        throw UserError(fmt::format("{}: field {} ('{}') is not a finite number", where, j + 1, fields[j]));
      k.values.push_back(*v);
    }
    k.genes.push_back(fields[0]);
  }
  if (k.genes.empty()) {
    throw UserError(
        fmt::format("--gene-knowledge {}: no gene lines (expected 'SYMBOL<TAB>number...')", path.string()));
  }
  return k;
}

}  // namespace lingshu
