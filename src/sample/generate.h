#pragma once
// `lingshu generate` and the engine behind `lingshu predict`: cells from a trained model directory,
// unconditional or for chosen condition labels (with classifier-free guidance), decoded to integer
// counts, as an AnnData with the training genes as var and one obs column per condition field.
// Free of LibTorch so the CLI stays light.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/anndata.h"
#include "model/model_dir.h"

namespace lingshu {

class MaskedDiffusionModelImpl;  // model/model.h

// A trained model directory, read once per command: its metadata and its weights, on the device
// that samples. The network stays behind a pointer so that this header is free of LibTorch.
struct LoadedModel {
  std::filesystem::path dir;  // named in the generated file's uns
  ModelMetadata meta;
  std::shared_ptr<MaskedDiffusionModelImpl> network;  // in eval mode
  std::string device;                                 // where the weights are: "cpu" or "cuda"
};

// Reads `dir` (metadata and weights.safetensors) and puts the weights on `device`. UserError when `dir` is
// not a model directory of this format version, or CUDA is asked for but unavailable.
LoadedModel load_model(const std::filesystem::path& dir, const std::string& device = "cpu");

// Which share of a run's batches this process makes: of B batches, [B * index / count,
// B * (index + 1) / count). Cells are seeded per batch and per cell, so the shares of `count`
// processes, laid end to end, are the cells one process makes.
struct Shard {
  int index = 0;
  int count = 1;
};

struct SamplingSettings {
  // Unmasking steps. 1 by default: given each cell's drawn state, every gene at once scored as well as
  // 2 to 32 steps on pbmc3k, paul15 and Kang at a fraction of the time (BENCHMARKS.md).
  int steps = 1;
  double temperature = 1.0;
  std::string order = "random";     // random (the MDLM ancestral sampler), confidence
  std::string schedule = "cosine";  // genes committed per step: cosine (few first) or linear
  double cfg = 0;                   // guidance weight w: l_u + (w + 1)(l_c - l_u); 0 = conditional only
  std::string guide = "all";        // all, perturbation or compose (see guidance_passes in guidance.h)
  int64_t batch_size = 32;          // cells per forward pass (guidance doubles the rows)
  uint64_t seed = 0;                // same seed (and batch size) -> same cells
  std::string device = "cpu";
  std::string precision = "auto";  // auto, fp32, bf16
  bool quiet = false;
  Shard shard;  // this process's share (generate/predict --nproc)
};

// A gene fixed before sampling and never re-masked: (sequence position, token).
using PrefilledGene = std::pair<int32_t, uint8_t>;

// Cells to generate with one combination of condition labels.
struct CellGroup {
  std::vector<std::string> labels;  // one per model condition field, "" = NULL (unconditioned)
  int64_t n_cells = 0;
  std::vector<std::vector<PrefilledGene>> prefilled;  // empty, or one list per cell
  // The labels the output's obs shows, when they differ from the `labels` the model is given
  // (an unknown perturbation predicted as its context's perturbed state); empty: `labels`.
  std::vector<std::string> shown_labels;
};

// Condition tokens and target positions of one label combination.
struct EncodedLabels {
  std::vector<int64_t> tokens;   // one per field, 0 = NULL
  std::vector<int32_t> targets;  // perturbation targets (sequence positions)
};

// The model's input for `labels` (one per field, "" = NULL). An unseen perturbation label whose
// targets are genes of the model is NULL plus its targets; any other unknown label is a UserError.
EncodedLabels encode_labels(const ModelMetadata& meta, const std::vector<std::string>& labels);

// An exponential tilt of one group's sampled distribution: every gene j's token k gets
// t[j] x log1p(representative count x 1e4 / library) added to its logit (t in the model's gene
// order; empty: no tilt), which moves the gene's mean log1p CP10k by about t[j] times its variance
// and keeps the cells' spread around it (predict: towards the anchored profile, expected_profile.h).
struct GroupTilt {
  std::vector<double> t;
  double library = 0;
};

// Takes each batch's generated rows of counts as they are made (see generate_groups).
using CellSink = std::function<void(const CsrMatrix& rows)>;

// Generates every group's cells in order, on model.device (settings.device is for load_model).
// Labels must be known to the model, except perturbation labels whose targets are genes of the
// model (their token is NULL plus the targets' embedding).
// obs: index gen_0 .., one categorical column per condition field; uns: model and settings. X holds
// the cells, unless `sink` is given: then each batch goes to it and X keeps no rows (memory for one
// batch, whatever the number of cells). Only the batches of settings.shard are made; obs always
// describes every cell.
// `tilts` (empty, or one per group) moves each group's genes: see GroupTilt.
AnnData generate_groups(const LoadedModel& model, const std::vector<CellGroup>& groups,
                        const SamplingSettings& settings, const CellSink& sink = {},
                        const std::vector<GroupTilt>& tilts = {});

// Names the cells of `groups` (gen_0 ..), and sets var to the model's genes, one categorical obs
// column per condition field, and the model in uns.
void describe_cells(const LoadedModel& model, const std::vector<CellGroup>& groups, AnnData& cells);

// The label combination of `--condition` terms ("col=value", several per string allowed): labels for
// the named fields, NULL for the others. UserError for a column that is not a condition of the model.
std::vector<std::string> labels_from_terms(const ModelMetadata& meta, const std::vector<std::string>& terms);

// `n` cells split over the training label combinations in proportion (largest remainders).
std::vector<CellGroup> training_proportions(const ModelMetadata& meta, int64_t n);

// Sets the perturbation-state label of `labels` (one per model field) from its other labels where
// the model has a state field and the label is unset: state_label, or NULL when training never saw
// that state (a context whose perturbed cells were all held out). Before `pert` is cleared, an
// unknown perturbation keeps its context's perturbed state.
void fill_state_label(const ModelMetadata& meta, std::vector<std::string>& labels);

// `groups` with the library-size label filled in where a model has a library field and a group
// leaves it unset: each such group is split over the library bins in the proportions of the
// training cells that carry its labels. A combination no training cell carries (an unseen
// context-perturbation pair) takes the proportions of its labels other than the perturbation (its
// context's cell sizes); failing that, of all training cells.
std::vector<CellGroup> with_library_labels(const ModelMetadata& meta, const std::vector<CellGroup>& groups);

struct GenerateOptions {
  std::filesystem::path model_dir;
  int64_t n_cells = 1000;
  std::vector<std::string> conditions;  // --condition col=value terms: one combination
  std::filesystem::path plan;           // --plan CSV: condition columns + n_cells per row
  SamplingSettings sampling;
};

// `lingshu generate`: --plan rows, else n cells of the --condition combination, else (for a
// conditional model) n cells in the training proportions.
AnnData generate_cells(const GenerateOptions& options, const CellSink& sink = {});

}  // namespace lingshu
