#pragma once
// A tiny fork-join helper for the modules that do not link LibTorch (statistics, evaluation):
// split [0, n) into contiguous chunks and run them on std::threads. Work items must be independent;
// each worker gets its own index so it can keep private scratch buffers.
#include <cstdint>
#include <functional>

namespace lingshu {

// Hardware threads, at least 1; `requested` > 0 wins.
int resolve_thread_count(int requested);

// Calls body(begin, end, worker) on up to `threads` workers whose [begin, end) ranges partition
// [0, n). Items are handed out in chunks of `grain` (dynamic scheduling, so uneven items balance).
// An exception thrown by any call is rethrown on the calling thread after all workers stop.
void parallel_for(int64_t n, int threads, int64_t grain,
                  const std::function<void(int64_t begin, int64_t end, int worker)>& body);

}  // namespace lingshu
