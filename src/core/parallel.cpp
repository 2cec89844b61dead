#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace lingshu {

int resolve_thread_count(int requested) {
  if (requested > 0) return requested;
  return static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
}

void parallel_for(int64_t n, int threads, int64_t grain,
                  const std::function<void(int64_t begin, int64_t end, int worker)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (n + grain - 1) / grain;
  const int workers = static_cast<int>(std::min<int64_t>(resolve_thread_count(threads), chunks));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](int worker) {
    while (!failed.load(std::memory_order_relaxed)) {
      const int64_t begin = next.fetch_add(grain);
      if (begin >= n) return;
      try {
        body(begin, std::min(n, begin + grain), worker);
      } catch (...) {
        const std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  if (workers <= 1) {
    run(0);
  } else {
    std::vector<std::jthread> pool;
    pool.reserve(static_cast<size_t>(workers - 1));
    for (int w = 1; w < workers; ++w) pool.emplace_back(run, w);
    run(0);
  }  // jthreads join here
  if (error) std::rethrow_exception(error);
}

}  // namespace lingshu
