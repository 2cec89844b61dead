#pragma once
// One entry point for user inputs: a .h5ad file (with an optional layer) or a 10x MTX folder.
#include <filesystem>
#include <string>

#include "data/anndata.h"

namespace lingshu {

// Throws UserError for formats people often have instead of .h5ad (loom, mtx, csv, rds), with the
// one-line conversion that fixes it.
void refuse_known_other_formats(const std::filesystem::path& path);

// A folder without .h5ad files (read as 10x MTX), as opposed to a folder of .h5ad shards.
bool is_tenx_folder(const std::filesystem::path& path);

AnnData read_counts_file(const std::filesystem::path& path, const std::string& layer = "");

}  // namespace lingshu
