// `lingshu info`, `simulate`, `convert` and `split` run as a user would, checked with anndata.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace lingshu {
namespace {

using testing::run_lingshu;
using testing::run_python;
using testing::TempDir;

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// A failed command prints exactly one line (the error) that mentions `cure`.
void expect_one_line_error(const testing::CommandResult& result, const std::string& cure) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  const std::string out = trimmed(result.output);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 0) << out;
  EXPECT_NE(out.find(cure), std::string::npos) << out;
}

#define REQUIRE_ANNDATA() \
  if (!testing::python_has("anndata")) GTEST_SKIP() << "/usr/bin/python3 has no anndata"

TEST(DataCommands, SimulateWritesWhatAnndataReads) {
  REQUIRE_ANNDATA();
  TempDir dir;
  const auto out = dir / "sim.h5ad";
  const auto truth = dir / "truth.json";
  const auto result = run_lingshu(fmt::format(
      "simulate --cells 300 --genes 250 --cell-types 3 --perturbations 2 --seed 4 --out '{}' --truth '{}'",
      out.string(), truth.string()));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("300 cells x 250 genes"), std::string::npos) << result.output;
  const auto check = run_python(fmt::format(R"(
import json, numpy as np, anndata
a = anndata.read_h5ad('{}')
X = a.X.toarray()
print(json.dumps({{
  'shape': list(a.shape),
  'integer': bool(np.all(X == np.round(X)) and X.min() >= 0),
  'cell_types': list(a.obs['cell_type'].cat.categories),
  'conditions': list(a.obs['condition'].cat.categories),
  'genes': list(a.var_names[:2]),
  'targets_are_genes': all(c in a.var_names for c in a.obs['condition'].cat.categories if c != 'control'),
}}))
)",
                                            out.string()));
  ASSERT_EQ(check.exit_code, 0) << check.output;
  const auto j = nlohmann::json::parse(check.output);
  EXPECT_EQ(j["shape"], nlohmann::json({300, 250}));
  EXPECT_TRUE(j["integer"].get<bool>());
  EXPECT_EQ(j["cell_types"], nlohmann::json({"type_0", "type_1", "type_2"}));
  ASSERT_EQ(j["conditions"].size(), 3u);
  EXPECT_EQ(j["conditions"][0], "control");
  EXPECT_TRUE(j["targets_are_genes"].get<bool>());
  EXPECT_EQ(j["genes"], nlohmann::json({"Gene0001", "Gene0002"}));
  std::ifstream truth_file(truth);
  const auto t = nlohmann::json::parse(truth_file);
  EXPECT_EQ(t["perturbations"].size(), 2u);

  // Same seed, same file content.
  const auto again = dir / "again.h5ad";
  ASSERT_EQ(
      run_lingshu(fmt::format("simulate --cells 300 --genes 250 --cell-types 3 --perturbations 2 --seed 4 "
                              "--quiet --out '{}'",
                              again.string()))
          .exit_code,
      0);
  const auto same = run_python(fmt::format(R"(
import anndata, numpy as np
a, b = anndata.read_h5ad('{}'), anndata.read_h5ad('{}')
print((a.X != b.X).nnz == 0 and list(a.obs['cell_type']) == list(b.obs['cell_type']))
)",
                                           out.string(), again.string()));
  EXPECT_EQ(trimmed(same.output), "True");
}

TEST(DataCommands, InfoJsonAgreesWithAnndataOnPbmc3k) {
  const auto path = LINGSHU_REQUIRE_DATA("pbmc3k.h5ad");
  REQUIRE_ANNDATA();
  const auto info = run_lingshu(fmt::format("info '{}' --json", path.string()));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  const auto got = nlohmann::json::parse(info.output);
  const auto ref = run_python(fmt::format(R"(
import json, numpy as np, anndata
a = anndata.read_h5ad('{}')
tot = np.asarray(a.X.sum(1)).ravel()
genes = np.diff(a.X.tocsr().indptr)
vc = a.obs['cell_type'].value_counts()
print(json.dumps({{
  'n_obs': a.n_obs, 'n_vars': a.n_vars, 'nnz': int(a.X.nnz),
  'lib': [float(np.percentile(tot, q)) for q in (0, 5, 25, 50, 75, 95, 100)],
  'genes_median': float(np.median(genes)),
  'categories': {{str(k): int(v) for k, v in vc.items()}},
  'missing': int(a.obs['cell_type'].isna().sum()),
  'obs_columns': list(a.obs.columns), 'var_columns': list(a.var.columns),
}}))
)",
                                          path.string()));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  const auto want = nlohmann::json::parse(ref.output);
  EXPECT_EQ(got["n_obs"], want["n_obs"]);
  EXPECT_EQ(got["n_vars"], want["n_vars"]);
  EXPECT_EQ(got["nnz"], want["nnz"]);
  EXPECT_TRUE(got["is_counts"].get<bool>());
  const char* names[] = {"min", "5%", "25%", "50%", "75%", "95%", "max"};
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_NEAR(got["library_size"][names[i]].get<double>(), want["lib"][i].get<double>(), 1e-6) << names[i];
  }
  EXPECT_EQ(got["median_genes_per_cell"].get<double>(), want["genes_median"].get<double>());
  std::vector<std::string> obs_names;
  for (const auto& c : got["obs"]) obs_names.push_back(c["name"]);
  EXPECT_EQ(nlohmann::json(obs_names), want["obs_columns"]);
  EXPECT_EQ(got["var"].size(), want["var_columns"].size());
  const auto cell_type = std::find_if(got["obs"].begin(), got["obs"].end(),
                                      [](const nlohmann::json& c) { return c["name"] == "cell_type"; });
  ASSERT_NE(cell_type, got["obs"].end());
  EXPECT_EQ((*cell_type)["n_missing"], want["missing"]);
  ASSERT_EQ((*cell_type)["categories"].size(), want["categories"].size());
  int64_t previous = INT64_MAX;
  for (const auto& entry : (*cell_type)["categories"]) {
    EXPECT_EQ(entry["count"], want["categories"][entry["category"].get<std::string>()]) << entry;
    EXPECT_LE(entry["count"].get<int64_t>(), previous) << "most frequent first";
    previous = entry["count"];
  }

  const auto text = run_lingshu(fmt::format("info '{}'", path.string()));
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("2,700 cells x 13,714 genes"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("raw counts"), std::string::npos) << text.output;
}

// A 10x folder as Cell Ranger writes it (genes x cells, 1-based), with its values known here.
void write_10x_folder(const std::filesystem::path& folder) {
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "barcodes.tsv") << "AAAC-1\nAAAG-1\nTTTC-1\n";
  std::ofstream(folder / "features.tsv") << "ENSG1\tCD3E\tGene Expression\nENSG2\tLYZ\tGene Expression\n"
                                            "ENSG3\tMS4A1\tGene Expression\nENSG4\tNKG7\tGene Expression\n";
  // cells x genes: [[1,0,0,2],[0,5,0,0],[3,0,7,1]]
  std::ofstream(folder / "matrix.mtx") << "%%MatrixMarket matrix coordinate integer general\n%\n4 3 6\n"
                                          "1 1 1\n4 1 2\n2 2 5\n1 3 3\n3 3 7\n4 3 1\n";
}

TEST(DataCommands, ConvertsA10xFolder) {
  REQUIRE_ANNDATA();
  TempDir dir;
  write_10x_folder(dir / "tenx");
  const auto out = dir / "tenx.h5ad";
  const auto result = run_lingshu(fmt::format("convert '{}' '{}'", (dir / "tenx").string(), out.string()));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto check = run_python(fmt::format(R"(
import json, anndata
a = anndata.read_h5ad('{}')
print(json.dumps({{'X': a.X.toarray().tolist(), 'cells': list(a.obs_names), 'genes': list(a.var_names)}}))
)",
                                            out.string()));
  ASSERT_EQ(check.exit_code, 0) << check.output;
  const auto j = nlohmann::json::parse(check.output);
  EXPECT_EQ(j["X"], nlohmann::json({{1, 0, 0, 2}, {0, 5, 0, 0}, {3, 0, 7, 1}}));
  EXPECT_EQ(j["cells"], nlohmann::json({"AAAC-1", "AAAG-1", "TTTC-1"}));
  EXPECT_EQ(j["genes"], nlohmann::json({"CD3E", "LYZ", "MS4A1", "NKG7"}));

  const auto info = run_lingshu(fmt::format("info '{}' --json", (dir / "tenx").string()));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  const auto summary = nlohmann::json::parse(info.output);
  EXPECT_EQ(summary["nnz"], 6);
  EXPECT_EQ(summary["library_size"]["max"], 11.0);
  EXPECT_EQ(summary["library_size"]["50%"], 5.0);
}

TEST(DataCommands, ConvertRefusesNormalisedDataAndFindsTheCountsLayer) {
  REQUIRE_ANNDATA();
  TempDir dir;
  const auto in = dir / "processed.h5ad";
  const auto made = run_python(fmt::format(R"(
import numpy as np, anndata, scipy.sparse as sp, pandas as pd
counts = np.array([[1, 0, 4], [0, 2, 9]], dtype=np.float32)
norm = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4).astype(np.float32)
a = anndata.AnnData(X=sp.csr_matrix(norm), obs=pd.DataFrame(index=['c1', 'c2']),
                    var=pd.DataFrame(index=['CD3E', 'LYZ', 'MS4A1']))
a.layers['counts'] = sp.csr_matrix(counts)
a.write_h5ad('{}')
)",
                                           in.string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const auto out = dir / "counts.h5ad";
  const auto refused = run_lingshu(fmt::format("convert '{}' '{}'", in.string(), out.string()));
  expect_one_line_error(refused, "--layer counts");
  EXPECT_NE(refused.output.find("non-integer"), std::string::npos) << refused.output;
  EXPECT_FALSE(std::filesystem::exists(out));

  const auto info = run_lingshu(fmt::format("info '{}' --json", in.string()));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_FALSE(nlohmann::json::parse(info.output)["is_counts"].get<bool>());

  const auto ok = run_lingshu(fmt::format("convert '{}' '{}' --layer counts", in.string(), out.string()));
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  const auto check = run_python(
      fmt::format("import anndata; print(anndata.read_h5ad('{}').X.toarray().tolist())", out.string()));
  EXPECT_EQ(trimmed(check.output), "[[1, 0, 4], [0, 2, 9]]");  // counts come out as integers
}

TEST(DataCommands, BadInputsFailWithOneLine) {
  TempDir dir;
  expect_one_line_error(run_lingshu(fmt::format("info '{}'", (dir / "missing.h5ad").string())),
                        "does not exist");
  expect_one_line_error(run_lingshu(fmt::format("convert '{}' '{}'", (dir / "missing.h5ad").string(),
                                                (dir / "out.h5ad").string())),
                        "does not exist");
  expect_one_line_error(
      run_lingshu(fmt::format("simulate --cells 0 --genes 10 --out '{}'", (dir / "x.h5ad").string())),
      "--cells");
  expect_one_line_error(run_lingshu(fmt::format("simulate --cells 10 --genes 10 --perturbations 8 --out '{}'",
                                                (dir / "x.h5ad").string())),
                        "perturbations");
  expect_one_line_error(
      run_lingshu(fmt::format("simulate --cells 10 --genes 10 --out '{}'", (dir / "x.csv").string())),
      ".h5ad");
}

TEST(DataCommands, SplitPartitionsTheCellsAtRandom) {
  REQUIRE_ANNDATA();
  TempDir dir;
  const auto all = dir / "all.h5ad", a = dir / "a.h5ad", b = dir / "b.h5ad";
  ASSERT_EQ(run_lingshu(fmt::format("simulate --cells 101 --genes 30 --seed 2 -q --out '{}'", all.string()))
                .exit_code,
            0);
  const auto result = run_lingshu(
      fmt::format("split '{}' --out '{}' --rest '{}' --seed 3", all.string(), a.string(), b.string()));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // Every cell in exactly one part, with its counts and obs; the drawn half is not the first half.
  const auto check = run_python(fmt::format(R"(
import anndata, numpy as np
full, a, b = (anndata.read_h5ad(p) for p in ('{}', '{}', '{}'))
assert (a.n_obs, b.n_obs) == (50, 51), (a.n_obs, b.n_obs)
assert set(a.obs_names).isdisjoint(b.obs_names)
assert sorted(list(a.obs_names) + list(b.obs_names)) == sorted(full.obs_names)
assert list(a.obs_names) != list(full.obs_names[:50])
both = anndata.concat([a, b])[full.obs_names]
assert (both.X != full.X).nnz == 0
assert (both.obs['cell_type'].astype(str) == full.obs['cell_type'].astype(str)).all()
)",
                                            all.string(), a.string(), b.string()));
  EXPECT_EQ(check.exit_code, 0) << check.output;
  expect_one_line_error(run_lingshu(fmt::format("split '{}' --out '{}' --rest '{}' --fraction 0.001",
                                                all.string(), a.string(), b.string())),
                        "leaves a part empty");
}

}  // namespace
}  // namespace lingshu
