// 10x Genomics Matrix Market folders (Cell Ranger's filtered_feature_bc_matrix and the older v2
// layout), read with zlib's gzFile so plain and gzip-compressed files take the same path.
#include "io/tenx.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace lingshu {

namespace fs = std::filesystem;

namespace {

// Lines of a text file, plain or gzip-compressed, without the line ending.
class LineReader {
 public:
  explicit LineReader(fs::path path) : path_(std::move(path)), file_(gzopen(path_.c_str(), "rb")) {
    if (file_ == nullptr)
      throw UserError(fmt::format("cannot open {}; check that it is readable", path_.string()));
    gzbuffer(file_, 1 << 17);
  }
  ~LineReader() { gzclose(file_); }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  bool next(std::string& line) {
    line.clear();
    char buffer[1 << 16];
    while (gzgets(file_, buffer, sizeof buffer) != nullptr) {
      line += buffer;
      if (!line.empty() && line.back() == '\n') break;
    }
    check_stream();
    if (line.empty() && gzeof(file_)) return false;
    ++line_number_;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return true;
  }

  int64_t line_number() const { return line_number_; }
  const fs::path& path() const { return path_; }

 private:
  void check_stream() const {
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    if (code != Z_OK && code != Z_STREAM_END) {
      throw UserError(fmt::format("{} is damaged ({}); re-download or re-create it", path_.string(),
                                  message != nullptr ? message : "read error"));
    }
  }

  fs::path path_;
  gzFile file_;
  int64_t line_number_ = 0;
};

std::optional<fs::path> find_file(const fs::path& folder, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const fs::path candidate = folder / name;
    if (fs::is_regular_file(candidate)) return candidate;
  }
  return std::nullopt;
}

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    out.emplace_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

std::vector<std::string> split_whitespace(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

template <typename T>
bool parse_number(const std::string& token, T& value) {
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  return ec == std::errc() && end == token.data() + token.size();
}

// Non-empty lines of a TSV file, split at tabs.
std::vector<std::vector<std::string>> read_tsv(const fs::path& path) {
  LineReader reader(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (reader.next(line)) {
    if (line.empty()) continue;
    rows.push_back(split(line, '\t'));
  }
  return rows;
}

struct MtxEntry {
  int32_t cell;
  int32_t gene;
  float value;
};

struct MtxContent {
  int64_t n_genes = 0;
  int64_t n_cells = 0;
  std::vector<MtxEntry> entries;
};

void parse_header(LineReader& reader, std::string& line) {
  const std::string expected = "%%MatrixMarket matrix coordinate integer|real general";
  if (!reader.next(line)) {
    throw UserError(
        fmt::format("{} is empty; expected a Matrix Market header ({})", reader.path().string(), expected));
  }
  const auto words = split_whitespace(line);
  const bool ok = words.size() == 5 && lower(words[0]) == "%%matrixmarket" && lower(words[1]) == "matrix" &&
                  lower(words[2]) == "coordinate" &&
                  (lower(words[3]) == "integer" || lower(words[3]) == "real") && lower(words[4]) == "general";
  if (!ok) {
    throw UserError(fmt::format("{}: header '{}' is not supported; expected '{}' (a sparse count matrix)",
                                reader.path().string(), line.substr(0, 120), expected));
  }
}

MtxContent read_mtx(const fs::path& path) {
  LineReader reader(path);
  std::string line;
  parse_header(reader, line);
  const auto where = [&] { return fmt::format("{} line {}", path.string(), reader.line_number()); };

  MtxContent mtx;
  int64_t n_entries = -1;
  while (reader.next(line)) {
    if (line.empty() || line[0] == '%') continue;
    const auto words = split_whitespace(line);
    if (words.empty()) continue;
    if (words.size() != 3 || !parse_number(words[0], mtx.n_genes) || !parse_number(words[1], mtx.n_cells) ||
        !parse_number(words[2], n_entries) || mtx.n_genes < 0 || mtx.n_cells < 0 || n_entries < 0) {
      throw UserError(fmt::format("{}: expected the size line 'genes cells entries', found '{}'", where(),
                                  line.substr(0, 120)));
    }
    break;
  }
  if (n_entries < 0)
    throw UserError(fmt::format("{} has a header but no size line; the file is incomplete", path.string()));
  if (mtx.n_genes > INT32_MAX || mtx.n_cells > INT32_MAX) {
    throw UserError(fmt::format("{}: {} genes x {} cells is larger than lingshu supports", path.string(),
                                mtx.n_genes, mtx.n_cells));
  }
  if (n_entries > mtx.n_genes * mtx.n_cells) {
    throw UserError(fmt::format("{}: {} entries cannot fit a {} x {} matrix; the size line is wrong",
                                path.string(), n_entries, mtx.n_genes, mtx.n_cells));
  }
  // Capped: a corrupt size line must not reserve gigabytes up front.
  mtx.entries.reserve(static_cast<size_t>(std::min<int64_t>(n_entries, int64_t{1} << 20)));
  while (reader.next(line)) {
    if (line.empty() || line[0] == '%') continue;
    const auto words = split_whitespace(line);
    if (words.empty()) continue;
    int64_t gene = 0;
    int64_t cell = 0;
    double value = 0;
    if (words.size() != 3 || !parse_number(words[0], gene) || !parse_number(words[1], cell) ||
        !parse_number(words[2], value)) {
      throw UserError(
          fmt::format("{}: expected 'gene cell count', found '{}'", where(), line.substr(0, 120)));
    }
    if (gene < 1 || gene > mtx.n_genes || cell < 1 || cell > mtx.n_cells) {
      throw UserError(fmt::format("{}: entry ({}, {}) is outside the {} x {} matrix (indices start at 1)",
                                  where(), gene, cell, mtx.n_genes, mtx.n_cells));
    }
    if (!std::isfinite(value) || value < 0 || value > 1e30) {
      throw UserError(fmt::format("{}: count {} is not a non-negative number", where(), words[2]));
    }
    if (static_cast<int64_t>(mtx.entries.size()) >= n_entries) {
      throw UserError(fmt::format("{}: more entries than the {} the size line announces; the file is corrupt",
                                  where(), n_entries));
    }
    mtx.entries.push_back(
        {static_cast<int32_t>(cell - 1), static_cast<int32_t>(gene - 1), static_cast<float>(value)});
  }
  if (static_cast<int64_t>(mtx.entries.size()) != n_entries) {
    throw UserError(
        fmt::format("{} has {} entries but its size line announces {}; the file is truncated or "
                    "corrupt",
                    path.string(), mtx.entries.size(), n_entries));
  }
  return mtx;
}

// Genes x cells triplets -> cells x genes CSR; duplicate entries are summed (as scipy does).
CsrMatrix to_cells_by_genes(MtxContent& mtx) {
  auto& e = mtx.entries;
  std::sort(e.begin(), e.end(), [](const MtxEntry& a, const MtxEntry& b) {
    return a.cell != b.cell ? a.cell < b.cell : a.gene < b.gene;
  });
  CsrMatrix x;
  x.n_cols = mtx.n_genes;
  x.indptr.reserve(static_cast<size_t>(mtx.n_cells) + 1);
  std::vector<int32_t> cols;
  std::vector<float> vals;
  size_t k = 0;
  for (int32_t cell = 0; cell < mtx.n_cells; ++cell) {
    cols.clear();
    vals.clear();
    for (; k < e.size() && e[k].cell == cell; ++k) {
      if (!cols.empty() && cols.back() == e[k].gene) {
        vals.back() += e[k].value;
      } else {
        cols.push_back(e[k].gene);
        vals.push_back(e[k].value);
      }
    }
    x.append_row(cols, vals);
  }
  return x;
}

[[noreturn]] void missing_file(const fs::path& folder, const char* what) {
  throw UserError(
      fmt::format("{} has no {}; a 10x folder holds matrix.mtx.gz, features.tsv.gz (or genes.tsv) and "
                  "barcodes.tsv.gz, as in Cell Ranger's filtered_feature_bc_matrix",
                  folder.string(), what));
}

}  // namespace

std::vector<std::string> make_unique_names(std::vector<std::string> names) {
  std::unordered_set<std::string> taken(names.begin(), names.end());
  if (taken.size() == names.size()) return names;
  std::unordered_set<std::string> seen;
  std::unordered_map<std::string, int64_t> counter;
  for (auto& name : names) {
    if (seen.insert(name).second) continue;  // first occurrence keeps its name
    while (true) {
      const std::string candidate = fmt::format("{}-{}", name, ++counter[name]);
      if (taken.insert(candidate).second) {
        name = candidate;
        break;
      }
    }
  }
  return names;
}

AnnData read_10x_mtx(const fs::path& folder) {
  if (!fs::is_directory(folder)) {
    throw UserError(
        fmt::format("{} is not a folder; give the folder holding matrix.mtx.gz", folder.string()));
  }
  const auto matrix_path = find_file(folder, {"matrix.mtx.gz", "matrix.mtx"});
  if (!matrix_path) missing_file(folder, "matrix.mtx(.gz)");
  const auto features_path =
      find_file(folder, {"features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"});
  if (!features_path) missing_file(folder, "features.tsv(.gz) or genes.tsv(.gz)");
  const auto barcodes_path = find_file(folder, {"barcodes.tsv.gz", "barcodes.tsv"});
  if (!barcodes_path) missing_file(folder, "barcodes.tsv(.gz)");

  MtxContent mtx = read_mtx(*matrix_path);
  const auto features = read_tsv(*features_path);
  const auto barcodes = read_tsv(*barcodes_path);
  if (static_cast<int64_t>(features.size()) != mtx.n_genes) {
    throw UserError(
        fmt::format("{} lists {} features but {} has {} rows (genes); the files do not belong together",
                    features_path->string(), features.size(), matrix_path->string(), mtx.n_genes));
  }
  if (static_cast<int64_t>(barcodes.size()) != mtx.n_cells) {
    throw UserError(
        fmt::format("{} lists {} barcodes but {} has {} columns (cells); the files do not belong "
                    "together",
                    barcodes_path->string(), barcodes.size(), matrix_path->string(), mtx.n_cells));
  }
  if (mtx.n_genes == 0 || mtx.n_cells == 0) {
    throw UserError(
        fmt::format("{} is empty ({} cells x {} genes); lingshu needs at least one cell and one gene",
                    matrix_path->string(), mtx.n_cells, mtx.n_genes));
  }

  AnnData data;
  data.X = to_cells_by_genes(mtx);
  data.obs.index_name = "_index";
  for (const auto& row : barcodes) data.obs.index.push_back(row[0]);

  // As scanpy.read_10x_mtx: gene symbols (made unique) as names, ids and feature types as columns.
  std::vector<std::string> ids;
  std::vector<std::string> symbols;
  std::vector<std::string> types;
  const bool has_types =
      std::all_of(features.begin(), features.end(), [](const auto& r) { return r.size() >= 3; });
  for (const auto& row : features) {
    ids.push_back(row[0]);
    symbols.push_back(row.size() >= 2 ? row[1] : row[0]);
    if (has_types) types.push_back(row[2]);
  }
  data.var.index_name = "_index";
  data.var.index = make_unique_names(std::move(symbols));
  data.var.columns.push_back(Column::string("gene_ids", std::move(ids)));
  if (has_types) data.var.columns.push_back(Column::categorical("feature_types", types));
  return data;
}

}  // namespace lingshu
