// `lingshu train DATA.h5ad --out MODEL_DIR`: fit the masked diffusion model to raw counts.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <unordered_map>

#include "cli/command.h"
#include "cli/processes.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/world.h"
#include "data/counts_check.h"
#include "data/preprocess.h"
#include "io/h5ad_cells.h"
#include "io/read_counts.h"
#include "model/config.h"
#include "train/trainer.h"

namespace lingshu::cli {

namespace fs = std::filesystem;

namespace {

struct TrainArgs {
  std::vector<std::string> data;
  std::string out, layer, genes_file, preset = ModelConfig{}.preset;
  // 0 / -1: the preset's value; patch size and tokens default as the model and tokenizer do.
  int patch_size = ModelConfig{}.patch_size, tokens = TokenizerConfig{}.n_tokens;
  int d_model = 0, layers = -1, heads = 0, gene_dim = 0, gene_factors = -1;
  int threads = 0;
  int nproc = 1;
  bool quiet = false;
  TrainOptions train;
};

// The columns of the genes named in FILE (one gene name per line, in the order wanted).
std::vector<int64_t> listed_gene_columns(const std::vector<std::string>& gene_names,
                                         const std::string& genes_file) {
  std::ifstream in(genes_file);
  if (!in) throw UserError(fmt::format("--genes: cannot read {}", genes_file));
  std::unordered_map<std::string, int64_t> column;
  for (size_t j = 0; j < gene_names.size(); ++j) column.emplace(gene_names[j], static_cast<int64_t>(j));
  std::vector<int64_t> cols;
  std::vector<std::string> missing;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    const auto it = column.find(line);
    if (it == column.end()) {
      missing.push_back(line);
    } else {
      cols.push_back(it->second);
    }
  }
  if (!missing.empty()) {
    throw UserError(
        fmt::format("--genes: {} of the listed genes are not in the data (first: '{}'); list names "
                    "exactly as in var_names",
                    missing.size(), missing.front()));
  }
  if (cols.empty()) throw UserError(fmt::format("--genes: {} lists no genes", genes_file));
  return cols;
}

// .h5ad files (or folders of them) are read a few thousand cells at a time as training goes; a 10x
// folder is read whole.
TrainingCells open_training_cells(const TrainArgs& args) {
  const bool tenx = args.data.size() == 1 && is_tenx_folder(args.data.front());
  if (tenx) {
    AnnData data = read_counts_file(args.data.front(), args.layer);
    if (!args.genes_file.empty())
      data = select_genes(data, listed_gene_columns(data.gene_names(), args.genes_file));
    auto counts = std::make_shared<MatrixRows>(std::make_shared<const CsrMatrix>(std::move(data.X)));
    return {std::move(data.obs), std::move(data.var), std::move(counts), "X"};
  }
  const std::vector<fs::path> paths(args.data.begin(), args.data.end());
  H5adReadOptions read_options;
  read_options.layer = args.layer;
  auto files = std::make_shared<H5adCells>(expand_h5ad_paths(paths), read_options);
  if (!args.genes_file.empty()) files->keep_columns(listed_gene_columns(files->var().index, args.genes_file));
  return {files->take_obs(), files->var(), files, layer_source_name(args.layer)};
}

// --nproc N local processes share each batch: each needs at least one of its cells.
void check_processes_fit_batch(const TrainArgs& args) {
  if (!joined_by_environment() && args.nproc > args.train.batch_size) {
    throw UserError(
        fmt::format("--nproc {} is more than the {} cells of a batch; each process needs at least "
                    "one: use fewer processes or a larger --batch-size",
                    args.nproc, args.train.batch_size));
  }
}

void train_and_report(const TrainArgs& args, TrainOptions options, bool quiet) {
  options.out = args.out;
  options.quiet = quiet;
  options.model = ModelConfig::from_preset(args.preset);
  options.model.patch_size = args.patch_size;
  if (args.d_model > 0) options.model.d_model = args.d_model;
  if (args.layers >= 0) options.model.n_layers = args.layers;
  if (args.heads > 0) options.model.n_heads = args.heads;
  if (args.gene_dim > 0) options.model.gene_dim = args.gene_dim;
  if (args.gene_factors >= 0) options.model.gene_factors = args.gene_factors;
  options.tokenizer.n_tokens = args.tokens;
  // Fewer value tokens than the default exact range: keep half of them exact, bin the rest.
  options.tokenizer.exact_limit = std::min(options.tokenizer.exact_limit, args.tokens / 2);

  const TrainingCells cells = open_training_cells(args);
  if (!quiet) {
    fmt::print(stderr, "train: {} cells x {} genes from {}{}\n", cells.obs.size(), cells.var.size(),
               fmt::join(args.data, ", "), options.resume ? " (resuming)" : "");
  }
  const TrainResult r = train_model(cells, options);
  if (!options.world.is_root()) return;
  fmt::print(
      "trained {} of {} steps in {:.1f} min ({:.1f} cells/s, {}); train loss {:.4f}, validation loss "
      "{:.4f} (masked-gene cross-entropy {:.4f}, context gain {:.4f} at half masked); model in {}{}\n",
      r.steps, r.total_steps, r.seconds / 60, r.cells_per_second, r.precision, r.train_loss, r.val_loss,
      r.val_masked_ce, r.context_gain, args.out,
      r.best_step >= 0 && r.best_step < r.steps
          ? fmt::format(" (the weights of step {}, validation loss {:.4f}: the best)", r.best_step,
                        r.best_val_loss)
          : "");
}

void run_train(const TrainArgs& args) {
  check_processes_fit_batch(args);
  auto workers = start_local_workers(args.nproc);
  TrainOptions options = args.train;
  options.world = world_from_environment();
  const bool quiet = args.quiet || !options.world.is_root();
  start_run(threads_per_process(args.threads, options.world), quiet);
  run_with_workers(workers, [&] { train_and_report(args, options, quiet); });
}

void setup_train(CLI::App& cmd) {
  auto args = std::make_shared<TrainArgs>();
  auto& o = args->train;
  cmd.footer(
      "Presets (P = genes per token; tokens per cell = genes / P):\n" + ModelConfig::presets_help() +
      "Example: lingshu train pbmc3k.h5ad --out pbmc_model --preset small --minutes 45\n"
      "Conditional: lingshu train kang.h5ad --out kang_model --condition cell_type --perturbation condition "
      "\\\n"
      "  --control control --holdout cell_type=CD4T,condition=stimulated --minutes 20\n"
      "Interrupted? Run the same command with --resume: it continues from the last checkpoint with the\n"
      "same optimiser state and data order.");
  cmd.add_option("data", args->data,
                 ".h5ad file(s) of raw UMI counts, cells x genes (read a chunk at a time; several files or a "
                 "folder of them: the shards of one corpus, same genes), or a 10x folder")
      ->required();
  cmd.add_option("--out,-o", args->out, "model directory to write")->required();
  cmd.add_option("--preset", args->preset, "model size: tiny, small, base, large")->capture_default_str();
  cmd.add_option("--patch-size,-P", args->patch_size, "genes per token (1, 8, 32, ...)")
      ->capture_default_str();
  cmd.add_option("--d-model", args->d_model, "override the preset's transformer width");
  cmd.add_option(
      "--layers", args->layers,
      "override the preset's number of transformer layers (0: no transformer, the closed-form parts only)");
  cmd.add_option("--heads", args->heads, "override the preset's number of attention heads");
  cmd.add_option("--gene-dim", args->gene_dim, "override the preset's per-gene embedding width");
  cmd.add_option("--gene-factors", args->gene_factors,
                 "R: per-gene input and output loadings, and the R cell factors whose states generated cells "
                 "take from training cells (default 16; 0: none of them, so no cell states either)");
  cmd.add_option("--tokens", args->tokens, "value tokens per gene (count bins)")->capture_default_str();
  cmd.add_option(
      "--steps", o.steps,
      "optimiser steps (default: 8 passes over the training cells, at most 2000 without --minutes)");
  cmd.add_option(
      "--minutes", o.minutes,
      "wall-clock budget: the LR schedule is planned for the steps that fit at the measured speed");
  cmd.add_option("--batch-size,-b", o.batch_size, "cells per step")->capture_default_str();
  cmd.add_option("--lr", o.lr, "peak learning rate (AdamW, warm-up then cosine decay)")
      ->capture_default_str();
  cmd.add_option("--warmup", o.warmup, "warm-up steps (at most a tenth of the run)")->capture_default_str();
  cmd.add_option("--weight-decay", o.weight_decay, "AdamW weight decay of weight matrices")
      ->capture_default_str();
  cmd.add_option("--grad-clip", o.grad_clip, "gradient norm clip")->capture_default_str();
  cmd.add_option("--val-fraction", o.val_fraction, "share of cells held out for the validation loss")
      ->capture_default_str();
  cmd.add_option("--eval-every", o.eval_every, "validation loss every N steps")->capture_default_str();
  cmd.add_option("--checkpoint-every", o.checkpoint_every, "checkpoint every N steps")->capture_default_str();
  cmd.add_option("--seed", o.seed, "seed of gene order, split, initialisation, data order and masks")
      ->capture_default_str();
  cmd.add_option("--precision", o.precision,
                 "auto (bf16 autocast where the CPU/GPU has native bf16), fp32 or bf16")
      ->capture_default_str();
  cmd.add_option("--device", o.device, "cpu or cuda (needs a CUDA build of LibTorch)")->capture_default_str();
  cmd.add_option("--layer", args->layer, "read counts from layers/NAME (or 'raw' for raw/X) instead of X");
  cmd.add_option("--genes", args->genes_file,
                 "text file of gene names (one per line) to train on; default: all");
  cmd.add_option("--condition", o.condition_fields,
                 "obs column to condition on (repeatable): one token per column, generated with --condition")
      ->expected(1)
      ->take_all();
  cmd.add_option(
      "--perturbation", o.perturbation,
      "obs column of perturbation labels (a condition; labels naming genes, e.g. KLF1 or A+B, also "
      "embed their target genes)");
  cmd.add_option("--control", o.control, "label of unperturbed cells in --perturbation")
      ->capture_default_str();
  cmd.add_option(
      "--gene-knowledge", o.gene_knowledge,
      "TSV of gene symbol -> numbers (e.g. from scripts/gene_knowledge.sh): perturbation targets "
      "are embedded from it, measured or not, so unseen perturbations of named genes can be predicted");
  cmd.add_option("--p-uncond", o.p_uncond, "chance of dropping each condition to NULL (for --cfg guidance)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option(
         "--holdout", o.holdouts,
         "remove cells matching col=value[,col=value] from training (repeatable; recorded in the model)")
      ->expected(1)
      ->take_all();
  cmd.add_option(
         "--library-bins", o.library_bins,
         "library-size bins: each cell's total count, binned by quantile, is a condition that generation "
         "draws from the training cells (0 = none; README, Cell size as a condition)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  cmd.add_option(
         "--nproc", args->nproc,
         "data-parallel training on N local processes (c10d/Gloo); --batch-size is shared between "
         "them. Under torchrun or srun leave it out: RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT are read")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd.add_flag("--resume", o.resume, "continue training the model in --out from its last checkpoint");
  add_quiet_and_threads(cmd, args->quiet, args->threads, "no progress output");
  cmd.callback([args] { run_train(*args); });
}

}  // namespace

static const bool registered =
    register_command({"train", "Train a masked diffusion model on raw counts (.h5ad)", 20, &setup_train});

}  // namespace lingshu::cli
