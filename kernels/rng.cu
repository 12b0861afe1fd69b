// Standard normal noise from the counter-based generator of philox.cuh.
//   rng_normal_f32:  out[i] = ε(seed, offset, i),  i ∈ [0, n);  offset = offset_ptr[0] | offset_ptr[1] << 32
//   rng_advance_u32: offset += 1 (one thread), so each training step draws a fresh stream.
// Work split: grid-stride loop, one element per thread per iteration.
#include "common.cuh"
#include "philox.cuh"

LK_KERNEL void rng_normal_f32(lk_philox_params p, const uint32_t* __restrict__ offset_ptr,
                              float* __restrict__ out, int64_t n) {
    const uint64_t offset = lk::load_offset(offset_ptr);
    LK_GRID_STRIDE(i, n) { out[i] = lk::philox_normal(p.seed, offset, (uint64_t)i); }
}

LK_KERNEL void rng_advance_u32(uint32_t* __restrict__ offset_ptr) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        const uint64_t next = lk::load_offset(offset_ptr) + 1;
        offset_ptr[0] = (uint32_t)next;
        offset_ptr[1] = (uint32_t)(next >> 32);
    }
}
