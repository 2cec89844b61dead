#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/error.h"
#include "data/conditions.h"
#include "data/perturbation_prior.h"

namespace lingshu {
namespace {

DataFrame toy_obs() {
  DataFrame obs;
  obs.index = {"c0", "c1", "c2", "c3", "c4"};
  obs.columns.push_back(Column::categorical("cell_type", {"B", "T", "B", "NK", "T"}));
  obs.columns.push_back(Column::categorical("condition", {"control", "KLF1", "KLF1", "control", "IFNB"}));
  obs.columns[0].codes[3] = -1;  // a missing label
  return obs;
}

TEST(Conditions, FieldTokensStartAfterNull) {
  const DataFrame obs = toy_obs();
  const ConditionField field = make_condition_field(obs, "cell_type");
  EXPECT_EQ(field.vocab_size(), static_cast<int64_t>(field.labels.size()) + 1);
  for (size_t i = 0; i < field.labels.size(); ++i)
    EXPECT_EQ(field.token(field.labels[i]), static_cast<int64_t>(i) + 1);
  EXPECT_THROW(field.token("Macrophage"), UserError);

  const auto tokens = encode_conditions(obs, {field});
  ASSERT_EQ(tokens.size(), 5U);
  EXPECT_EQ(tokens[3], 0) << "a missing label encodes as NULL";
  EXPECT_EQ(tokens[0], tokens[2]);
  EXPECT_NE(tokens[0], tokens[1]);
}

TEST(Conditions, JsonRoundTrip) {
  const ConditionField field = make_perturbation_field(toy_obs(), "condition", "control");
  const ConditionField back = ConditionField::from_json(field.to_json());
  EXPECT_EQ(back.labels, field.labels);
  EXPECT_EQ(back.column, "condition");
  EXPECT_TRUE(back.is_perturbation);
  EXPECT_EQ(back.control, "control");
}

TEST(Conditions, LibraryBinsAreQuantilesOfTheTotalsAndLabelTheirRanges) {
  std::vector<double> totals;
  for (int i = 0; i < 100; ++i) totals.push_back(100 + 10 * ((i * 37) % 100));  // 100 .. 1090, shuffled
  const auto field = make_library_field(totals, 4);
  ASSERT_TRUE(field.has_value());
  EXPECT_TRUE(field->is_library);
  EXPECT_EQ(field->column, kLibraryColumn);
  EXPECT_EQ(field->library_edges, (std::vector<double>{350, 600, 850}));
  EXPECT_EQ(field->labels, (std::vector<std::string>{"100-349", "350-599", "600-849", "850+"}));
  const auto labels = library_labels(*field, totals);
  std::map<std::string, int> per_bin;
  for (size_t i = 0; i < totals.size(); ++i) {
    ++per_bin[labels[i]];
    const auto token = field->token(labels[i]) - 1;  // bin index
    if (token > 0) {
      EXPECT_GE(totals[i], field->library_edges[static_cast<size_t>(token - 1)]);
    }
    if (token < 3) {
      EXPECT_LT(totals[i], field->library_edges[static_cast<size_t>(token)]);
    }
  }
  for (const auto& [bin, n] : per_bin) EXPECT_EQ(n, 25) << bin;  // equal quantile bins

  const ConditionField back = ConditionField::from_json(field->to_json());
  EXPECT_TRUE(back.is_library);
  EXPECT_EQ(back.library_edges, field->library_edges);
  EXPECT_EQ(back.labels, field->labels);
  EXPECT_FALSE(ConditionField::from_json(make_condition_field(toy_obs(), "cell_type").to_json()).is_library);
  auto broken = field->to_json();
  broken["labels"].erase(0);
  EXPECT_THROW(ConditionField::from_json(broken), UserError);

  // Tied quantiles merge: most cells the same size leaves fewer bins; all the same leaves none.
  std::vector<double> tied(70, 500.0);
  for (int i = 0; i < 30; ++i) tied.push_back(1000 + i);
  const auto few = make_library_field(tied, 8);  // edges at cells 12, 25, .., 87 of 100
  ASSERT_TRUE(few.has_value());
  EXPECT_EQ(few->labels, (std::vector<std::string>{"500-1004", "1005-1016", "1017+"}));
  EXPECT_FALSE(make_library_field(std::vector<double>(50, 500.0), 8).has_value());
  EXPECT_FALSE(make_library_field(totals, 1).has_value());
  EXPECT_EQ(library_field_index({make_condition_field(toy_obs(), "cell_type"), *field}), 1);
  EXPECT_EQ(library_field_index({make_condition_field(toy_obs(), "cell_type")}), -1);
}

TEST(Conditions, UnknownControlOrColumnIsAUserError) {
  EXPECT_THROW(make_perturbation_field(toy_obs(), "condition", "ctrl"), UserError);
  EXPECT_THROW(make_condition_field(toy_obs(), "donor"), UserError);
}

TEST(Conditions, PerturbationTargetsNameGenesOrNothing) {
  const std::vector<std::string> genes{"A", "CD4", "B", "KLF1", "C", "D", "E", "MAP2K6"};
  const auto patching = GenePatching::make(8, 4, 3);
  const auto pos = patching.position_of_gene();
  ConditionField field;
  field.is_perturbation = true;
  field.control = "control";
  const auto targets = [&](const std::string& label) {
    return target_positions(field, label, genes, patching);
  };
  EXPECT_EQ(targets("KLF1"), (std::vector<int32_t>{pos[3]}));
  EXPECT_EQ(targets("KLF1+MAP2K6"), (std::vector<int32_t>{pos[3], pos[7]}));
  EXPECT_EQ(targets("MAP2K6_CD4"), (std::vector<int32_t>{pos[7], pos[1]}));
  EXPECT_TRUE(targets("control").empty());
  EXPECT_TRUE(targets("IFNB").empty()) << "a cytokine is a plain category";
  EXPECT_TRUE(targets("KLF1+DRUG").empty());
  field.is_perturbation = false;
  EXPECT_TRUE(targets("KLF1").empty()) << "only a perturbation field has targets";
}

TEST(Conditions, SpecParsesAndMatches) {
  const ConditionSpec spec = ConditionSpec::parse("cell_type=B,condition=KLF1");
  ASSERT_EQ(spec.terms.size(), 2U);
  EXPECT_EQ(spec.to_string(), "cell_type=B,condition=KLF1");
  EXPECT_EQ(spec.matches(toy_obs()), (std::vector<bool>{false, false, true, false, false}));
  EXPECT_THROW(ConditionSpec::parse("cell_type"), UserError);
  EXPECT_THROW(ConditionSpec::parse("cell_type=B,"), UserError);
  EXPECT_THROW(ConditionSpec::parse("donor=1").matches(toy_obs()), UserError);
}

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
