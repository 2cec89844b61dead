#pragma once
// The processes of a data-parallel job: where this one sits (from the variables torchrun and SLURM
// set), and the local copies of this program that `--nproc N` starts. Free of LibTorch; the
// collectives themselves are in train/distributed.h.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lingshu {

struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_size = 1;  // processes of the job on this machine (they share its cores)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;

  bool distributed() const { return size > 1; }
  bool is_root() const { return rank == 0; }
};

// RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun), or SLURM_PROCID,
// SLURM_NTASKS, SLURM_NTASKS_PER_NODE with MASTER_ADDR/MASTER_PORT (srun); one process when
// neither is set. A malformed value is a UserError naming the variable.
WorldInfo world_from_environment();

// True when this process was started as a rank of a job (by --nproc, torchrun or srun).
bool joined_by_environment();

// A TCP port on 127.0.0.1 that is free now.
int free_local_port();

// Copies of this program (same arguments) running ranks 1..N-1 of a local job whose rank 0 is the
// calling process. Destroying it before wait_all() (rank 0 failed) stops the workers.
class LocalWorkers {
 public:
  // Starts them with RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, and sets
  // the same variables (rank 0) in this process.
  LocalWorkers(int n_processes, int port);
  ~LocalWorkers();
  LocalWorkers(const LocalWorkers&) = delete;
  LocalWorkers& operator=(const LocalWorkers&) = delete;

  // Waits for every worker; a UserError names the first that failed and how.
  void wait_all();
  // The workers that have ended with a failure by now (waiting up to `grace_ms` for one), as
  // "worker process PID (rank R) was killed by signal 9" or "... exited with status 1: MESSAGE"
  // (the worker's own error line); empty if none, or if each failed with the error `known` (the
  // one rank 0 reports anyway).
  std::string failures(int grace_ms, const std::string& known = "");

 private:
  void stop();  // SIGTERM to the workers still running, and waits for them
  std::string describe(size_t worker, int status) const;

  std::vector<pid_t> pids_;                  // pids_[i] runs rank i + 1 (negated once reaped)
  std::vector<std::filesystem::path> logs_;  // worker i's stderr
};

}  // namespace lingshu
