#pragma once
// What `lingshu train --condition/--perturbation/--holdout` does to the data before training:
// removes held-out cells, builds one condition field per column (vocabularies of the labels that
// training cells carry), and counts the label combinations (generation's default proportions).
// Free of LibTorch.
#include <string>
#include <vector>

#include "data/anndata.h"
#include "data/conditions.h"
#include "model/model_dir.h"

namespace lingshu {

struct ConditioningRequest {
  std::vector<std::string> columns;   // --condition (the perturbation column is added if missing)
  std::string perturbation;           // --perturbation column ("" = none)
  std::string control = "control";    // --control label of that column
  std::vector<std::string> holdouts;  // --holdout specs
  int library_bins = 0;               // --library-bins (0 = no library-size field)
};

// The condition fields for `obs` (training cells only): vocabularies hold the labels that occur.
// With request.library_bins > 0 a field holds library-size bins of `totals` (the cells' total
// counts); with a perturbation column the last field is the perturbation state (state_label).
// UserError if obs already has a column of either name.
std::vector<ConditionField> build_condition_fields(const DataFrame& obs, const ConditioningRequest& request,
                                                   const std::vector<double>& totals = {});

// Sets the obs columns of the derived fields in `fields` (library bins of `totals`, the
// perturbation state), so that they are encoded and counted like any obs column.
void set_derived_columns(DataFrame& obs, const std::vector<ConditionField>& fields,
                         const std::vector<double>& totals);

// Index of the perturbation field in `fields`, or -1.
int perturbation_field_index(const std::vector<ConditionField>& fields);

// Cells per combination of labels, in order of first occurrence.
std::vector<ConditionCombination> count_combinations(const DataFrame& obs,
                                                     const std::vector<ConditionField>& fields);

// Per field, the token of every cell (0 = NULL for a missing or unknown label).
std::vector<std::vector<int64_t>> condition_codes(const DataFrame& obs,
                                                  const std::vector<ConditionField>& fields);

}  // namespace lingshu
