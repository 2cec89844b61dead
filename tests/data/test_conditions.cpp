#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/conditions.h"

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
  ConditionField field = make_perturbation_field(toy_obs(), "condition", "control");
  EXPECT_EQ(ConditionField::from_json(field.to_json()).target_effects, 0);
  field.target_log_ratio = -2.5;
  field.target_effects = 7;
  const ConditionField back = ConditionField::from_json(field.to_json());
  EXPECT_EQ(back.labels, field.labels);
  EXPECT_EQ(back.column, "condition");
  EXPECT_TRUE(back.is_perturbation);
  EXPECT_EQ(back.control, "control");
  EXPECT_EQ(back.target_log_ratio, -2.5);
  EXPECT_EQ(back.target_effects, 7);
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

}  // namespace
}  // namespace lingshu
