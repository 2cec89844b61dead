#pragma once
// A `tiny` model that trains in well under a second per step on simulated data, for tests that
// need a trained model directory; the stored weights of such a directory; cells as log-normalised
// rows for checking what it generates.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "data/count_matrix.h"
#include "model/model_dir.h"
#include "model/weights.h"
#include "train/trainer.h"

namespace lingshu::testing {

inline TrainOptions tiny_train_options(const std::filesystem::path& out, int64_t steps) {
  TrainOptions o;
  o.out = out;
  o.model = ModelConfig::from_preset("tiny");
  o.model.patch_size = 8;
  o.tokenizer.n_tokens = 16;
  o.tokenizer.exact_limit = 8;
  o.batch_size = 16;
  o.steps = steps;
  o.lr = 3e-3;
  o.warmup = 10;
  o.eval_every = 1000000;
  o.checkpoint_every = 1000000;
  o.precision = "fp32";
  o.quiet = true;
  o.seed = 4;
  // Tests of other features train without the size condition (the default, 16 bins, is
  // exercised by the CLI tests and tests/train/test_conditioning.cpp).
  o.library_bins = 0;
  return o;
}

inline std::map<std::string, torch::Tensor> stored_weights(const std::filesystem::path& dir) {
  const auto meta = read_model_metadata(dir);
  auto model = load_weights(dir, meta.config);
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model->named_parameters()) out[item.key()] = item.value().clone();
  return out;
}

// log1p(counts / total * 1e4) of each row, dense.
inline std::vector<std::vector<double>> log_normalised(const CsrMatrix& x) {
  std::vector<std::vector<double>> out;
  for (int64_t r = 0; r < x.n_rows; ++r) {
    const auto row = x.dense_row(r);
    double total = 0;
    for (const float v : row) total += v;
    std::vector<double> e(row.size());
    for (size_t j = 0; j < row.size(); ++j) e[j] = std::log1p(row[j] / std::max(total, 1.0) * 1e4);
    out.push_back(std::move(e));
  }
  return out;
}

// Nearest centroid (log-normalised expression) of the known cell types of real cells.
class NearestType {
 public:
  NearestType(const CsrMatrix& real, const std::vector<int32_t>& type, int n_types)
      : centroid_(static_cast<size_t>(n_types), std::vector<double>(static_cast<size_t>(real.n_cols), 0.0)),
        members_(static_cast<size_t>(n_types), 0) {
    const auto rows = log_normalised(real);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto t = static_cast<size_t>(type[i]);
      ++members_[t];
      for (size_t j = 0; j < rows[i].size(); ++j) centroid_[t][j] += rows[i][j];
    }
    for (size_t t = 0; t < centroid_.size(); ++t) {
      for (auto& v : centroid_[t]) v /= std::max(members_[t], 1);
    }
  }

  int operator()(const std::vector<double>& cell) const {
    int best = 0;
    double best_d = INFINITY;
    for (size_t t = 0; t < centroid_.size(); ++t) {
      double d = 0;
      for (size_t j = 0; j < cell.size(); ++j) d += (cell[j] - centroid_[t][j]) * (cell[j] - centroid_[t][j]);
      if (d < best_d) best_d = d, best = static_cast<int>(t);
    }
    return best;
  }

  int members(int t) const { return members_[static_cast<size_t>(t)]; }

 private:
  std::vector<std::vector<double>> centroid_;
  std::vector<int> members_;
};

}  // namespace lingshu::testing
