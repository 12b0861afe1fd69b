// Shared pieces of the GEMM kernels (gemm.cu: fp32 SIMT; gemm_tc.cu: tensor cores): the output
// store with its epilogue, and the bounds-checked, zero-padded tile loaders.
#pragma once

#include "common.cuh"

namespace lk {

// Writes one output: alpha = 0 ignores A·B (NaN included) and beta = 0 ignores C, as BLAS does;
// then the epilogue.
__device__ inline void gemm_store(const lk_gemm_params& p, int64_t row, int64_t col, float acc,
                                  float* __restrict__ c, const float* __restrict__ bias,
                                  const float* __restrict__ y) {
    float* out = c + row * p.ldc + col;
    const float ab = p.alpha == 0.0f ? 0.0f : p.alpha * acc;
    float v = p.beta == 0.0f ? ab : ab + p.beta * *out;
    if (p.epilogue == LK_EPI_BIAS_ACT) {
        if (p.has_bias) v += bias[col];
        v = lk::activation_fwd(p.act, v);
    } else if (p.epilogue == LK_EPI_ACT_GRAD) {
        v *= lk::activation_grad_from_output(p.act, y[row * p.ldy + col]);
    }
    *out = v;
}

// Whether rows of a matrix (base pointer g, row stride ld elements of `bytes` bytes) start on
// 16-byte boundaries, so 16-byte chunks at multiples of 16/bytes elements can be moved whole.
__device__ inline bool rows_16b_aligned(const void* g, int64_t ld, int bytes) {
    return (reinterpret_cast<uintptr_t>(g) & 15) == 0 && ((ld * bytes) & 15) == 0;
}

// Number of elements of the chunk g[r][c .. c+len) inside a rows × cols matrix (0 when outside).
__device__ inline int chunk_valid(int64_t rows, int64_t cols, int64_t r, int64_t c, int len) {
    if (r >= rows || c >= cols) return 0;
    return cols - c < len ? (int)(cols - c) : len;
}

// Four consecutive elements g[r][c .. c+4) of a rows × cols fp32 matrix, zero outside it; one
// 16-byte load when `vec` (rows 16-byte aligned, c a multiple of 4) and all four are inside.
__device__ inline float4 load_f32x4(const float* __restrict__ g, int64_t ld, int64_t rows,
                                    int64_t cols, int64_t r, int64_t c, bool vec) {
    const int valid = chunk_valid(rows, cols, r, c, 4);
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (valid == 0) return v;  // no pointer is formed outside the matrix
    const float* src = g + r * ld + c;
    if (vec && valid == 4) return *reinterpret_cast<const float4*>(src);
    v.x = src[0];
    if (valid > 1) v.y = src[1];
    if (valid > 2) v.z = src[2];
    if (valid > 3) v.w = src[3];
    return v;
}

}  // namespace lk
