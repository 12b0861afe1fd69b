// Batching on the device, so the dataset stays resident and a captured training step reads its
// batch from a fixed address.
//   gather_rows_f32:  out[r, c] = src[index[cursor[0]·rows + r], c]     r < rows, c < cols
//   counter_add_u32:  counter[0] += value                                (one thread)
//   gather_sum_rows_f32: out[r, c] = (accumulate ? out[r, c] : 0) + Σ_{t<terms} src[index[t·rows + r], c]
// Shapes: src [src_rows, cols], index [index_len] (an epoch's permutation), out [rows, cols];
// for the sum, index [terms, rows]: a scatter-add written as a gather, so it needs no atomics and
// sums in the order t = 0, 1, … (the CPU twin's order: the same sums).
// The host refills `index` once per epoch and resets `cursor`; counter_add_u32 advances it per step.
// Out-of-range positions or indices (a cursor run past the epoch, a bad index) are never read:
// those rows are written as NaN, which the loss check then reports.
// Work split: grid-stride over the rows·cols outputs; consecutive threads copy (sum) consecutive
// columns of one row, so reads and writes coalesce and a warp's index reads are one broadcast per row.
#include "common.cuh"

LK_KERNEL void gather_rows_f32(const float* __restrict__ src, const uint32_t* __restrict__ index,
                               const uint32_t* __restrict__ cursor, float* __restrict__ out,
                               int64_t src_rows, int64_t index_len, int64_t rows, int64_t cols) {
    const int64_t base = (int64_t)cursor[0] * rows;
    LK_GRID_STRIDE(i, rows * cols) {
        const int64_t r = i / cols, c = i - r * cols;
        const int64_t pos = base + r;
        const int64_t row = pos < index_len ? (int64_t)index[pos] : src_rows;
        out[i] = row < src_rows ? src[row * cols + c] : __int_as_float(0x7fc00000);
    }
}

LK_KERNEL void counter_add_u32(uint32_t* __restrict__ counter, uint32_t value) {
    if (blockIdx.x == 0 && threadIdx.x == 0) counter[0] += value;
}

LK_KERNEL void gather_sum_rows_f32(const float* __restrict__ src, const uint32_t* __restrict__ index,
                                   float* __restrict__ out, int64_t src_rows, int64_t terms, int64_t rows,
                                   int64_t cols, int32_t accumulate) {
    LK_GRID_STRIDE(i, rows * cols) {
        const int64_t r = i / cols, c = i - r * cols;
        float acc = accumulate ? out[i] : 0.0f;
        for (int64_t t = 0; t < terms; ++t) {
            const int64_t row = (int64_t)index[t * rows + r];
            acc += row < src_rows ? src[row * cols + c] : __int_as_float(0x7fc00000);
        }
        out[i] = acc;
    }
}
