// The perturbation-state field (README "Perturbation prediction"): what a context's perturbed
// cells share, learned from its other perturbations. On a simulated screen whose second cell type
// has three times the counts of the first, a held-out (type, perturbation) pair and a perturbation
// the model never saw are predicted at their context's cell size, and the state labels are the
// ones the data give.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "data/conditions.h"
#include "data/simulator.h"
#include "model/model_dir.h"
#include "sample/predict.h"
#include "test_support.h"
#include "tiny_training.h"
#include "train/trainer.h"

namespace lingshu {
namespace {

namespace fs = std::filesystem;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Median total counts of the rows whose obs labels match.
double median_size(const AnnData& data, const std::string& type, const std::string& condition) {
  const Column& t = *data.obs.find("cell_type");
  const Column& c = *data.obs.find("condition");
  std::vector<double> sizes;
  for (int64_t i = 0; i < data.n_obs(); ++i) {
    if (t.label(i) != type || c.label(i) != condition) continue;
    double total = 0;
    for (const float v : data.X.row_values(i)) total += v;
    sizes.push_back(total);
  }
  return median(sizes);
}

class PerturbedState : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<testing::TempDir>();
    SimulatorConfig c;
    c.n_cells = 480;
    c.n_genes = 48;
    c.n_cell_types = 2;
    c.n_perturbations = 4;
    c.n_downstream = 4;
    c.seed = 21;
    c.lib_loc = 6.0;
    sim_ = std::make_unique<Simulation>(simulate(c, 1));
    // type_1 cells three times as deep: a prediction that ignores its context's size is far off.
    const Column& type = *sim_->data.obs.find("cell_type");
    for (int64_t i = 0; i < sim_->data.n_obs(); ++i) {
      if (type.label(i) != "type_1") continue;
      for (int64_t k = sim_->data.X.indptr[i]; k < sim_->data.X.indptr[i + 1]; ++k)
        sim_->data.X.values[static_cast<size_t>(k)] *= 3;
    }
    pert_ = sim_->truth.perturbations[0].name;
    auto o = testing::tiny_train_options(*dir_ / "model", 60);
    o.condition_fields = {"cell_type"};
    o.perturbation = "condition";
    o.holdouts = {"cell_type=type_1,condition=" + pert_};
    train_model(sim_->data, o);
  }
  static void TearDownTestSuite() {
    sim_.reset();
    dir_.reset();
  }

  static Prediction predict(const std::string& csv, bool allow_unknown = false) {
    const fs::path pairs = *dir_ / "pairs.csv";
    std::ofstream(pairs) << csv;
    PredictOptions p;
    p.model_dir = *dir_ / "model";
    p.pairs = pairs;
    p.allow_unknown = allow_unknown;
    p.sampling.steps = 8;
    p.sampling.seed = 3;
    p.sampling.quiet = true;
    p.sampling.precision = "fp32";
    return predict_perturbations(p);
  }

  static inline std::unique_ptr<testing::TempDir> dir_;
  static inline std::unique_ptr<Simulation> sim_;
  static inline std::string pert_;
};

TEST_F(PerturbedState, TheModelHasOneStatePerContextAndControlOrPerturbed) {
  const auto meta = read_model_metadata(*dir_ / "model");
  const int state = state_field_index(meta.conditions);
  ASSERT_GE(state, 0);
  EXPECT_EQ(meta.conditions[static_cast<size_t>(state)].column, kStateColumn);
  EXPECT_EQ(
      meta.conditions[static_cast<size_t>(state)].labels,
      (std::vector<std::string>{"type_0/control", "type_0/perturbed", "type_1/control", "type_1/perturbed"}));
  EXPECT_EQ(state_label(meta.conditions, {"type_1", "control", ""}), "type_1/control");
  EXPECT_EQ(state_label(meta.conditions, {"type_1", pert_, ""}), "type_1/perturbed");
  EXPECT_EQ(state_label(meta.conditions, {"", pert_, ""}), "") << "no context: no state";
}

TEST_F(PerturbedState, HeldOutAndUnknownPerturbationsHaveTheirContextsSize) {
  const double real = median_size(sim_->data, "type_1", pert_);
  const double other_context = median_size(sim_->data, "type_0", pert_);
  ASSERT_GT(real, 2 * other_context) << "the fixture's contexts differ in size";
  const Prediction p = predict("cell_type,condition,n_cells\ntype_1," + pert_ + ",60\ntype_1,DRUG_X,60\n",
                               /*allow_unknown=*/true);
  for (const std::string& label : {pert_, std::string("DRUG_X")}) {
    const double predicted = median_size(p.cells, "type_1", label);
    EXPECT_NEAR(predicted / real, 1.0, 0.2)
        << label << ": predicted median " << predicted << ", real " << real;
  }
  // The unknown perturbation is the context's perturbed state, and the output says so.
  const Column& state = *p.cells.obs.find(kStateColumn);
  const Column& condition = *p.cells.obs.find("condition");
  for (int64_t i = 0; i < p.cells.n_obs(); ++i) {
    if (condition.label(i) == "DRUG_X") {
      ASSERT_EQ(state.label(i), "type_1/perturbed") << i;
    }
  }
}

}  // namespace
}  // namespace lingshu
