#pragma once

namespace lingshu {

// Keeps freed memory in the process instead of handing it back to the kernel. LibTorch allocates
// and frees the same large tensors (logits, activations) at every step; glibc serves blocks over
// 128 KiB with fresh mmap pages, and the page faults cost 13-24% of training and sampling time
// on the 2-core development machine (BENCHMARKS.md). Call once at start-up.
void keep_freed_memory_in_process();

}  // namespace lingshu
