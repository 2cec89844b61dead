#include "core/allocator.h"

#include <malloc.h>

namespace lingshu {

void keep_freed_memory_in_process() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);                          // every block from the heap, reused after free
  mallopt(M_TRIM_THRESHOLD, 1 << 30 /* 1 GiB */);  // do not shrink the heap after each step
#endif
}

}  // namespace lingshu
