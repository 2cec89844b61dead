#pragma once
// Training cells grouped by the labels of one obs column, for the baselines that sample within a
// cell type.
#include <cstdint>
#include <string>
#include <vector>

#include "data/anndata.h"

namespace lingshu {

struct LabelGroups {
  std::vector<std::string> categories;     // the column's categories (all of them, for the output column)
  std::vector<int32_t> category_of_group;  // -1 without a label column
  std::vector<std::vector<int64_t>> rows;  // training rows per group (only groups with cells)
};

// One group per label that has cells (cells without a label are left out); with an empty `label`,
// all cells form one group. UserError naming the available columns when `label` is missing, or
// when it holds no labels.
LabelGroups group_cells(const AnnData& train, const std::string& label);

// The same column, named `label`, for generated cells: categorical with the training categories,
// cell i taking group group_of_cell[i]'s category.
Column label_column(const LabelGroups& groups, const std::string& label,
                    const std::vector<int32_t>& group_of_cell);

}  // namespace lingshu
