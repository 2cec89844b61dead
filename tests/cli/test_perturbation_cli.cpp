// `lingshu baseline {mean,control,additive}` and `lingshu eval perturbation` run as a user would:
// files in, files out, and one clear line with a non-zero exit for each kind of bad input.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/h5ad.h"
#include "test_perturbation_data.h"
#include "test_support.h"

namespace lingshu {
namespace {

using testing::run_lingshu;
using testing::TempDir;

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A failed command exits non-zero with exactly one line, an error that mentions `cure`.
void expect_one_line_error(const testing::CommandResult& result, const std::string& cure) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  std::string out = result.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 0) << out;
  EXPECT_EQ(out.rfind("lingshu: error: ", 0), 0u) << out;
  EXPECT_NE(out.find(cure), std::string::npos) << out;
}

// Two halves of one simulated screen with two contexts: "real" (held out) and "train".
class PerturbationCli : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::ScreenSpec spec;
    spec.contexts = {"A", "B"};
    spec.perts = {"P0", "P1", "P2", "P3"};
    spec.genes = 120;
    spec.cells_per_group = 40;
    const AnnData all = testing::simulate_screen(spec);
    std::vector<int64_t> first, second;
    for (int64_t i = 0; i < all.n_obs(); ++i) (i % 2 == 0 ? first : second).push_back(i);
    real = all.select_cells(first);
    write_h5ad(path("real.h5ad"), real);
    write_h5ad(path("train.h5ad"), all.select_cells(second));
    std::ofstream(path("pairs.csv"))
        << "cell_type,condition,n_cells\n"
        << "A,P0,20\nA,P1,20\nA,P2,20\nA,P3,20\nB,P0,20\nB,P1,20\nB,P2,20\nB,P3,20\n";
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }

  TempDir dir;
  AnnData real;
};

TEST_F(PerturbationCli, BaselinesThenEvalWithReportJsonAndCsv) {
  for (const char* kind : {"mean", "control", "additive"}) {
    const auto result =
        run_lingshu(fmt::format("baseline {} '{}' --pairs '{}' --out '{}' --seed 3 -q", kind,
                                path("train.h5ad"), path("pairs.csv"), path(std::string(kind) + ".h5ad")));
    ASSERT_EQ(result.exit_code, 0) << kind << ": " << result.output;
    // Controls of both contexts (all training controls) plus 8 x 20 predicted cells.
    const AnnData out = read_h5ad(path(std::string(kind) + ".h5ad"));
    EXPECT_EQ(out.n_obs(), 40 + 8 * 20) << kind;
    EXPECT_EQ(out.gene_names(), real.gene_names());
    ASSERT_NE(out.obs.find("cell_type"), nullptr);
    for (const float v : out.X.values) ASSERT_EQ(v, std::round(v)) << kind << ": counts are whole numbers";
  }
  const auto result =
      run_lingshu(fmt::format("eval perturbation '{}' '{}' --context-col cell_type --baseline '{}' --out "
                              "'{}' --csv '{}' --report '{}' -q",
                              path("real.h5ad"), path("train.h5ad"), path("mean.h5ad"), path("m.json"),
                              path("p.csv"), path("r.html")));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("VCC score"), std::string::npos) << result.output;
  const auto summary = nlohmann::json::parse(slurp(path("m.json")));
  EXPECT_EQ(summary["perturbations"], 8);
  EXPECT_EQ(summary["contexts"], 2);
  // The other half of the same screen beats the mean baseline on the ranking metrics.
  EXPECT_GT(static_cast<double>(summary["metrics"]["pds"]),
            static_cast<double>(summary["baseline"]["metrics"]["pds"]["baseline"]));
  EXPECT_GT(static_cast<double>(summary["baseline"]["average"]), 0.0);
  const std::string csv = slurp(path("p.csv"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 9);  // header + 8 perturbations
  const std::string html = slurp(path("r.html"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  size_t panels = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++panels;
  EXPECT_EQ(panels, 8u);
  // Global FDR runs too and is recorded.
  const auto global =
      run_lingshu(fmt::format("eval perturbation '{}' '{}' --context-col cell_type --fdr-scope global "
                              "--out '{}' -q",
                              path("real.h5ad"), path("additive.h5ad"), path("g.json")));
  ASSERT_EQ(global.exit_code, 0) << global.output;
  EXPECT_EQ(nlohmann::json::parse(slurp(path("g.json")))["options"]["fdr_scope"], "global");
}

TEST_F(PerturbationCli, BaselineOutputIsReadByAnndata) {
  if (!testing::python_has("anndata")) GTEST_SKIP() << "/usr/bin/python3 has no anndata";
  ASSERT_EQ(run_lingshu(fmt::format("baseline mean '{}' --pairs '{}' --out '{}' -q", path("train.h5ad"),
                                    path("pairs.csv"), path("mean.h5ad")))
                .exit_code,
            0);
  const auto check = testing::run_python(fmt::format(R"(
import anndata
a = anndata.read_h5ad('{}')
print(a.n_obs, sorted(a.obs.columns), sorted(a.obs['condition'].cat.categories))
)",
                                                     path("mean.h5ad")));
  ASSERT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("200 ['cell_type', 'condition'] ['P0', 'P1', 'P2', 'P3', 'control']"),
            std::string::npos)
      << check.output;
}

TEST_F(PerturbationCli, BadInputsGiveOneClearLine) {
  const std::string real_file = path("real.h5ad");
  // Gene sets that do not overlap.
  AnnData renamed = real;
  for (size_t j = 0; j < renamed.var.index.size(); ++j) renamed.var.index[j] = fmt::format("other{}", j);
  write_h5ad(path("renamed.h5ad"), renamed);
  expect_one_line_error(
      run_lingshu(fmt::format("eval perturbation '{}' '{}' -q", real_file, path("renamed.h5ad"))),
      "share no gene names");
  // Missing control cells.
  expect_one_line_error(
      run_lingshu(fmt::format("eval perturbation '{}' '{}' --control NT -q", real_file, real_file)),
      "no control cells");
  // A label column that does not exist.
  expect_one_line_error(
      run_lingshu(fmt::format("eval perturbation '{}' '{}' --pert-col guide -q", real_file, real_file)),
      "no obs column 'guide'");
  expect_one_line_error(
      run_lingshu(fmt::format("eval perturbation '{}' '{}' --context-col donor -q", real_file, real_file)),
      "no obs column 'donor'");
  // A perturbation with one cell.
  auto rows = testing::cells_where(real, "condition", {"P1"}, false);
  rows.push_back(testing::cells_where(real, "condition", {"P1"}).front());
  write_h5ad(path("one.h5ad"), real.select_cells(rows));
  expect_one_line_error(
      run_lingshu(fmt::format("eval perturbation '{}' '{}' -q", real_file, path("one.h5ad"))),
      "single cell of 'P1'");
  // Baselines: a pairs file without n_cells, a context without training controls.
  std::ofstream(path("bad_pairs.csv")) << "cell_type,condition\nA,P0\n";
  expect_one_line_error(run_lingshu(fmt::format("baseline mean '{}' --pairs '{}' --out '{}' -q",
                                                path("train.h5ad"), path("bad_pairs.csv"), path("x.h5ad"))),
                        "no n_cells column");
  std::ofstream(path("new_context.csv")) << "cell_type,condition,n_cells\nC,P0,5\n";
  expect_one_line_error(run_lingshu(fmt::format("baseline additive '{}' --pairs '{}' --out '{}' -q",
                                                path("train.h5ad"), path("new_context.csv"), path("x.h5ad"))),
                        "no control cells");
  EXPECT_FALSE(std::filesystem::exists(path("x.h5ad")));
}

}  // namespace
}  // namespace lingshu
