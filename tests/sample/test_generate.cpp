// Conditional generation and perturbation prediction from a tiny model trained on a simulated
// screen (2 cell types x 3 knock-downs, one (type, knock-down) pair held out): pre-filled genes,
// training proportions, label checks, unseen gene labels, and predict_perturbations with and
// without the prior, and with perturbations it cannot place.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <tuple>

#include "core/error.h"
#include "data/conditions.h"
#include "data/preprocess.h"
#include "data/simulator.h"
#include "eval/stats.h"
#include "io/h5ad.h"
#include "model/model_dir.h"
#include "sample/cell_batches.h"
#include "sample/expected_profile.h"
#include "sample/generate.h"
#include "sample/perturbation_prior.h"
#include "sample/predict.h"
#include "test_support.h"
#include "tiny_training.h"
#include "train/trainer.h"

namespace lingshu {
namespace {

using testing::tiny_train_options;

namespace fs = std::filesystem;

SamplingSettings quick_sampling(uint64_t seed = 1) {
  SamplingSettings s;
  s.steps = 4;
  s.batch_size = 16;
  s.seed = seed;
  s.quiet = true;
  s.precision = "fp32";
  return s;
}

std::string label(const AnnData& data, const std::string& column, int64_t row) {
  return data.obs.require(column, "obs").label(row).value_or("");
}

std::map<std::pair<std::string, std::string>, int64_t> cells_per_pair(const AnnData& data) {
  std::map<std::pair<std::string, std::string>, int64_t> n;
  for (int64_t i = 0; i < data.n_obs(); ++i) ++n[{label(data, "cell_type", i), label(data, "condition", i)}];
  return n;
}

std::string sampler_note(const AnnData& data) {
  for (const auto& [key, value] : data.uns_strings) {
    if (key == "lingshu_sampler") return value;
  }
  return "";
}

double count(const AnnData& data, int64_t row, int64_t gene) {
  return data.X.dense_row(row)[static_cast<size_t>(gene)];
}

// One model for the whole suite (training is the slow part).
class Conditional : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<testing::TempDir>();
    SimulatorConfig c;
    c.n_cells = 300;
    c.n_genes = 48;
    c.n_cell_types = 2;
    c.n_perturbations = 3;
    c.n_downstream = 4;
    c.seed = 9;
    c.lib_loc = 7.0;
    sim_ = std::make_unique<Simulation>(simulate(c, 1));
    pert_ = sim_->truth.perturbations[0].name;
    auto o = tiny_train_options(*dir_ / "model", 30);
    o.condition_fields = {"cell_type"};
    o.perturbation = "condition";
    o.holdouts = {"cell_type=type_0,condition=" + pert_};
    train_model(sim_->data, o);
    train_model(sim_->data, tiny_train_options(*dir_ / "plain", 2));
    auto sized = tiny_train_options(*dir_ / "sized", 30);
    sized.library_bins = 4;
    train_model(sim_->data, sized);
    write_h5ad(*dir_ / "train.h5ad", sim_->data);
  }
  static void TearDownTestSuite() {
    sim_.reset();
    dir_.reset();
  }

  static fs::path model() { return *dir_ / "model"; }
  static fs::path plain() { return *dir_ / "plain"; }
  static fs::path sized() { return *dir_ / "sized"; }  // library bins, no other condition
  static const AnnData& data() { return sim_->data; }
  static const std::vector<std::string>& genes() { return sim_->data.gene_names(); }
  static fs::path file(const std::string& name) { return *dir_ / name; }

  // Genes no perturbation touches (targets, downstream), highest mean count first.
  static std::vector<int32_t> untouched_genes_by_mean() {
    std::set<int32_t> touched;
    for (const auto& p : sim_->truth.perturbations) {
      touched.insert(p.target);
      touched.insert(p.downstream.begin(), p.downstream.end());
    }
    std::vector<double> mean(static_cast<size_t>(data().n_vars()), 0.0);
    for (int64_t i = 0; i < data().n_obs(); ++i) {
      const auto row = data().X.dense_row(i);
      for (size_t j = 0; j < row.size(); ++j) mean[j] += row[j];
    }
    std::vector<int32_t> out;
    for (int32_t g = 0; g < static_cast<int32_t>(mean.size()); ++g) {
      if (!touched.contains(g)) out.push_back(g);
    }
    std::stable_sort(out.begin(), out.end(), [&](int32_t a, int32_t b) { return mean[a] > mean[b]; });
    return out;
  }

  static fs::path write_pairs(const std::string& name, const std::string& csv) {
    std::ofstream(file(name)) << csv;
    return file(name);
  }

  PredictOptions predict_options(const fs::path& pairs) const {
    PredictOptions p;
    p.model_dir = model();
    p.pairs = pairs;
    p.sampling = quick_sampling(2);
    return p;
  }

  static inline std::unique_ptr<testing::TempDir> dir_;
  static inline std::unique_ptr<Simulation> sim_;
  static inline std::string pert_;
};

TEST_F(Conditional, PrefilledGenesComeOutExactlyInEveryCell) {
  const LoadedModel loaded = load_model(model());
  const std::vector<int32_t> position_of = loaded.meta.patching.position_of_gene();
  const auto top = untouched_genes_by_mean();
  const std::vector<int32_t> zeroed(top.begin(), top.begin() + 3);  // highly expressed, pre-filled 0
  const std::vector<int32_t> varied(top.end() - 4, top.end());      // pre-filled 1..7 (exact tokens)
  const int64_t n = 10;
  CellGroup group{{"type_1", "control", ""}, n, {}, {}};
  for (int64_t i = 0; i < n; ++i) {
    std::vector<PrefilledGene> cell;
    for (const int32_t g : zeroed) cell.emplace_back(position_of[static_cast<size_t>(g)], 0);
    for (size_t k = 0; k < varied.size(); ++k) {
      cell.emplace_back(position_of[static_cast<size_t>(varied[k])], static_cast<uint8_t>(1 + (i + k) % 7));
    }
    group.prefilled.push_back(cell);
  }
  const CellGroup free{{"type_1", "control", ""}, n, {}, {}};
  const AnnData out = generate_groups(loaded, {group, free}, quick_sampling());
  ASSERT_EQ(out.n_obs(), 2 * n);
  double free_total = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (const int32_t g : zeroed) EXPECT_EQ(count(out, i, g), 0.0) << "cell " << i << " gene " << g;
    for (size_t k = 0; k < varied.size(); ++k) {
      EXPECT_EQ(count(out, i, varied[k]), static_cast<double>(1 + (i + k) % 7)) << "cell " << i;
    }
    for (const int32_t g : zeroed) free_total += count(out, n + i, g);
  }
  EXPECT_GT(free_total, 0) << "without pre-filling, the most expressed genes are not all zero";

  // Pre-filled genes for some cells of a group only.
  group.prefilled.pop_back();
  EXPECT_THROW(generate_groups(loaded, {group}, quick_sampling()), UserError);
}

TEST_F(Conditional, TrainingProportionsSumToNAndFollowTheCombinations) {
  const auto meta = read_model_metadata(model());
  ASSERT_GT(meta.combinations.size(), 4u);
  double total = 0;
  for (const auto& c : meta.combinations) total += static_cast<double>(c.n_cells);
  for (const int64_t n : {1, 7, 101, 1000}) {
    const auto groups = training_proportions(meta, n);
    int64_t sum = 0;
    for (const auto& g : groups) {
      sum += g.n_cells;
      EXPECT_GE(g.n_cells, 1);
      EXPECT_TRUE(g.prefilled.empty());
      const auto it = std::find_if(meta.combinations.begin(), meta.combinations.end(),
                                   [&](const ConditionCombination& c) { return c.labels == g.labels; });
      ASSERT_NE(it, meta.combinations.end());
      const double exact = static_cast<double>(n) * static_cast<double>(it->n_cells) / total;
      EXPECT_LE(std::abs(static_cast<double>(g.n_cells) - exact), 1.0) << "n " << n;
    }
    EXPECT_EQ(sum, n);
    if (n >= 101) {
      EXPECT_EQ(groups.size(), meta.combinations.size());
    }
  }
  // Generating without --condition follows them.
  GenerateOptions g;
  g.model_dir = model();
  g.n_cells = 40;
  g.sampling = quick_sampling();
  const AnnData out = generate_cells(g);
  std::map<std::pair<std::string, std::string>, int64_t> planned;
  for (const auto& group : training_proportions(meta, 40))
    planned[{group.labels[0], group.labels[1]}] += group.n_cells;
  EXPECT_EQ(cells_per_pair(out), planned);
  // An unconditional model: one group with no labels.
  const auto unconditional = training_proportions(read_model_metadata(plain()), 13);
  ASSERT_EQ(unconditional.size(), 1u);
  EXPECT_EQ(unconditional[0].n_cells, 13);
  EXPECT_TRUE(unconditional[0].labels.empty());
}

TEST_F(Conditional, GuidanceAndLabelErrors) {
  GenerateOptions g;
  g.model_dir = plain();
  g.n_cells = 4;
  g.sampling = quick_sampling();
  EXPECT_EQ(generate_cells(g).n_obs(), 4);
  g.sampling.cfg = 1.0;
  EXPECT_THROW(generate_cells(g), UserError) << "--cfg needs a conditional model";
  g.sampling.cfg = 0;
  g.conditions = {"cell_type=type_0"};
  EXPECT_THROW(generate_cells(g), UserError) << "an unconditional model has no cell_type";

  g.model_dir = model();
  g.sampling.cfg = 1.5;
  const AnnData guided = generate_cells(g);
  ASSERT_EQ(guided.n_obs(), 4);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(label(guided, "cell_type", i), "type_0");
    EXPECT_EQ(label(guided, "condition", i), "");  // not named: NULL, missing in obs
  }
  EXPECT_NE(sampler_note(guided).find("cfg=1.5 guide=all"), std::string::npos);
  // Guiding the perturbation only: the reference pass keeps the cell type.
  g.conditions = {"cell_type=type_0,condition=" + pert_};
  g.sampling.guide = "perturbation";
  const AnnData perturbation_guided = generate_cells(g);
  EXPECT_EQ(label(perturbation_guided, "condition", 0), pert_);
  EXPECT_NE(sampler_note(perturbation_guided).find("guide=perturbation"), std::string::npos);
  // Composing single-field experts: labels as asked, recorded in the note.
  g.sampling.guide = "compose";
  const AnnData composed = generate_cells(g);
  EXPECT_EQ(label(composed, "cell_type", 0), "type_0");
  EXPECT_EQ(label(composed, "condition", 0), pert_);
  EXPECT_NE(sampler_note(composed).find("guide=compose"), std::string::npos);
  g.sampling.guide = "context";
  EXPECT_THROW(generate_cells(g), UserError) << "an unknown --guide";
  g.sampling.guide = "all";
  g.conditions = {"cell_type=type_0"};
  g.sampling.cfg = -1;
  EXPECT_THROW(generate_cells(g), UserError);
  g.sampling.cfg = 0;
  for (const std::string& bad :
       std::vector<std::string>{"cell_type=type_9", "donor=d1", "condition=NOTAGENE", "condition=IFNB",
                                "condition=" + genes()[1] + "+NOTAGENE", "cell_type"}) {
    g.conditions = {bad};
    EXPECT_THROW(generate_cells(g), UserError) << bad;
  }
  g.conditions = {};
  std::ofstream(file("plan_bad.csv")) << "donor,n_cells\nd1,3\n";
  g.plan = file("plan_bad.csv");
  EXPECT_THROW(generate_cells(g), UserError);
  std::ofstream(file("plan.csv")) << "cell_type,condition,n_cells\ntype_0,control,3\ntype_1," << pert_
                                  << ",2\n";
  g.plan = file("plan.csv");
  const AnnData planned = generate_cells(g);
  EXPECT_EQ(cells_per_pair(planned), (std::map<std::pair<std::string, std::string>, int64_t>{
                                         {{"type_0", "control"}, 3}, {{"type_1", pert_}, 2}}));
  g.conditions = {"cell_type=type_0"};
  EXPECT_THROW(generate_cells(g), UserError) << "--plan and --condition together";
}

double median_total(const AnnData& data) {
  auto totals = data.X.row_sums();
  std::nth_element(totals.begin(), totals.begin() + static_cast<long>(totals.size() / 2), totals.end());
  return totals[totals.size() / 2];
}

TEST_F(Conditional, LibraryBinsFollowTheTrainingCellsAndSetTheCellSize) {
  const auto meta = read_model_metadata(sized());
  ASSERT_EQ(meta.conditions.size(), 1u);
  const ConditionField& field = meta.conditions[0];
  ASSERT_TRUE(field.is_library);
  ASSERT_GE(field.labels.size(), 3u);
  // Without --condition: every bin, in the training proportions (quantile bins: about equal).
  GenerateOptions g;
  g.model_dir = sized();
  g.n_cells = 40;
  g.sampling = quick_sampling();
  const AnnData drawn = generate_cells(g);
  std::map<std::string, int64_t> per_bin;
  for (int64_t i = 0; i < drawn.n_obs(); ++i) ++per_bin[label(drawn, kLibraryColumn, i)];
  EXPECT_EQ(per_bin.size(), field.labels.size());
  for (const auto& [bin, n] : per_bin) EXPECT_NEAR(static_cast<double>(n), 40.0 / 4, 3) << bin;
  // Every cell's total count is in the range of its bin (fit_total_to_range).
  for (int64_t i = 0; i < drawn.n_obs(); ++i) {
    const auto [lo, hi] = library_range(field, label(drawn, kLibraryColumn, i));
    double total = 0;
    for (const float v : drawn.X.row_values(i)) total += v;
    EXPECT_GE(total, lo) << i;
    EXPECT_LT(total, hi) << i;
  }
  // Cells asked for in the smallest bin are smaller than those of the largest.
  g.n_cells = 24;
  g.conditions = {fmt::format("{}={}", kLibraryColumn, field.labels.front())};
  const double small = median_total(generate_cells(g));
  g.conditions = {fmt::format("{}={}", kLibraryColumn, field.labels.back())};
  const double large = median_total(generate_cells(g));
  EXPECT_GT(large, 1.3 * small) << field.labels.front() << " vs " << field.labels.back();
  EXPECT_LT(small, field.library_edges.front() * 1.2);
  EXPECT_GT(large, field.library_edges.back() * 0.8);
  // A cell size is not a condition to guide by.
  g.sampling.cfg = 1;
  EXPECT_THROW(generate_cells(g), UserError);
}

TEST(LibraryLabels, GroupsSplitLikeTheTrainingCellsOfTheirLabelsOrOfTheirContext) {
  ModelMetadata meta;
  ConditionField type, pert, size;
  type.column = "cell_type";
  type.labels = {"A", "B"};
  pert.column = "condition";
  pert.labels = {"control", "P"};
  pert.is_perturbation = true;
  pert.control = "control";
  size.column = kLibraryColumn;
  size.labels = {"s", "m", "l"};
  size.is_library = true;
  size.library_edges = {10, 20};
  meta.conditions = {type, pert, size};
  meta.config.perturbation_field = 1;
  meta.combinations = {{{"A", "control", "s"}, 6},
                       {{"A", "control", "l"}, 2},
                       {{"A", "P", "m"}, 4},
                       {{"B", "control", "m"}, 3},
                       {{"B", "P", "s"}, 1}};
  CellGroup controls{{"A", "control", ""}, 8, {}, {}};
  for (uint8_t i = 0; i < 8; ++i) controls.prefilled.push_back({{0, i}});
  const std::vector<CellGroup> asked = {controls,
                                        {{"A", "", ""}, 12, {}, {}},          // any perturbation of A
                                        {{"A", "Q", ""}, 6, {}, {}},          // unseen pair: A's sizes
                                        {{"C", "control", ""}, 16, {}, {}},   // unknown context: all cells
                                        {{"A", "control", "m"}, 5, {}, {}}};  // a size asked for
  std::vector<std::tuple<std::vector<std::string>, int64_t>> got;
  std::vector<uint8_t> prefilled_order;
  for (const auto& g : with_library_labels(meta, asked)) {
    got.emplace_back(g.labels, g.n_cells);
    for (const auto& cell : g.prefilled) prefilled_order.push_back(cell.at(0).second);
  }
  using L = std::vector<std::string>;
  const std::vector<std::tuple<L, int64_t>> expected = {
      {L{"A", "control", "s"}, 6}, {L{"A", "control", "l"}, 2}, {L{"A", "", "s"}, 6},
      {L{"A", "", "m"}, 4},        {L{"A", "", "l"}, 2},        {L{"A", "Q", "s"}, 3},
      {L{"A", "Q", "m"}, 2},       {L{"A", "Q", "l"}, 1},       {L{"C", "control", "s"}, 7},
      {L{"C", "control", "m"}, 7}, {L{"C", "control", "l"}, 2}, {L{"A", "control", "m"}, 5}};
  EXPECT_EQ(got, expected);
  EXPECT_EQ(prefilled_order, (std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7})) << "each cell keeps its genes";
  meta.conditions.pop_back();  // no library field: groups unchanged
  meta.combinations.clear();
  EXPECT_EQ(with_library_labels(meta, {{{"A", "control"}, 3, {}, {}}}).size(), 1u);
}

TEST_F(Conditional, UnseenPerturbationOfGenesIsGeneratedFromItsTargets) {
  const auto top = untouched_genes_by_mean();
  const std::string unseen =
      genes()[static_cast<size_t>(top[0])] + "+" + genes()[static_cast<size_t>(top[1])];
  const LoadedModel loaded = load_model(model());
  const ModelMetadata& meta = loaded.meta;
  ASSERT_FALSE(meta.conditions[1].find(unseen));
  const int64_t n = 12;
  const AnnData targeted = generate_groups(loaded, {{{"type_1", unseen, ""}, n, {}, {}}}, quick_sampling(5));
  ASSERT_EQ(targeted.n_obs(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(label(targeted, "condition", i), unseen);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(label(targeted, kStateColumn, i), "type_1/perturbed");
  // Its input: the NULL token plus the two genes' sequence positions (test_model checks that the
  // targets change the logits), in its context's perturbed state.
  std::vector<std::string> labels{"type_1", unseen, ""};
  fill_state_label(meta, labels);
  const auto encoded = encode_labels(meta, labels);
  EXPECT_EQ(encoded.tokens, (std::vector<int64_t>{*meta.conditions[0].find("type_1"), 0,
                                                  *meta.conditions[2].find("type_1/perturbed")}));
  std::vector<int32_t> expected;
  for (int64_t pos = 0; pos < meta.patching.n_genes; ++pos) {
    const auto gene = meta.patching.order[static_cast<size_t>(pos)];
    if (gene == top[0] || gene == top[1]) expected.push_back(static_cast<int32_t>(pos));
  }
  auto got = encoded.targets;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, expected);
  // A seen label keeps its own token.
  EXPECT_EQ(encode_labels(meta, {"type_1", pert_, ""}).tokens[1], *meta.conditions[1].find(pert_));
  // A label of another field is never treated as targets.
  EXPECT_THROW(generate_groups(loaded, {{{genes()[0], "control", ""}, n, {}, {}}}, quick_sampling()),
               UserError);
}

TEST_F(Conditional, PredictGivesPerturbedAndControlCellsForEveryPair) {
  const std::string other = sim_->truth.perturbations[1].name;
  const auto pairs = write_pairs("pairs.csv", fmt::format("cell_type,condition,n_cells\ntype_0,{},7\n"
                                                          "type_1,{},5\ntype_0,{},9\n",
                                                          pert_, pert_, other));
  const Prediction p = predict_perturbations(predict_options(pairs));
  const AnnData& cells = p.cells;
  EXPECT_EQ(cells.gene_names(), genes());
  std::vector<std::string> columns;
  for (const auto& c : cells.obs.columns) columns.push_back(c.name);
  EXPECT_EQ(columns, (std::vector<std::string>{"cell_type", "condition", kStateColumn}));
  // Controls per context: the largest n_cells of its rows.
  EXPECT_EQ(cells_per_pair(cells),
            (std::map<std::pair<std::string, std::string>, int64_t>{{{"type_0", pert_}, 7},
                                                                    {{"type_1", pert_}, 5},
                                                                    {{"type_0", other}, 9},
                                                                    {{"type_0", "control"}, 9},
                                                                    {{"type_1", "control"}, 5}}));
  EXPECT_TRUE(p.notes.empty());
  for (const float v : cells.X.values) ASSERT_EQ(v, std::round(v));

  auto fixed = predict_options(pairs);
  fixed.n_control = 3;
  const auto with_three = cells_per_pair(predict_perturbations(fixed).cells);
  EXPECT_EQ(with_three.at({"type_0", "control"}), 3);
  EXPECT_EQ(with_three.at({"type_1", "control"}), 3);
  EXPECT_EQ(with_three.at({"type_0", other}), 9);
}

TEST_F(Conditional, ExpectedProfileIsTheMeanOfWhatSamplingDraws) {
  const LoadedModel loaded = load_model(model());
  const std::vector<CellGroup> groups{
      {labels_from_terms(loaded.meta, {"cell_type=type_1,condition=" + pert_}), 3000, {}, {}}};
  SamplingSettings settings = quick_sampling(5);
  settings.steps = 1;
  settings.batch_size = 256;
  const auto profile = expected_profiles(loaded, groups, settings);
  ASSERT_EQ(profile.size(), 1u);
  const AnnData sampled = generate_groups(loaded, groups, settings);
  const auto pseudobulk = column_means(log_normalize(sampled.X));
  double worst = 0;
  for (size_t j = 0; j < pseudobulk.size(); ++j)
    worst = std::max(worst, std::abs(pseudobulk[j] - profile[0].log_profile[j]));
  EXPECT_LT(worst, 0.06);  // 3000 cells: sampling noise of ~0.02 per gene
  const auto totals = sampled.X.row_sums();
  std::vector<double> sorted(totals.begin(), totals.end());
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2),
                   sorted.end());
  EXPECT_NEAR(profile[0].library_size, sorted[sorted.size() / 2], 0.1 * sorted[sorted.size() / 2]);
}

TEST_F(Conditional, PredictExpectedWritesEachPairsProfileAsCounts) {
  const auto pairs =
      write_pairs("expected.csv", fmt::format("cell_type,condition,n_cells\ntype_1,{},300\n", pert_));
  auto options = predict_options(pairs);
  options.expected = true;
  const AnnData cells = predict_perturbations(options).cells;
  EXPECT_EQ(cells_per_pair(cells), (std::map<std::pair<std::string, std::string>, int64_t>{
                                       {{"type_1", pert_}, 300}, {{"type_1", "control"}, 300}}));
  for (const float v : cells.X.values) ASSERT_EQ(v, std::round(v));
  const auto uns = std::find_if(cells.uns_strings.begin(), cells.uns_strings.end(),
                                [](const auto& kv) { return kv.first == "lingshu_prediction"; });
  ASSERT_NE(uns, cells.uns_strings.end());
  EXPECT_EQ(uns->second, "expected profile");
  // The perturbed rows come first; their pseudobulk is the (anchored) profile.
  const LoadedModel loaded = load_model(model());
  const auto profile = anchored_profiles(
      loaded, {{labels_from_terms(loaded.meta, {"cell_type=type_1,condition=" + pert_}), 300, {}, {}}},
      options.sampling);
  std::vector<int64_t> first(300);
  std::iota(first.begin(), first.end(), 0);
  const auto written = column_means(log_normalize(cells.X.select_rows(first)));
  double error = 0;
  for (size_t j = 0; j < written.size(); ++j) error += std::abs(written[j] - profile[0].log_profile[j]);
  // Not exact: the cells' actual totals renormalise every gene, and with 48 genes the profile's
  // highly expressed genes come out ~0.07 high (on thousands of genes, far less).
  EXPECT_LT(error / static_cast<double>(written.size()), 0.04);
  EXPECT_GT(pearson_correlation(written, profile[0].log_profile), 0.999);
}

TEST_F(Conditional, TrainingStoresEachStatesObservedProfile) {
  const ModelMetadata meta = read_model_metadata(model());
  const Column& type = *data().obs.find("cell_type");
  const Column& condition = *data().obs.find("condition");
  std::map<std::string, std::vector<int64_t>> rows;  // state label -> training rows
  for (int64_t i = 0; i < data().n_obs(); ++i) {
    const std::string c = *type.label(i), p = *condition.label(i);
    if (c == "type_0" && p == pert_) continue;  // held out
    rows[c + (p == "control" ? "/control" : "/perturbed")].push_back(i);
  }
  ASSERT_EQ(meta.observed_states.size(), rows.size());
  for (const auto& [label, members] : rows) {
    const ObservedState* state = find_state(meta.observed_states, label);
    ASSERT_NE(state, nullptr) << label;
    EXPECT_EQ(state->n_cells, std::ssize(members));
    const CsrMatrix logs = log_normalize(data().X.select_rows(members));
    const auto means = column_means(logs);
    CsrMatrix squares = logs;
    for (float& v : squares.values) v *= v;
    const auto mean_squares = column_means(squares);
    const double n = static_cast<double>(members.size());
    for (size_t j = 0; j < means.size(); ++j) {
      EXPECT_NEAR(state->log_profile[j], means[j], 1e-5);
      EXPECT_NEAR(state->log_variance[j], (mean_squares[j] - means[j] * means[j]) * n / (n - 1), 1e-4);
    }
    auto totals = data().X.select_rows(members).row_sums();
    std::nth_element(totals.begin(), totals.begin() + std::ssize(totals) / 2, totals.end());
    EXPECT_EQ(state->library_size, totals[totals.size() / 2]);
  }
  // A model without a perturbation field has none.
  EXPECT_TRUE(read_model_metadata(plain()).observed_states.empty());
}

TEST_F(Conditional, AnchoredProfilesStartFromTheObservedStates) {
  LoadedModel loaded = load_model(model());
  const ModelMetadata& meta = loaded.meta;
  const auto labels = [&](const std::string& terms) { return labels_from_terms(meta, {terms}); };
  const std::vector<CellGroup> groups{{labels("cell_type=type_1,condition=" + pert_), 200, {}, {}},
                                      {labels("cell_type=type_1,condition=control"), 200, {}, {}},
                                      {labels("cell_type=type_0,condition=" + pert_), 200, {}, {}}};
  SamplingSettings settings = quick_sampling(3);
  settings.steps = 1;
  // The model's profile and its reference's, on the same cells: state alone, or the context's controls.
  const auto shift_from = [&](size_t g, const std::string& perturbation, const std::string& state) {
    auto reference = groups[g].labels;
    reference[static_cast<size_t>(meta.config.perturbation_field)] = perturbation;
    reference[static_cast<size_t>(state_field_index(meta.conditions))] = state;
    std::vector<std::vector<std::string>> references(groups.size());
    references[g] = reference;
    return expected_profiles(loaded, groups, settings, references)[g];
  };
  // The start plus the model's rise, or times its fall.
  const auto expect_anchored = [](const std::vector<double>& got, const ObservedState& start,
                                  const ExpectedProfile& shift) {
    int falls = 0;
    for (size_t j = 0; j < got.size(); ++j) {
      const double model = shift.log_profile[j], reference = shift.reference_log_profile[j];
      falls += model < reference;
      const double want = model >= reference ? start.log_profile[j] + model - reference
                                             : start.log_profile[j] * (model / reference);
      EXPECT_NEAR(got[j], want, 1e-9) << j;
      EXPECT_GE(got[j], 0.0) << j;
    }
    EXPECT_GT(falls, 0);
  };
  const auto anchored = anchored_profiles(loaded, groups, settings);
  EXPECT_EQ(describe_anchors(meta, groups),
            "started 1 group(s) as their training cells measured them; 2 group(s) from their context's "
            "observed perturbed state plus the model's shift");
  const ObservedState control = *find_state(meta.observed_states, "type_1/control");
  // A control group is its context's observed controls.
  EXPECT_EQ(anchored[1].log_profile, control.log_profile);
  EXPECT_EQ(anchored[1].library_size, control.library_size);
  // A perturbed group: its context's observed perturbed state moved by the model's shift from it;
  // (type_0, pert) was held out, but type_0's other perturbations measured its state.
  expect_anchored(anchored[0].log_profile, *find_state(meta.observed_states, "type_1/perturbed"),
                  shift_from(0, "", "type_1/perturbed"));
  expect_anchored(anchored[2].log_profile, *find_state(meta.observed_states, "type_0/perturbed"),
                  shift_from(2, "", "type_0/perturbed"));
  // A perturbation no context measured whose label names a gene: that gene alone moves by the typical
  // effect of a trained perturbation on its own target.
  const std::string gene = genes()[static_cast<size_t>(untouched_genes_by_mean()[0])];
  const std::vector<CellGroup> unseen{{labels("cell_type=type_1,condition=" + gene), 200, {}, {}}};
  auto& field = loaded.meta.conditions[static_cast<size_t>(meta.config.perturbation_field)];
  EXPECT_GE(field.target_effects, 3);  // the simulator knocks each perturbation's target down
  EXPECT_LT(field.target_log_ratio, std::log(0.5));
  field.target_effects = 0;
  const auto unmoved = anchored_profiles(loaded, unseen, settings)[0].log_profile;
  field.target_log_ratio = std::log(0.1);
  field.target_effects = 5;
  const auto moved = anchored_profiles(loaded, unseen, settings)[0].log_profile;
  const auto target = static_cast<size_t>(untouched_genes_by_mean()[0]);
  for (size_t j = 0; j < moved.size(); ++j) {
    EXPECT_NEAR(moved[j], j == target ? unmoved[j] * 0.1 : unmoved[j], 1e-12) << j;
  }
  EXPECT_GT(unmoved[target], 1.0);
  // Sampled cells reach it too: under the group's tilts the model's expected level is the moved one.
  const double reached =
      expected_profiles(loaded, unseen, settings, {}, anchor_tilts(loaded, unseen, settings))[0]
          .log_profile[target];
  EXPECT_NEAR(reached, moved[target], 0.1 * (unmoved[target] - moved[target]));
  EXPECT_EQ(describe_anchors(loaded.meta, unseen),
            "started 1 group(s) from their context's observed perturbed state plus the model's shift; 1 "
            "target gene(s) no training label names alone moved x0.1, the median effect of a trained "
            "perturbation on its own target (5 measured)");
  // A context whose perturbed cells were all held out starts from its controls moved as the other
  // contexts' controls move to their perturbed cells (type_0's alone here: rises added, falls
  // scaled), plus the model's shift from its controls.
  std::erase_if(loaded.meta.observed_states, [](const auto& s) { return s.label == "type_1/perturbed"; });
  const ObservedState p0 = *find_state(meta.observed_states, "type_0/perturbed");
  const ObservedState c0 = *find_state(meta.observed_states, "type_0/control");
  ObservedState imputed = control;
  for (size_t j = 0; j < imputed.log_profile.size(); ++j) {
    const double to = p0.log_profile[j], from = c0.log_profile[j], start = control.log_profile[j];
    imputed.log_profile[j] = to >= from ? start + to - from : start * to / from;
  }
  const auto from_imputed = anchored_profiles(loaded, groups, settings);
  EXPECT_EQ(describe_anchors(meta, groups),
            "started 1 group(s) as their training cells measured them; 1 group(s) from their context's "
            "observed perturbed state plus the model's shift; 1 group(s) from their context's observed "
            "controls moved as the other contexts' controls move to their perturbed cells, plus the "
            "model's shift from its controls (the context has no perturbed state)");
  expect_anchored(from_imputed[0].log_profile, imputed, shift_from(0, "control", "type_1/control"));
  EXPECT_NEAR(from_imputed[0].library_size, control.library_size * p0.library_size / c0.library_size, 1e-9);
  EXPECT_EQ(from_imputed[1].log_profile, control.log_profile);
  // With no context's perturbed state at all, a context starts from its controls, shifted as the
  // model moves from its own controls.
  std::erase_if(loaded.meta.observed_states, [](const auto& s) { return s.label == "type_0/perturbed"; });
  const auto from_controls = anchored_profiles(loaded, groups, settings);
  EXPECT_EQ(describe_anchors(meta, groups),
            "started 1 group(s) as their training cells measured them; 2 group(s) from their context's "
            "observed controls plus the model's shift from them");
  expect_anchored(from_controls[0].log_profile, control, shift_from(0, "control", "type_1/control"));
  EXPECT_EQ(from_controls[1].log_profile, control.log_profile);
  // With four contexts' controls measured, the predicted group starts from its context's controls
  // as estimated across contexts; the control group stays as its cells measured it.
  for (const char* other : {"type_2/control", "type_3/control"}) {
    ObservedState extra = control;
    extra.label = other;
    for (double& v : extra.log_profile) v *= 0.5;
    loaded.meta.observed_states.push_back(std::move(extra));
  }
  const auto estimated = estimated_across_contexts(loaded.meta.observed_states);
  const ObservedState& estimated_control = *find_state(estimated, "type_1/control");
  EXPECT_NE(estimated_control.log_profile, control.log_profile);
  const auto from_estimate = anchored_profiles(loaded, groups, settings);
  EXPECT_EQ(describe_anchors(loaded.meta, groups),
            "started 1 group(s) as their training cells measured them; 2 group(s) from their context's "
            "observed controls plus the model's shift from them (for 2 of them, that start is estimated "
            "across contexts, not its cells' mean)");
  expect_anchored(from_estimate[0].log_profile, estimated_control,
                  shift_from(0, "control", "type_1/control"));
  EXPECT_EQ(from_estimate[1].log_profile, control.log_profile);
}

TEST_F(Conditional, OnePerturbationsHeldOutContextTakesAShareOfTheAverageMove) {
  // Only the controls and one perturbation: no perturbation state, and type_0's perturbed cells held out.
  std::vector<int64_t> rows;
  const Column& condition = *data().obs.find("condition");
  for (int64_t i = 0; i < data().n_obs(); ++i) {
    if (*condition.label(i) == "control" || *condition.label(i) == pert_) rows.push_back(i);
  }
  auto o = tiny_train_options(file("one_perturbation"), 10);
  o.condition_fields = {"cell_type"};
  o.perturbation = "condition";
  o.holdouts = {"cell_type=type_0,condition=" + pert_};
  train_model(data().select_cells(rows), o);
  const LoadedModel loaded = load_model(file("one_perturbation"));
  const ModelMetadata& meta = loaded.meta;
  ASSERT_LT(state_field_index(meta.conditions), 0);
  const std::vector<CellGroup> groups{
      {labels_from_terms(meta, {"cell_type=type_0,condition=" + pert_}), 200, {}, {}},
      {labels_from_terms(meta, {"cell_type=type_1,condition=" + pert_}), 200, {}, {}}};
  SamplingSettings settings = quick_sampling(5);
  settings.steps = 1;
  std::vector<std::vector<std::string>> references(groups.size());
  references[0] = groups[0].labels;
  references[0][static_cast<size_t>(meta.config.perturbation_field)] = "control";
  const ExpectedProfile shift = expected_profiles(loaded, groups, settings, references)[0];
  const auto anchored = anchored_profiles(loaded, groups, settings);
  EXPECT_EQ(describe_anchors(meta, groups),
            "started 1 group(s) as their training cells measured them; 1 group(s) from their context's "
            "observed controls plus the model's shift from them; for 1 of them, 25% of the profile is their "
            "controls moved as the other contexts' controls move to their perturbed cells");
  // Three quarters the controls moved by the model's shift, a quarter moved as type_1's controls
  // move to its perturbed cells (rises added, falls scaled, both ways).
  const auto moved = [](double start, double to, double from) {
    return to >= from ? start + to - from : start * to / from;
  };
  const ObservedState& c0 = *find_state(meta.observed_states, "type_0/control");
  const ObservedState& c1 = *find_state(meta.observed_states, "type_1/control");
  const ObservedState& p1 = *find_state(meta.observed_states, "type_1/perturbed");
  double differs = 0;
  for (size_t j = 0; j < c0.log_profile.size(); ++j) {
    const double by_model = moved(c0.log_profile[j], shift.log_profile[j], shift.reference_log_profile[j]);
    const double by_average = moved(c0.log_profile[j], p1.log_profile[j], c1.log_profile[j]);
    EXPECT_NEAR(anchored[0].log_profile[j], 0.75 * by_model + 0.25 * by_average, 1e-9) << j;
    differs = std::max(differs, std::abs(by_model - by_average));
  }
  EXPECT_GT(differs, 0.05);
  // A measured pair is its cells, as before.
  EXPECT_EQ(anchored[1].log_profile, find_state(meta.observed_states, "type_1/perturbed")->log_profile);
  // With a third context, each context's move is weighted by exp(2 r), r the correlation of its
  // controls with the predicted context's, both centred on the contexts' mean controls (all three
  // controls now estimated across contexts). type_2's controls lie beyond type_0's, away from type_1's
  // (half as far again), so they look far more alike to type_0's than type_1's do; its move differs.
  LoadedModel three = load_model(file("one_perturbation"));
  ObservedState c2 = c1, p2 = p1;
  c2.label = "type_2/control";
  p2.label = "type_2/perturbed";
  for (size_t j = 0; j < c2.log_profile.size(); ++j) {
    c2.log_profile[j] = std::max(0.0, c0.log_profile[j] + 0.5 * (c0.log_profile[j] - c1.log_profile[j]));
    p2.log_profile[j] = c2.log_profile[j] + (j % 2 == 0 ? 0.5 : 0.0);
  }
  three.meta.observed_states.push_back(c2);
  three.meta.observed_states.push_back(p2);
  const auto estimate = estimated_across_contexts(three.meta.observed_states);
  const auto& e0 = *find_state(estimate, "type_0/control");
  const std::vector<const ObservedState*> controls{&e0, find_state(estimate, "type_1/control"),
                                                   find_state(estimate, "type_2/control")};
  const std::vector<const ObservedState*> perturbed{find_state(estimate, "type_1/perturbed"),
                                                    find_state(estimate, "type_2/perturbed")};
  const size_t n_genes = e0.log_profile.size();
  const auto centred = [&](const ObservedState& c) {
    std::vector<double> out(n_genes);
    for (size_t j = 0; j < n_genes; ++j) {
      double mean = 0;
      for (const auto* k : controls) mean += k->log_profile[j] / 3;
      out[j] = c.log_profile[j] - mean;
    }
    return out;
  };
  std::vector<double> weight;
  for (size_t k = 1; k < 3; ++k)
    weight.push_back(std::exp(2 * pearson_correlation(centred(e0), centred(*controls[k]))));
  EXPECT_GT(weight[1], 3 * weight[0]);
  const auto mean_of = [&](const std::vector<const ObservedState*>& states, size_t first, size_t j) {
    return (weight[0] * states[first]->log_profile[j] + weight[1] * states[first + 1]->log_profile[j]) /
           (weight[0] + weight[1]);
  };
  const ExpectedProfile shift3 = expected_profiles(three, groups, settings, references)[0];
  const auto weighted = anchored_profiles(three, groups, settings);
  for (size_t j = 0; j < n_genes; ++j) {
    const double by_model = moved(e0.log_profile[j], shift3.log_profile[j], shift3.reference_log_profile[j]);
    const double by_average = moved(e0.log_profile[j], mean_of(perturbed, 0, j), mean_of(controls, 1, j));
    EXPECT_NEAR(weighted[0].log_profile[j], 0.75 * by_model + 0.25 * by_average, 1e-9) << j;
  }
}

TEST_F(Conditional, SampledCellsCentreOnTheAnchoredProfile) {
  const LoadedModel loaded = load_model(model());
  const std::vector<CellGroup> groups{
      {labels_from_terms(loaded.meta, {"cell_type=type_1,condition=control"}), 2000, {}, {}},
      {labels_from_terms(loaded.meta, {"cell_type=type_0,condition=" + pert_}), 2000, {}, {}}};
  SamplingSettings settings = quick_sampling(4);
  settings.steps = 1;
  settings.batch_size = 256;
  const auto target = anchored_profiles(loaded, groups, settings);
  const auto tilts = anchor_tilts(loaded, groups, settings);
  ASSERT_EQ(tilts.size(), groups.size());
  // Under the tilts the model's expected profiles come close to the anchored ones ...
  const auto tilted = expected_profiles(loaded, groups, settings, {}, tilts);
  const auto untilted = expected_profiles(loaded, groups, settings);
  const auto mean_abs_difference = [](const std::vector<double>& a, const std::vector<double>& b) {
    double sum = 0;
    for (size_t j = 0; j < a.size(); ++j) sum += std::abs(a[j] - b[j]);
    return sum / static_cast<double>(a.size());
  };
  for (size_t g = 0; g < groups.size(); ++g) {
    const double off = mean_abs_difference(tilted[g].log_profile, target[g].log_profile);
    const double off_untilted = mean_abs_difference(untilted[g].log_profile, target[g].log_profile);
    EXPECT_LT(off, 0.3 * off_untilted) << g;
  }
  // ... and the sampled cells' pseudobulk lands there, far closer than without them.
  const auto pseudobulks = [&](const AnnData& cells) {
    std::vector<std::vector<double>> out;
    for (const std::string& condition : std::vector<std::string>{"control", pert_}) {
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < cells.n_obs(); ++i) {
        if (label(cells, "condition", i) == condition) rows.push_back(i);
      }
      EXPECT_EQ(std::ssize(rows), 2000);
      out.push_back(column_means(log_normalize(cells.X.select_rows(rows))));
    }
    return out;
  };
  const auto with = pseudobulks(generate_groups(loaded, groups, settings, {}, tilts));
  const auto without = pseudobulks(generate_groups(loaded, groups, settings));
  for (size_t g = 0; g < groups.size(); ++g) {
    const double off_with = mean_abs_difference(with[g], target[g].log_profile);
    const double off_without = mean_abs_difference(without[g], target[g].log_profile);
    EXPECT_LT(off_with, 0.03) << g;  // 2,000 cells: sampling noise ~0.01-0.02 per gene
    EXPECT_LT(off_with, 0.7 * off_without) << g;
  }
}

TEST_F(Conditional, AnUnseenPairTakesItsPerturbationsTransferWeight) {
  const ModelMetadata meta = read_model_metadata(model());
  const auto& field = meta.conditions[static_cast<size_t>(meta.config.perturbation_field)];
  ASSERT_EQ(field.transfer.size(), field.labels.size());
  for (const double w : field.transfer) {
    EXPECT_GE(w, 0.0);
    EXPECT_LE(w, 1.0);
  }
  auto labels = labels_from_terms(meta, {"cell_type=type_0,condition=" + pert_});  // held out
  fill_state_label(meta, labels);
  EXPECT_EQ(transfer_weight(meta, labels), field.transfer[static_cast<size_t>(*field.find(pert_) - 1)]);
  auto seen = labels_from_terms(meta, {"cell_type=type_1,condition=" + pert_});
  fill_state_label(meta, seen);
  EXPECT_EQ(transfer_weight(meta, seen), 1.0);
}

TEST_F(Conditional, PriorZeroesTheTargetsOfAPerturbationNoContextMeasured) {
  const auto top = untouched_genes_by_mean();
  const int32_t target = top[0];  // the most expressed gene no perturbation touched
  const std::string gene = genes()[static_cast<size_t>(target)];
  const auto pairs = write_pairs("prior_pairs.csv", fmt::format("cell_type,condition,n_cells\n"
                                                                "type_0,{},8\ntype_0,{},6\n",
                                                                gene, pert_));
  const auto rows_of = [](const AnnData& cells, const std::string& condition) {
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < cells.n_obs(); ++i) {
      if (label(cells, "condition", i) == condition) rows.push_back(i);
    }
    return rows;
  };
  const Prediction without = predict_perturbations(predict_options(pairs));
  double before = 0;
  for (const int64_t i : rows_of(without.cells, gene)) before += count(without.cells, i, target);
  EXPECT_GT(before, 0) << "without the prior the model gives " << gene << " counts";

  auto options = predict_options(pairs);
  options.prior_data = file("train.h5ad");
  const Prediction with = predict_perturbations(options);
  const auto rows = rows_of(with.cells, gene);
  ASSERT_EQ(rows.size(), 8u);
  for (const int64_t i : rows) EXPECT_EQ(count(with.cells, i, target), 0.0) << "cell " << i;
  ASSERT_EQ(with.notes.size(), 2u);
  EXPECT_NE(with.notes[0].find("set to 0"), std::string::npos) << with.notes[0];
  // The held-out knock-down was measured in type_1: the data decide, its target is not forced to 0
  // by the rule for unmeasured perturbations.
  EXPECT_EQ(with.notes[1].find("set to 0"), std::string::npos) << with.notes[1];
  EXPECT_EQ(rows_of(with.cells, pert_).size(), 6u);
  EXPECT_EQ(rows_of(with.cells, "control").size(), 8u);
}

TEST_F(Conditional, PriorOverTwoContextColumnsUsesTheOtherCombinations) {
  // Donors split every cell type; the held-out (type_0, knock-down) is asked for in donor d1.
  AnnData data = sim_->data;
  std::vector<std::string> donors;
  for (int64_t i = 0; i < data.n_obs(); ++i) donors.push_back(i % 2 == 0 ? "d1" : "d2");
  data.obs.columns.push_back(Column::categorical("donor", donors));
  write_h5ad(file("donors.h5ad"), data);
  auto o = tiny_train_options(file("donor_model"), 10);
  o.condition_fields = {"cell_type", "donor"};
  o.perturbation = "condition";
  train_model(data, o);

  auto options = predict_options(
      write_pairs("donor_pairs.csv", "cell_type,donor,condition,n_cells\ntype_0,d1," + pert_ + ",5\n"));
  options.model_dir = file("donor_model");
  options.prior_data = file("donors.h5ad");
  const Prediction p = predict_perturbations(options);
  EXPECT_EQ(cells_per_pair(p.cells).at({"type_0", pert_}), 5);
  // The note counts the genes down in every other (type, donor) combination.
  const auto down = consistently_down_genes(data.X, data.obs, {"cell_type", "donor"}, "condition", "control",
                                            pert_, {"type_0", "d1"});
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_NE(p.notes[0].find(fmt::format("prior for {} in type_0/d1: {} genes", pert_, down.size())),
            std::string::npos)
      << p.notes[0];
  ASSERT_FALSE(down.empty()) << "the knock-down's target is down in the other combinations";
  // More contexts than the one other cell type: (type_0, d2) counts too (a combination with fewer
  // than 10 cells of either kind does not).
  const auto by_type =
      consistently_down_genes(data.X, data.obs, {"cell_type"}, "condition", "control", pert_, {"type_0"});
  ASSERT_FALSE(by_type.empty());
  EXPECT_EQ(by_type.front().n_contexts, 1);
  EXPECT_GE(down.front().n_contexts, 2);
}

TEST_F(Conditional, PredictRefusesBadPairs) {
  const auto run = [&](const std::string& name, const std::string& csv, bool prior) {
    auto options = predict_options(write_pairs(name, csv));
    if (prior) options.prior_data = file("train.h5ad");
    return predict_perturbations(options);
  };
  const std::string g = genes()[2];
  for (const bool prior : {false, true}) {
    EXPECT_THROW(run("a.csv", "cell_type,condition,n_cells\ntype_9," + pert_ + ",4\n", prior), UserError)
        << "an unknown context";
    EXPECT_THROW(run("b.csv", "donor,condition,n_cells\nd1," + pert_ + ",4\n", prior), UserError)
        << "an unknown column";
    EXPECT_THROW(run("c.csv", "cell_type,condition,n_cells\ntype_0," + g + "+NOTAGENE,4\n", prior), UserError)
        << "a label naming a gene and a non-gene";
  }
  EXPECT_THROW(run("d.csv", "cell_type,n_cells\ntype_0,4\n", false), UserError) << "no perturbation column";
  EXPECT_THROW(
      run("f.csv", "cell_type,condition,n_cells\ntype_0," + pert_ + ",4\ntype_0," + pert_ + ",2\n", false),
      UserError)
      << "the same pair twice";
  auto unconditional =
      predict_options(write_pairs("e.csv", "cell_type,condition,n_cells\ntype_0," + pert_ + ",4\n"));
  unconditional.model_dir = plain();
  EXPECT_THROW(predict_perturbations(unconditional), UserError);
}

TEST_F(Conditional, UnknownPerturbationsAreListedTogetherOrPredictedWhenAllowed) {
  const auto pairs = write_pairs("unknown.csv", "cell_type,condition,n_cells\ntype_0,DRUG_A,4\ntype_1," +
                                                    pert_ + ",3\ntype_1,DRUG_B,5\n");
  try {
    predict_perturbations(predict_options(pairs));
    ADD_FAILURE() << "unknown perturbations were accepted";
  } catch (const UserError& e) {
    const std::string message = e.what();
    for (const char* expected :
         {"row 1 condition 'DRUG_A'", "row 3 condition 'DRUG_B'", "2 row(s)", "--allow-unknown"})
      EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line";
  }

  auto allowed = predict_options(pairs);
  allowed.allow_unknown = true;
  const Prediction p = predict_perturbations(allowed);
  const auto counts = cells_per_pair(p.cells);
  EXPECT_EQ(counts.at({"type_0", "DRUG_A"}), 4);
  EXPECT_EQ(counts.at({"type_1", "DRUG_B"}), 5);
  EXPECT_EQ(counts.at({"type_1", pert_}), 3);
  ASSERT_EQ(p.notes.size(), 2u);
  EXPECT_NE(p.notes[0].find("DRUG_A"), std::string::npos) << p.notes[0];
  const auto uns = std::find_if(p.cells.uns_strings.begin(), p.cells.uns_strings.end(),
                                [](const auto& kv) { return kv.first == "lingshu_unknown_perturbations"; });
  ASSERT_NE(uns, p.cells.uns_strings.end());
  EXPECT_EQ(uns->second, "DRUG_A,DRUG_B");

  // An unknown context is never allowed, and its message lists the contexts the model knows.
  try {
    predict_perturbations([&] {
      auto o = predict_options(write_pairs("ctx.csv", "cell_type,condition,n_cells\ntype_9,DRUG_A,4\n"));
      o.allow_unknown = true;
      return o;
    }());
    ADD_FAILURE() << "an unknown context was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("type_0"), std::string::npos) << e.what();
  }
}

TEST_F(Conditional, GeneKnowledgeLetsPredictPlaceGenesTheFileNeverMeasured) {
  // Two genes no cell measures and one that is measured (the held-out knock-down's target).
  const std::string target = genes()[static_cast<size_t>(sim_->truth.perturbations[0].target)];
  std::ofstream(file("knowledge.tsv")) << "# by hand\ngene\tk1\tk2\nNOVEL1\t1\t0\n"
                                       << target << "\t0.5\t0.5\nNOVEL2\t0\t1\n";
  auto o = tiny_train_options(file("knowing"), 20);
  o.condition_fields = {"cell_type"};
  o.perturbation = "condition";
  o.gene_knowledge = file("knowledge.tsv");
  train_model(data(), o);
  const LoadedModel loaded = load_model(file("knowing"));
  EXPECT_EQ(loaded.meta.knowledge_genes, (std::vector<std::string>{"NOVEL1", target, "NOVEL2"}));
  const auto stored = loaded.network->named_parameters()["gene_knowledge"];
  EXPECT_TRUE(torch::equal(stored, torch::tensor({{1.f, 0.f}, {0.5f, 0.5f}, {0.f, 1.f}})));

  // A combination of genes only the knowledge names is a known perturbation, not an unknown one.
  const auto pairs = write_pairs("novel.csv", "cell_type,condition,n_cells\ntype_1,NOVEL1+NOVEL2,4\n");
  auto knowing = predict_options(pairs);
  knowing.model_dir = file("knowing");
  const Prediction p = predict_perturbations(knowing);
  EXPECT_EQ(cells_per_pair(p.cells).at({"type_1", "NOVEL1+NOVEL2"}), 4);
  EXPECT_TRUE(p.notes.empty()) << p.notes.front();
  // The prior knocks down the measured target of such a label and leaves the other one to the model.
  auto primed = predict_options(
      write_pairs("novel_prior.csv", "cell_type,condition,n_cells\ntype_1,NOVEL1+" + target + ",3\n"));
  primed.model_dir = file("knowing");
  primed.prior_data = file("train.h5ad");
  const Prediction q = predict_perturbations(primed);
  ASSERT_EQ(q.notes.size(), 1u);
  EXPECT_NE(q.notes[0].find("1 target gene(s) set to 0"), std::string::npos) << q.notes[0];
  const auto target_column = sim_->truth.perturbations[0].target;
  for (int64_t i = 0; i < q.cells.n_obs(); ++i) {
    if (label(q.cells, "condition", i) == "control") continue;
    EXPECT_EQ(count(q.cells, i, target_column), 0.0);
  }
  // The model without knowledge refuses it and says how to make it known.
  try {
    predict_perturbations(predict_options(pairs));
    ADD_FAILURE() << "a label of unmeasured genes was accepted without gene knowledge";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--gene-knowledge"), std::string::npos) << e.what();
  }
  // Gene knowledge describes perturbation targets: without a perturbation column it is refused.
  auto no_field = tiny_train_options(file("no_field"), 2);
  no_field.gene_knowledge = file("knowledge.tsv");
  EXPECT_THROW(train_model(data(), no_field), UserError);
}

}  // namespace
}  // namespace lingshu
