// `lingshu info FILE [--layer L] [--json]`: what a dataset holds, checked before training on it.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "data/counts_check.h"
#include "data/summary.h"
#include "io/read_counts.h"

namespace lingshu::cli {

namespace {

struct InfoArgs {
  std::string path;
  std::string layer;
  bool json = false;
  int top = 8;
};

void run_info(const InfoArgs& args) {
  const AnnData data = read_counts_file(args.path, args.layer);
  const std::string source = layer_source_name(args.layer);
  const DatasetSummary summary = summarize(data, source);
  if (args.json) {
    nlohmann::json j = to_json(summary);
    j["file"] = args.path;
    j["matrix"] = source;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{} ({})\n{}", args.path, source, format_summary(summary, args.top));
}

void setup_info(CLI::App& cmd) {
  auto args = std::make_shared<InfoArgs>();
  cmd.footer(
      "Reports the shape, whether the matrix holds raw counts (lingshu models raw UMI counts; if X\n"
      "holds normalised values, look for the counts with --layer counts or --layer raw), sparsity,\n"
      "library size quantiles, genes per cell, and the obs / var columns with category counts.\n"
      "Example: lingshu info pbmc3k.h5ad --json | jq .obs");
  cmd.add_option("file", args->path,
                 ".h5ad file or 10x folder (matrix.mtx.gz, features.tsv.gz, barcodes.tsv.gz)")
      ->required();
  cmd.add_option("--layer", args->layer, "matrix to inspect: X (default), raw, or a layer name");
  cmd.add_flag("--json", args->json, "print JSON (for scripts) instead of text");
  cmd.add_option("--top", args->top, "categories listed per categorical column (text output)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd.callback([args] { run_info(*args); });
}

}  // namespace

static const bool registered = register_command(
    {"info", "Describe a dataset: shape, counts check, library sizes, labels", 10, &setup_info});

}  // namespace lingshu::cli
