#pragma once
// Condition labels as the model takes them: a [cells, fields] tensor of label tokens and, with a
// perturbation field, the target genes each cell's label names. Training steps, the validation
// loss and the cell-state bank all feed the model from the same condition codes, so they must
// build its inputs the same way.
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "model/model_dir.h"

namespace lingshu {

// The perturbation field's target genes, looked up per cell from its label token.
struct TargetTable {
  int field = -1;
  torch::Tensor positions;  // [vocab, T] int64, -1 = none

  torch::Tensor of(const torch::Tensor& conditions) const {
    if (field < 0) return {};
    return positions.index_select(0, conditions.select(1, field).cpu()).to(conditions.device());
  }
};

// The target table of a model's perturbation field (an empty one without such a field).
TargetTable make_target_table(const ModelMetadata& meta);

struct ConditionInputs {
  torch::Tensor conditions, targets;
};

// Classifier-free-guidance dropout: each field's token becomes NULL with probability p (its targets
// with it), except the library field, which generation always fills in. A perturbation token whose
// label names genes also loses only its label with probability p, keeping its targets: the
// targets-only tokens that unseen labels get at generation.
ConditionInputs drop_for_guidance(const torch::Tensor& labels, double p, const TargetTable& table,
                                  int library_field, at::Generator& generator);

// Condition codes (one vector per field) as the model's [rows, fields] input.
torch::Tensor codes_tensor(const std::vector<std::vector<int64_t>>& codes, int64_t rows);

}  // namespace lingshu
