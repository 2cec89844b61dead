#pragma once
// A thin layer over the HDF5 C API for the h5ad reader and writer (internal to src/io): an owning
// handle for hid_t, and typed reads/writes that turn HDF5 failures into UserError lines naming
// the file and object. HDF5's own error printing is switched off; its innermost message is kept
// as detail for our errors instead.
#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace lingshu::hdf5 {

// Owns one HDF5 identifier (file, group, dataset, attribute, type, space, property list) and
// closes it with the matching H5*close. Predefined ids (H5T_NATIVE_*) must not be wrapped.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();
  // Gives up ownership without closing (for a close whose result is checked).
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Switches off HDF5's automatic error printing (idempotent, cheap).
void silence_errors();
// The innermost message of the current HDF5 error stack ("" if none), e.g. "truncated file".
std::string error_detail();

// Where an object lives, for messages: "<file>:/obs/cell_type/codes".
std::string where(const std::filesystem::path& file, const std::string& object);

// ---- reading -----------------------------------------------------------------------------------

// Opens an existing HDF5 file read-only; UserError if it is missing, not HDF5 or damaged.
Handle open_file(const std::filesystem::path& path);
// True if every component of the '/'-separated path exists below `loc`.
bool exists(hid_t loc, const std::string& path);
bool is_group(hid_t loc, const std::string& path);
bool is_dataset(hid_t loc, const std::string& path);
Handle open_group(hid_t loc, const std::string& path, const std::string& where);
Handle open_dataset(hid_t loc, const std::string& path, const std::string& where);
// Names of the direct members of a group, sorted by name.
std::vector<std::string> members(hid_t group);

// String attribute (variable or fixed length, UTF-8 or ASCII, scalar or one-element array).
std::optional<std::string> string_attr(hid_t obj, const char* name);
// Array-of-strings attribute; empty for a missing attribute or a non-string (e.g. empty float) one.
std::vector<std::string> string_array_attr(hid_t obj, const char* name);
// Integer array attribute (e.g. `shape`); empty if missing.
std::vector<int64_t> int_array_attr(hid_t obj, const char* name);
// Boolean attribute stored as h5py's enum bool, an integer or a string "True"/"False".
std::optional<bool> bool_attr(hid_t obj, const char* name);
bool has_attr(hid_t obj, const char* name);

// Dimensions of a dataset (empty for a scalar).
std::vector<int64_t> dims(hid_t dataset);
H5T_class_t type_class(hid_t dataset);
// UserError unless the dataset holds integers or floats ("`where` should hold numbers ...").
void require_numeric(hid_t dataset, const std::string& where);
// True for an HDF5 enum with exactly the members FALSE/TRUE (how h5py and HDF5.jl store bool).
bool is_bool_enum(hid_t dataset);
// UserError if the dataset uses a filter libhdf5 cannot decode (lzf, blosc, ...).
void require_readable_filters(hid_t dataset, const std::string& where);

// Reads `count` elements starting at `offset` of a 1-D dataset, converted by HDF5 to T
// (int32_t, int64_t, uint8_t, float or double).
template <typename T>
void read_1d(hid_t dataset, int64_t offset, int64_t count, T* out, const std::string& where);
template <typename T>
std::vector<T> read_1d_all(hid_t dataset, const std::string& where);
// Rows [row, row + n_rows) of a 2-D dataset as doubles, row-major.
void read_2d_rows(hid_t dataset, int64_t row, int64_t n_rows, int64_t n_cols, double* out,
                  const std::string& where);
// A 1-D string dataset (variable or fixed length) or a scalar string dataset (one element).
std::vector<std::string> read_strings(hid_t dataset, const std::string& where);
// Raw enum/bool bytes of a 1-D dataset whose elements are one byte wide.
std::vector<uint8_t> read_bool_bytes(hid_t dataset, const std::string& where);
// The object an object-reference attribute points to (anndata 0.7 categories).
std::optional<Handle> dereference_attr(hid_t obj, const char* name);

// ---- writing -----------------------------------------------------------------------------------

Handle create_file(const std::filesystem::path& path);
// Closes a file made by create_file, checking that its last writes reached the disk; UserError
// with the reason (e.g. "No space left on device") if not.
void close_file(Handle& file);
Handle create_group(hid_t loc, const std::string& name);
// Variable-length UTF-8 scalar string attribute (what h5py writes for str).
void write_string_attr(hid_t obj, const char* name, const std::string& value);
void write_string_array_attr(hid_t obj, const char* name, const std::vector<std::string>& values);
void write_int64_array_attr(hid_t obj, const char* name, const std::vector<int64_t>& values);
// An empty float64 array attribute (anndata's `column-order` for a frame without columns).
void write_empty_float_array_attr(hid_t obj, const char* name);
// Scalar h5py-style enum bool attribute.
void write_bool_attr(hid_t obj, const char* name, bool value);

// 1-D numeric dataset; gzip-compressed and chunked when it has many elements.
template <typename T>
Handle write_1d(hid_t loc, const std::string& name, std::span<const T> values);
// An empty 1-D numeric dataset of unlimited length (chunked, gzip), for append_1d.
template <typename T>
Handle create_growing_1d(hid_t loc, const std::string& name);

// Appends `values` to a dataset made by create_growing_1d.
template <typename T>
void append_1d(hid_t dataset, std::span<const T> values, const std::string& name);

// 1-D h5py-style enum bool dataset.
Handle write_bools(hid_t loc, const std::string& name, std::span<const uint8_t> values);
// 1-D variable-length UTF-8 string dataset.
Handle write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values);
// Scalar variable-length UTF-8 string dataset.
Handle write_scalar_string(hid_t loc, const std::string& name, const std::string& value);

}  // namespace lingshu::hdf5
