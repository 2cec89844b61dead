#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "core/parallel.h"

namespace lingshu {
namespace {

TEST(ParallelFor, VisitsEveryIndexExactlyOnce) {
  for (const int threads : {1, 2, 5}) {
    std::vector<std::atomic<int>> hits(1003);
    std::atomic<int> max_worker{0};
    parallel_for(1003, threads, 17, [&](int64_t begin, int64_t end, int worker) {
      for (int64_t i = begin; i < end; ++i) ++hits[static_cast<size_t>(i)];
      int seen = max_worker.load();
      while (worker > seen && !max_worker.compare_exchange_weak(seen, worker)) {
      }
    });
    for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
    EXPECT_LT(max_worker.load(), threads);
  }
  parallel_for(0, 4, 1, [](int64_t, int64_t, int) { FAIL() << "no work expected"; });
}

TEST(ParallelFor, RethrowsAWorkerException) {
  EXPECT_THROW(parallel_for(100, 3, 1,
                            [](int64_t begin, int64_t, int) {
                              if (begin == 42) throw std::runtime_error("bad item");
                            }),
               std::runtime_error);
}

}  // namespace
}  // namespace lingshu
