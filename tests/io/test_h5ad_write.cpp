// write_h5ad produces files anndata 0.8 loads with identical values, and lingshu reads back
// exactly what it wrote.
#include <cmath>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "io/h5ad.h"
#include "io/hdf5.h"
#include "io_test_util.h"

namespace lingshu {
namespace {

using nlohmann::json;
using testing::py_path;
using testing::python_json;
using testing::TempDir;

// 5 cells x 4 genes with every kind of column, a missing categorical, a NaN and uns entries.
AnnData small_example() {
  AnnData a;
  a.X.n_cols = 4;
  const std::vector<std::vector<float>> rows = {
      {0, 1, 0, 2}, {3, 0, 0, 0}, {0, 0, 0, 0}, {4, 5, 6, 0}, {0, 0, 7.5f, 1e6f}};
  for (const auto& r : rows) a.X.append_dense_row(r);
  a.obs.index_name = "cell_id";
  a.obs.index = {"AAAC-1", "AAAG-1", "CCCT-1", "GGGA-1", "TTTA-1"};
  Column cell_type = Column::categorical("cell_type", {"T", "B", "T", "NK", "B"});
  cell_type.codes[2] = -1;
  a.obs.columns.push_back(cell_type);
  Column ordered = Column::categorical("dose", {"low", "high", "low", "low", "high"});
  ordered.ordered = true;
  a.obs.columns.push_back(ordered);
  a.obs.columns.push_back(Column::numeric("n_counts", {3, 3, 0, 15, 1000007.5}));
  a.obs.columns.push_back(Column::numeric("score", {0.5, std::nan(""), -1.25, 2, 1e-300}));
  a.obs.columns.push_back(Column::string("note", {"a", "", "ünïcødé", "d e", "x/y"}));
  Column flag;
  flag.name = "is_control";
  flag.kind = Column::Kind::Boolean;
  flag.bools = {1, 0, 0, 1, 0};
  a.obs.columns.push_back(flag);
  a.var.index = {"CD3E", "MS4A1", "NKG7", "GAPDH"};
  a.var.columns.push_back(Column::string("gene_ids", {"ENSG1", "ENSG2", "ENSG3", "ENSG4"}));
  a.uns_strings = {{"lingshu_version", "0.1.0"}, {"model", "tiny (seed 7)"}};
  return a;
}

void expect_same_frames(const DataFrame& a, const DataFrame& b) {
  EXPECT_EQ(a.index_name, b.index_name);
  EXPECT_EQ(a.index, b.index);
  ASSERT_EQ(a.columns.size(), b.columns.size());
  for (size_t i = 0; i < a.columns.size(); ++i) {
    const Column& x = a.columns[i];
    const Column& y = b.columns[i];
    SCOPED_TRACE(x.name);
    EXPECT_EQ(x.name, y.name);
    ASSERT_EQ(x.kind, y.kind);
    EXPECT_EQ(x.categories, y.categories);
    EXPECT_EQ(x.codes, y.codes);
    EXPECT_EQ(x.ordered, y.ordered);
    EXPECT_EQ(x.strings, y.strings);
    EXPECT_EQ(x.bools, y.bools);
    ASSERT_EQ(x.numbers.size(), y.numbers.size());
    for (size_t k = 0; k < x.numbers.size(); ++k) {
      if (std::isnan(x.numbers[k])) {
        EXPECT_TRUE(std::isnan(y.numbers[k]));
      } else {
        EXPECT_EQ(x.numbers[k], y.numbers[k]);
      }
    }
  }
}

TEST(H5adWrite, RoundTripThroughLingshu) {
  TempDir dir;
  const AnnData a = small_example();
  write_h5ad(dir / "a.h5ad", a);
  const AnnData b = read_h5ad(dir / "a.h5ad");
  EXPECT_TRUE(testing::same_matrix(a.X, b.X));
  expect_same_frames(a.obs, b.obs);
  expect_same_frames(a.var, b.var);
  EXPECT_EQ(a.uns_strings, b.uns_strings);
  // Only the final file is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(H5adWrite, WholeNumbersAreStoredAsIntegerCountsAndReadBackUnchanged) {
  TempDir dir;
  AnnData counts = small_example();
  counts.X.values.back() = 1e6f;
  counts.X.values[counts.X.values.size() - 2] = 7.0f;  // every value now a whole number
  write_h5ad(dir / "counts.h5ad", counts);
  write_h5ad(dir / "floats.h5ad", small_example());
  const auto data_type = [&](const char* name) {
    const hdf5::Handle file = hdf5::open_file(dir / name);
    const hdf5::Handle data(H5Dopen2(file.get(), "X/data", H5P_DEFAULT));
    const hdf5::Handle type(H5Dget_type(data.get()));
    return std::pair{H5Tget_class(type.get()), H5Tget_size(type.get())};
  };
  EXPECT_EQ(data_type("counts.h5ad"), std::pair(H5T_INTEGER, size_t{4}));
  EXPECT_EQ(data_type("floats.h5ad"), std::pair(H5T_FLOAT, size_t{4}));
  EXPECT_EQ(testing::dense(read_h5ad(dir / "counts.h5ad").X), testing::dense(counts.X));
}

TEST(H5adWrite, AnndataReadsIdenticalValues) {
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available";
  TempDir dir;
  const AnnData a = small_example();
  write_h5ad(dir / "a.h5ad", a);
  const json got = python_json(R"(
import json, warnings
warnings.filterwarnings("ignore")
import anndata, numpy as np, pandas as pd, h5py
a = anndata.read_h5ad()" + py_path(dir / "a.h5ad") +
                               R"()
f = h5py.File()" + py_path(dir / "a.h5ad") +
                               R"(, "r")
o = a.obs
print(json.dumps(dict(
  X=a.X.toarray().tolist(), x_type=type(a.X).__name__, dtype=str(a.X.dtype),
  indices=str(f["X/indices"].dtype), indptr=str(f["X/indptr"].dtype),
  obs_names=list(a.obs_names), obs_index_name=o.index.name, var_names=list(a.var_names),
  cell_type=[None if pd.isna(v) else v for v in o["cell_type"]],
  cell_type_categories=list(o["cell_type"].cat.categories),
  dose_ordered=bool(o["dose"].cat.ordered), dose=list(o["dose"].astype(str)),
  n_counts=o["n_counts"].tolist(), score=[None if np.isnan(v) else v for v in o["score"]],
  note=list(o["note"]), is_control=[bool(v) for v in o["is_control"]], is_control_dtype=str(o["is_control"].dtype),
  gene_ids=list(a.var["gene_ids"]), uns={k: str(v) for k, v in a.uns.items()},
  obs_columns=list(o.columns))))
)");
  ASSERT_TRUE(got.contains("X"));
  EXPECT_EQ(got["x_type"], "csr_matrix");
  EXPECT_EQ(got["dtype"], "float32");
  EXPECT_EQ(got["indices"], "int32");
  EXPECT_EQ(got["indptr"], "int32");  // one index type: scipy's row indexing needs it
  EXPECT_EQ(got["X"].get<std::vector<std::vector<float>>>(), testing::dense(a.X));
  EXPECT_EQ(got["obs_names"].get<std::vector<std::string>>(), a.obs.index);
  EXPECT_EQ(got["obs_index_name"], "cell_id");
  EXPECT_EQ(got["var_names"].get<std::vector<std::string>>(), a.var.index);
  EXPECT_EQ(got["cell_type"], json::parse(R"(["T", "B", null, "NK", "B"])"));
  EXPECT_EQ(got["cell_type_categories"], json::parse(R"(["B", "NK", "T"])"));
  EXPECT_TRUE(got["dose_ordered"].get<bool>());
  EXPECT_EQ(got["dose"], json::parse(R"(["low", "high", "low", "low", "high"])"));
  EXPECT_EQ(got["n_counts"].get<std::vector<double>>(), a.obs.find("n_counts")->numbers);
  EXPECT_EQ(got["score"], json::parse(R"([0.5, null, -1.25, 2.0, 1e-300])"));
  EXPECT_EQ(got["note"].get<std::vector<std::string>>(), a.obs.find("note")->strings);
  EXPECT_EQ(got["is_control"], json::parse("[true, false, false, true, false]"));
  EXPECT_EQ(got["is_control_dtype"], "bool");
  EXPECT_EQ(got["gene_ids"].get<std::vector<std::string>>(), a.var.find("gene_ids")->strings);
  EXPECT_EQ(got["uns"], json::parse(R"j({"lingshu_version": "0.1.0", "model": "tiny (seed 7)"})j"));
  EXPECT_EQ(got["obs_columns"],
            json::parse(R"(["cell_type", "dose", "n_counts", "score", "note", "is_control"])"));
}

// Rewriting real data gives a file anndata sees as identical to the original.
TEST(H5adWrite, RealDataRoundTripThroughAnndata) {
  const auto source = LINGSHU_REQUIRE_DATA("kang_ifnb.h5ad");
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available";
  TempDir dir;
  write_h5ad(dir / "copy.h5ad", read_h5ad(source));
  const json got = python_json(R"(
import json, warnings
warnings.filterwarnings("ignore")
import anndata, numpy as np, pandas as pd
a = anndata.read_h5ad()" + py_path(source) +
                               R"()
b = anndata.read_h5ad()" + py_path(dir / "copy.h5ad") +
                               R"()
same_x = a.shape == b.shape and (a.X != b.X).nnz == 0
frames = all(a.obs[c].equals(b.obs[c]) if str(a.obs[c].dtype) == str(b.obs[c].dtype) else
             np.allclose(a.obs[c].to_numpy(float), b.obs[c].to_numpy(float)) for c in a.obs.columns)
print(json.dumps(dict(same_x=bool(same_x), obs_names=bool((a.obs_names == b.obs_names).all()),
                      var_names=bool((a.var_names == b.var_names).all()), obs=bool(frames),
                      obs_columns=list(a.obs.columns) == list(b.obs.columns),
                      categorical=all(str(b.obs[c].dtype) == "category" for c in ["cell_type", "condition"]),
                      var_cat=str(b.var["gene_symbol"].dtype))))
)");
  EXPECT_EQ(got, json::parse(R"({"same_x": true, "obs_names": true, "var_names": true, "obs": true,
                                 "obs_columns": true, "categorical": true, "var_cat": "category"})"));
}

TEST(H5adWrite, LargeMatrixIsCompressedAndStillExact) {
  TempDir dir;
  AnnData a;
  a.X.n_cols = 1000;
  std::vector<float> row(1000);
  for (int r = 0; r < 200; ++r) {
    for (int j = 0; j < 1000; ++j) row[static_cast<size_t>(j)] = static_cast<float>((r * 7 + j * 3) % 5);
    a.X.append_dense_row(row);
  }
  write_h5ad(dir / "big.h5ad", a);
  const AnnData b = read_h5ad(dir / "big.h5ad");
  EXPECT_TRUE(testing::same_matrix(a.X, b.X));
  ASSERT_EQ(b.obs.size(), 200);  // an empty index is filled with "0", "1", ...
  EXPECT_EQ(b.obs.index[199], "199");
  // 160,000 stored values in float32 + int32 alone would be 1.28 MB uncompressed.
  EXPECT_LT(std::filesystem::file_size(dir / "big.h5ad"), 400'000u);
}

TEST(H5adWrite, RefusesInconsistentInput) {
  TempDir dir;
  AnnData a = small_example();
  a.obs.index.pop_back();
  EXPECT_THROW(write_h5ad(dir / "bad.h5ad", a), UserError);
  a = small_example();
  a.obs.columns[0].codes[0] = 7;
  EXPECT_THROW(write_h5ad(dir / "bad.h5ad", a), UserError);
  a = small_example();
  a.X.indices[0] = 99;
  EXPECT_THROW(write_h5ad(dir / "bad.h5ad", a), UserError);
  a = small_example();
  a.var.index[2] = "CD3E";
  EXPECT_THROW(write_h5ad(dir / "bad.h5ad", a), UserError);
  a = small_example();
  a.X.values[2] = std::numeric_limits<float>::quiet_NaN();
  try {
    write_h5ad(dir / "bad.h5ad", a);
    ADD_FAILURE() << "NaN was written";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.h5ad: X to write has a non-finite value"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.h5ad"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 0);  // no temp files left
}

// Counts of `rows` cells x 6 genes, cell r holding r + g at genes g = r mod 3 and 5 (row 4 empty).
CsrMatrix count_rows(int64_t first, int64_t rows) {
  CsrMatrix x;
  x.n_cols = 6;
  for (int64_t r = first; r < first + rows; ++r) {
    std::vector<float> row(6, 0.0f);
    if (r != 4) {
      row[static_cast<size_t>(r % 3)] = static_cast<float>(r + r % 3);
      row[5] = static_cast<float>(r + 5);
    }
    x.append_dense_row(row);
  }
  return x;
}

TEST(H5adRowWriter, ChunksWrittenAsTheyComeReadBackAsOneFile) {
  TempDir dir;
  const auto path = dir / "streamed.h5ad";
  AnnData whole;
  whole.X = count_rows(0, 7);
  whole.obs.index = {"c0", "c1", "c2", "c3", "c4", "c5", "c6"};
  whole.obs.columns.push_back(Column::categorical("cell_type", {"T", "B", "T", "T", "NK", "B", "T"}));
  whole.var.index = {"g0", "g1", "g2", "g3", "g4", "g5"};
  whole.uns_strings = {{"lingshu_model", "m"}};
  {
    H5adRowWriter writer(path);
    writer.append_rows(count_rows(0, 3));
    writer.append_rows(count_rows(3, 0));  // an empty chunk changes nothing
    writer.append_rows(count_rows(3, 4));
    EXPECT_EQ(writer.n_rows(), 7);
    EXPECT_FALSE(std::filesystem::exists(path));  // not under its name before finish()
    writer.finish(whole.obs, whole.var, whole.uns_strings);
  }
  const AnnData back = read_h5ad(path);
  EXPECT_EQ(testing::dense(back.X), testing::dense(whole.X));
  expect_same_frames(back.obs, whole.obs);
  expect_same_frames(back.var, whole.var);
  EXPECT_EQ(back.uns_strings, whole.uns_strings);
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available for the interop half";
  const json got = python_json(R"(
import json, warnings
warnings.filterwarnings("ignore")
import anndata
a = anndata.read_h5ad()" + py_path(path) +
                               R"()
print(json.dumps(dict(X=a.X.toarray().tolist(), dtype=str(a.X.dtype), rows=a[[1, 5]].X.toarray().tolist(),
                      cell_type=list(a.obs["cell_type"]))))
)");
  ASSERT_TRUE(got.contains("X"));
  EXPECT_EQ(got["X"].get<std::vector<std::vector<float>>>(), testing::dense(whole.X));
  EXPECT_EQ(got["dtype"], "int32");
  EXPECT_EQ(got["rows"].get<std::vector<std::vector<float>>>(),
            (std::vector<std::vector<float>>{testing::dense(whole.X)[1], testing::dense(whole.X)[5]}));
  EXPECT_EQ(got["cell_type"], json::parse(R"(["T", "B", "T", "T", "NK", "B", "T"])"));
}

TEST(H5adRowWriter, LeavesNothingBehindWhenUnfinishedOrGivenBadRows) {
  TempDir dir;
  const auto path = dir / "cells.h5ad";
  {
    H5adRowWriter writer(path);
    writer.append_rows(count_rows(0, 2));
  }  // destroyed before finish(): an interrupted command
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  H5adRowWriter writer(path);
  CsrMatrix fractional = count_rows(0, 2);
  fractional.values[0] = 0.5f;
  EXPECT_THROW(writer.append_rows(fractional), UserError);
  writer.append_rows(count_rows(0, 2));
  CsrMatrix wider = count_rows(2, 1);
  wider.n_cols = 7;
  EXPECT_THROW(writer.append_rows(wider), UserError);
  DataFrame var;
  var.index = {"g0", "g1"};
  EXPECT_THROW(writer.finish(DataFrame{}, var, {}), UserError);  // var must name every column
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_THROW(H5adRowWriter(dir / "missing" / "cells.h5ad"), UserError);
}

}  // namespace
}  // namespace lingshu
