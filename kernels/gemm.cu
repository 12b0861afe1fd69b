// GEMM, row-major: C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), op ∈ {N, T}.
// Epilogues (latentkit_abi.h): none; act(v + bias[j]) (a Linear layer forward); v · act'(y[i,j])
// (backward into the pre-activation below, act' from the forward output y [m, n], row stride ldy).
//   A is stored [m, k] (lda ≥ k) or, transposed, [k, m] (lda ≥ m); likewise B: [k, n] or [n, k].
//   beta == 0: C is not read (BLAS convention), so an uninitialised C can't leak NaN in; alpha == 0:
//   the product does not count (C = beta·C).
//
// Kernel versions (llm.c style: the stepping stones stay, the launcher selects one; see
// src/ops/gemm/cuda.rs and GemmKernel):
// v1 gemm_tiled16_f32 is the simple, correct shared-memory kernel of the foundation: a 16×16 thread
// block computes a 16×16 tile of C, looping over k in steps of 16; each thread loads one element of
// the A tile and one of the B tile into shared memory (zero-padded past the edges, so any m, n, k ≥ 1
// works) and accumulates one output in f32 in a fixed k order. Grid: (ceil(n/16), ceil(m/16)).
// The tuned SIMT and tensor-core kernels of the GEMM issue replace it on the training path.
#include "common.cuh"

#define LK_GEMM_TILE 16

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

LK_KERNEL void gemm_tiled16_f32(lk_gemm_params p, const float* __restrict__ a,
                                const float* __restrict__ b, float* __restrict__ c,
                                const float* __restrict__ bias, const float* __restrict__ y) {
    __shared__ float as[LK_GEMM_TILE][LK_GEMM_TILE];
    __shared__ float bs[LK_GEMM_TILE][LK_GEMM_TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t row = (int64_t)blockIdx.y * LK_GEMM_TILE + ty;
    const int64_t col = (int64_t)blockIdx.x * LK_GEMM_TILE + tx;
    float acc = 0.0f;
    for (int64_t k0 = 0; k0 < p.k; k0 += LK_GEMM_TILE) {
        const int64_t ka = k0 + tx;  // this thread's column of the A tile
        const int64_t kb = k0 + ty;  // this thread's row of the B tile
        float av = 0.0f, bv = 0.0f;
        if (row < p.m && ka < p.k) av = p.trans_a ? a[ka * p.lda + row] : a[row * p.lda + ka];
        if (kb < p.k && col < p.n) bv = p.trans_b ? b[col * p.ldb + kb] : b[kb * p.ldb + col];
        as[ty][tx] = av;
        bs[ty][tx] = bv;
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < LK_GEMM_TILE; ++kk) acc += as[ty][kk] * bs[kk][tx];
        __syncthreads();
    }
    if (row < p.m && col < p.n) gemm_store(p, row, col, acc, c, bias, y);
}

// v2 gemm_simt128_f32: 2-D register blocking. A 256-thread block computes a 128×128 tile of C;
// thread (ty, tx) of the 16×16 grid owns the 8×8 outputs at rows 8·ty.., cols 8·tx... Per step of
// 8 along k, the block stages op(A) [128×8] and op(B) [8×128] in shared memory (each thread loads 4
// elements of each, bounds-checked and zero-padded, reading along the operand's contiguous
// dimension so the loads of the transposed layouts coalesce), then every thread does 8 rank-1
// updates of its 8×8 accumulator from 8 + 8 values read as float4 from shared memory. The k order
// of each output's sum is fixed. No double buffering or vectorized global loads yet (v3).
#define LK_S2_BM 128
#define LK_S2_BN 128
#define LK_S2_BK 8
#define LK_S2_TM 8
#define LK_S2_TN 8

LK_KERNEL void __launch_bounds__(256) gemm_simt128_f32(lk_gemm_params p, const float* __restrict__ a,
                                                       const float* __restrict__ b, float* __restrict__ c,
                                                       const float* __restrict__ bias,
                                                       const float* __restrict__ y) {
    __shared__ __align__(16) float as[LK_S2_BK][LK_S2_BM];
    __shared__ __align__(16) float bs[LK_S2_BK][LK_S2_BN];
    const int tid = threadIdx.x;
    const int ty = tid / 16, tx = tid % 16;
    const int64_t m0 = (int64_t)blockIdx.y * LK_S2_BM, n0 = (int64_t)blockIdx.x * LK_S2_BN;
    float acc[LK_S2_TM][LK_S2_TN];
#pragma unroll
    for (int i = 0; i < LK_S2_TM; ++i)
#pragma unroll
        for (int j = 0; j < LK_S2_TN; ++j) acc[i][j] = 0.0f;

    for (int64_t k0 = 0; k0 < p.k; k0 += LK_S2_BK) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int e = tid + 256 * r;  // 0 .. 1023 over each 128×8 tile
            // op(A)[row, kk]
            int row, kk;
            if (p.trans_a) { kk = e / LK_S2_BM; row = e % LK_S2_BM; }  // A stored [k, m]: m contiguous
            else { row = e / LK_S2_BK; kk = e % LK_S2_BK; }             // A stored [m, k]: k contiguous
            const int64_t gr = m0 + row, gk = k0 + kk;
            float av = 0.0f;
            if (gr < p.m && gk < p.k) av = p.trans_a ? a[gk * p.lda + gr] : a[gr * p.lda + gk];
            as[kk][row] = av;
            // op(B)[kk, col]
            int col;
            if (p.trans_b) { col = e / LK_S2_BK; kk = e % LK_S2_BK; }  // B stored [n, k]: k contiguous
            else { kk = e / LK_S2_BN; col = e % LK_S2_BN; }             // B stored [k, n]: n contiguous
            const int64_t gc = n0 + col, gk2 = k0 + kk;
            float bv = 0.0f;
            if (gc < p.n && gk2 < p.k) bv = p.trans_b ? b[gc * p.ldb + gk2] : b[gk2 * p.ldb + gc];
            bs[kk][col] = bv;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < LK_S2_BK; ++kk) {
            float ra[LK_S2_TM], rb[LK_S2_TN];
            const float4 a0 = *reinterpret_cast<const float4*>(&as[kk][ty * LK_S2_TM]);
            const float4 a1 = *reinterpret_cast<const float4*>(&as[kk][ty * LK_S2_TM + 4]);
            const float4 b0 = *reinterpret_cast<const float4*>(&bs[kk][tx * LK_S2_TN]);
            const float4 b1 = *reinterpret_cast<const float4*>(&bs[kk][tx * LK_S2_TN + 4]);
            ra[0] = a0.x; ra[1] = a0.y; ra[2] = a0.z; ra[3] = a0.w;
            ra[4] = a1.x; ra[5] = a1.y; ra[6] = a1.z; ra[7] = a1.w;
            rb[0] = b0.x; rb[1] = b0.y; rb[2] = b0.z; rb[3] = b0.w;
            rb[4] = b1.x; rb[5] = b1.y; rb[6] = b1.z; rb[7] = b1.w;
#pragma unroll
            for (int i = 0; i < LK_S2_TM; ++i)
#pragma unroll
                for (int j = 0; j < LK_S2_TN; ++j) acc[i][j] += ra[i] * rb[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < LK_S2_TM; ++i) {
        const int64_t row = m0 + ty * LK_S2_TM + i;
        if (row >= p.m) break;
#pragma unroll
        for (int j = 0; j < LK_S2_TN; ++j) {
            const int64_t col = n0 + tx * LK_S2_TN + j;
            if (col < p.n) gemm_store(p, row, col, acc[i][j], c, bias, y);
        }
    }
}
