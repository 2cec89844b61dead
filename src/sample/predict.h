#pragma once
// `lingshu predict MODEL --pairs pairs.csv --out pred.h5ad`: for every (context, perturbation) row
// of the pairs file, generate the perturbed cells, plus generated control cells of each context,
// labelled with the model's condition columns, so `lingshu eval perturbation` scores the file
// directly against real cells. Optional biological prior injection (README "Prior injection").
// Free of LibTorch.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/anndata.h"
#include "sample/generate.h"
#include "sample/perturbation_prior.h"

namespace lingshu {

struct PredictOptions {
  std::filesystem::path model_dir;
  std::filesystem::path pairs;       // CSV: condition columns (as in obs) + n_cells
  std::filesystem::path prior_data;  // training counts for --prior ("" = no prior)
  std::string prior_layer;           // --layer of that file
  PerturbationPriorOptions prior;
  int64_t n_control = 0;  // control cells per context (0: the largest n_cells of its rows)
  // A perturbation neither seen in training nor naming genes of the model is predicted as its
  // context's perturbed state (else: an error listing every such row).
  bool allow_unknown = false;
  // Each group's expected profile as integer counts instead of sampled cells (sample/expected_profile.h).
  bool expected = false;
  SamplingSettings sampling;
};

struct Prediction {
  AnnData cells;
  std::vector<std::string> notes;  // what the prior pre-filled, per row; unknown perturbations
  std::string start;               // what the groups started from (sample/expected_profile.h)
};

// The cells go to `sink` batch by batch when it is given (cells.X then keeps no rows; see
// generate_groups).
Prediction predict_perturbations(const PredictOptions& options, const CellSink& sink = {});

}  // namespace lingshu
