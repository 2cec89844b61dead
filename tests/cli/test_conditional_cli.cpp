// The conditional workflow as a user runs it: simulate a screen, train a tiny conditional model with
// one (cell type, knock-down) pair held out, predict that pair with the prior, score it with
// `eval perturbation`; and mistakes that exit with one `lingshu: error:` line and write nothing.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "io/h5ad.h"
#include "test_support.h"

namespace lingshu {
namespace {

namespace fs = std::filesystem;
using testing::run_lingshu;

const char* kTiny =
    "--preset tiny --patch-size 8 --tokens 16 --batch-size 16 --precision fp32 --threads 1 -q";

// A failed command exits non-zero with exactly one line, an error that mentions `words`.
void expect_one_line_error(const std::string& args, const std::string& words) {
  const auto r = run_lingshu(args);
  EXPECT_NE(r.exit_code, 0) << args << "\n" << r.output;
  std::string out = r.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 0) << args << "\n" << out;
  EXPECT_EQ(out.rfind("lingshu: error: ", 0), 0u) << args << "\n" << out;
  EXPECT_NE(out.find(words), std::string::npos) << args << "\n" << out;
}

std::string label(const AnnData& data, const std::string& column, int64_t row) {
  return data.obs.require(column, "obs").label(row).value_or("");
}

TEST(ConditionalCli, SimulateTrainWithHoldoutPredictThenEvaluate) {
  testing::TempDir dir;
  const auto path = [&](const std::string& name) { return (dir / name).string(); };
  auto r =
      run_lingshu(fmt::format("simulate --cells 400 --genes 80 --cell-types 2 --perturbations 3 --seed 5 "
                              "--out '{}' -q",
                              path("sim.h5ad")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const AnnData sim = read_h5ad(path("sim.h5ad"));
  const auto& labels = sim.obs.require("condition", "obs").categories;
  ASSERT_EQ(labels.size(), 4u);
  const std::string pert = labels[0] == "control" ? labels[1] : labels[0];
  const std::string holdout = "cell_type=type_0,condition=" + pert;

  r = run_lingshu(
      fmt::format("train '{}' --out '{}' {} --steps 20 --condition cell_type --perturbation condition "
                  "--control control --p-uncond 0.2 --library-bins 8 --holdout {}",
                  path("sim.h5ad"), path("model"), kTiny, holdout));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json conditions;
  std::ifstream(dir / "model" / "conditions.json") >> conditions;
  EXPECT_EQ(conditions["holdouts"], nlohmann::json::array({holdout}));
  ASSERT_EQ(conditions["fields"].size(), 4u);
  EXPECT_EQ(conditions["fields"][1]["column"], "condition");
  EXPECT_EQ(conditions["fields"][1]["is_perturbation"], true);
  // The library-size field: 8 quantile bins of the training cells' totals.
  EXPECT_EQ(conditions["fields"][2]["column"], "library_size");
  EXPECT_EQ(conditions["fields"][2]["labels"].size(), 8u);
  EXPECT_EQ(conditions["fields"][2]["library_edges"].size(), 7u);
  EXPECT_EQ(conditions["fields"][3]["column"], "perturbation_state");

  std::ofstream(path("pairs.csv")) << "cell_type,condition,n_cells\ntype_0," << pert << ",30\n";
  r =
      run_lingshu(fmt::format("predict '{}' --pairs '{}' --prior '{}' --cfg 1 --steps 4 --seed 2 --threads 1 "
                              "--out '{}'",
                              path("model"), path("pairs.csv"), path("sim.h5ad"), path("pred.h5ad")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("prior for " + pert + " in type_0"), std::string::npos) << r.output;
  const AnnData pred = read_h5ad(path("pred.h5ad"));
  EXPECT_EQ(pred.gene_names(), sim.gene_names());
  std::map<std::pair<std::string, std::string>, int64_t> groups;
  for (int64_t i = 0; i < pred.n_obs(); ++i) {
    ++groups[{label(pred, "cell_type", i), label(pred, "condition", i)}];
    EXPECT_NE(label(pred, "library_size", i), "")
        << "every cell is given a size drawn from the training cells";
  }
  EXPECT_EQ(groups, (std::map<std::pair<std::string, std::string>, int64_t>{{{"type_0", pert}, 30},
                                                                            {{"type_0", "control"}, 30}}));

  r = run_lingshu(fmt::format("eval perturbation '{}' '{}' --context-col cell_type --out '{}' -q",
                              path("sim.h5ad"), path("pred.h5ad"), path("scores.json")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json scores;
  std::ifstream(path("scores.json")) >> scores;
  EXPECT_EQ(scores["perturbations"], 1) << scores.dump();
  EXPECT_EQ(scores["contexts"], 1) << scores.dump();

  // Generating for the held-out pair (an existing label in a new combination) works too.
  r = run_lingshu(fmt::format("generate '{}' --condition {} --n 5 --steps 2 --threads 1 -q --out '{}'",
                              path("model"), holdout, path("gen.h5ad")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_h5ad(path("gen.h5ad")).n_obs(), 5);

  // Mistakes: one line, non-zero exit, no output written.
  const std::string gene = sim.gene_names()[7];
  std::ofstream(path("unknown_context.csv")) << "cell_type,condition,n_cells\ntype_9," << pert << ",5\n";
  std::ofstream(path("unknown_column.csv")) << "donor,condition,n_cells\nd1," << pert << ",5\n";
  std::ofstream(path("not_a_gene.csv")) << "cell_type,condition,n_cells\ntype_0," << gene << "+NOTAGENE,5\n";
  const std::string bad_out = path("bad.h5ad");
  expect_one_line_error(fmt::format("predict '{}' --pairs '{}' --out '{}' -q", path("model"),
                                    path("unknown_context.csv"), bad_out),
                        "type_9");
  expect_one_line_error(fmt::format("predict '{}' --pairs '{}' --out '{}' -q", path("model"),
                                    path("unknown_column.csv"), bad_out),
                        "donor");
  expect_one_line_error(fmt::format("predict '{}' --pairs '{}' --prior '{}' --out '{}' -q", path("model"),
                                    path("not_a_gene.csv"), path("sim.h5ad"), bad_out),
                        "NOTAGENE");
  expect_one_line_error(
      fmt::format("generate '{}' --condition donor=d1 --n 3 --out '{}' -q", path("model"), bad_out), "donor");
  expect_one_line_error(
      fmt::format("generate '{}' --condition cell_type=type_9 --n 3 --out '{}' -q", path("model"), bad_out),
      "type_9");
  EXPECT_FALSE(fs::exists(bad_out));
  expect_one_line_error(fmt::format("train '{}' --out '{}' {} --steps 2 --condition cell_type --holdout "
                                    "cell_type=type_9",
                                    path("sim.h5ad"), path("bad_model"), kTiny),
                        "matches no cell");
  expect_one_line_error(
      fmt::format("train '{}' --out '{}' {} --steps 2 --perturbation condition --control NT",
                  path("sim.h5ad"), path("bad_model"), kTiny),
      "NT");
  std::ofstream(path("ragged.tsv")) << "gene\tk1\tk2\nMAP2K6\t1\t0\nSGK1\t1\n";
  expect_one_line_error(fmt::format("train '{}' --out '{}' {} --steps 2 --perturbation condition --control "
                                    "control --gene-knowledge '{}'",
                                    path("sim.h5ad"), path("bad_model"), kTiny, path("ragged.tsv")),
                        "ragged.tsv line 3");
  expect_one_line_error(fmt::format("train '{}' --out '{}' {} --steps 2 --gene-knowledge '{}'",
                                    path("sim.h5ad"), path("bad_model"), kTiny, path("ragged.tsv")),
                        "--perturbation");
  EXPECT_FALSE(fs::exists(dir / "bad_model" / "config.json"));
  EXPECT_FALSE(fs::exists(dir / "bad_model"));
}

}  // namespace
}  // namespace lingshu
