#pragma once
// `--nproc N` for the commands that run on several processes (train, generate, predict): outside a
// job this process becomes rank 0 and starts ranks 1..N-1, copies of the same command; inside one
// (our own workers, torchrun, srun) the environment says where this process sits.
#include <functional>
#include <optional>

#include "core/world.h"

namespace lingshu::cli {

// The workers this process started (none for --nproc 1, or inside a job). UserError when this build
// has no Gloo, or --nproc disagrees with the job's WORLD_SIZE.
std::optional<LocalWorkers> start_local_workers(int nproc);

// --threads for one process: processes on one machine share its cores.
int threads_per_process(int requested, const WorldInfo& world);

// Runs `body` on rank 0 of `workers` and waits for them; a UserError says too which worker died,
// how, and with what error, unless the workers failed with rank 0's own error (workers write to a
// file, not to the terminal, so a user reads each error once).
void run_with_workers(std::optional<LocalWorkers>& workers, const std::function<void()>& body);

}  // namespace lingshu::cli
