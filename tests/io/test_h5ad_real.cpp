// Every shared .h5ad file read by lingshu agrees with anndata's reading of it: shape, stored
// values (nnz, per-row and per-column sums), names, and every obs/var column.
#include <cmath>
#include <map>

#include "core/error.h"
#include "io/h5ad.h"
#include "io_test_util.h"

namespace lingshu {
namespace {

using nlohmann::json;
using testing::py_path;
using testing::python_json;

// anndata's view of (file, layer) pairs, keyed as in `requests`: what lingshu must reproduce.
// Explicit zeros and duplicates are canonicalised as lingshu does (sum duplicates, drop zeros).
json anndata_summaries(const json& requests) {
  return python_json(R"(
import json, warnings
warnings.filterwarnings("ignore")
import anndata, numpy as np, scipy.sparse as sp, pandas as pd
def describe(df):
    cols = {}
    for name in df.columns:
        s = df[name]
        if isinstance(s.dtype, pd.CategoricalDtype):
            counts = s.value_counts(sort=False).reindex(s.cat.categories).fillna(0)
            cols[name] = dict(kind="categorical", categories=[str(c) for c in s.cat.categories],
                              counts=[int(c) for c in counts], missing=int(s.isna().sum()),
                              ordered=bool(s.cat.ordered))
        elif s.dtype == bool:
            cols[name] = dict(kind="bool", sum=int(s.sum()))
        elif np.issubdtype(s.dtype, np.number):
            v = s.to_numpy(dtype=float, na_value=np.nan)
            cols[name] = dict(kind="numeric", sum=float(np.nansum(v)), nan=int(np.isnan(v).sum()))
        else:
            cols[name] = dict(kind="string", first=str(s.iloc[0]), last=str(s.iloc[-1]))
    return cols
def summary(path, layer):
    a = anndata.read_h5ad(path)
    if layer == "raw":
        X, var = a.raw.X, a.raw.var
    elif layer:
        X, var = a.layers[layer], a.var
    else:
        X, var = a.X, a.var
    X = sp.csr_matrix(X, dtype=np.float64)
    X.sum_duplicates(); X.eliminate_zeros()
    return dict(
        n_obs=X.shape[0], n_vars=X.shape[1], nnz=int(X.nnz),
        row_sums=np.asarray(X.sum(axis=1)).ravel().tolist(),
        col_sums=np.asarray(X.sum(axis=0)).ravel().tolist(),
        obs_names=[str(a.obs_names[0]), str(a.obs_names[-1])],
        var_names=[str(var.index[0]), str(var.index[-1])],
        obs=describe(a.obs), var=describe(var))
print(json.dumps({key: summary(path, layer) for key, (path, layer) in )" +
                     requests.dump() + R"(.items()}))
)");
}

void expect_close_vectors(const std::vector<double>& ours, const json& theirs, const char* what) {
  ASSERT_EQ(ours.size(), theirs.size()) << what;
  for (size_t i = 0; i < ours.size(); ++i) {
    const double t = theirs[i].get<double>();
    ASSERT_NEAR(ours[i], t, 1e-9 * std::max(1.0, std::abs(t))) << what << " " << i;
  }
}

void expect_frame_matches(const DataFrame& frame, const json& expected, const char* table) {
  for (const auto& [name, want] : expected.items()) {
    SCOPED_TRACE(std::string(table) + "/" + name);
    const Column* col = frame.find(name);
    ASSERT_NE(col, nullptr) << "column missing";
    const std::string kind = want["kind"];
    if (kind == "categorical") {
      ASSERT_EQ(col->kind, Column::Kind::Categorical);
      EXPECT_EQ(col->categories, want["categories"].get<std::vector<std::string>>());
      EXPECT_EQ(col->ordered, want["ordered"].get<bool>());
      std::vector<int> counts(col->categories.size(), 0);
      int missing = 0;
      for (const int32_t c : col->codes) (c < 0 ? missing : counts[static_cast<size_t>(c)])++;
      EXPECT_EQ(counts, want["counts"].get<std::vector<int>>());
      EXPECT_EQ(missing, want["missing"].get<int>());
    } else if (kind == "bool") {
      ASSERT_EQ(col->kind, Column::Kind::Boolean);
      int sum = 0;
      for (const uint8_t b : col->bools) sum += b;
      EXPECT_EQ(sum, want["sum"].get<int>());
    } else if (kind == "numeric") {
      ASSERT_EQ(col->kind, Column::Kind::Numeric);
      double sum = 0;
      int nan = 0;
      for (const double v : col->numbers) std::isnan(v) ? ++nan : (sum += v, 0);
      EXPECT_NEAR(sum, want["sum"].get<double>(), 1e-6 * std::max(1.0, std::abs(want["sum"].get<double>())));
      EXPECT_EQ(nan, want["nan"].get<int>());
    } else {
      ASSERT_EQ(col->kind, Column::Kind::String);
      EXPECT_EQ(col->strings.front(), want["first"].get<std::string>());
      EXPECT_EQ(col->strings.back(), want["last"].get<std::string>());
    }
  }
}

void expect_matches(const AnnData& ours, const json& want) {
  ours.X.validate("read");
  ASSERT_TRUE(want.contains("n_obs")) << want.dump().substr(0, 200);
  EXPECT_EQ(ours.n_obs(), want["n_obs"].get<int64_t>());
  EXPECT_EQ(ours.n_vars(), want["n_vars"].get<int64_t>());
  EXPECT_EQ(ours.X.nnz(), want["nnz"].get<int64_t>());
  expect_close_vectors(ours.X.row_sums(), want["row_sums"], "row sums");
  expect_close_vectors(ours.X.col_sums(), want["col_sums"], "column sums");
  ASSERT_EQ(ours.obs.size(), ours.n_obs());
  ASSERT_EQ(ours.var.size(), ours.n_vars());
  EXPECT_EQ(ours.obs.index.front(), want["obs_names"][0]);
  EXPECT_EQ(ours.obs.index.back(), want["obs_names"][1]);
  EXPECT_EQ(ours.var.index.front(), want["var_names"][0]);
  EXPECT_EQ(ours.var.index.back(), want["var_names"][1]);
  expect_frame_matches(ours.obs, want["obs"], "obs");
  expect_frame_matches(ours.var, want["var"], "var");
}

// Compares lingshu's reading of a shared file with anndata's, for X and each listed layer.
void expect_matches_anndata(const std::string& file, const std::vector<std::string>& layers = {""}) {
  const auto path = *testing::shared_data_dir() / file;
  json requests = json::object();
  for (const auto& layer : layers) requests[layer] = json::array({path.string(), layer});
  const json want = anndata_summaries(requests);
  for (const auto& layer : layers) {
    SCOPED_TRACE(file + " layer '" + layer + "'");
    H5adReadOptions options;
    options.layer = layer;
    expect_matches(read_h5ad(path, options), want[layer]);
  }
}

// Number of distinct labels among non-missing values of a categorical column.
size_t label_count(const AnnData& data, const std::string& column) {
  const Column& col = data.obs.require(column, "obs");
  std::map<int32_t, int> used;
  for (const int32_t c : col.codes) {
    if (c >= 0) used[c]++;
  }
  return used.size();
}

int count_label(const AnnData& data, const std::string& column, const std::string& label) {
  const Column& col = data.obs.require(column, "obs");
  int n = 0;
  for (int64_t i = 0; i < col.size(); ++i) n += col.label(i) == label ? 1 : 0;
  return n;
}

TEST(H5adReal, Pbmc3kMatchesReadmeAndAnndata) {
  const auto path = LINGSHU_REQUIRE_DATA("pbmc3k.h5ad");
  const AnnData data = read_h5ad(path);
  EXPECT_EQ(data.n_obs(), 2700);
  EXPECT_EQ(data.n_vars(), 13714);
  // README: 9 Seurat labels plus "NA" for 62 cells.
  EXPECT_EQ(label_count(data, "cell_type"), 10u);
  EXPECT_EQ(count_label(data, "cell_type", "NA"), 62);
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available for the cross-check";
  expect_matches_anndata("pbmc3k.h5ad");
}

TEST(H5adReal, KangMatchesReadmeAndAnndata) {
  const auto path = LINGSHU_REQUIRE_DATA("kang_ifnb.h5ad");
  const AnnData data = read_h5ad(path);
  EXPECT_EQ(data.n_obs(), 1975);
  EXPECT_EQ(data.n_vars(), 6998);
  EXPECT_EQ(label_count(data, "cell_type"), 7u);
  EXPECT_EQ(label_count(data, "condition"), 2u);
  EXPECT_EQ(count_label(data, "condition", "control") + count_label(data, "condition", "stimulated"), 1975);
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available for the cross-check";
  expect_matches_anndata("kang_ifnb.h5ad");
}

TEST(H5adReal, CelllineCrisprMatchesReadmeAndAnndata) {
  const auto path = LINGSHU_REQUIRE_DATA("cellline_crispr.h5ad");
  const AnnData data = read_h5ad(path);
  EXPECT_EQ(data.n_obs(), 5961);
  EXPECT_EQ(data.n_vars(), 500);
  EXPECT_EQ(label_count(data, "cell_type"), 4u);
  EXPECT_EQ(label_count(data, "condition"), 34u);
  EXPECT_GT(count_label(data, "condition", "control"), 0);
  EXPECT_NE(data.obs.find("perturbation_type"), nullptr);
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available for the cross-check";
  expect_matches_anndata("cellline_crispr.h5ad");
}

TEST(H5adReal, Paul15MatchesReadmeAndAnndata) {
  const auto path = LINGSHU_REQUIRE_DATA("paul15_mouse.h5ad");
  const AnnData data = read_h5ad(path);
  EXPECT_EQ(data.n_obs(), 2660);
  EXPECT_EQ(data.n_vars(), 3004);
  EXPECT_EQ(label_count(data, "cell_type"), 7u);
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available for the cross-check";
  expect_matches_anndata("paul15_mouse.h5ad");
}

TEST(H5adReal, ScanpyPbmc68kDenseXRawAndFrames) {
  const auto path = LINGSHU_REQUIRE_DATA("interop/scanpy_pbmc68k_reduced.h5ad");
  const AnnData dense = read_h5ad(path);
  EXPECT_EQ(dense.n_obs(), 700);
  EXPECT_EQ(dense.n_vars(), 765);
  H5adReadOptions raw_options;
  raw_options.layer = "raw";
  const AnnData raw = read_h5ad(path, raw_options);
  EXPECT_EQ(raw.n_obs(), 700);
  EXPECT_EQ(raw.var.columns.size(), 0u);  // raw/var has only its index
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available for the cross-check";
  expect_matches_anndata("interop/scanpy_pbmc68k_reduced.h5ad", {"", "raw"});
}

TEST(H5adReal, MuonJlByteStringAttributesAndLayer) {
  const auto path = LINGSHU_REQUIRE_DATA("interop/muon_jl_pbmc.h5ad");
  const AnnData data = read_h5ad(path);
  EXPECT_EQ(data.n_obs(), 7480);
  EXPECT_EQ(data.n_vars(), 200);
  EXPECT_EQ(data.obs.index_name, "_index");
  EXPECT_NE(data.obs.find("cell_type"), nullptr);
  H5adReadOptions counts;
  counts.layer = "counts";
  const AnnData layer = read_h5ad(path, counts);
  EXPECT_EQ(layer.n_obs(), 7480);
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available for the cross-check";
  expect_matches_anndata("interop/muon_jl_pbmc.h5ad", {"", "counts"});
}

// Streaming in uneven chunks gives exactly the full read.
TEST(H5adReal, ChunkedRowsEqualFullRead) {
  const auto path = LINGSHU_REQUIRE_DATA("pbmc3k.h5ad");
  const AnnData full = read_h5ad(path);
  H5adRowReader reader(path);
  ASSERT_EQ(reader.n_rows(), full.n_obs());
  ASSERT_EQ(reader.n_cols(), full.n_vars());
  EXPECT_EQ(reader.obs().index, full.obs.index);
  EXPECT_EQ(reader.var().index, full.var.index);
  CsrMatrix joined;
  joined.n_cols = reader.n_cols();
  int64_t begin = 0;
  for (int64_t step = 1; begin < reader.n_rows(); step = step * 3 % 997 + 1) {
    const int64_t end = std::min(reader.n_rows(), begin + step);
    const CsrMatrix part = reader.read_rows(begin, end);
    ASSERT_EQ(part.n_rows, end - begin);
    for (int64_t r = 0; r < part.n_rows; ++r) joined.append_row(part.row_indices(r), part.row_values(r));
    begin = end;
  }
  EXPECT_TRUE(testing::same_matrix(joined, full.X));
  // A chunk from the middle, read on its own after the others.
  const CsrMatrix middle = reader.read_rows(1000, 1010);
  std::vector<int64_t> rows(10);
  for (int i = 0; i < 10; ++i) rows[static_cast<size_t>(i)] = 1000 + i;
  EXPECT_TRUE(testing::same_matrix(middle, full.X.select_rows(rows)));
  EXPECT_THROW(reader.read_rows(2690, 2701), UserError);
}

}  // namespace
}  // namespace lingshu
