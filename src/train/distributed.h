#pragma once
// Data-parallel collectives on torch.distributed's c10d: a TCPStore hosted by rank 0 for the
// rendezvous and a Gloo process group (CPU) for broadcast and all-reduce. Tensors travel in a few
// flat buckets, so a step costs a handful of messages, not one per parameter.
#include <torch/types.h>

#include <memory>
#include <vector>

#include "core/world.h"

namespace lingshu {

class Collective {
 public:
  // Joins the job: rank 0 hosts the store at world.master_addr:master_port and waits for the
  // others; every rank fails with a UserError naming the address if it cannot meet them in time.
  explicit Collective(const WorldInfo& world);
  ~Collective();
  Collective(const Collective&) = delete;
  Collective& operator=(const Collective&) = delete;

  int rank() const;
  int size() const;

  // Overwrites every tensor (contiguous, CPU) with rank 0's values.
  void broadcast_from_root(const std::vector<torch::Tensor>& tensors);
  // Replaces every tensor (contiguous, CPU) by its sum over the ranks.
  void sum_over_ranks(const std::vector<torch::Tensor>& tensors);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lingshu
