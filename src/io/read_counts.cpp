#include "io/read_counts.h"

#include <fmt/format.h>

#include "core/error.h"
#include "io/h5ad.h"
#include "io/tenx.h"

namespace lingshu {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void refuse_known_other_formats(const fs::path& path) {
  const std::string name = path.filename().string();
  if (ends_with(name, ".mtx") || ends_with(name, ".mtx.gz")) {
    throw UserError(
        fmt::format("{} is a Matrix Market file; pass its folder instead (it must also hold "
                    "features.tsv.gz and barcodes.tsv.gz)",
                    path.string()));
  }
  if (ends_with(name, ".loom")) {
    throw UserError(
        fmt::format("{} is a loom file; convert it in Python: "
                    "scanpy.read_loom(path).write_h5ad('out.h5ad')",
                    path.string()));
  }
  for (const char* text_format : {".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz"}) {
    if (ends_with(name, text_format)) {
      throw UserError(
          fmt::format("{} is a text table; convert it in Python: "
                      "anndata.read_csv(path).write_h5ad('out.h5ad') (cells as rows)",
                      path.string()));
    }
  }
  if (ends_with(name, ".rds") || ends_with(name, ".rda") || ends_with(name, ".h5seurat")) {
    throw UserError(
        fmt::format("{} is an R object; save it as .h5ad first (e.g. with SeuratDisk or "
                    "zellkonverter)",
                    path.string()));
  }
}

bool is_tenx_folder(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return false;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (entry.path().extension() == ".h5ad") return false;
  }
  return true;
}

AnnData read_counts_file(const fs::path& path, const std::string& layer) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw UserError(
        fmt::format("{} does not exist; give an .h5ad file or a 10x folder (matrix.mtx.gz, "
                    "features.tsv.gz, barcodes.tsv.gz)",
                    path.string()));
  }
  if (fs::is_directory(path, ec)) {
    if (!layer.empty() && layer != "X") {
      throw UserError(
          fmt::format("layer '{}' was asked for, but {} is a 10x folder, which has no layers; drop "
                      "the layer option",
                      layer, path.string()));
    }
    return read_10x_mtx(path);
  }
  if (!fs::is_regular_file(path, ec)) {
    throw UserError(
        fmt::format("{} is neither a file nor a folder; give an .h5ad file or a 10x folder", path.string()));
  }
  refuse_known_other_formats(path);
  H5adReadOptions options;
  options.layer = layer;
  return read_h5ad(path, options);
}

}  // namespace lingshu
