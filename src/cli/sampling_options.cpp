#include "cli/sampling_options.h"

#include "cli/command.h"
#include "cli/processes.h"
#include "sample/cells_file.h"

namespace lingshu::cli {

void add_sampling_options(CLI::App& cmd, SamplingSettings& o, int& threads, int& nproc) {
  cmd.add_option("--cfg", o.cfg, "classifier-free guidance weight w (0: plain conditional)")
      ->capture_default_str();
  cmd.add_option("--guide", o.guide,
                 "what --cfg guides: all (reference pass with every condition NULL), perturbation "
                 "(reference keeps the other conditions, e.g. the cell type) or compose (each condition "
                 "on its own, multiplied: for combinations never seen in training)")
      ->capture_default_str();
  cmd.add_option(
         "--steps", o.steps,
         "unmasking steps (1: every gene drawn at once given the cell's drawn state, which scored as well "
         "as 2-32 steps in every measurement; more: slower)")
      ->capture_default_str();
  cmd.add_option("--temperature", o.temperature, "sampling temperature (0: most likely value)")
      ->capture_default_str();
  cmd.add_option("--order", o.order, "which masked genes to commit: confidence or random")
      ->capture_default_str();
  cmd.add_option("--schedule", o.schedule,
                 "genes committed per step: cosine (few first, so cell-level variation survives) or linear")
      ->capture_default_str();
  cmd.add_option("--batch-size,-b", o.batch_size, "cells per model pass")->capture_default_str();
  add_seed_option(cmd, o.seed);
  cmd.add_option("--precision", o.precision, "auto, fp32 or bf16")->capture_default_str();
  cmd.add_option("--device", o.device, "cpu or cuda (needs a CUDA build of LibTorch)")->capture_default_str();
  cmd.add_option("--nproc", nproc,
                 "split the batches of cells over N local processes (c10d/Gloo), one output file with the "
                 "same cells as one process; under torchrun or srun leave it out")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  add_quiet_and_threads(cmd, o.quiet, threads, "no progress output");
}

void write_sampled_cells(const std::string& command, const std::string& out, int nproc, int threads,
                         const SamplingSettings& settings, const SampleCells& sample) {
  auto workers = start_local_workers(nproc);
  const WorldInfo world = world_from_environment();
  SamplingSettings mine = settings;
  mine.quiet = settings.quiet || !world.is_root();
  start_run(threads_per_process(threads, world), mine.quiet);
  run_with_workers(workers, [&] {
    const WrittenCells written =
        write_generated_cells(out, world, [&](const Shard& shard, const CellSink& sink) {
          mine.shard = shard;
          return sample(mine, sink);
        });
    if (world.is_root()) report_written(command, written.n_cells, written.n_genes, out, settings.quiet);
  });
}

}  // namespace lingshu::cli
