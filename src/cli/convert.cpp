// `lingshu convert IN OUT.h5ad [--layer L]`: a 10x folder or an .h5ad (any layer) -> counts .h5ad.
#include <fmt/format.h>

#include <filesystem>

#include "cli/command.h"
#include "core/error.h"
#include "io/h5ad.h"

namespace lingshu::cli {

namespace {

struct ConvertArgs {
  std::string input;
  std::string output;
  std::string layer;
  bool quiet = false;
};

void run_convert(const ConvertArgs& args) {
  if (std::filesystem::path(args.output).extension() != ".h5ad") {
    throw UserError(fmt::format("output {} must end in .h5ad; lingshu writes AnnData files", args.output));
  }
  const AnnData data = read_counts_input(args.input, args.layer);
  write_h5ad(args.output, data);
  if (!args.quiet) {
    fmt::print("convert: wrote {} cells x {} genes of raw counts ({} stored values) from {} to {}\n",
               data.n_obs(), data.n_vars(), data.X.nnz(), args.input, args.output);
  }
}

void setup_convert(CLI::App& cmd) {
  auto args = std::make_shared<ConvertArgs>();
  cmd.footer(
      "Reads a 10x folder (matrix.mtx.gz, features.tsv.gz or genes.tsv.gz, barcodes.tsv.gz) or an\n"
      ".h5ad file, checks that the chosen matrix holds raw counts, and writes an .h5ad with the counts\n"
      "in X (CSR), obs and var. Non-count data (normalised, log-transformed, scaled) are refused.\n"
      "Example: lingshu convert filtered_feature_bc_matrix/ pbmc.h5ad\n"
      "         lingshu convert processed.h5ad counts.h5ad --layer counts");
  cmd.add_option("input", args->input, "10x folder or .h5ad file")->required();
  cmd.add_option("output", args->output, ".h5ad file to write")->required();
  cmd.add_option("--layer", args->layer, "matrix to take from an .h5ad: X (default), raw, or a layer name");
  cmd.add_flag("--quiet,-q", args->quiet, "print nothing on success");
  cmd.callback([args] { run_convert(*args); });
}

}  // namespace

static const bool registered = register_command(
    {"convert", "Convert a 10x folder or .h5ad layer into a counts .h5ad", 12, &setup_convert});

}  // namespace lingshu::cli
