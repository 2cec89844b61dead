// Files written by anndata / h5py in the many encodings found in the wild are read with the
// values they were built from: CSC, dense of several dtypes, int64 indices, unsorted indices
// with duplicates, h5sparse attributes, categorical codes of each width with missing values,
// numeric / bool / string / nullable columns, anndata 0.7 category references, fixed-length
// byte strings, layers, raw and lzf compression.
#include <cmath>

#include "core/error.h"
#include "io/h5ad.h"
#include "io_test_util.h"

namespace lingshu {
namespace {

// The matrix every file below stores (4 cells x 5 genes).
const std::vector<std::vector<float>> kM = {
    {0, 1, 0, 2, 0}, {3, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {4, 5, 6, 0, 7}};

std::vector<std::vector<float>> scaled(float k) {
  auto out = kM;
  for (auto& row : out) {
    for (auto& v : row) v *= k;
  }
  return out;
}

const char* kMakeFiles = R"(
import warnings
warnings.filterwarnings("ignore")
import anndata, h5py, numpy as np, pandas as pd, scipy.sparse as sp
out = OUT
M = np.array([[0,1,0,2,0],[3,0,0,0,0],[0,0,0,0,0],[4,5,6,0,7]])
def base(X):
    a = anndata.AnnData(X)
    a.obs_names = ["c0", "c1", "c2", "c3"]
    a.var_names = ["g0", "g1", "g2", "g3", "g4"]
    return a

base(sp.csc_matrix(M.astype(np.float32))).write_h5ad(out + "/csc.h5ad")
base(M.astype(np.int64)).write_h5ad(out + "/dense_int64.h5ad")
base(M.astype(np.uint16)).write_h5ad(out + "/dense_uint16.h5ad")
base(M.astype(np.float64)).write_h5ad(out + "/dense_float64.h5ad", compression="gzip")

base(sp.csr_matrix(M.astype(np.float64))).write_h5ad(out + "/csr_int64.h5ad")
with h5py.File(out + "/csr_int64.h5ad", "r+") as f:
    for name in ["indices", "indptr"]:
        v = f["X"][name][:].astype(np.int64); del f["X"][name]; f["X"].create_dataset(name, data=v)
    v = f["X/data"][:].astype(np.int8); del f["X/data"]; f["X"].create_dataset("data", data=v)

# Row 0 stored as (3:1, 1:1, 3:1, 4:0): unsorted, a duplicate and an explicit zero.
base(sp.csr_matrix(M.astype(np.float32))).write_h5ad(out + "/unsorted.h5ad")
with h5py.File(out + "/unsorted.h5ad", "r+") as f:
    data = np.array([1, 1, 1, 0, 3, 7, 4, 5, 6], dtype=np.float32)
    indices = np.array([3, 1, 3, 4, 0, 4, 0, 1, 2], dtype=np.int32)
    indptr = np.array([0, 4, 5, 5, 9], dtype=np.int32)
    for name, v in [("data", data), ("indices", indices), ("indptr", indptr)]:
        del f["X"][name]; f["X"].create_dataset(name, data=v)

base(sp.csr_matrix(M.astype(np.float32))).write_h5ad(out + "/h5sparse.h5ad")
with h5py.File(out + "/h5sparse.h5ad", "r+") as f:
    g = f["X"]
    for k in list(g.attrs): del g.attrs[k]
    g.attrs["h5sparse_format"] = "csr"
    g.attrs["h5sparse_shape"] = np.array([4, 5])

a = base(sp.csr_matrix(M.astype(np.float32)))
a.obs["cat8"] = pd.Categorical(["x", None, "y", "x"])
a.obs["cat16"] = pd.Categorical(["k7", "k150", None, "k7"], categories=[f"k{i}" for i in range(200)])
a.obs["cat_int"] = pd.Categorical([1, 2, 1, None])
a.obs["cat_float"] = pd.Categorical([0.5, 1.0, 1.0, 0.5])
a.obs["ordered"] = pd.Categorical(["lo", "hi", "lo", "hi"], categories=["lo", "hi"], ordered=True)
a.obs["flag"] = [True, False, False, True]
a.obs["text"] = ["alpha", "beta", "", "delta"]
a.obs["count"] = np.array([10, -2, 0, 7], dtype=np.int32)
a.obs["f32"] = np.array([0.25, np.nan, -1.5, 3], dtype=np.float32)
a.obs["nint"] = pd.array([1, None, 3, 4], dtype="Int64")
a.obs["nbool"] = pd.array([True, None, False, True], dtype="boolean")
a.var["highly_variable"] = [True, True, False, False, True]
a.obsm["X_pca"] = np.ones((4, 2))
a.obsp["distances"] = sp.csr_matrix(np.eye(4))
a.uns["nested"] = {"a": 1, "b": [1, 2]}
a.uns["title"] = "hello"
a.layers["counts"] = sp.csr_matrix(M.astype(np.float32) * 2)
raw = anndata.AnnData(sp.csr_matrix(np.hstack([M, np.ones((4, 1))]).astype(np.float32) * 3))
raw.var_names = ["g0", "g1", "g2", "g3", "g4", "extra"]
a.raw = raw
a.write_h5ad(out + "/columns.h5ad")

# anndata 0.7: codes dataset whose attribute `categories` references obs/__categories/NAME.
with h5py.File(out + "/v07.h5ad", "w") as f:
    x = f.create_group("X"); x.attrs["encoding-type"] = "csr_matrix"; x.attrs["shape"] = (4, 5)
    s = sp.csr_matrix(M.astype(np.float32))
    x["data"], x["indices"], x["indptr"] = s.data, s.indices, s.indptr
    obs = f.create_group("obs"); obs.attrs["_index"] = "_index"; obs.attrs["column-order"] = ["kind"]
    obs["_index"] = np.array([b"c0", b"c1", b"c2", b"c3"], dtype="S2")  # fixed-length bytes
    cats = obs.create_group("__categories"); cats["kind"] = np.array(["b", "a"], dtype=h5py.string_dtype())
    obs["kind"] = np.array([1, -1, 0, 1], dtype=np.int8)
    obs["kind"].attrs["categories"] = cats["kind"].ref
    var = f.create_group("var")
    var.attrs["_index"] = np.bytes_(b"gene")  # fixed-length byte-string attribute, as Muon.jl writes
    var["gene"] = np.array([b"g0", b"g1", b"g2", b"g3", b"g4"], dtype="S2")
    var["score"] = np.arange(5, dtype=np.float64)  # no column-order: columns come from the members

base(sp.csr_matrix(M.astype(np.float32))).write_h5ad(out + "/lzf.h5ad", compression="lzf")
print("done")
)";

class H5adEncodings : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::python_has("anndata")) dir_ = testing::python_made_files(kMakeFiles);
  }
  void SetUp() override {
    if (!dir_) GTEST_SKIP() << "anndata/h5py not available to write the test files";
  }
  static std::filesystem::path file(const std::string& name) { return *dir_ / name; }

  static inline std::optional<std::filesystem::path> dir_;
};

void expect_standard_names(const AnnData& a) {
  EXPECT_EQ(a.obs.index, (std::vector<std::string>{"c0", "c1", "c2", "c3"}));
  EXPECT_EQ(a.var.index, (std::vector<std::string>{"g0", "g1", "g2", "g3", "g4"}));
}

TEST_F(H5adEncodings, CscIsConvertedToCsr) {
  const AnnData a = read_h5ad(file("csc.h5ad"));
  EXPECT_EQ(testing::dense(a.X), kM);
  a.X.validate("csc");
  expect_standard_names(a);
}

TEST_F(H5adEncodings, DenseOfAnyNumericType) {
  for (const char* name : {"dense_int64.h5ad", "dense_uint16.h5ad", "dense_float64.h5ad"}) {
    SCOPED_TRACE(name);
    const AnnData a = read_h5ad(file(name));
    EXPECT_EQ(testing::dense(a.X), kM);
    EXPECT_EQ(a.X.nnz(), 7);
    expect_standard_names(a);
  }
}

TEST_F(H5adEncodings, Int64IndicesAndInt8Values) {
  const AnnData a = read_h5ad(file("csr_int64.h5ad"));
  EXPECT_EQ(testing::dense(a.X), kM);
}

TEST_F(H5adEncodings, UnsortedDuplicatesAndZerosAreCanonicalised) {
  const AnnData a = read_h5ad(file("unsorted.h5ad"));
  EXPECT_EQ(testing::dense(a.X), kM);  // row 0: 1 at gene 1, 1 + 1 at gene 3, the zero dropped
  EXPECT_EQ(a.X.nnz(), 7);
  a.X.validate("unsorted");
  H5adRowReader reader(file("unsorted.h5ad"));
  const CsrMatrix row0 = reader.read_rows(0, 1);
  EXPECT_EQ(row0.indices, (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(row0.values, (std::vector<float>{1, 2}));
}

TEST_F(H5adEncodings, H5sparseAttributesWithoutEncoding) {
  const AnnData a = read_h5ad(file("h5sparse.h5ad"));
  EXPECT_EQ(testing::dense(a.X), kM);
}

TEST_F(H5adEncodings, EveryColumnKind) {
  const AnnData a = read_h5ad(file("columns.h5ad"));
  EXPECT_EQ(testing::dense(a.X), kM);
  const DataFrame& obs = a.obs;
  EXPECT_EQ(obs.index_name, "_index");

  const Column& cat8 = obs.require("cat8", "obs");
  EXPECT_EQ(cat8.categories, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(cat8.codes, (std::vector<int32_t>{0, -1, 1, 0}));
  EXPECT_FALSE(cat8.label(1).has_value());

  const Column& cat16 = obs.require("cat16", "obs");
  ASSERT_EQ(cat16.categories.size(), 200u);
  EXPECT_EQ(cat16.codes, (std::vector<int32_t>{7, 150, -1, 7}));
  EXPECT_EQ(cat16.label(1), "k150");

  EXPECT_EQ(obs.require("cat_int", "obs").categories, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(obs.require("cat_int", "obs").codes, (std::vector<int32_t>{0, 1, 0, -1}));
  EXPECT_EQ(obs.require("cat_float", "obs").categories, (std::vector<std::string>{"0.5", "1.0"}));

  const Column& ordered = obs.require("ordered", "obs");
  EXPECT_TRUE(ordered.ordered);
  EXPECT_FALSE(cat8.ordered);
  EXPECT_EQ(ordered.categories, (std::vector<std::string>{"lo", "hi"}));

  const Column& flag = obs.require("flag", "obs");
  ASSERT_EQ(flag.kind, Column::Kind::Boolean);
  EXPECT_EQ(flag.bools, (std::vector<uint8_t>{1, 0, 0, 1}));

  const Column& text = obs.require("text", "obs");
  ASSERT_EQ(text.kind, Column::Kind::String);
  EXPECT_EQ(text.strings, (std::vector<std::string>{"alpha", "beta", "", "delta"}));

  EXPECT_EQ(obs.require("count", "obs").numbers, (std::vector<double>{10, -2, 0, 7}));
  const auto& f32 = obs.require("f32", "obs").numbers;
  EXPECT_EQ(f32[0], 0.25);
  EXPECT_TRUE(std::isnan(f32[1]));
  EXPECT_EQ(f32[3], 3.0);

  const auto& nint = obs.require("nint", "obs").numbers;
  EXPECT_EQ(nint[0], 1.0);
  EXPECT_TRUE(std::isnan(nint[1]));
  EXPECT_EQ(nint[3], 4.0);
  const auto& nbool = obs.require("nbool", "obs").numbers;
  EXPECT_EQ(nbool[0], 1.0);
  EXPECT_TRUE(std::isnan(nbool[1]));
  EXPECT_EQ(nbool[2], 0.0);

  // obsm, obsp, varm, nested uns: skipped without error; the scalar uns string is kept.
  EXPECT_EQ(a.uns_strings, (std::vector<std::pair<std::string, std::string>>{{"title", "hello"}}));
  EXPECT_EQ(a.var.require("highly_variable", "var").bools, (std::vector<uint8_t>{1, 1, 0, 0, 1}));
  std::vector<std::string> order;
  for (const auto& c : obs.columns) order.push_back(c.name);
  EXPECT_EQ(order, (std::vector<std::string>{"cat8", "cat16", "cat_int", "cat_float", "ordered", "flag",
                                             "text", "count", "f32", "nint", "nbool"}));
}

TEST_F(H5adEncodings, LayersAndRaw) {
  H5adReadOptions options;
  options.layer = "counts";
  const AnnData counts = read_h5ad(file("columns.h5ad"), options);
  EXPECT_EQ(testing::dense(counts.X), scaled(2));
  EXPECT_EQ(counts.var.index.size(), 5u);
  EXPECT_NE(counts.obs.find("cat8"), nullptr);

  options.layer = "raw";
  const AnnData raw = read_h5ad(file("columns.h5ad"), options);
  ASSERT_EQ(raw.n_vars(), 6);
  EXPECT_EQ(raw.var.index.back(), "extra");
  EXPECT_EQ(raw.X.dense_row(3), (std::vector<float>{12, 15, 18, 0, 21, 3}));

  options.layer = "X";
  EXPECT_EQ(testing::dense(read_h5ad(file("columns.h5ad"), options).X), kM);
}

TEST_F(H5adEncodings, Anndata07CategoryReferencesAndFixedLengthStrings) {
  const AnnData a = read_h5ad(file("v07.h5ad"));
  EXPECT_EQ(testing::dense(a.X), kM);
  expect_standard_names(a);
  EXPECT_EQ(a.var.index_name, "gene");
  const Column& kind = a.obs.require("kind", "obs");
  ASSERT_EQ(kind.kind, Column::Kind::Categorical);
  EXPECT_EQ(kind.categories, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(kind.codes, (std::vector<int32_t>{1, -1, 0, 1}));
  EXPECT_EQ(a.var.require("score", "var").numbers, (std::vector<double>{0, 1, 2, 3, 4}));
}

// Row streaming gives the same rows as the full read for every layout, one row at a time.
TEST_F(H5adEncodings, RowReaderMatchesFullReadForEveryLayout) {
  for (const char* name : {"csc.h5ad", "dense_int64.h5ad", "unsorted.h5ad", "csr_int64.h5ad"}) {
    SCOPED_TRACE(name);
    const AnnData full = read_h5ad(file(name));
    H5adReadOptions no_tables;
    no_tables.read_obs = false;
    no_tables.read_var = false;
    H5adRowReader reader(file(name), no_tables);
    EXPECT_EQ(reader.obs().size(), 0);
    EXPECT_EQ(reader.var().size(), 0);
    ASSERT_EQ(reader.n_rows(), 4);
    ASSERT_EQ(reader.n_cols(), 5);
    for (int64_t r = 3; r >= 0; --r) {
      const CsrMatrix row = reader.read_rows(r, r + 1);
      EXPECT_EQ(row.dense_row(0), kM[static_cast<size_t>(r)]);
      EXPECT_EQ(row.row_indices(0).size(), full.X.row_indices(r).size());
    }
    EXPECT_EQ(reader.read_rows(2, 2).n_rows, 0);
    EXPECT_EQ(testing::dense(reader.read_rows(1, 4)), std::vector(kM.begin() + 1, kM.end()));
  }
}

TEST_F(H5adEncodings, LzfIsRefusedWithTheFix) {
  try {
    read_h5ad(file("lzf.h5ad"));
    FAIL() << "lzf file was read";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("lzf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("compression='gzip'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("lzf.h5ad"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace lingshu
