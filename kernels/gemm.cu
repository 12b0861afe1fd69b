// GEMM, row-major: C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), op ∈ {N, T}.
// Epilogues (latentkit_abi.h): none; act(v + bias[j]) (a Linear layer forward); v · act'(y[i,j])
// (backward into the pre-activation below, act' from the forward output y [m, n], row stride ldy).
//   A is stored [m, k] (lda ≥ k) or, transposed, [k, m] (lda ≥ m); likewise B: [k, n] or [n, k].
//   beta == 0: C is not read (BLAS convention), so an uninitialised C can't leak NaN in; alpha == 0:
//   the product does not count (C = beta·C).
//
// gemm_tiled16_f32 is the simple, correct shared-memory kernel of the foundation: a 16×16 thread
// block computes a 16×16 tile of C, looping over k in steps of 16; each thread loads one element of
// the A tile and one of the B tile into shared memory (zero-padded past the edges, so any m, n, k ≥ 1
// works) and accumulates one output in f32 in a fixed k order. Grid: (ceil(n/16), ceil(m/16)).
// The tuned SIMT and tensor-core kernels of the GEMM issue replace it on the training path.
#include "common.cuh"

#define LK_GEMM_TILE 16

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
    if (row < p.m && col < p.n) {
        float* out = c + row * p.ldc + col;
        // alpha = 0 ignores A·B (NaN included) and beta = 0 ignores C, as BLAS does.
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
}
