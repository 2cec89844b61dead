#pragma once
// One .h5ad of generated cells from every process of a job (`generate`/`predict --nproc N`, or
// torchrun/srun): each process makes its share of the batches, ranks 1.. write theirs beside the
// output, and rank 0 appends them to its own in rank order once all are done, so the file is the
// one a single process would write. Free of LibTorch.
#include <cstdint>
#include <filesystem>
#include <functional>

#include "core/world.h"
#include "data/anndata.h"
#include "sample/generate.h"

namespace lingshu {

// Makes the cells of `shard` (every batch to the sink) and returns the obs, var and uns of all of
// them (X empty).
using ShardMaker = std::function<AnnData(const Shard& shard, const CellSink& sink)>;

struct WrittenCells {
  int64_t n_cells = 0;
  int64_t n_genes = 0;
};

// Runs `make` for this process's shard of `world` and writes the job's cells to `out` (rank 0; the
// other ranks return zeros). Nothing is left under `out` or beside it when any process fails: a
// process that stops makes the others fail with a UserError naming the rank. Across machines,
// `out`'s folder must be one they share.
WrittenCells write_generated_cells(const std::filesystem::path& out, const WorldInfo& world,
                                   const ShardMaker& make);

}  // namespace lingshu
