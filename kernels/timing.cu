// Timing helper of the measured GEMM choice (src/ops/gemm/cuda.rs, GemmTuning::Measure).
//   spin_ns_u64: one thread busy-waits `ns` nanoseconds of the GPU's global timer.
// Queued ahead of a timed batch of kernels, it keeps the GPU busy while the host enqueues the
// whole batch; the batch then runs back to back, so the events around it time the kernels and
// not the host's launch latency (which a CUDA graph replay does not pay either).
// Work split: a single thread (grid 1 × 1); __nanosleep keeps it from hogging its scheduler.
#include "common.cuh"

LK_KERNEL void spin_ns_u64(uint64_t ns) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    uint64_t t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do {
        __nanosleep(500);
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    } while (t - t0 < ns);
}
