// Shared pieces of the GEMM kernels (gemm.cu: fp32 SIMT; gemm_tc.cu, gemm_wgmma.cu: tensor cores):
// the layout dispatch, the output stores with their epilogue, and the bounds-checked, zero-padded
// tile loaders.
#pragma once

#include "common.cuh"

namespace lk {

// A compile-time flag passed as a value: the dispatchers hand one per template flag of a body.
template <bool V>
struct Flag {
    static constexpr bool value = V;
};

// Calls body(TA, TB), each an lk::Flag, with p's transposes: one kernel per tile configuration,
// the transposes a runtime choice among the body's four template instances.
template <typename Body>
__device__ __forceinline__ void with_transposes(const lk_gemm_params& p, Body&& body) {
    if (p.trans_a) {
        if (p.trans_b) body(Flag<true>{}, Flag<true>{});
        else body(Flag<true>{}, Flag<false>{});
    } else {
        if (p.trans_b) body(Flag<false>{}, Flag<true>{});
        else body(Flag<false>{}, Flag<false>{});
    }
}

// The value of one output, whose current value (read when beta ≠ 0) is at `out`: alpha = 0
// ignores A·B (NaN included) and beta = 0 ignores C, as BLAS does; then the epilogue.
__device__ inline float gemm_output(const lk_gemm_params& p, int64_t row, int64_t col, float acc, const float* out,
                                    const float* __restrict__ bias, const float* __restrict__ y) {
    const float ab = p.alpha == 0.0f ? 0.0f : p.alpha * acc;
    float v = p.beta == 0.0f ? ab : ab + p.beta * *out;
    if (p.epilogue == LK_EPI_BIAS_ACT) {
        if (p.has_bias) v += bias[col];
        v = lk::activation_fwd(p.act, v);
    } else if (p.epilogue == LK_EPI_ACT_GRAD) {
        v *= lk::activation_grad_from_output(p.act, y[row * p.ldy + col]);
    }
    return v;
}

// Writes one output (gemm_output).
__device__ inline void gemm_store(const lk_gemm_params& p, int64_t row, int64_t col, float acc,
                                  float* __restrict__ c, const float* __restrict__ bias,
                                  const float* __restrict__ y) {
    float* out = c + row * p.ldc + col;
    *out = gemm_output(p, row, col, acc, out, bias, y);
}

// Writes a split-k block's raw sum for output (row, col): slice blockIdx.z (the block's k range) of
// the [splits, m, n] workspace, which gemm_splitk_reduce_f32 (or the tile's last block) adds up in
// slice order and applies the epilogue to.
__device__ inline void splitk_store_raw(const lk_gemm_params& p, int64_t row, int64_t col, float v,
                                        float* __restrict__ ws) {
    ws[(int64_t)blockIdx.z * p.m * p.n + row * p.n + col] = v;
}

// The 2 × 2 outputs (row, col), (row, col + 1), (row + 8, col), (row + 8, col + 1) of one
// accumulator fragment column (the layout of mma.m16n8 and wgmma.m64nN tiles), one by one through
// gemm_store; out of line, to keep the unrolled epilogues that call it small.
#if defined(LK_CUDA_EMULATOR)
#define LK_GEMM_OUT_OF_LINE inline  // (the host compiler's headers use the name __noinline__)
#else
#define LK_GEMM_OUT_OF_LINE __noinline__
#endif
__device__ LK_GEMM_OUT_OF_LINE void gemm_store_quad_slow(const lk_gemm_params& p, int64_t row, int64_t col, float v0,
                                                         float v1, float v2, float v3, float* __restrict__ c,
                                                         const float* __restrict__ bias, const float* __restrict__ y) {
    const float v[4] = {v0, v1, v2, v3};
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int64_t r = row + (q >> 1) * 8, cc = col + (q & 1);
        if (r < p.m && cc < p.n) gemm_store(p, r, cc, v[q], c, bias, y);
    }
}
// Stores those four outputs straight from registers: float2 pairs for the plain product (`plain`:
// no epilogue, beta = 0) when C's rows allow (`pairs`: 8-byte aligned base, even ldc) and both
// columns are inside; gemm_store_quad_slow otherwise.
__device__ __forceinline__ void gemm_store_quad(const lk_gemm_params& p, bool plain, bool pairs, int64_t row,
                                                int64_t col, const float* v, float* __restrict__ c,
                                                const float* __restrict__ bias, const float* __restrict__ y) {
    if (plain && pairs && col + 1 < p.n) {
        const float al = p.alpha;
        if (row < p.m)
            *reinterpret_cast<float2*>(c + row * p.ldc + col) =
                make_float2(al == 0.0f ? 0.0f : al * v[0], al == 0.0f ? 0.0f : al * v[1]);
        if (row + 8 < p.m)
            *reinterpret_cast<float2*>(c + (row + 8) * p.ldc + col) =
                make_float2(al == 0.0f ? 0.0f : al * v[2], al == 0.0f ? 0.0f : al * v[3]);
    } else {
        gemm_store_quad_slow(p, row, col, v[0], v[1], v[2], v[3], c, bias, y);
    }
}
// Whether gemm_store_quad may store pairs into C (base c, row stride ldc).
__device__ inline bool gemm_store_pairs_ok(const float* c, int64_t ldc) {
    return (reinterpret_cast<uintptr_t>(c) & 7) == 0 && (ldc & 1) == 0;
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
