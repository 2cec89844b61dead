// Gene knowledge files (read_gene_knowledge) and where a knowledge-only target gene enters the
// model's target list (target_positions after the sequence positions).
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "data/conditions.h"
#include "data/gene_knowledge.h"
#include "data/simulator.h"
#include "test_support.h"

namespace lingshu {
namespace {

using testing::TempDir;

std::filesystem::path write_file(const TempDir& dir, const std::string& text) {
  const auto path = dir / "knowledge.tsv";
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::filesystem::path& path) {
  try {
    read_gene_knowledge(path);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(GeneKnowledge, ReadsCommentsHeaderAndRowsInFileOrder) {
  const TempDir dir;
  const auto k = read_gene_knowledge(
      write_file(dir, "# made by hand\ngene\ta\tb\tc\nMAP2K6\t0.5\t-1\t2e-1\r\n\nSGK1\t0\t3.25\t-0.125\n"));
  EXPECT_EQ(k.genes, (std::vector<std::string>{"MAP2K6", "SGK1"}));
  EXPECT_EQ(k.dim, 3);
  EXPECT_EQ(k.values, (std::vector<float>{0.5f, -1.f, 0.2f, 0.f, 3.25f, -0.125f}));
  // Without a header the first line is a gene.
  EXPECT_EQ(read_gene_knowledge(write_file(dir, "KLF1\t1\t2\n")).genes, std::vector<std::string>{"KLF1"});
}

TEST(GeneKnowledge, BadLinesAreRefusedNamingTheLine) {
  const TempDir dir;
  EXPECT_NE(error_of(dir / "absent.tsv").find("cannot open"), std::string::npos);
  EXPECT_NE(
      error_of(write_file(dir, "A\t1\t2\nB\t1\n")).find("line 2: 1 numbers where the lines before have 2"),
      std::string::npos);
  EXPECT_NE(
      error_of(write_file(dir, "A\t1\t2\nB\t1\tx\n")).find("line 2: field 3 ('x') is not a finite number"),
      std::string::npos);
  EXPECT_NE(error_of(write_file(dir, "A\t1\nB\tnan\n")).find("line 2"), std::string::npos);
  EXPECT_NE(error_of(write_file(dir, "A\t1\nA\t2\n")).find("line 2: gene 'A' is named twice"),
            std::string::npos);
  EXPECT_NE(error_of(write_file(dir, "A 1 2\n")).find("line 1: expected a gene symbol"), std::string::npos);
  EXPECT_NE(error_of(write_file(dir, "# only a comment\ngene\tx\n")).find("no gene lines"),
            std::string::npos);
}

TEST(GeneKnowledge, ATargetWithAKnowledgeRowGetsItAfterTheSequencePositions) {
  SimulatorConfig c;
  c.n_cells = 120;
  c.n_genes = 40;
  c.n_cell_types = 2;
  c.n_perturbations = 2;
  c.n_downstream = 4;
  c.seed = 3;
  const auto sim = simulate(c, 1);
  const auto& genes = sim.data.gene_names();
  const auto patching = GenePatching::make(sim.data.n_vars(), 8, 5);
  const auto L = static_cast<int32_t>(patching.n_positions());
  const ConditionField field = make_perturbation_field(sim.data.obs, "condition", "control");
  const std::vector<std::string> knowledge{"MAP2K6", genes[7], "SGK1"};

  // A gene the file does not measure: its knowledge row only.
  EXPECT_EQ(target_positions(field, "SGK1", genes, patching, knowledge), (std::vector<int32_t>{L + 2}));
  // A measured gene with a row: both, its position first.
  const auto pos7 = patching.position_of_gene()[7];
  EXPECT_EQ(target_positions(field, genes[7], genes, patching, knowledge),
            (std::vector<int32_t>{pos7, L + 1}));
  // Combinations part by part; without knowledge an unmeasured part makes the label a category.
  EXPECT_EQ(target_positions(field, "MAP2K6+" + genes[7], genes, patching, knowledge),
            (std::vector<int32_t>{L, pos7, L + 1}));
  EXPECT_TRUE(target_positions(field, "MAP2K6+" + genes[7], genes, patching).empty());
  EXPECT_TRUE(target_positions(field, "MAP2K6+IFNB", genes, patching, knowledge).empty());
  EXPECT_TRUE(target_positions(field, "control", genes, patching, knowledge).empty());
  const auto by_token = target_positions_by_token(field, genes, patching, knowledge);
  ASSERT_EQ(static_cast<int64_t>(by_token.size()), field.vocab_size());
  EXPECT_TRUE(by_token[0].empty());
}

}  // namespace
}  // namespace lingshu
