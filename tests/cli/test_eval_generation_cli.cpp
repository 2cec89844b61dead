// `lingshu eval generation` and `lingshu baseline independent|factor` run as a user would: outputs that
// parse, and one clear line with a non-zero exit for inputs a user can fix.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/h5ad.h"
#include "test_support.h"

namespace lingshu {
namespace {

using testing::run_lingshu;
using testing::TempDir;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Real and generated halves of one simulation (three cell types), written once per test.
struct Files {
  TempDir dir;
  std::filesystem::path real;
  std::filesystem::path generated;
  AnnData generated_data;

  Files() : real(dir / "real.h5ad"), generated(dir / "generated.h5ad") {
    const auto sim = dir / "sim.h5ad";
    const auto made = run_lingshu(
        fmt::format("simulate --cells 400 --genes 300 --cell-types 3 --seed 5 --out '{}'", sim.string()));
    EXPECT_EQ(made.exit_code, 0) << made.output;
    const AnnData all = read_h5ad(sim);
    std::vector<int64_t> even, odd;
    for (int64_t i = 0; i < all.n_obs(); ++i) (i % 2 ? odd : even).push_back(i);
    write_h5ad(real, all.select_cells(even));
    generated_data = all.select_cells(odd);
    write_h5ad(generated, generated_data);
  }
};

void expect_one_line_error(const testing::CommandResult& result, const std::string& expected) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  std::string out = result.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 0) << out;
  EXPECT_NE(out.find(expected), std::string::npos) << out;
}

TEST(EvalGenerationCli, WritesTableJsonAndReport) {
  Files files;
  const auto json_path = files.dir / "metrics.json";
  const auto html_path = files.dir / "report.html";
  const auto result = run_lingshu(
      fmt::format("eval generation '{}' '{}' --label cell_type --out '{}' --report '{}' "
                  "--seed 3 --pcs 20 -q",
                  files.real.string(), files.generated.string(), json_path.string(), html_path.string()));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("kNN real-vs-generated AUC"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("type_2"), std::string::npos) << result.output;

  const auto j = nlohmann::json::parse(read_text(json_path));
  EXPECT_EQ(j["n_cells_per_side"], 200);
  EXPECT_EQ(j["n_genes"], 300);
  EXPECT_EQ(j["n_pcs"], 20);
  for (const char* key : {"knn_auc", "mmd", "ilisi", "wasserstein1", "mean_pearson", "mean_spearman"}) {
    ASSERT_TRUE(j[key].is_number()) << key;
  }
  EXPECT_GT(j["mean_pearson"].get<double>(), 0.9) << "halves of one simulation";
  EXPECT_LT(j["knn_auc"].get<double>(), 0.65);
  EXPECT_EQ(j["cell_types"]["generated_grouping"], "declared");
  EXPECT_EQ(j["cell_types"]["per_type"].size(), 3u);
  // Gene-gene structure: ~67 cells per type and side, so every type is scored.
  ASSERT_TRUE(j["gene_gene_corr"].is_number()) << j.dump();
  ASSERT_TRUE(j["gene_gene_mad"].is_number());
  EXPECT_EQ(j["cell_types"]["gene_gene_types"], 3);
  for (const auto& t : j["cell_types"]["per_type"]) EXPECT_TRUE(t["gene_gene_corr"].is_number()) << t.dump();
  EXPECT_NE(result.output.find("gene-gene corr. of correlations"), std::string::npos) << result.output;

  const std::string html = read_text(html_path);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("<h2>Gene-gene structure</h2>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("type_1"), std::string::npos);
}

TEST(EvalGenerationCli, LabelTransferWorksWhenTheGeneratedFileHasNoLabels) {
  Files files;
  AnnData unlabelled = files.generated_data;
  unlabelled.obs.columns.clear();
  const auto path = files.dir / "unlabelled.h5ad";
  write_h5ad(path, unlabelled);
  const auto json_path = files.dir / "m.json";
  const auto result = run_lingshu(fmt::format("eval generation '{}' '{}' --label cell_type --out '{}' -q",
                                              files.real.string(), path.string(), json_path.string()));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto j = nlohmann::json::parse(read_text(json_path));
  EXPECT_EQ(j["cell_types"]["generated_grouping"], "transferred");
  EXPECT_LT(j["cell_types"]["proportion_tv"].get<double>(), 0.15);
}

TEST(EvalGenerationCli, GenesThatDoNotOverlapAreAClearError) {
  Files files;
  AnnData renamed = files.generated_data;
  for (auto& name : renamed.var.index) name = "ENSG" + name;
  const auto path = files.dir / "renamed.h5ad";
  write_h5ad(path, renamed);
  expect_one_line_error(
      run_lingshu(fmt::format("eval generation '{}' '{}' -q", files.real.string(), path.string())),
      "share no gene names");
}

TEST(EvalGenerationCli, MissingLabelColumnIsAClearError) {
  Files files;
  const auto result = run_lingshu(fmt::format("eval generation '{}' '{}' --label celltype -q",
                                              files.real.string(), files.generated.string()));
  expect_one_line_error(result, "no obs column 'celltype'");
  EXPECT_NE(result.output.find("available: cell_type"), std::string::npos) << result.output;
}

TEST(EvalGenerationCli, MissingOutputFolderFailsBeforeTheWork) {
  Files files;
  expect_one_line_error(
      run_lingshu(fmt::format("eval generation '{}' '{}' --out '{}' -q", files.real.string(),
                              files.generated.string(), (files.dir / "nope" / "m.json").string())),
      "does not exist");
}

TEST(BaselineIndependentCli, WritesCellsWithTypesAndRefusesUnknownLabels) {
  Files files;
  const auto out = files.dir / "independent.h5ad";
  const auto result =
      run_lingshu(fmt::format("baseline independent '{}' --label cell_type --n 150 --seed 2 --out '{}'",
                              files.real.string(), out.string()));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const AnnData cells = read_h5ad(out);
  EXPECT_EQ(cells.n_obs(), 150);
  EXPECT_EQ(cells.gene_names(), files.generated_data.gene_names());
  const Column& type = cells.obs.require("cell_type", "obs");
  for (int64_t i = 0; i < cells.n_obs(); ++i) EXPECT_TRUE(type.label(i).has_value());

  expect_one_line_error(run_lingshu(fmt::format("baseline independent '{}' --label celltype --out '{}'",
                                                files.real.string(), (files.dir / "x.h5ad").string())),
                        "no obs column 'celltype'");
}

TEST(EvalGenerationCli, CopyCheckAgainstTheTrainingCells) {
  Files files;
  // Half of the "generated" cells serve as the training cells. Scoring those same cells: every one a
  // copy (ratio 0). Scoring the other half: new cells, as far from the training cells as the real
  // cells are (ratio about 1).
  std::vector<int64_t> first, second;
  for (int64_t i = 0; i < files.generated_data.n_obs(); ++i) (i % 2 ? second : first).push_back(i);
  const auto train = files.dir / "train.h5ad", unseen = files.dir / "unseen.h5ad";
  write_h5ad(train, files.generated_data.select_cells(first));
  write_h5ad(unseen, files.generated_data.select_cells(second));
  const auto copies = files.dir / "copies.json", fresh = files.dir / "fresh.json";
  const auto command = [&](const std::filesystem::path& generated, const std::filesystem::path& training,
                           const std::filesystem::path& out) {
    return fmt::format("eval generation '{}' '{}' --train '{}' -q --out '{}'", files.real.string(),
                       generated.string(), training.string(), out.string());
  };
  ASSERT_EQ(run_lingshu(command(train, train, copies)).exit_code, 0);
  ASSERT_EQ(run_lingshu(command(unseen, train, fresh)).exit_code, 0);
  const auto ratio = [](const std::filesystem::path& p) {
    return nlohmann::json::parse(read_text(p))["copy_ratio"].get<double>();
  };
  EXPECT_LT(ratio(copies), 0.05);
  EXPECT_NEAR(ratio(fresh), 1.0, 0.25);
  // A training file of other genes: one line naming the overlap.
  const auto other = files.dir / "other.h5ad";
  AnnData renamed = files.generated_data;
  for (auto& gene : renamed.var.index) gene = "other_" + gene;
  write_h5ad(other, renamed);
  expect_one_line_error(run_lingshu(command(unseen, other, fresh)), "holds 0 of the 300 genes scored");
}

TEST(BaselineFactorCli, WritesCellsWithTypesAndNotesReducedFactors) {
  Files files;
  const auto out = files.dir / "factor.h5ad";
  const auto r =
      run_lingshu(fmt::format("baseline factor '{}' --label cell_type --n 50 --factors 150 --out '{}'",
                              files.real.string(), out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("factors instead of 150"), std::string::npos) << r.output;
  const AnnData made = read_h5ad(out);
  EXPECT_EQ(made.n_obs(), 50);
  ASSERT_NE(made.obs.find("cell_type"), nullptr);
  expect_one_line_error(run_lingshu(fmt::format("baseline factor '{}' --label celltype --out '{}'",
                                                files.real.string(), out.string())),
                        "no obs column 'celltype'");
}

}  // namespace
}  // namespace lingshu
