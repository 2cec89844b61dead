#pragma once
// 10x Genomics Matrix Market folders: matrix.mtx(.gz), features.tsv(.gz) or genes.tsv(.gz),
// barcodes.tsv(.gz). The MTX file is genes x cells; the result is cells x genes.
#include <filesystem>

#include "data/anndata.h"

namespace lingshu {

AnnData read_10x_mtx(const std::filesystem::path& folder);

}  // namespace lingshu
