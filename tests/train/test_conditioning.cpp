// What `lingshu train --condition/--perturbation/--holdout` builds from obs before training:
// vocabularies of the labels training cells carry, the perturbation field, per-cell codes and the
// label combinations, checked against direct counts on simulated cells.
#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include "core/error.h"
#include "data/simulator.h"
#include "train/conditioning.h"

namespace lingshu {
namespace {

Simulation screen() {
  SimulatorConfig c;
  c.n_cells = 240;
  c.n_genes = 50;
  c.n_cell_types = 3;
  c.n_perturbations = 2;
  c.n_downstream = 4;
  c.seed = 21;
  return simulate(c, 1);
}

std::string label(const DataFrame& obs, const std::string& column, int64_t row) {
  return obs.require(column, "obs").label(row).value_or("");
}

TEST(Conditioning, FieldsHoldOnlyLabelsOfTrainingCellsAndMarkThePerturbation) {
  const auto sim = screen();
  // Without type_2 cells (held out) the cell_type column still lists type_2 as a category.
  const AnnData cells = remove_holdouts(sim.data, {"cell_type=type_2"});
  const auto& categories = cells.obs.require("cell_type", "obs").categories;
  ASSERT_NE(std::find(categories.begin(), categories.end(), "type_2"), categories.end());

  const auto fields = build_condition_fields(cells.obs, {{"cell_type"}, "condition", "control", {}});
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(fields[0].column, "cell_type");
  EXPECT_EQ(fields[0].labels, (std::vector<std::string>{"type_0", "type_1"}));
  EXPECT_FALSE(fields[0].is_perturbation);
  EXPECT_EQ(fields[1].column, "condition");
  EXPECT_TRUE(fields[1].is_perturbation);
  EXPECT_EQ(fields[1].control, "control");
  EXPECT_EQ(fields[1].labels.size(), 3u);  // control + 2 perturbations
  EXPECT_TRUE(fields[1].find("control"));
  for (const auto& p : sim.truth.perturbations) EXPECT_TRUE(fields[1].find(p.name)) << p.name;
  EXPECT_EQ(perturbation_field_index(fields), 1);
  // The perturbation state comes last: each training context, control or perturbed.
  EXPECT_EQ(state_field_index(fields), 2);
  EXPECT_EQ(fields[2].column, kStateColumn);
  EXPECT_EQ(fields[2].labels, (std::vector<std::string>{"type_0/control", "type_0/perturbed",
                                                        "type_1/control", "type_1/perturbed"}));

  // One perturbation alone: the state would say what its label says, so there is none.
  const AnnData single = remove_holdouts(cells, {"condition=" + sim.truth.perturbations[1].name});
  EXPECT_EQ(
      state_field_index(build_condition_fields(single.obs, {{"cell_type"}, "condition", "control", {}})), -1);

  // The perturbation column named among --condition too: one field, where it was named.
  const auto listed =
      build_condition_fields(cells.obs, {{"condition", "cell_type"}, "condition", "control", {}});
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].column, "condition");
  EXPECT_EQ(perturbation_field_index(listed), 0);

  // Plain conditions only: no perturbation field.
  const auto plain = build_condition_fields(cells.obs, {{"cell_type", "condition"}, "", "control", {}});
  EXPECT_EQ(perturbation_field_index(plain), -1);
  EXPECT_TRUE(build_condition_fields(cells.obs, {{}, "", "control", {}}).empty());
}

TEST(Conditioning, LibraryBinsComeLastAndBecomeAnObsColumnCountedLikeAnyOther) {
  const auto sim = screen();
  const auto totals = sim.data.X.row_sums();
  ConditioningRequest request{{"cell_type"}, "condition", "control", {}, 4};
  const auto fields = build_condition_fields(sim.data.obs, request, totals);
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(library_field_index(fields), 2);
  EXPECT_EQ(perturbation_field_index(fields), 1);
  EXPECT_EQ(state_field_index(fields), 3);
  EXPECT_EQ(fields[2].labels.size(), 4u);

  DataFrame obs = sim.data.obs;
  set_derived_columns(obs, fields, totals);
  // Every cell's state column agrees with its own labels.
  const Column& state = obs.require(kStateColumn, "obs");
  const Column& type = obs.require("cell_type", "obs");
  const Column& condition = obs.require("condition", "obs");
  for (int64_t i = 0; i < obs.size(); ++i) {
    ASSERT_EQ(*state.label(i),
              *type.label(i) + (*condition.label(i) == "control" ? "/control" : "/perturbed"));
  }
  const auto codes = condition_codes(obs, fields);
  std::map<int64_t, int64_t> per_bin;
  for (size_t i = 0; i < totals.size(); ++i) {
    const auto bin = codes[2][i] - 1;
    ASSERT_GE(bin, 0) << "every cell has a library bin";
    ++per_bin[bin];
    const auto& edges = fields[2].library_edges;
    if (bin > 0) {
      EXPECT_GE(totals[i], edges[static_cast<size_t>(bin - 1)]);
    }
    if (bin < 3) {
      EXPECT_LT(totals[i], edges[static_cast<size_t>(bin)]);
    }
  }
  for (const auto& [bin, n] : per_bin) EXPECT_NEAR(n, 60, 6) << "bin " << bin;  // 240 cells / 4, ties aside
  int64_t counted = 0;
  for (const auto& c : count_combinations(obs, fields)) counted += c.n_cells;
  EXPECT_EQ(counted, obs.size());

  // A data column of the same name would be silently replaced: refused instead.
  EXPECT_THROW(build_condition_fields(obs, request, totals), UserError);
  request.library_bins = 0;
  EXPECT_EQ(build_condition_fields(sim.data.obs, request, totals).size(), 3u);
}

TEST(Conditioning, BadRequestsAreUserErrors) {
  const auto sim = screen();
  const auto& obs = sim.data.obs;
  EXPECT_THROW(build_condition_fields(obs, {{"cell_type", "cell_type"}, "", "control", {}}), UserError);
  EXPECT_THROW(build_condition_fields(obs, {{"donor"}, "", "control", {}}), UserError);
  EXPECT_THROW(build_condition_fields(obs, {{}, "guide", "control", {}}), UserError);
  EXPECT_THROW(build_condition_fields(obs, {{}, "condition", "NT", {}}), UserError);
}

TEST(Conditioning, CombinationsCountTheCellsAndCodesMatchEncoding) {
  const auto sim = screen();
  DataFrame obs = sim.data.obs;
  // A few cells without a cell type: their combinations carry "" for it and their code is NULL.
  auto& types = obs.columns[static_cast<size_t>(
      std::find_if(obs.columns.begin(), obs.columns.end(), [](auto& c) { return c.name == "cell_type"; }) -
      obs.columns.begin())];
  for (const int64_t i : {3, 50, 51}) types.codes[static_cast<size_t>(i)] = -1;

  const auto fields = build_condition_fields(obs, {{"cell_type"}, "condition", "control", {}});
  set_derived_columns(obs, fields, {});
  const auto combos = count_combinations(obs, fields);
  std::map<std::vector<std::string>, int64_t> direct;
  for (int64_t i = 0; i < obs.size(); ++i) ++direct[{label(obs, "cell_type", i), label(obs, "condition", i)}];
  ASSERT_EQ(combos.size(), direct.size());
  int64_t total = 0;
  for (const auto& c : combos) {
    ASSERT_EQ(c.labels.size(), 3u);  // the state follows from the other two
    EXPECT_EQ(c.n_cells, direct.at({c.labels[0], c.labels[1]})) << c.labels[0] << "/" << c.labels[1];
    total += c.n_cells;
  }
  EXPECT_EQ(total, obs.size());
  EXPECT_GT(direct.count({"", label(obs, "condition", 3)}), 0u);
  // In order of first occurrence.
  EXPECT_EQ(combos[0].labels,
            (std::vector<std::string>{label(obs, "cell_type", 0), label(obs, "condition", 0),
                                      label(obs, kStateColumn, 0)}));

  const auto codes = condition_codes(obs, fields);
  const auto flat = encode_conditions(obs, fields);
  ASSERT_EQ(codes.size(), fields.size());
  for (size_t f = 0; f < fields.size(); ++f) {
    ASSERT_EQ(codes[f].size(), static_cast<size_t>(obs.size()));
    for (size_t i = 0; i < codes[f].size(); ++i) {
      ASSERT_EQ(codes[f][i], flat[i * fields.size() + f]) << "field " << f << " cell " << i;
      const std::string l = label(obs, fields[f].column, static_cast<int64_t>(i));
      if (l.empty()) {
        EXPECT_EQ(codes[f][i], 0);
      } else {
        ASSERT_GT(codes[f][i], 0);
        EXPECT_EQ(fields[f].labels[static_cast<size_t>(codes[f][i] - 1)], l);
      }
    }
  }
  // Labels the fields do not know (cells of another data set) code as NULL.
  const auto narrow = build_condition_fields(remove_holdouts(sim.data, {"cell_type=type_0"}).obs,
                                             {{"cell_type"}, "", "control", {}});
  const auto unknown = condition_codes(sim.data.obs, narrow);
  for (int64_t i = 0; i < sim.data.n_obs(); ++i) {
    if (sim.truth.cell_type[static_cast<size_t>(i)] == 0) {
      EXPECT_EQ(unknown[0][static_cast<size_t>(i)], 0);
    }
  }
}

}  // namespace
}  // namespace lingshu
