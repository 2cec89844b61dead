// Fuzzes the h5ad reader's own checks: the input bytes choose the layout (CSR / CSC / dense),
// shape attribute, indptr, indices, values (any bit pattern), index lengths, duplicate gene names
// and categorical codes of a well-formed HDF5 file. read_h5ad must return a valid result or
// throw UserError. (Fuzzing the raw bytes mostly exercises libhdf5's parser instead.)
#include <fuzzer/FuzzedDataProvider.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_common.h"
#include "io/h5ad.h"
#include "io/hdf5.h"

namespace {

using namespace lingshu;
using hdf5::Handle;

template <typename T>
std::vector<T> values(FuzzedDataProvider& in, size_t n, T lo, T hi) {
  std::vector<T> out(n);
  for (auto& v : out) v = in.ConsumeIntegralInRange<T>(lo, hi);
  return out;
}

// Index-like arrays are stored as int32 or int64, as files in the wild do.
void write_ints(FuzzedDataProvider& in, hid_t loc, const char* name, const std::vector<int64_t>& v) {
  if (in.ConsumeBool()) {
    hdf5::write_1d<int64_t>(loc, name, v);
  } else {
    const std::vector<int32_t> narrow(v.begin(), v.end());
    hdf5::write_1d<int32_t>(loc, name, narrow);
  }
}

void write_numbers(FuzzedDataProvider& in, hid_t loc, const char* name, size_t n) {
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0: {
      std::vector<double> v(n);
      for (auto& x : v) x = in.ConsumeFloatingPoint<double>();  // includes NaN / inf / huge
      hdf5::write_1d<double>(loc, name, v);
      break;
    }
    case 1: {
      std::vector<float> v(n);
      for (auto& x : v) x = static_cast<float>(in.ConsumeIntegralInRange(-3, 9));
      hdf5::write_1d<float>(loc, name, v);
      break;
    }
    default:
      hdf5::write_1d<int32_t>(loc, name, values<int32_t>(in, n, -3, 9));
  }
}

void write_dense(FuzzedDataProvider& in, hid_t root, size_t rows, size_t cols) {
  const hsize_t dims[2] = {rows, cols};
  const Handle space(H5Screate_simple(2, dims, nullptr));
  const Handle x(H5Dcreate2(root, "X", H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  std::vector<double> v(rows * cols);
  for (auto& d : v)
    d = in.ConsumeBool() ? in.ConsumeFloatingPoint<double>() : in.ConsumeIntegralInRange(0, 3);
  if (!v.empty()) H5Dwrite(x.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
}

void write_frame(FuzzedDataProvider& in, hid_t root, const char* name, size_t rows, bool with_column) {
  const Handle group = hdf5::create_group(root, name);
  hdf5::write_string_attr(group.get(), "_index", "_index");
  hdf5::write_string_attr(group.get(), "encoding-type", "dataframe");
  std::vector<std::string> index;
  for (size_t i = 0; i < rows; ++i) index.push_back("n" + std::to_string(in.ConsumeIntegralInRange(0, 12)));
  hdf5::write_strings(group.get(), "_index", index);
  if (!with_column) {
    hdf5::write_empty_float_array_attr(group.get(), "column-order");
    return;
  }
  hdf5::write_string_array_attr(group.get(), "column-order", {"kind"});
  const Handle kind = hdf5::create_group(group.get(), "kind");
  hdf5::write_string_attr(kind.get(), "encoding-type", "categorical");
  hdf5::write_bool_attr(kind.get(), "ordered", in.ConsumeBool());
  const auto n_categories = in.ConsumeIntegralInRange<size_t>(0, 3);
  std::vector<std::string> categories;
  for (size_t i = 0; i < n_categories; ++i) categories.push_back("c" + std::to_string(i));
  hdf5::write_strings(kind.get(), "categories", categories);
  const auto codes = values<int8_t>(in, rows + in.ConsumeIntegralInRange<size_t>(0, 1), -3, 4);
  hdf5::write_1d<int8_t>(kind.get(), "codes", codes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const auto rows = in.ConsumeIntegralInRange<size_t>(0, 6);
  const auto cols = in.ConsumeIntegralInRange<size_t>(0, 6);
  const int layout = in.ConsumeIntegralInRange(0, 2);  // CSR, CSC, dense
  const auto path = fuzz::scratch() / "fields.h5ad";
  try {
    {
      const Handle file = hdf5::create_file(path);
      const hid_t root = file.get();
      if (layout == 2) {
        write_dense(in, root, rows, cols);
      } else {
        const size_t major = layout == 0 ? rows : cols;
        const size_t minor = layout == 0 ? cols : rows;
        const Handle x = hdf5::create_group(root, "X");
        hdf5::write_string_attr(x.get(), "encoding-type", layout == 0 ? "csr_matrix" : "csc_matrix");
        const int64_t shape_delta = in.ConsumeIntegralInRange(-1, 1);
        hdf5::write_int64_array_attr(x.get(), "shape",
                                     {static_cast<int64_t>(rows) + shape_delta, static_cast<int64_t>(cols)});
        const auto nnz = in.ConsumeIntegralInRange<size_t>(0, 12);
        const auto indptr_len = major + 1 + static_cast<size_t>(in.ConsumeIntegralInRange(0, 1));
        auto indptr = values<int64_t>(in, indptr_len, -1, static_cast<int64_t>(nnz) + 1);
        if (in.ConsumeBool() && !indptr.empty()) {  // often a plausible indptr
          for (size_t i = 0; i < indptr.size(); ++i) indptr[i] = static_cast<int64_t>(i * nnz / major);
        }
        write_ints(in, x.get(), "indptr", indptr);
        write_ints(in, x.get(), "indices", values<int64_t>(in, nnz, -1, static_cast<int64_t>(minor)));
        write_numbers(in, x.get(), "data", nnz + static_cast<size_t>(in.ConsumeIntegralInRange(0, 1)));
      }
      write_frame(in, root, "obs", rows + static_cast<size_t>(in.ConsumeIntegralInRange(0, 1)), true);
      write_frame(in, root, "var", cols, false);
    }
    fuzz::check_result(read_h5ad(path));
  } catch (const UserError&) {
  }
  return 0;
}
