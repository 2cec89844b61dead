#pragma once
// 10x Genomics Matrix Market folders: matrix.mtx(.gz), features.tsv(.gz) or genes.tsv(.gz),
// barcodes.tsv(.gz). The MTX file is genes x cells; the result is cells x genes.
#include <filesystem>
#include <string>
#include <vector>

#include "data/anndata.h"

namespace lingshu {

// Gene symbols (made unique) are the var index; var columns gene_ids and, for v3 folders,
// feature_types; barcodes are the obs index. Duplicate entries are summed.
AnnData read_10x_mtx(const std::filesystem::path& folder);

// anndata's make_index_unique / var_names_make_unique: the first occurrence keeps its name, later
// ones become NAME-1, NAME-2, ... skipping names already in use.
std::vector<std::string> make_unique_names(std::vector<std::string> names);

}  // namespace lingshu
