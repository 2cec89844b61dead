// Writing .h5ad files exactly as anndata 0.8 lays them out (encoding attributes, dataframe
// conventions, h5py-style bools), so anndata and scanpy read them back unchanged.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <span>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/h5ad.h"
#include "io/hdf5.h"

namespace lingshu {

namespace fs = std::filesystem;
using hdf5::Handle;

namespace {

void set_encoding(hid_t obj, const char* type, const char* version) {
  hdf5::write_string_attr(obj, "encoding-type", type);
  hdf5::write_string_attr(obj, "encoding-version", version);
}

// Counts are whole numbers and anndata keeps the dtype it reads, so counts are stored as integers
// (what a raw-count file from Cell Ranger or anndata holds); anything else stays float32.
bool holds_int32_counts(std::span<const float> values) {
  constexpr float kLimit = 2147483520.0f;  // the largest float below 2^31
  return std::all_of(values.begin(), values.end(),
                     [](float v) { return v == std::trunc(v) && std::fabs(v) <= kLimit; });
}

// scipy's row indexing needs `indices` and `indptr` of one integer type (it fails on int32 indices
// with int64 indptr), so both are int32 while the matrix fits, int64 beyond: as anndata writes them.
bool needs_int64_indices(const CsrMatrix& x) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  return x.nnz() > kInt32Max || x.n_cols > kInt32Max;
}

void write_matrix(hid_t root, const CsrMatrix& x) {
  x.validate("X to write");
  // lingshu's reader refuses non-finite values, so never write a file it could not read back.
  for (int64_t r = 0; r < x.n_rows; ++r) {
    for (const float v : x.row_values(r)) {
      if (!std::isfinite(v)) {
        throw UserError(
            fmt::format("X to write has a non-finite value ({}) in row {}; nothing was written", v, r));
      }
    }
  }
  const Handle group = hdf5::create_group(root, "X");
  set_encoding(group.get(), "csr_matrix", "0.1.0");
  hdf5::write_int64_array_attr(group.get(), "shape", {x.n_rows, x.n_cols});
  if (holds_int32_counts(x.values)) {
    hdf5::write_1d<int32_t>(group.get(), "data", std::vector<int32_t>(x.values.begin(), x.values.end()));
  } else {
    hdf5::write_1d<float>(group.get(), "data", x.values);
  }
  if (needs_int64_indices(x)) {
    hdf5::write_1d<int64_t>(group.get(), "indices", std::vector<int64_t>(x.indices.begin(), x.indices.end()));
    hdf5::write_1d<int64_t>(group.get(), "indptr", x.indptr);
  } else {
    hdf5::write_1d<int32_t>(group.get(), "indices", x.indices);
    hdf5::write_1d<int32_t>(group.get(), "indptr", std::vector<int32_t>(x.indptr.begin(), x.indptr.end()));
  }
}

// pandas stores categorical codes in the narrowest signed type that holds the categories.
template <typename T>
void write_codes_as(hid_t group, const std::vector<int32_t>& codes) {
  const std::vector<T> narrow(codes.begin(), codes.end());
  const Handle ds = hdf5::write_1d<T>(group, "codes", narrow);
  set_encoding(ds.get(), "array", "0.2.0");
}

void write_categorical(hid_t frame, const Column& col, const std::string& where) {
  const auto n_categories = static_cast<int64_t>(col.categories.size());
  for (size_t i = 0; i < col.codes.size(); ++i) {
    if (col.codes[i] < -1 || col.codes[i] >= n_categories) {
      throw UserError(fmt::format("cannot write {}: code {} at row {} is outside -1..{}", where, col.codes[i],
                                  i, n_categories - 1));
    }
  }
  if (std::set<std::string>(col.categories.begin(), col.categories.end()).size() != col.categories.size()) {
    throw UserError(fmt::format("cannot write {}: its categories are not unique", where));
  }
  const Handle group = hdf5::create_group(frame, col.name);
  set_encoding(group.get(), "categorical", "0.2.0");
  hdf5::write_bool_attr(group.get(), "ordered", col.ordered);
  const Handle categories = hdf5::write_strings(group.get(), "categories", col.categories);
  set_encoding(categories.get(), "string-array", "0.2.0");
  if (n_categories < 128) {
    write_codes_as<int8_t>(group.get(), col.codes);
  } else if (n_categories < 32768) {
    write_codes_as<int16_t>(group.get(), col.codes);
  } else {
    write_codes_as<int32_t>(group.get(), col.codes);
  }
}

void write_column(hid_t frame, const Column& col, const std::string& where) {
  Handle ds;
  switch (col.kind) {
    case Column::Kind::Categorical:
      write_categorical(frame, col, where);
      return;
    case Column::Kind::String:
      ds = hdf5::write_strings(frame, col.name, col.strings);
      set_encoding(ds.get(), "string-array", "0.2.0");
      return;
    case Column::Kind::Numeric:
      ds = hdf5::write_1d<double>(frame, col.name, col.numbers);
      break;
    case Column::Kind::Boolean:
      ds = hdf5::write_bools(frame, col.name, col.bools);
      break;
  }
  set_encoding(ds.get(), "array", "0.2.0");
}

std::vector<std::string> index_or_numbers(const DataFrame& frame, int64_t rows) {
  if (!frame.index.empty() || rows == 0) return frame.index;
  std::vector<std::string> index(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) index[static_cast<size_t>(i)] = std::to_string(i);
  return index;
}

// `table` is "obs" or "var"; an empty index is filled with "0", "1", ... as anndata does.
void write_frame(hid_t root, const char* table, const DataFrame& frame, int64_t rows) {
  const std::vector<std::string> index = index_or_numbers(frame, rows);
  if (static_cast<int64_t>(index.size()) != rows) {
    throw UserError(fmt::format("cannot write {}: its index has {} entries but X has {} {}", table,
                                index.size(), rows, std::string(table) == "obs" ? "rows" : "columns"));
  }
  std::set<std::string> names;
  std::vector<std::string> order;
  for (const auto& col : frame.columns) {
    const std::string where = fmt::format("{} column '{}'", table, col.name);
    if (col.name.empty() || col.name.find('/') != std::string::npos) {
      throw UserError(fmt::format("cannot write {}: names must be non-empty and contain no '/'", where));
    }
    if (!names.insert(col.name).second)
      throw UserError(fmt::format("cannot write {}: duplicate name", where));
    if (col.size() != rows) {
      throw UserError(fmt::format("cannot write {}: it has {} values but {} has {} rows", where, col.size(),
                                  table, rows));
    }
    order.push_back(col.name);
  }
  // The index dataset may have any name, as long as no column uses it.
  std::string index_name = frame.index_name.empty() ? "_index" : frame.index_name;
  if (names.contains(index_name) || index_name.find('/') != std::string::npos) index_name = "_index";
  if (names.contains(index_name)) {
    throw UserError(
        fmt::format("cannot write {}: a column is named '_index', which anndata reserves", table));
  }

  const Handle group = hdf5::create_group(root, table);
  hdf5::write_string_attr(group.get(), "_index", index_name);
  if (order.empty()) {
    hdf5::write_empty_float_array_attr(group.get(), "column-order");
  } else {
    hdf5::write_string_array_attr(group.get(), "column-order", order);
  }
  set_encoding(group.get(), "dataframe", "0.2.0");
  const Handle index_ds = hdf5::write_strings(group.get(), index_name, index);
  set_encoding(index_ds.get(), "string-array", "0.2.0");
  for (const auto& col : frame.columns)
    write_column(group.get(), col, fmt::format("{} column '{}'", table, col.name));
}

void write_uns(hid_t root, const std::vector<std::pair<std::string, std::string>>& entries) {
  const Handle uns = hdf5::create_group(root, "uns");
  set_encoding(uns.get(), "dict", "0.1.0");
  std::set<std::string> seen;
  for (const auto& [key, value] : entries) {
    if (key.empty() || key.find('/') != std::string::npos || !seen.insert(key).second) {
      throw UserError(
          fmt::format("cannot write uns entry '{}': keys must be unique, non-empty and contain no '/'", key));
    }
    const Handle ds = hdf5::write_scalar_string(uns.get(), key, value);
    set_encoding(ds.get(), "string", "0.2.0");
  }
}

// The reader refuses duplicate gene names (they make gene lookups ambiguous), so the writer does too.
void require_unique_genes(const DataFrame& var) {
  std::set<std::string_view> seen;
  for (const auto& name : var.index) {
    if (!seen.insert(name).second) {
      throw UserError(
          fmt::format("gene name '{}' appears more than once in var; make names unique first "
                      "(lingshu::make_unique_names, like anndata's var_names_make_unique)",
                      name));
    }
  }
}

void write_header(hid_t root) {
  hdf5::write_string_attr(root, "encoding-type", "anndata");
  hdf5::write_string_attr(root, "encoding-version", "0.1.0");
}

// Everything after X: obs, var, uns and the mappings anndata 0.8 always writes (empty when unused).
void write_rest(hid_t root, const DataFrame& obs, const DataFrame& var,
                const std::vector<std::pair<std::string, std::string>>& uns, int64_t n_rows, int64_t n_cols) {
  write_frame(root, "obs", obs, n_rows);
  write_frame(root, "var", var, n_cols);
  write_uns(root, uns);
  for (const char* name : {"layers", "obsm", "obsp", "varm", "varp"}) {
    const Handle group = hdf5::create_group(root, name);
    set_encoding(group.get(), "dict", "0.1.0");
  }
}

// Runs `write`, naming the destination in its errors (the temporary name means nothing to the user).
template <typename Write>
void naming_destination(const fs::path& path, Write&& write) {
  try {
    write();
  } catch (const UserError& e) {
    throw UserError(fmt::format("writing {}: {}", path.string(), e.what()));
  }
}

void write_file(const fs::path& tmp, const AnnData& data) {
  require_unique_genes(data.var);
  Handle file = hdf5::create_file(tmp);
  write_header(file.get());
  write_matrix(file.get(), data.X);
  write_rest(file.get(), data.obs, data.var, data.uns_strings, data.X.n_rows, data.X.n_cols);
  hdf5::close_file(file);
}

}  // namespace

void write_h5ad(const fs::path& path, const AnnData& data) {
  write_atomically(path,
                   [&](const fs::path& tmp) { naming_destination(path, [&] { write_file(tmp, data); }); });
}

struct H5adRowWriter::Impl {
  PendingFile pending;
  Handle file, x, data, indices, indptr;
  int64_t n_rows = 0, nnz = 0, n_cols = -1;

  explicit Impl(const fs::path& p) : pending(p) {}
};

H5adRowWriter::H5adRowWriter(const fs::path& path) : impl_(std::make_unique<Impl>(path)) {
  auto& m = *impl_;
  m.file = hdf5::create_file(m.pending.tmp());
  write_header(m.file.get());
  m.x = hdf5::create_group(m.file.get(), "X");
  set_encoding(m.x.get(), "csr_matrix", "0.1.0");
  // Counts are whole numbers (int32, as write_h5ad stores them); indices and indptr int64 from the
  // start, since the final number of stored values is not known yet.
  m.data = hdf5::create_growing_1d<int32_t>(m.x.get(), "data");
  m.indices = hdf5::create_growing_1d<int64_t>(m.x.get(), "indices");
  m.indptr = hdf5::create_growing_1d<int64_t>(m.x.get(), "indptr");
  const std::vector<int64_t> start = {0};
  hdf5::append_1d<int64_t>(m.indptr.get(), start, "X/indptr");
}

H5adRowWriter::~H5adRowWriter() = default;

int64_t H5adRowWriter::n_rows() const {
  return impl_->n_rows;
}

void H5adRowWriter::append_rows(const CsrMatrix& rows) {
  auto& m = *impl_;
  rows.validate("rows to write");
  if (m.n_cols >= 0 && rows.n_cols != m.n_cols) {
    throw UserError(fmt::format("rows to write have {} columns, earlier rows {}; nothing was written to {}",
                                rows.n_cols, m.n_cols, m.pending.path().string()));
  }
  m.n_cols = rows.n_cols;
  if (!holds_int32_counts(rows.values)) {
    throw UserError(fmt::format("rows to write hold values that are not counts; nothing was written to {}",
                                m.pending.path().string()));
  }
  const std::vector<int32_t> values(rows.values.begin(), rows.values.end());
  const std::vector<int64_t> indices(rows.indices.begin(), rows.indices.end());
  std::vector<int64_t> ends(rows.indptr.begin() + 1, rows.indptr.end());
  for (auto& e : ends) e += m.nnz;
  naming_destination(m.pending.path(), [&] {
    hdf5::append_1d<int32_t>(m.data.get(), values, "X/data");
    hdf5::append_1d<int64_t>(m.indices.get(), indices, "X/indices");
    hdf5::append_1d<int64_t>(m.indptr.get(), ends, "X/indptr");
  });
  m.n_rows += rows.n_rows;
  m.nnz += rows.nnz();
}

void H5adRowWriter::finish(const DataFrame& obs, const DataFrame& var,
                           const std::vector<std::pair<std::string, std::string>>& uns) {
  auto& m = *impl_;
  require_unique_genes(var);
  if (m.n_cols < 0) m.n_cols = var.size();
  if (var.size() != m.n_cols) {
    throw UserError(fmt::format("writing {}: var has {} rows for {} columns", m.pending.path().string(),
                                var.size(), m.n_cols));
  }
  naming_destination(m.pending.path(), [&] {
    hdf5::write_int64_array_attr(m.x.get(), "shape", {m.n_rows, m.n_cols});
    write_rest(m.file.get(), obs, var, uns, m.n_rows, m.n_cols);
    m.data.reset();
    m.indices.reset();
    m.indptr.reset();
    m.x.reset();
    hdf5::close_file(m.file);
  });
  m.pending.commit();
}

}  // namespace lingshu
