#pragma once
// The obs / var dataframes and the string entries of uns in an .h5ad file, in all the encodings
// anndata 0.7+ (and Muon.jl) write (categoricals, nullable integers and booleans, strings, numbers).
#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "data/frame.h"

namespace lingshu {

// The dataframe at `path` (a group, or a compound dataset of old files); `table` is "obs" or "var"
// (for messages), `rows` the length the matrix implies and `unit` what a row is ("cells", "genes").
DataFrame read_frame(hid_t root, const std::filesystem::path& file, const std::string& path,
                     const char* table, int64_t rows, const char* unit);

// UserError naming the first gene name that appears twice in var.
void require_unique_genes(const DataFrame& var, const std::filesystem::path& file);

// uns entries that are scalar strings; everything else in uns is skipped.
std::vector<std::pair<std::string, std::string>> read_uns_strings(hid_t root,
                                                                  const std::filesystem::path& file);

}  // namespace lingshu
