// Reading .h5ad files: locate the matrix (X, raw/X or a layer), stream its rows (CSR by
// hyperslabs; CSC and dense converted), with the obs / var dataframes of io/h5ad_frames.h.
#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "core/error.h"
#include "core/progress.h"
#include "io/h5ad.h"
#include "io/h5ad_frames.h"
#include "io/hdf5.h"

namespace lingshu {

namespace fs = std::filesystem;
using hdf5::Handle;

namespace {

// ---- where the matrix is -----------------------------------------------------------------------

struct MatrixLocation {
  std::string matrix;     // "X", "raw/X" or "layers/NAME"
  std::string var_group;  // "var" or "raw/var"
};

std::vector<std::string> available_matrices(hid_t root) {
  std::vector<std::string> names;
  if (hdf5::exists(root, "X")) names.emplace_back("X");
  if (hdf5::exists(root, "raw/X")) names.emplace_back("raw");
  if (hdf5::is_group(root, "layers")) {
    const Handle layers(H5Gopen2(root, "layers", H5P_DEFAULT));
    for (auto& name : hdf5::members(layers.get())) names.push_back(std::move(name));
  }
  return names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

MatrixLocation locate_matrix(hid_t root, const fs::path& file, const std::string& layer) {
  MatrixLocation loc;
  if (layer.empty() || layer == "X") {
    loc = {"X", "var"};
  } else if (layer == "raw") {
    loc = {"raw/X", hdf5::exists(root, "raw/var") ? "raw/var" : "var"};
  } else {
    loc = {"layers/" + layer, "var"};
  }
  if (hdf5::exists(root, loc.matrix)) return loc;

  if (loc.matrix == "X" && hdf5::exists(root, "matrix") && hdf5::exists(root, "matrix/barcodes")) {
    throw UserError(
        fmt::format("{} looks like a 10x Genomics .h5 file, not an AnnData .h5ad; convert it in Python: "
                    "scanpy.read_10x_h5(path).write_h5ad('out.h5ad')",
                    file.string()));
  }
  const auto available = available_matrices(root);
  if (loc.matrix == "X") {
    throw UserError(fmt::format("{} has no X matrix; choose a layer instead (available: {})", file.string(),
                                joined(available)));
  }
  throw UserError(
      fmt::format("layer '{}' is not in {}; available layers: {}", layer, file.string(), joined(available)));
}

// ---- rows -> canonical CSR ---------------------------------------------------------------------

// Appends rows to a CSR matrix while checking values and indices, sorting unsorted rows and
// summing duplicate entries (as scipy's canonical form does); explicit zeros are dropped.
class RowAppender {
 public:
  RowAppender(CsrMatrix& out, std::string what) : out_(out), what_(std::move(what)) {}

  void append(int64_t row, std::span<const int64_t> cols, std::span<const double> vals) {
    cols_.clear();
    vals_.clear();
    bool sorted = true;
    for (size_t i = 0; i < cols.size(); ++i) {
      check_value(row, cols[i], vals[i]);
      if (i > 0 && cols[i] <= cols[i - 1]) sorted = false;
    }
    if (sorted) {
      for (size_t i = 0; i < cols.size(); ++i) push(cols[i], vals[i]);
    } else {
      std::vector<size_t> order(cols.size());
      std::iota(order.begin(), order.end(), size_t{0});
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cols[a] < cols[b]; });
      for (size_t k = 0; k < order.size(); ++k) {
        const size_t i = order[k];
        if (!cols_.empty() && cols_.back() == cols[i]) {
          const double sum = static_cast<double>(vals_.back()) + vals[i];
          check_value(row, cols[i], sum);
          vals_.back() = static_cast<float>(sum);
        } else {
          push(cols[i], vals[i]);
        }
      }
    }
    out_.append_row(cols_, vals_);
  }

 private:
  void check_value(int64_t row, int64_t col, double value) const {
    if (col < 0 || col >= out_.n_cols) {
      throw UserError(fmt::format("{}: column index {} in row {} is outside 0..{}; the file is corrupt",
                                  what_, col, row, out_.n_cols - 1));
    }
    if (!std::isfinite(value)) {
      throw UserError(
          fmt::format("{}: value {} at row {}, column {} is not a finite number; fix or drop it "
                      "before using this file",
                      what_, value, row, col));
    }
    if (std::abs(value) > FLT_MAX) {
      throw UserError(fmt::format("{}: value {} at row {}, column {} is too large for 32-bit floats", what_,
                                  value, row, col));
    }
  }
  void push(int64_t col, double value) {
    cols_.push_back(static_cast<int32_t>(col));
    vals_.push_back(static_cast<float>(value));
  }

  CsrMatrix& out_;
  std::string what_;
  std::vector<int32_t> cols_;
  std::vector<float> vals_;
};

CsrMatrix empty_with_cols(int64_t n_cols) {
  CsrMatrix m;
  m.n_cols = n_cols;
  return m;
}

// ---- matrix readers ----------------------------------------------------------------------------

class MatrixReader {
 public:
  virtual ~MatrixReader() = default;
  virtual CsrMatrix read_rows(int64_t begin, int64_t end) = 0;
  // Average stored values per row, to size read chunks.
  virtual double values_per_row() const = 0;
};

int64_t length_1d(hid_t dataset, const std::string& where) {
  const auto d = hdf5::dims(dataset);
  if (d.size() != 1) {
    throw UserError(
        fmt::format("{} should be a 1-D array but has {} dimensions; the file is corrupt", where, d.size()));
  }
  return d[0];
}

// The three arrays of a compressed sparse matrix (CSR or CSC), checked for consistency.
struct SparseArrays {
  Handle data, indices, indptr;
  std::string data_where, indices_where, indptr_where;
  int64_t n_major = 0;  // rows for CSR, columns for CSC
  int64_t nnz = 0;

  SparseArrays(hid_t root, const fs::path& file, const std::string& group, int64_t major) : n_major(major) {
    for (const char* part : {"data", "indices", "indptr"}) {
      if (!hdf5::exists(root, group + "/" + part)) {
        throw UserError(fmt::format("{} is a sparse matrix without '{}'; the file is incomplete or corrupt",
                                    hdf5::where(file, group), part));
      }
    }
    data_where = hdf5::where(file, group + "/data");
    indices_where = hdf5::where(file, group + "/indices");
    indptr_where = hdf5::where(file, group + "/indptr");
    data = hdf5::open_dataset(root, group + "/data", data_where);
    indices = hdf5::open_dataset(root, group + "/indices", indices_where);
    indptr = hdf5::open_dataset(root, group + "/indptr", indptr_where);
    for (const auto& [ds, where] :
         {std::pair{data.get(), data_where}, std::pair{indices.get(), indices_where},
          std::pair{indptr.get(), indptr_where}}) {
      hdf5::require_readable_filters(ds, where);
      hdf5::require_numeric(ds, where);
    }
    if (hdf5::type_class(indices.get()) != H5T_INTEGER || hdf5::type_class(indptr.get()) != H5T_INTEGER) {
      throw UserError(fmt::format("{}: indices and indptr must be integers; the file is corrupt",
                                  hdf5::where(file, group)));
    }
    nnz = length_1d(data.get(), data_where);
    const int64_t n_indices = length_1d(indices.get(), indices_where);
    if (n_indices != nnz) {
      throw UserError(fmt::format("{}: {} indices but {} values; the file is corrupt",
                                  hdf5::where(file, group), n_indices, nnz));
    }
    const int64_t n_indptr = length_1d(indptr.get(), indptr_where);
    if (n_indptr != n_major + 1) {
      throw UserError(fmt::format("{} has {} entries but the shape needs {}; the file is corrupt",
                                  indptr_where, n_indptr, n_major + 1));
    }
    int64_t first = 0;
    int64_t last = 0;
    hdf5::read_1d(indptr.get(), 0, 1, &first, indptr_where);
    hdf5::read_1d(indptr.get(), n_major, 1, &last, indptr_where);
    if (first != 0 || last != nnz) {
      throw UserError(
          fmt::format("{} must run from 0 to {} (the number of stored values) but runs from {} to "
                      "{}; the file is corrupt",
                      indptr_where, nnz, first, last));
    }
  }

  // indptr[begin..end], checked to be non-decreasing and within 0..nnz.
  std::vector<int64_t> pointers(int64_t begin, int64_t end) const {
    std::vector<int64_t> ptr(static_cast<size_t>(end - begin + 1));
    hdf5::read_1d(indptr.get(), begin, end - begin + 1, ptr.data(), indptr_where);
    for (size_t i = 0; i < ptr.size(); ++i) {
      if (ptr[i] < 0 || ptr[i] > nnz || (i > 0 && ptr[i] < ptr[i - 1])) {
        throw UserError(
            fmt::format("{} is not non-decreasing within 0..{} at entry {} (value {}); the file is "
                        "corrupt",
                        indptr_where, nnz, begin + static_cast<int64_t>(i), ptr[i]));
      }
    }
    return ptr;
  }

  void read_entries(int64_t offset, int64_t count, std::vector<int64_t>& idx,
                    std::vector<double>& val) const {
    idx.resize(static_cast<size_t>(count));
    val.resize(static_cast<size_t>(count));
    hdf5::read_1d(indices.get(), offset, count, idx.data(), indices_where);
    hdf5::read_1d(data.get(), offset, count, val.data(), data_where);
  }
};

class CsrReader final : public MatrixReader {
 public:
  CsrReader(hid_t root, const fs::path& file, const std::string& group, int64_t n_rows, int64_t n_cols)
      : arrays_(root, file, group, n_rows), n_cols_(n_cols), what_(hdf5::where(file, group)) {}

  CsrMatrix read_rows(int64_t begin, int64_t end) override {
    CsrMatrix out = empty_with_cols(n_cols_);
    if (end <= begin) return out;
    const auto ptr = arrays_.pointers(begin, end);
    arrays_.read_entries(ptr.front(), ptr.back() - ptr.front(), idx_, val_);
    out.indptr.reserve(ptr.size());
    out.indices.reserve(idx_.size());
    out.values.reserve(val_.size());
    RowAppender appender(out, what_);
    for (int64_t r = begin; r < end; ++r) {
      const auto lo = static_cast<size_t>(ptr[static_cast<size_t>(r - begin)] - ptr.front());
      const auto hi = static_cast<size_t>(ptr[static_cast<size_t>(r - begin + 1)] - ptr.front());
      appender.append(r, std::span(idx_).subspan(lo, hi - lo), std::span(val_).subspan(lo, hi - lo));
    }
    return out;
  }

  double values_per_row() const override {
    return static_cast<double>(arrays_.nnz) / static_cast<double>(std::max<int64_t>(arrays_.n_major, 1));
  }

 private:
  SparseArrays arrays_;
  int64_t n_cols_;
  std::string what_;
  std::vector<int64_t> idx_;
  std::vector<double> val_;
};

// CSC cannot be streamed by rows (each row touches every column), so the whole matrix is
// converted to CSR once at open; read_rows then slices it.
class CscReader final : public MatrixReader {
 public:
  CscReader(hid_t root, const fs::path& file, const std::string& group, int64_t n_rows, int64_t n_cols) {
    const SparseArrays arrays(root, file, group, n_cols);
    const std::string what = hdf5::where(file, group);
    const auto col_ptr = arrays.pointers(0, n_cols);
    std::vector<int64_t> row_of;
    std::vector<double> value;
    arrays.read_entries(0, arrays.nnz, row_of, value);
    // Counting sort by row keeps columns ascending within each row.
    std::vector<int64_t> row_ptr(static_cast<size_t>(n_rows) + 1, 0);
    for (const int64_t r : row_of) {
      if (r < 0 || r >= n_rows) {
        throw UserError(
            fmt::format("{}: row index {} is outside 0..{}; the file is corrupt", what, r, n_rows - 1));
      }
      ++row_ptr[static_cast<size_t>(r) + 1];
    }
    std::partial_sum(row_ptr.begin(), row_ptr.end(), row_ptr.begin());
    std::vector<int64_t> cols(static_cast<size_t>(arrays.nnz));
    std::vector<double> vals(static_cast<size_t>(arrays.nnz));
    std::vector<int64_t> next(row_ptr.begin(), row_ptr.end() - 1);
    for (int64_t c = 0; c < n_cols; ++c) {
      for (int64_t k = col_ptr[static_cast<size_t>(c)]; k < col_ptr[static_cast<size_t>(c) + 1]; ++k) {
        const auto dst = static_cast<size_t>(next[static_cast<size_t>(row_of[static_cast<size_t>(k)])]++);
        cols[dst] = c;
        vals[dst] = value[static_cast<size_t>(k)];
      }
    }
    matrix_ = empty_with_cols(n_cols);
    RowAppender appender(matrix_, what);
    for (int64_t r = 0; r < n_rows; ++r) {
      const auto lo = static_cast<size_t>(row_ptr[static_cast<size_t>(r)]);
      const auto hi = static_cast<size_t>(row_ptr[static_cast<size_t>(r) + 1]);
      appender.append(r, std::span(cols).subspan(lo, hi - lo), std::span(vals).subspan(lo, hi - lo));
    }
  }

  CsrMatrix read_rows(int64_t begin, int64_t end) override {
    std::vector<int64_t> rows(static_cast<size_t>(std::max<int64_t>(end - begin, 0)));
    std::iota(rows.begin(), rows.end(), begin);
    return matrix_.select_rows(rows);
  }

  double values_per_row() const override {
    return static_cast<double>(matrix_.nnz()) / static_cast<double>(std::max<int64_t>(matrix_.n_rows, 1));
  }

 private:
  CsrMatrix matrix_;
};

class DenseReader final : public MatrixReader {
 public:
  DenseReader(hid_t root, const fs::path& file, const std::string& path, int64_t n_rows, int64_t n_cols)
      : n_cols_(n_cols), where_(hdf5::where(file, path)) {
    dataset_ = hdf5::open_dataset(root, path, where_);
    hdf5::require_readable_filters(dataset_.get(), where_);
    hdf5::require_numeric(dataset_.get(), where_);
    (void)n_rows;
  }

  CsrMatrix read_rows(int64_t begin, int64_t end) override {
    CsrMatrix out = empty_with_cols(n_cols_);
    RowAppender appender(out, where_);
    // Bounded buffer: about 4M values per HDF5 read.
    const int64_t block = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(n_cols_, 1));
    std::vector<double> buffer;
    std::vector<int64_t> cols;
    std::vector<double> vals;
    for (int64_t r0 = begin; r0 < end; r0 += block) {
      const int64_t n = std::min(block, end - r0);
      buffer.resize(static_cast<size_t>(n * n_cols_));
      hdf5::read_2d_rows(dataset_.get(), r0, n, n_cols_, buffer.data(), where_);
      for (int64_t i = 0; i < n; ++i) {
        cols.clear();
        vals.clear();
        const double* row = buffer.data() + i * n_cols_;
        for (int64_t j = 0; j < n_cols_; ++j) {
          if (row[j] != 0.0) {
            cols.push_back(j);
            vals.push_back(row[j]);
          }
        }
        appender.append(r0 + i, cols, vals);
      }
    }
    return out;
  }

  double values_per_row() const override { return static_cast<double>(n_cols_); }

 private:
  int64_t n_cols_;
  std::string where_;
  Handle dataset_;
};

enum class Layout { Csr, Csc, Dense };

struct MatrixInfo {
  Layout layout = Layout::Csr;
  int64_t n_rows = 0;
  int64_t n_cols = 0;
};

MatrixInfo inspect_matrix(hid_t root, const fs::path& file, const std::string& path) {
  const std::string where = hdf5::where(file, path);
  MatrixInfo info;
  if (hdf5::is_dataset(root, path)) {
    const Handle ds = hdf5::open_dataset(root, path, where);
    const auto d = hdf5::dims(ds.get());
    if (d.size() != 2) {
      throw UserError(fmt::format("{} is a dense array with {} dimensions; expected cells x genes (2-D)",
                                  where, d.size()));
    }
    return {Layout::Dense, d[0], d[1]};
  }
  const Handle group = hdf5::open_group(root, path, where);
  std::string encoding = hdf5::string_attr(group.get(), "encoding-type").value_or("");
  if (encoding.empty()) {  // h5sparse / anndata < 0.7
    const std::string format = hdf5::string_attr(group.get(), "h5sparse_format").value_or("");
    if (format == "csr" || format == "csc") encoding = format + "_matrix";
  }
  if (encoding == "csr_matrix") {
    info.layout = Layout::Csr;
  } else if (encoding == "csc_matrix") {
    info.layout = Layout::Csc;
  } else {
    throw UserError(
        fmt::format("{} has encoding '{}', which lingshu cannot read; expected a CSR/CSC sparse "
                    "matrix or a dense 2-D array",
                    where, encoding.empty() ? "(none)" : encoding));
  }
  auto shape = hdf5::int_array_attr(group.get(), "shape");
  if (shape.empty()) shape = hdf5::int_array_attr(group.get(), "h5sparse_shape");
  if (shape.size() != 2 || shape[0] < 0 || shape[1] < 0) {
    throw UserError(
        fmt::format("{} has no valid 'shape' attribute (cells, genes); the file is corrupt", where));
  }
  info.n_rows = shape[0];
  info.n_cols = shape[1];
  return info;
}

std::unique_ptr<MatrixReader> make_reader(hid_t root, const fs::path& file, const std::string& path,
                                          const MatrixInfo& info) {
  switch (info.layout) {
    case Layout::Csr:
      return std::make_unique<CsrReader>(root, file, path, info.n_rows, info.n_cols);
    case Layout::Csc:
      return std::make_unique<CscReader>(root, file, path, info.n_rows, info.n_cols);
    case Layout::Dense:
      return std::make_unique<DenseReader>(root, file, path, info.n_rows, info.n_cols);
  }
  return nullptr;
}

}  // namespace

// ---- H5adRowReader -----------------------------------------------------------------------------

struct H5adRowReader::Impl {
  fs::path path;
  Handle file;
  std::unique_ptr<MatrixReader> matrix;
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  DataFrame obs;
  DataFrame var;
  std::vector<std::pair<std::string, std::string>> uns_strings;
};

H5adRowReader::H5adRowReader(const fs::path& path, const H5adReadOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = path;
  s.file = hdf5::open_file(path);
  const hid_t root = s.file.get();
  const MatrixLocation loc = locate_matrix(root, path, options.layer);
  const MatrixInfo info = inspect_matrix(root, path, loc.matrix);
  if (info.n_rows == 0 || info.n_cols == 0) {
    throw UserError(
        fmt::format("{} is empty ({} cells x {} genes); lingshu needs at least one cell and one gene",
                    hdf5::where(path, loc.matrix), info.n_rows, info.n_cols));
  }
  if (info.n_cols > INT32_MAX) {
    throw UserError(fmt::format("{} has {} genes, more than lingshu supports (2^31 - 1)",
                                hdf5::where(path, loc.matrix), info.n_cols));
  }
  s.n_rows = info.n_rows;
  s.n_cols = info.n_cols;
  s.matrix = make_reader(root, path, loc.matrix, info);
  if (options.read_obs) s.obs = read_frame(root, path, "obs", "obs", s.n_rows, "cells");
  if (options.read_var) {
    s.var = read_frame(root, path, loc.var_group, "var", s.n_cols, "genes");
    require_unique_genes(s.var, path);
  }
  s.uns_strings = read_uns_strings(root, path);
}

H5adRowReader::~H5adRowReader() = default;

int64_t H5adRowReader::n_rows() const {
  return impl_->n_rows;
}
int64_t H5adRowReader::n_cols() const {
  return impl_->n_cols;
}
const DataFrame& H5adRowReader::obs() const {
  return impl_->obs;
}
DataFrame H5adRowReader::take_obs() {
  return std::move(impl_->obs);
}
const DataFrame& H5adRowReader::var() const {
  return impl_->var;
}
const std::vector<std::pair<std::string, std::string>>& H5adRowReader::uns_strings() const {
  return impl_->uns_strings;
}

CsrMatrix H5adRowReader::read_rows(int64_t begin, int64_t end) {
  if (begin < 0 || end > impl_->n_rows || begin > end) {
    throw UserError(fmt::format("rows {}..{} are outside the {} cells of {}", begin, end, impl_->n_rows,
                                impl_->path.string()));
  }
  return impl_->matrix->read_rows(begin, end);
}

int64_t H5adRowReader::suggested_chunk_rows() const {
  // About 4M stored values per chunk keeps the temporary buffers near 100 MB.
  const double per_row = std::max(impl_->matrix->values_per_row(), 1.0);
  return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(int64_t{1} << 22) / per_row));
}

// ---- read_h5ad ---------------------------------------------------------------------------------

AnnData read_h5ad(const fs::path& path, const H5adReadOptions& options) {
  H5adRowReader reader(path, options);
  AnnData data;
  data.X.n_cols = reader.n_cols();
  const int64_t n = reader.n_rows();
  const int64_t chunk = reader.suggested_chunk_rows();
  // Only big files get a progress line; small ones read in well under a second.
  std::optional<Progress> progress;
  if (n > chunk * 4) progress.emplace(fmt::format("reading {}", path.filename().string()), n, "cells");
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    data.X.append_rows(reader.read_rows(begin, end));
    if (progress) progress->update(end);
  }
  if (progress) progress->finish();
  data.obs = reader.take_obs();
  data.var = reader.var();
  data.uns_strings = reader.uns_strings();
  return data;
}

}  // namespace lingshu
