// Malformed .h5ad files are refused with one clear line naming the file, what is wrong and what
// to do. Each bad file starts as a valid one (written by lingshu or anndata) and is damaged on
// purpose.
#include <fmt/format.h>

#include <fstream>

#include "core/error.h"
#include "io/h5ad.h"
#include "io_test_util.h"

namespace lingshu {
namespace {

using testing::TempDir;

// Calls read_h5ad and returns the UserError message ("" and a test failure if it did not throw).
std::string read_error(const std::filesystem::path& path, const std::string& layer = "") {
  H5adReadOptions options;
  options.layer = layer;
  try {
    read_h5ad(path, options);
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message should be one line: " << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a UserError: " << e.what();
    return "";
  }
  ADD_FAILURE() << path << " was read without error";
  return "";
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

AnnData example(int rows, int cols) {
  AnnData a;
  a.X.n_cols = cols;
  std::vector<float> row(static_cast<size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < cols; ++j) row[static_cast<size_t>(j)] = static_cast<float>((r + 2 * j) % 4);
    a.X.append_dense_row(row);
  }
  for (int j = 0; j < cols; ++j) a.var.index.push_back(fmt::format("g{}", j));
  return a;
}

TEST(H5adErrors, MissingPathAndFolder) {
  TempDir dir;
  EXPECT_HAS(read_error(dir / "nope.h5ad"), "does not exist");
  EXPECT_HAS(read_error(dir.path()), "is a folder");
}

TEST(H5adErrors, NotHdf5) {
  TempDir dir;
  std::ofstream(dir / "cells.h5ad") << "cell,gene\nA,1\n";
  const std::string msg = read_error(dir / "cells.h5ad");
  EXPECT_HAS(msg, "not an HDF5 file");
  EXPECT_HAS(msg, "cells.h5ad");
}

TEST(H5adErrors, TruncatedFile) {
  TempDir dir;
  write_h5ad(dir / "full.h5ad", example(300, 400));
  const auto size = std::filesystem::file_size(dir / "full.h5ad");
  for (const double keep : {0.5, 0.9}) {
    std::filesystem::copy_file(dir / "full.h5ad", dir / "cut.h5ad",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(dir / "cut.h5ad", static_cast<uintmax_t>(static_cast<double>(size) * keep));
    const std::string msg = read_error(dir / "cut.h5ad");
    EXPECT_HAS(msg, "cut.h5ad");
  }
}

TEST(H5adErrors, EmptyMatrix) {
  TempDir dir;
  write_h5ad(dir / "no_cells.h5ad", example(0, 5));
  const std::string msg = read_error(dir / "no_cells.h5ad");
  EXPECT_HAS(msg, "is empty (0 cells x 5 genes)");
  AnnData no_genes;
  no_genes.X.append_dense_row(std::vector<float>{});
  write_h5ad(dir / "no_genes.h5ad", no_genes);
  EXPECT_HAS(read_error(dir / "no_genes.h5ad"), "is empty (1 cells x 0 genes)");
}

// Damaged copies of one anndata-written file, each made with h5py.
const char* kDamage = R"(
import warnings, shutil
warnings.filterwarnings("ignore")
import anndata, h5py, numpy as np, pandas as pd, scipy.sparse as sp
M = np.array([[0,1,0,2,0],[3,0,0,0,0],[0,0,0,0,0],[4,5,6,0,7]], dtype=np.float32)
a = anndata.AnnData(sp.csr_matrix(M))
a.obs_names = ["c0", "c1", "c2", "c3"]
a.var_names = ["g0", "g1", "g2", "g3", "g4"]
a.obs["kind"] = pd.Categorical(["x", "y", "x", "y"])
a.layers["counts"] = sp.csr_matrix(M)
a.write_h5ad(OUT + "/good.h5ad")
def damaged(name, change):
    shutil.copy(OUT + "/good.h5ad", OUT + "/" + name)
    with h5py.File(OUT + "/" + name, "r+") as f:
        change(f)
def replace(f, path, values):
    del f[path]
    f[path] = values
damaged("no_x.h5ad", lambda f: f.__delitem__("X"))
damaged("obs_short.h5ad", lambda f: replace(f, "obs/_index", np.array(["c0", "c1", "c2"], dtype=object)))
damaged("var_long.h5ad", lambda f: replace(f, "var/_index", np.array(["g0", "g1", "g2", "g3", "g4", "g5"], dtype=object)))
damaged("indptr_decreasing.h5ad", lambda f: replace(f, "X/indptr", np.array([0, 3, 2, 3, 7], dtype=np.int32)))
damaged("indptr_end.h5ad", lambda f: replace(f, "X/indptr", np.array([0, 2, 3, 3, 6], dtype=np.int32)))
damaged("indptr_length.h5ad", lambda f: replace(f, "X/indptr", np.array([0, 2, 3, 7], dtype=np.int32)))
damaged("index_range.h5ad", lambda f: replace(f, "X/indices", np.array([1, 3, 0, 0, 1, 2, 99], dtype=np.int32)))
damaged("negative_index.h5ad", lambda f: replace(f, "X/indices", np.array([1, 3, -1, 0, 1, 2, 4], dtype=np.int32)))
damaged("lengths.h5ad", lambda f: replace(f, "X/indices", np.array([1, 3, 0, 0, 1, 2], dtype=np.int32)))
damaged("no_indptr.h5ad", lambda f: f["X"].__delitem__("indptr"))
damaged("nan.h5ad", lambda f: replace(f, "X/data", np.array([1, 2, 3, 4, np.nan, 6, 7], dtype=np.float32)))
damaged("inf.h5ad", lambda f: replace(f, "X/data", np.array([1, 2, 3, 4, 5, -np.inf, 7], dtype=np.float64)))
damaged("dup_genes.h5ad", lambda f: replace(f, "var/_index", np.array(["g0", "g1", "g1", "g3", "g4"], dtype=object)))
damaged("bad_code.h5ad", lambda f: replace(f, "obs/kind/codes", np.array([0, 5, 0, 1], dtype=np.int8)))
damaged("string_x.h5ad", lambda f: replace(f, "X/data", np.array(["a"] * 7, dtype=object)))
def odd_encoding(f):
    f["X"].attrs["encoding-type"] = "awkward-array"
damaged("odd_encoding.h5ad", odd_encoding)
def no_shape(f):
    del f["X"].attrs["shape"]
damaged("no_shape.h5ad", no_shape)
def compound_obs(f):
    del f["obs"]
    f["obs"] = np.array([(b"c0", 1), (b"c1", 2), (b"c2", 3), (b"c3", 4)], dtype=[("index", "S2"), ("n", "i4")])
damaged("compound_obs.h5ad", compound_obs)
with h5py.File(OUT + "/tenx.h5", "w") as f:
    f.create_group("matrix")["barcodes"] = np.array([b"AAAC-1"])
print("done")
)";

class H5adDamaged : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::python_has("anndata")) dir_ = testing::python_made_files(kDamage);
  }
  void SetUp() override {
    if (!dir_) GTEST_SKIP() << "anndata/h5py not available to write the test files";
  }
  static std::filesystem::path file(const std::string& name) { return *dir_ / name; }

  static inline std::optional<std::filesystem::path> dir_;
};

TEST_F(H5adDamaged, TheUndamagedFileReads) {
  const AnnData a = read_h5ad(file("good.h5ad"));
  EXPECT_EQ(a.X.nnz(), 7);
}

TEST_F(H5adDamaged, MissingXSuggestsLayers) {
  const std::string msg = read_error(file("no_x.h5ad"));
  EXPECT_HAS(msg, "has no X matrix");
  EXPECT_HAS(msg, "counts");
}

TEST_F(H5adDamaged, UnknownLayerListsTheAvailableOnes) {
  const std::string msg = read_error(file("good.h5ad"), "spliced");
  EXPECT_HAS(msg, "layer 'spliced' is not in");
  EXPECT_HAS(msg, "available layers: X, counts");
  EXPECT_HAS(read_error(file("good.h5ad"), "raw"), "layer 'raw' is not in");
}

TEST_F(H5adDamaged, ShapeMismatchBetweenXAndFrames) {
  EXPECT_HAS(read_error(file("obs_short.h5ad")), "obs has 3 rows but the matrix has 4 cells");
  EXPECT_HAS(read_error(file("var_long.h5ad")), "var has 6 rows but the matrix has 5 genes");
}

TEST_F(H5adDamaged, BrokenIndptr) {
  EXPECT_HAS(read_error(file("indptr_decreasing.h5ad")), "not non-decreasing");
  const std::string end = read_error(file("indptr_end.h5ad"));
  EXPECT_HAS(end, "must run from 0 to 7");
  EXPECT_HAS(end, "X/indptr");
  EXPECT_HAS(read_error(file("indptr_length.h5ad")), "has 4 entries but the shape needs 5");
  EXPECT_HAS(read_error(file("no_indptr.h5ad")), "without 'indptr'");
  EXPECT_HAS(read_error(file("lengths.h5ad")), "6 indices but 7 values");
}

TEST_F(H5adDamaged, IndexOutOfRange) {
  EXPECT_HAS(read_error(file("index_range.h5ad")), "column index 99 in row 3 is outside 0..4");
  EXPECT_HAS(read_error(file("negative_index.h5ad")), "column index -1 in row 1");
}

TEST_F(H5adDamaged, NonFiniteValues) {
  EXPECT_HAS(read_error(file("nan.h5ad")), "not a finite number");
  const std::string inf = read_error(file("inf.h5ad"));
  EXPECT_HAS(inf, "not a finite number");
  EXPECT_HAS(inf, "row 3");
}

TEST_F(H5adDamaged, DuplicateGeneNames) {
  const std::string msg = read_error(file("dup_genes.h5ad"));
  EXPECT_HAS(msg, "gene name 'g1' appears more than once");
  EXPECT_HAS(msg, "var_names_make_unique()");
  // Without var there is nothing to check.
  H5adReadOptions options;
  options.read_var = false;
  EXPECT_EQ(read_h5ad(file("dup_genes.h5ad"), options).n_vars(), 5);
}

TEST_F(H5adDamaged, CategoricalCodeOutOfRange) {
  EXPECT_HAS(read_error(file("bad_code.h5ad")), "code 5 at row 1 is outside -1..1");
}

TEST_F(H5adDamaged, UnsupportedMatrixEncodings) {
  EXPECT_HAS(read_error(file("string_x.h5ad")), "should hold numbers");
  EXPECT_HAS(read_error(file("odd_encoding.h5ad")), "encoding 'awkward-array'");
  EXPECT_HAS(read_error(file("no_shape.h5ad")), "no valid 'shape'");
}

TEST_F(H5adDamaged, PreAnndata07TablesAskForResaving) {
  const std::string msg = read_error(file("compound_obs.h5ad"));
  EXPECT_HAS(msg, "compound_obs.h5ad:/obs is stored in the pre-0.7 anndata layout");
  EXPECT_HAS(msg, "write_h5ad");
}

TEST_F(H5adDamaged, TenxH5IsRecognised) {
  EXPECT_HAS(read_error(file("tenx.h5")), "10x Genomics .h5 file");
}

}  // namespace
}  // namespace lingshu
