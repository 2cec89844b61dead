// Every command that writes an .h5ad, read back by /usr/bin/python3's anndata (Debian's 0.8, scipy
// 1.10) the way a scanpy user starts: select cells by a boolean mask from obs and by an index
// array, select genes, materialise the views, and compare the values with the unsubset matrix.
//
// Besides row subsetting (which scipy refuses when indices and indptr differ in type), checked
// against what anndata 0.8 itself writes for the same content: X is an integer dtype for counts;
// X/indices and X/indptr share one dtype; the root, X, obs, var, uns, every obs/var column and
// categorical part carry encoding-type / encoding-version; categorical codes are the narrowest
// signed type, `ordered` an h5py bool; strings are variable-length UTF-8 (read as object); the
// empty mappings (layers, obsm, obsp, varm, varp) exist. anndata writes string columns as
// categoricals; ours keep string-array, which anndata reads as the same object column.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "io/h5ad.h"
#include "test_support.h"

namespace lingshu {
namespace {

using testing::run_lingshu;

// Python that reads one file, subsets it and compares against the dense unsubset matrix.
const char* kSubsetCheck = R"(
import sys, h5py, numpy as np, anndata
path = sys.argv[1]
with h5py.File(path, 'r') as f:
    x = f['X']
    assert x['indices'].dtype == x['indptr'].dtype, (x['indices'].dtype, x['indptr'].dtype)
    assert np.issubdtype(x['data'].dtype, np.integer), f"counts stored as {x['data'].dtype}"
    for name in ['X', 'obs', 'var', 'uns']:
        assert 'encoding-type' in f[name].attrs and 'encoding-version' in f[name].attrs, name
    for frame in ['obs', 'var']:
        for col in f[frame].keys():
            assert 'encoding-type' in f[frame][col].attrs, (frame, col)
            if f[frame][col].attrs['encoding-type'] == 'categorical':
                assert f[frame][col].attrs['ordered'].dtype == np.bool_, (frame, col)
                assert f[frame][col]['codes'].dtype.kind == 'i', (frame, col)
    for name in ['layers', 'obsm', 'obsp', 'varm', 'varp']:
        assert name in f, name
a = anndata.read_h5ad(path)
dense = a.X.toarray()
n = a.n_obs
assert n >= 3 and a.n_vars >= 2, a.shape
rows = np.array([0, n - 1, n // 2])
sub = a[rows].copy()
assert np.array_equal(sub.X.toarray(), dense[rows])
assert list(sub.obs_names) == list(a.obs_names[rows])
cats = [c for c in a.obs.columns if str(a.obs[c].dtype) == 'category']
if cats:
    col = a.obs[cats[0]]
    mask = (col == col.cat.categories[0]).to_numpy()
else:
    mask = np.arange(n) % 2 == 0
view = a[mask]
assert np.array_equal(view.copy().X.toarray(), dense[mask])
genes = [a.var_names[-1], a.var_names[0]]
by_gene = a[:, genes].copy()
assert np.array_equal(by_gene.X.toarray(), dense[:, [a.n_vars - 1, 0]])
both = a[mask][:, genes].copy()
assert np.array_equal(both.X.toarray(), dense[mask][:, [a.n_vars - 1, 0]])
print('ok', a.shape)
)";

class AnndataInterop : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = new testing::TempDir(); }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string path(const std::string& name) { return (*dir_ / name).string(); }

  void SetUp() override {
    if (!testing::python_has("anndata")) GTEST_SKIP() << "/usr/bin/python3 has no anndata";
    std::ofstream(path("check.py")) << kSubsetCheck;
  }

  // Runs lingshu with `args`, then the subset check on `written`.
  static void write_then_check(const std::string& args, const std::string& written) {
    const auto made = run_lingshu(args);
    ASSERT_EQ(made.exit_code, 0) << args << "\n" << made.output;
    const auto check =
        testing::run_shell(fmt::format("/usr/bin/python3 '{}' '{}' 2>&1", path("check.py"), path(written)));
    EXPECT_EQ(check.exit_code, 0) << written << ":\n" << check.output;
    EXPECT_NE(check.output.find("ok"), std::string::npos) << check.output;
  }

  // A simulated screen: 2 cell types, 2 perturbations named after their target genes.
  static void simulate_screen() {
    if (std::filesystem::exists(path("sim.h5ad"))) return;
    write_then_check(fmt::format("simulate --cells 240 --genes 48 --cell-types 2 --perturbations 2 --seed 5 "
                                 "--out '{}' -q",
                                 path("sim.h5ad")),
                     "sim.h5ad");
    // One perturbation per cell type, named as the simulator named it.
    const AnnData sim = read_h5ad(path("sim.h5ad"));
    std::vector<std::string> perturbations;
    for (const auto& label : sim.obs.find("condition")->categories) {
      if (label != "control") perturbations.push_back(label);
    }
    ASSERT_EQ(perturbations.size(), 2u);
    std::ofstream(path("pairs.csv")) << fmt::format("cell_type,condition,n_cells\ntype_0,{},4\ntype_1,{},3\n",
                                                    perturbations[0], perturbations[1]);
  }

  static testing::TempDir* dir_;
};

testing::TempDir* AnndataInterop::dir_ = nullptr;

TEST_F(AnndataInterop, SimulateAndConvert) {
  simulate_screen();
  write_then_check(fmt::format("convert '{}' '{}' -q", path("sim.h5ad"), path("converted.h5ad")),
                   "converted.h5ad");
}

TEST_F(AnndataInterop, Baselines) {
  simulate_screen();
  write_then_check(fmt::format("baseline independent '{}' --label cell_type --n 20 --out '{}' -q",
                               path("sim.h5ad"), path("independent.h5ad")),
                   "independent.h5ad");
  for (const char* kind : {"mean", "control", "additive"}) {
    write_then_check(fmt::format("baseline {} '{}' --pairs '{}' --out '{}' -q", kind, path("sim.h5ad"),
                                 path("pairs.csv"), path(std::string(kind) + ".h5ad")),
                     std::string(kind) + ".h5ad");
  }
}

TEST_F(AnndataInterop, GenerateAndPredict) {
  simulate_screen();
  const std::string model = path("model");
  const auto trained = run_lingshu(fmt::format(
      "train '{}' --out '{}' --condition cell_type --perturbation condition --control control --preset tiny "
      "--patch-size 8 --tokens 16 --batch-size 16 --precision fp32 --threads 1 --steps 4 -q",
      path("sim.h5ad"), model));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  write_then_check(fmt::format("generate '{}' --n 12 --steps 2 --seed 1 --threads 1 --out '{}' -q", model,
                               path("generated.h5ad")),
                   "generated.h5ad");
  write_then_check(fmt::format("predict '{}' --pairs '{}' --steps 2 --threads 1 --out '{}' -q", model,
                               path("pairs.csv"), path("predicted.h5ad")),
                   "predicted.h5ad");
}

}  // namespace
}  // namespace lingshu
