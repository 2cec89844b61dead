#include "train/condition_inputs.h"

#include "data/conditions.h"
#include "model/model.h"
#include "train/objective.h"

namespace lingshu {

TargetTable make_target_table(const ModelMetadata& meta) {
  TargetTable table;
  table.field = meta.config.perturbation_field;
  if (table.field >= 0) {
    table.positions =
        padded_targets(target_positions_by_token(meta.conditions[static_cast<size_t>(table.field)],
                                                 meta.gene_names, meta.patching, meta.knowledge_genes));
  }
  return table;
}

ConditionInputs drop_for_guidance(const torch::Tensor& labels, double p, const TargetTable& table,
                                  int library_field, at::Generator& generator) {
  ConditionInputs out{drop_conditions(labels, p, generator), table.of(labels)};
  if (p <= 0) return out;
  if (library_field >= 0) out.conditions.select(1, library_field).copy_(labels.select(1, library_field));
  if (table.field < 0) return out;
  out.conditions = out.conditions.clone();
  auto field = out.conditions.select(1, table.field);
  out.targets.masked_fill_(field.eq(0).unsqueeze(1), -1);
  const auto has_targets = out.targets.ge(0).any(1);
  const auto label_only = (at::rand({labels.size(0)}, generator, at::kFloat) < p).logical_and(has_targets);
  field.masked_fill_(label_only, 0);
  return out;
}

torch::Tensor codes_tensor(const std::vector<std::vector<int64_t>>& codes, int64_t rows) {
  auto out = torch::zeros({rows, static_cast<int64_t>(codes.size())}, torch::kLong);
  for (size_t f = 0; f < codes.size(); ++f) {
    out.select(1, static_cast<int64_t>(f)).copy_(torch::tensor(codes[f], torch::kLong));
  }
  return out;
}

}  // namespace lingshu
