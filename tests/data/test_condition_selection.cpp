// --holdout (remove_holdouts) on simulated cells, and where the target genes of perturbation labels
// sit in the patched sequence (target_positions), checked against the simulator's truth and the
// patching order.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/error.h"
#include "data/conditions.h"
#include "data/simulator.h"

namespace lingshu {
namespace {

Simulation screen() {
  SimulatorConfig c;
  c.n_cells = 300;
  c.n_genes = 60;
  c.n_cell_types = 3;
  c.n_perturbations = 3;
  c.n_downstream = 5;
  c.seed = 11;
  return simulate(c, 1);
}

std::string label(const AnnData& data, const std::string& column, int64_t row) {
  return data.obs.require(column, "obs").label(row).value_or("");
}

TEST(Holdouts, RemoveExactlyTheMatchingCellsInOrder) {
  const auto sim = screen();
  const std::string pert = sim.truth.perturbations[0].name;
  const std::vector<std::string> holdouts{"cell_type=type_1,condition=" + pert,
                                          "cell_type=type_2,condition=control"};
  std::vector<int64_t> expected;
  int64_t held[2] = {0, 0};
  for (int64_t i = 0; i < sim.data.n_obs(); ++i) {
    const bool a = sim.truth.cell_type[i] == 1 && sim.truth.condition[i] == 1;
    const bool b = sim.truth.cell_type[i] == 2 && sim.truth.condition[i] == 0;
    held[0] += a;
    held[1] += b;
    if (!a && !b) expected.push_back(i);
  }
  ASSERT_GT(held[0], 0);
  ASSERT_GT(held[1], 0);

  const AnnData kept = remove_holdouts(sim.data, holdouts);
  ASSERT_EQ(kept.n_obs(), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(kept.gene_names(), sim.data.gene_names());
  for (size_t k = 0; k < expected.size(); ++k) {
    const int64_t i = expected[k];
    const auto r = static_cast<int64_t>(k);
    ASSERT_EQ(kept.obs.index[k], sim.data.obs.index[static_cast<size_t>(i)]);
    EXPECT_EQ(label(kept, "cell_type", r), label(sim.data, "cell_type", i));
    EXPECT_EQ(label(kept, "condition", r), label(sim.data, "condition", i));
    EXPECT_EQ(kept.X.dense_row(r), sim.data.X.dense_row(i)) << "row " << k;
    EXPECT_FALSE(label(kept, "cell_type", r) == "type_1" && label(kept, "condition", r) == pert);
  }
  // One spec alone removes only its own cells.
  EXPECT_EQ(remove_holdouts(sim.data, {holdouts[0]}).n_obs(), sim.data.n_obs() - held[0]);
  // No spec: the data unchanged.
  EXPECT_EQ(remove_holdouts(sim.data, {}).n_obs(), sim.data.n_obs());
}

TEST(Holdouts, SpecsThatMatchNothingOrEverythingAreUserErrors) {
  const auto sim = screen();
  EXPECT_THROW(remove_holdouts(sim.data, {"cell_type=type_9"}), UserError);
  EXPECT_THROW(remove_holdouts(sim.data, {"donor=d1"}), UserError);
  EXPECT_THROW(remove_holdouts(sim.data, {"cell_type"}), UserError);
  // One good spec does not excuse a bad one beside it.
  EXPECT_THROW(remove_holdouts(sim.data, {"cell_type=type_0", "condition=NOTAGENE"}), UserError);
  EXPECT_THROW(remove_holdouts(sim.data, {"cell_type=type_0", "cell_type=type_1", "cell_type=type_2"}),
               UserError);
  try {
    remove_holdouts(sim.data, {"cell_type=type_9"});
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("type_9"), std::string::npos) << e.what();
  }
}

TEST(TargetPositions, PointAtTheGenesWherePatchingPutThem) {
  const auto sim = screen();
  const auto& genes = sim.data.gene_names();
  const auto patching = GenePatching::make(sim.data.n_vars(), 8, 5);
  const ConditionField field = make_perturbation_field(sim.data.obs, "condition", "control");
  const auto gene_at = [&](int32_t pos) { return patching.order[static_cast<size_t>(pos)]; };

  // Every simulated perturbation targets one gene: its token points at that gene's position.
  const auto by_token = target_positions_by_token(field, genes, patching);
  ASSERT_EQ(static_cast<int64_t>(by_token.size()), field.vocab_size());
  EXPECT_TRUE(by_token[0].empty()) << "NULL has no targets";
  EXPECT_TRUE(by_token[static_cast<size_t>(field.token("control"))].empty());
  for (const auto& p : sim.truth.perturbations) {
    const auto& positions = by_token[static_cast<size_t>(field.token(p.name))];
    ASSERT_EQ(positions.size(), 1u) << p.name;
    EXPECT_EQ(gene_at(positions[0]), p.target) << p.name;
  }

  // Combinations, unseen labels and every separator map part by part, in label order.
  const std::vector<int32_t> chosen{0, 17, 42, 59};
  const std::string combo = genes[17] + "+" + genes[0] + "_" + genes[59];
  const auto positions = target_positions(field, combo, genes, patching);
  ASSERT_EQ(positions.size(), 3u);
  EXPECT_EQ(gene_at(positions[0]), 17);
  EXPECT_EQ(gene_at(positions[1]), 0);
  EXPECT_EQ(gene_at(positions[2]), 59);
  for (const int32_t g : chosen) {
    const auto one = target_positions(field, genes[static_cast<size_t>(g)], genes, patching);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(gene_at(one[0]), g);
    EXPECT_LT(one[0], patching.n_positions());
  }
  // Positions follow the patching, not the gene order: another seed moves them.
  const auto other = GenePatching::make(sim.data.n_vars(), 8, 6);
  ASSERT_NE(other.order, patching.order);
  const auto moved = target_positions(field, combo, genes, other);
  ASSERT_EQ(moved.size(), 3u);
  EXPECT_EQ(other.order[static_cast<size_t>(moved[0])], 17);
  EXPECT_NE(moved, positions);

  // Nothing for the control, labels that are not (all) genes, and fields that are not perturbations.
  EXPECT_TRUE(target_positions(field, "control", genes, patching).empty());
  EXPECT_TRUE(target_positions(field, "IFNB", genes, patching).empty());
  EXPECT_TRUE(target_positions(field, genes[3] + "+IFNB", genes, patching).empty());
  EXPECT_TRUE(target_positions(field, "", genes, patching).empty());
  const ConditionField types = make_condition_field(sim.data.obs, "cell_type");
  EXPECT_TRUE(target_positions(types, genes[3], genes, patching).empty());
  for (const auto& t : target_positions_by_token(types, genes, patching)) EXPECT_TRUE(t.empty());
}

}  // namespace
}  // namespace lingshu
