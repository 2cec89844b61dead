// The biological prior: genes a perturbation consistently down-regulates in the other contexts.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "data/frame.h"
#include "sample/perturbation_prior.h"

namespace lingshu {
namespace {

// Two contexts where perturbation P halves gene 0 and silences gene 1, leaves gene 2 alone, and
// halves gene 3 in only one of them: only genes 0 and 1 are consistently down.
TEST(Prior, FindsGenesDownInEveryOtherContext) {
  CsrMatrix counts;
  counts.n_cols = 5;
  std::vector<std::string> context, condition;
  auto add = [&](const std::string& ctx, const std::string& cond, std::vector<float> row) {
    counts.append_dense_row(row);
    context.push_back(ctx);
    condition.push_back(cond);
  };
  for (int i = 0; i < 20; ++i) {
    add("A", "control", {40, 20, 20, 20, 100});
    add("A", "P", {20, 0, 20, 10, 150});
    add("B", "control", {40, 20, 20, 20, 100});
    add("B", "P", {20, 0, 20, 20, 140});
    add("C", "control", {40, 20, 20, 20, 100});  // the held-out context: never used
  }
  DataFrame obs;
  for (size_t i = 0; i < context.size(); ++i) obs.index.push_back("cell" + std::to_string(i));
  obs.columns.push_back(Column::categorical("cell_type", context));
  obs.columns.push_back(Column::categorical("condition", condition));

  const auto down = consistently_down_genes(counts, obs, {"cell_type"}, "condition", "control", "P", {"C"});
  ASSERT_EQ(down.size(), 2U);
  EXPECT_EQ(down[0].gene, 0);
  EXPECT_EQ(down[1].gene, 1);
  EXPECT_EQ(down[0].n_contexts, 2);
  // Perturbed and control cells both total 200 counts, so gene 0's normalised ratio is 0.5 in both.
  EXPECT_NEAR(down[0].ratio, 0.5, 1e-9);
  EXPECT_LT(down[1].ratio, 0.01);
  EXPECT_TRUE(
      consistently_down_genes(counts, obs, {"cell_type"}, "condition", "control", "Q", {"C"}).empty());
}

// Contexts of two columns (cell type x donor): P halves gene 0 in (A, d2) and (B, d1) but not in
// (A, d1). Leaving out (A, d1) keeps both other contexts, where gene 0 is down; leaving out (A, d2)
// brings (A, d1) in, and gene 0 is no longer down everywhere. Cells without a donor are no context.
TEST(Prior, AContextIsACombinationOfColumns) {
  CsrMatrix counts;
  counts.n_cols = 2;
  std::vector<std::string> type, donor, condition;
  auto add = [&](const std::string& t, const std::string& d, const std::string& cond,
                 std::vector<float> row) {
    counts.append_dense_row(row);
    type.push_back(t);
    donor.push_back(d);
    condition.push_back(cond);
  };
  for (int i = 0; i < 15; ++i) {
    for (const auto& [t, d, effect] : std::vector<std::tuple<std::string, std::string, float>>{
             {"A", "d1", 1.f}, {"A", "d2", 0.5f}, {"B", "d1", 0.5f}}) {
      add(t, d, "control", {40, 60});
      add(t, d, "P", {40 * effect, 100 - 40 * effect});
    }
  }
  DataFrame obs;
  for (size_t i = 0; i < type.size(); ++i) obs.index.push_back("cell" + std::to_string(i));
  obs.columns.push_back(Column::categorical("cell_type", type));
  obs.columns.push_back(Column::categorical("donor", donor));
  obs.columns.push_back(Column::categorical("condition", condition));
  const std::vector<std::string> columns{"cell_type", "donor"};

  const auto without_a1 =
      consistently_down_genes(counts, obs, columns, "condition", "control", "P", {"A", "d1"});
  ASSERT_EQ(without_a1.size(), 1U);
  EXPECT_EQ(without_a1[0].gene, 0);
  EXPECT_EQ(without_a1[0].n_contexts, 2);
  EXPECT_NEAR(without_a1[0].ratio, 0.5, 1e-9);
  EXPECT_TRUE(
      consistently_down_genes(counts, obs, columns, "condition", "control", "P", {"A", "d2"}).empty());
  // One column alone pools the donors: leaving out type A leaves B, where gene 0 is down.
  EXPECT_EQ(consistently_down_genes(counts, obs, {"cell_type"}, "condition", "control", "P", {"A"}).size(),
            1U);
  const auto contexts = contexts_of_rows(obs, columns);
  EXPECT_EQ(contexts[0], (std::vector<std::string>{"A", "d1"}));
  EXPECT_THROW(contexts_of_rows(obs, {"cell_type", "batch"}), UserError);
}

}  // namespace
}  // namespace lingshu
