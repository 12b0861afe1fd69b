// Elementwise kernels for training: bias add, activations forward/backward, column sums, fill and a
// deterministic sum.
//
// Formulas (row-major, x[rows, cols]):
//   bias_add_fwd_f32:     y[r, c] += bias[c]                                (in place)
//   activation_fwd_f32:   y[i] = f(x[i]),  f ∈ {identity, relu, sigmoid, tanh}
//   activation_bwd_f32:   dx[i] = dy[i] · f'(x[i]), with f' written from the output y (common.cuh)
//   col_sum_f32:          out[c] = beta·out[c] + Σ_r x[r, c]                 (bias gradient)
//   fill_f32:             x[i] = value
//   sum_f32:              out[0] = Σ_i x[i]
//
// Work split: the pointwise kernels are grid-stride loops, one element per thread per iteration.
// col_sum_f32: a block of 32 × G threads owns 32 adjacent columns (lanes read adjacent columns,
// so loads coalesce) and splits the rows over G row groups: thread (lane, g) sums rows g, g + G,
// g + 2G, … in order, then lane's G partial sums are added in order g = 0 … G − 1. G depends only
// on rows (src/ops/elementwise/cuda.rs), so the order is fixed. (v1 walked all rows in one thread:
// a chain of `rows` dependent loads and adds, about 4096 of them per column at batch 4096.) sum_f32 runs as a single
// block: each thread sums a fixed strided subset in order, then lk::block_sum combines them in a
// fixed order, so two runs give bit-identical results.
#include "common.cuh"

LK_KERNEL void bias_add_fwd_f32(float* __restrict__ y, const float* __restrict__ bias, int64_t rows,
                                int64_t cols) {
    LK_GRID_STRIDE(i, rows * cols) { y[i] += bias[i % cols]; }
}

LK_KERNEL void activation_fwd_f32(lk_activation act, const float* __restrict__ x,
                                  float* __restrict__ y, int64_t n) {
    LK_GRID_STRIDE(i, n) { y[i] = lk::activation_fwd(act, x[i]); }
}

LK_KERNEL void activation_bwd_f32(lk_activation act, const float* __restrict__ y,
                                  const float* __restrict__ dy, float* __restrict__ dx, int64_t n) {
    LK_GRID_STRIDE(i, n) { dx[i] = dy[i] * lk::activation_grad_from_output(act, y[i]); }
}

// blockDim = (32, G), G ≤ 32; grid-stride over the 32-column tiles.
LK_KERNEL void col_sum_f32(const float* __restrict__ x, int64_t rows, int64_t cols, float beta,
                           float* __restrict__ out) {
    __shared__ float partial[32][33];  // [row group][lane]
    const int lane = threadIdx.x, g = threadIdx.y, groups = blockDim.y;
    for (int64_t c0 = (int64_t)blockIdx.x * 32; c0 < cols; c0 += (int64_t)gridDim.x * 32) {
        const int64_t c = c0 + lane;
        float s = 0.0f;
        if (c < cols)
            for (int64_t r = g; r < rows; r += groups) s += x[r * cols + c];
        partial[g][lane] = s;
        __syncthreads();
        if (g == 0 && c < cols) {
            float t = partial[0][lane];
            for (int k = 1; k < groups; ++k) t += partial[k][lane];
            // beta == 0 means out is not read (it may hold garbage or NaN).
            out[c] = beta == 0.0f ? t : beta * out[c] + t;
        }
        __syncthreads();  // partial is rewritten by the next column tile
    }
}

LK_KERNEL void fill_f32(float* __restrict__ x, float value, int64_t n) {
    LK_GRID_STRIDE(i, n) { x[i] = value; }
}

LK_KERNEL void sum_f32(const float* __restrict__ x, int64_t n, float* __restrict__ out) {
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    s = lk::block_sum(s);
    if (threadIdx.x == 0) out[0] = s;
}
