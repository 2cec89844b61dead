#pragma once
// One entry point for user inputs: a .h5ad file (with an optional layer) or a 10x MTX folder.
#include <filesystem>
#include <string>

#include "data/anndata.h"

namespace lingshu {

AnnData read_counts_file(const std::filesystem::path& path, const std::string& layer = "");

}  // namespace lingshu
