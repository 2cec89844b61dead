#include "cli/processes.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "core/parallel.h"
#include "train/trainer.h"

namespace lingshu::cli {

std::optional<LocalWorkers> start_local_workers(int nproc) {
  if (joined_by_environment()) {
    const WorldInfo world = world_from_environment();
    if (nproc > 1 && nproc != world.size) {
      throw UserError(
          fmt::format("--nproc {} disagrees with WORLD_SIZE={} of the job this process was started "
                      "in; under torchrun or srun leave --nproc out",
                      nproc, world.size));
    }
    return std::nullopt;
  }
  if (nproc <= 1) return std::nullopt;
  if (!multi_process_available()) {
    throw UserError(
        "--nproc: this lingshu was built without Gloo; install libgloo-dev (scripts/install-deps.sh) and "
        "rebuild");
  }
  return std::optional<LocalWorkers>(std::in_place, nproc, free_local_port());
}

int threads_per_process(int requested, const WorldInfo& world) {
  if (requested > 0 || world.local_size <= 1) return requested;
  return std::max(1, resolve_thread_count(0) / world.local_size);
}

void run_with_workers(std::optional<LocalWorkers>& workers, const std::function<void()>& body) {
  try {
    body();
  } catch (const UserError& e) {
    const std::string why = workers ? workers->failures(2000, e.what()) : "";
    if (why.empty()) throw;
    throw UserError(fmt::format("{}; {}", e.what(), why));
  }
  if (workers) workers->wait_all();
}

}  // namespace lingshu::cli
