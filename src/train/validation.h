#pragma once
// The validation loss, by which the trainer keeps the weights of its best step. The held-out
// cells get fixed diffusion times (evenly spaced in (eps, 1)) and fixed masks, so that every
// evaluation measures the same estimator and losses of different steps can be compared.
#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "data/count_matrix.h"
#include "data/tokenizer.h"
#include "model/model.h"
#include "model/precision.h"
#include "train/condition_inputs.h"

namespace lingshu {

// How much seeing the other genes helps: masked cross-entropy of the output biases alone (the
// marginals the model starts from) minus that of the model, at fixed mask rates.
inline constexpr double kContextRates[] = {0.1, 0.5, 0.9};
inline constexpr int64_t kContextCells = 64;

struct ValidationSet {
  torch::Tensor tokens, t, mask, conditions;
  // The context gain's masks: every gene masked with a fixed probability (kContextRates), on the
  // first kContextCells cells.
  std::vector<torch::Tensor> rate_masks;
};

// counts: the validation cells; codes: their condition codes (one vector per field).
ValidationSet make_validation_set(const CsrMatrix& counts, const Tokenizer& tokenizer,
                                  const GenePatching& patching, const torch::Tensor& is_gene, uint64_t seed,
                                  const std::vector<std::vector<int64_t>>& codes);

struct ValidationLoss {
  double loss = std::numeric_limits<double>::quiet_NaN();
  double masked_ce = std::numeric_limits<double>::quiet_NaN();
  // Per kContextRates entry: masked cross-entropy of the model and of its output biases alone.
  std::vector<double> model_ce, prior_ce;

  // The train_log.jsonl line of step `step`.
  nlohmann::json to_json(int64_t step) const;
  // The gain at mask rate 0.5 (NaN without validation cells).
  double context_gain() const {
    return model_ce.size() > 1 ? prior_ce[1] - model_ce[1] : std::numeric_limits<double>::quiet_NaN();
  }
};

// NaNs without validation cells. Leaves the model in training mode.
ValidationLoss validation_loss(MaskedDiffusionModel& model, const ValidationSet& v,
                               const TargetTable& targets, int64_t batch_size, Precision precision,
                               const torch::Device& device, int64_t n_genes, int64_t mask_token);

}  // namespace lingshu
