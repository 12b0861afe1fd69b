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
// v2 gemm_simt128_f32, v3 gemm_simt{128,64}_warp_f32 / gemm_simt32_slicedk_f32, v4
// gemm_simt64_splitk_f32 (+ gemm_splitk_reduce_f32), v5 gemm_simt64_slicedk4_f32, v16
// gemm_simt128_warp_db_f32, v17 gemm_simt64_warp_db_f32, v18 gemm_simt64_warp_db_splitk_f32, v19
// gemm_simt64_warp_db_splitk_fused_f32, v20 gemm_simt64_async_f32, v21
// gemm_simt64_async_splitk_fused_f32, v22 gemm_simt128_warp_db_splitk_fused_f32, v23
// gemm_simt_shortk_f32, v25 gemm_simt_shortk_persistent_f32, v26 gemm_simt_small_m_splitk_f32, v27
// gemm_simt_small_n_splitk_f32, v28 gemm_simt128_warp_db_streamk_f32, v29
// gemm_simt64_warp_db_streamk_f32, v30 gemm_simt128x200_warp_db_f32, v31
// gemm_simt128x200_warp_db_splitk_fused_f32 and v32 gemm_simt200x128_warp_db_splitk_fused_f32 are
// described where they are defined.
#include "cp_async.cuh"
#include "gemm.cuh"

#define LK_GEMM_TILE 16

using lk::gemm_store;

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

// v3 gemm_simt{128,64,32k4}_f32: warp-tiled SIMT, one template in three tile configurations that
// the launcher picks by shape (GemmKernel::Auto, src/ops/gemm/mod.rs):
//   gemm_simt128_warp_f32  BM×BN = 128×128, 8 warps as 2×4, 64 outputs per thread (large outputs;
//                          gemm_simt128_warp_2cta_f32: the same, capped for two blocks per SM)
//   gemm_simt64_warp_f32   64×64, 4 warps as 2×2, 32 outputs per thread (medium outputs)
//   gemm_simt32_slicedk_f32  32×32, 2 warps, and the block's k range sliced over 4 groups of them
//                          whose partial sums are added in group order (skinny outputs with long k,
//                          e.g. 128×20×400, where one block per tile would leave most SMs idle)
// Per step of BK = 16 along k, each thread group stages op(A) [BM×16] and op(B) [16×BN] in shared
// memory as float4 chunks read along the operand's contiguous dimension (one 16-byte load when the
// rows are 16-byte aligned and the chunk is inside the matrix; else bounds-checked scalar loads,
// zero-padded), stored k-major (As[k][m], Bs[k][n], rows padded by 4 floats, chunks swizzled by
// sdb_swizzle). Double buffering:
// the next step's chunks are loaded into registers while the current step is computed, then
// written to the other buffer; one __syncthreads per step. Warp tiling: warp (wm, wn) owns a WM×WN
// sub-tile; its 32 lanes form 8 (m) × 4 (n) and each lane computes 4×4 outputs per WM/32 × WN/16
// sub-iteration, reading float4 fragments from shared memory (8 distinct addresses for A, 4 for B
// per warp: broadcasts, no bank conflicts). Each output's k order is fixed for a given kernel.
#define LK_S3_BK 16
#define LK_S3_PAD 4

// Shared memory (floats) of one thread group's two buffers.
#define LK_S3_GROUP_SMEM(BM, BN) (2 * LK_S3_BK * ((BM) + LK_S3_PAD + (BN) + LK_S3_PAD))

namespace {

// The stage swizzle of the warp-tiled loops (v3-v5, v16-v22, v28-v29): element (k, m) of a k-major
// 16-k tile sits at k·S + (m ^ sdb_swizzle(k)), so the second 8 k rows have their 4-element chunks
// swapped in pairs of pairs (chunk q ↔ q ^ 2). A warp's transposing stores (8 m × 4 k chunks, the k
// rows 4 apart: 4·S ≡ 16 banks apart for S ≡ 4 mod 32) then fill 32 banks instead of 16 twice,
// and a thread's float4 fragments stay whole and conflict-free. Same values, same sums.
__device__ __forceinline__ int sdb_swizzle(int k) { return k & 8; }

// Epilogue of the warp-tiled kernels (v3-v5, v16-v22) through shared memory, 32 rows of the warp
// tile at a time: the warp parks its accumulators at `park` (32 rows of WN + 1 floats), then stores
// rows of WN consecutive columns (coalesced) through one non-unrolled copy of the epilogue code
// (inlining it for every output made ptxas take minutes). Output (i, j) of the thread: row
// row0 + (i/4)·32 + lm·4 + i%4, col col0 + (j/4)·16 + ln·4 + j%4, parked at column
// park_column(col) of its row: each 16-column group transposed as 4×4, so that the 32 lanes' stores
// of one (i, j) land in 32 banks (lm·4 + ln, rows WN + 1 ≡ 1 apart), where the columns as they are
// put 4 lanes in each bank (4 wavefronts a 4-byte store: tools/cuda-emu's bank profile).
// SPLIT (v4, v18, v19, v21, v22): the raw sum of the block's k range goes to slice blockIdx.z of
// the [splits, m, n] workspace (c), which gemm_splitk_reduce_f32 (v19, v21, v22: the tile's last
// block) adds up and applies the epilogue to.
__device__ __forceinline__ int park_column(int col) { return (col & ~15) | (col & 3) << 2 | (col >> 2 & 3); }
template <int IM, int IN, int WN, bool SPLIT>
__device__ __forceinline__ void simt_park_and_store(const float (&acc)[IM * 4][IN * 4], float* park,
                                                    const lk_gemm_params& p, int lane, int lm, int ln, int64_t row0,
                                                    int64_t col0, float* __restrict__ c, const float* __restrict__ bias,
                                                    const float* __restrict__ y) {
    constexpr int SP = WN + 1;
#pragma unroll
    for (int im = 0; im < IM; ++im) {
        __syncwarp();  // the previous sub-tile's reads are done
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < IN * 4; ++j) park[(lm * 4 + i) * SP + (j / 4) * 16 + (j % 4) * 4 + ln] = acc[im * 4 + i][j];
        __syncwarp();
#pragma unroll 1
        for (int idx = lane; idx < 32 * WN; idx += 32) {
            const int r = idx / WN, cc = idx % WN;
            const int64_t row = row0 + im * 32 + r, col = col0 + cc;
            if (row < p.m && col < p.n) {
                const float v = park[r * SP + park_column(cc)];
                if (SPLIT) lk::splitk_store_raw(p, row, col, v, c);
                else gemm_store(p, row, col, v, c, bias, y);
            }
        }
    }
}
template <int BM, int BN, int WARPS_M, int WARPS_N, int KS, bool SPLIT, bool TA, bool TB>
__device__ __forceinline__ void gemm_simt_warp_body(const lk_gemm_params& p, const float* __restrict__ a,
                                                    const float* __restrict__ b, float* __restrict__ c,
                                                    const float* __restrict__ bias,
                                                    const float* __restrict__ y, float* smem) {
    constexpr int BK = LK_S3_BK;
    constexpr int GT = WARPS_M * WARPS_N * 32;  // threads of one k-slice group
    constexpr int SA = BM + LK_S3_PAD, SB = BN + LK_S3_PAD;
    constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;
    constexpr int IM = WM / 32, IN = WN / 16;  // sub-iterations: 8 lanes × 4 rows, 4 lanes × 4 cols
    constexpr int LA = BM * BK / 4 / GT, LB = BN * BK / 4 / GT;  // float4 chunks per thread
    static_assert(WM % 32 == 0 && WN % 16 == 0, "warp tile must be a multiple of 32×16");
    static_assert((BM * BK / 4) % GT == 0 && (BN * BK / 4) % GT == 0, "chunks must divide evenly");
    static_assert((KS > 1 ? (KS - 1) * BM * BN : 0) + WARPS_M * WARPS_N * 32 * (WN + 1) <= KS * LK_S3_GROUP_SMEM(BM, BN),
                  "k-slice partials and the epilogue's parking space must fit the staging memory");

    const int tid = threadIdx.x;
    const int group = tid / GT, gt = tid % GT;
    const int warp = gt / 32, lane = gt % 32;
    const int wm0 = (warp % WARPS_M) * WM, wn0 = (warp / WARPS_M) * WN;
    const int lm = lane / 4, ln = lane % 4;
    const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
    const bool vec_a = lk::rows_16b_aligned(a, p.lda, 4), vec_b = lk::rows_16b_aligned(b, p.ldb, 4);
    // SPLIT (v4): this block sums k in [kb, ke) only, split z = blockIdx.z of p.k_split elements
    // (a multiple of BK, so only the last split can end inside a chunk); loads past ke read zero.
    const int64_t kb = SPLIT ? (int64_t)blockIdx.z * p.k_split : 0;
    const int64_t ke = SPLIT ? (kb + p.k_split < p.k ? kb + p.k_split : p.k) : p.k;
    float* const sbase = smem + group * LK_S3_GROUP_SMEM(BM, BN);

    float acc[IM * 4][IN * 4];
#pragma unroll
    for (int i = 0; i < IM * 4; ++i)
#pragma unroll
        for (int j = 0; j < IN * 4; ++j) acc[i][j] = 0.0f;

    float4 ra[LA], rb[LB];
    // Chunk e of the A tile at k offset k0: A stored [m, k] holds BM rows of BK/4 chunks; stored
    // [k, m] (TA) it holds BK rows of BM/4 chunks. Likewise B ([k, n] or, TB, [n, k]).
    auto load_regs = [&](int64_t k0) {
#pragma unroll
        for (int i = 0; i < LA; ++i) {
            const int e = gt + i * GT;
            if (TA) ra[i] = lk::load_f32x4(a, p.lda, ke, p.m, k0 + e / (BM / 4), m0 + (e % (BM / 4)) * 4, vec_a);
            else ra[i] = lk::load_f32x4(a, p.lda, p.m, ke, m0 + e / (BK / 4), k0 + (e % (BK / 4)) * 4, vec_a);
        }
#pragma unroll
        for (int i = 0; i < LB; ++i) {
            const int e = gt + i * GT;
            if (TB) rb[i] = lk::load_f32x4(b, p.ldb, p.n, ke, n0 + e / (BK / 4), k0 + (e % (BK / 4)) * 4, vec_b);
            else rb[i] = lk::load_f32x4(b, p.ldb, ke, p.n, k0 + e / (BN / 4), n0 + (e % (BN / 4)) * 4, vec_b);
        }
    };
    auto store_smem = [&](int buf) {
        float* as = sbase + buf * BK * (SA + SB);
        float* bs = as + BK * SA;
#pragma unroll
        for (int i = 0; i < LA; ++i) {
            const int e = gt + i * GT;
            if (TA) {
                const int k = e / (BM / 4);
                *reinterpret_cast<float4*>(&as[k * SA + (((e % (BM / 4)) * 4) ^ sdb_swizzle(k))]) = ra[i];
            } else {
                const int row = e / (BK / 4), kq = (e % (BK / 4)) * 4, at = kq * SA + (row ^ sdb_swizzle(kq));
                as[at + 0 * SA] = ra[i].x;
                as[at + 1 * SA] = ra[i].y;
                as[at + 2 * SA] = ra[i].z;
                as[at + 3 * SA] = ra[i].w;
            }
        }
#pragma unroll
        for (int i = 0; i < LB; ++i) {
            const int e = gt + i * GT;
            if (TB) {
                const int col = e / (BK / 4), kq = (e % (BK / 4)) * 4, at = kq * SB + (col ^ sdb_swizzle(kq));
                bs[at + 0 * SB] = rb[i].x;
                bs[at + 1 * SB] = rb[i].y;
                bs[at + 2 * SB] = rb[i].z;
                bs[at + 3 * SB] = rb[i].w;
            } else {
                const int k = e / (BN / 4);
                *reinterpret_cast<float4*>(&bs[k * SB + (((e % (BN / 4)) * 4) ^ sdb_swizzle(k))]) = rb[i];
            }
        }
    };

    // Group g takes the k steps g, g + KS, g + 2·KS, ...; every group runs the same number of
    // iterations (steps past k load zeros) so the block-wide barriers stay uniform.
    const int64_t steps = (ke - kb + BK - 1) / BK;
    const int64_t iters = (steps + KS - 1) / KS;
    load_regs(kb + (int64_t)group * BK);
    store_smem(0);
    __syncthreads();
    for (int64_t it = 0; it < iters; ++it) {
        const int buf = (int)(it & 1);
        const bool more = it + 1 < iters;
        if (more) load_regs(kb + ((it + 1) * KS + group) * BK);
        const float* as = sbase + buf * BK * (SA + SB);
        const float* bs = as + BK * SA;
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float fa[IM * 4], fb[IN * 4];
#pragma unroll
            for (int im = 0; im < IM; ++im) {
                const float4 v =
                    *reinterpret_cast<const float4*>(&as[kk * SA + ((wm0 + lm * 4) ^ sdb_swizzle(kk)) + im * 32]);
                fa[im * 4 + 0] = v.x; fa[im * 4 + 1] = v.y; fa[im * 4 + 2] = v.z; fa[im * 4 + 3] = v.w;
            }
#pragma unroll
            for (int in = 0; in < IN; ++in) {
                const float4 v =
                    *reinterpret_cast<const float4*>(&bs[kk * SB + ((wn0 + ln * 4) ^ sdb_swizzle(kk)) + in * 16]);
                fb[in * 4 + 0] = v.x; fb[in * 4 + 1] = v.y; fb[in * 4 + 2] = v.z; fb[in * 4 + 3] = v.w;
            }
#pragma unroll
            for (int i = 0; i < IM * 4; ++i)
#pragma unroll
                for (int j = 0; j < IN * 4; ++j) acc[i][j] += fa[i] * fb[j];
        }
        if (more) store_smem(buf ^ 1);
        __syncthreads();
    }

    // Output (i, j) of this thread: row wm0 + (i/4)·32 + lm·4 + i%4, col wn0 + (j/4)·16 + ln·4 + j%4.
    if (KS > 1) {
        // Groups 1..KS-1 park their partial sums in shared memory (the staging buffers are free
        // after the loop's last barrier); group 0 adds them in group order. Only the thread of the
        // same index gt in group 0 reads a thread's partials: outputs (i, 4q..4q+3) of every thread
        // of a group sit as float4 number (i·IN + q)·GT + gt, consecutive across a warp's lanes (no
        // bank conflict; the tile's own layout put 8 lanes in each bank).
        if (group > 0) {
            float4* part = reinterpret_cast<float4*>(smem + (group - 1) * BM * BN) + gt;
#pragma unroll
            for (int i = 0; i < IM * 4; ++i)
#pragma unroll
                for (int q = 0; q < IN; ++q)
                    part[(i * IN + q) * GT] = make_float4(acc[i][4 * q], acc[i][4 * q + 1], acc[i][4 * q + 2],
                                                          acc[i][4 * q + 3]);
        }
        __syncthreads();
        if (group > 0) return;
        for (int g = 1; g < KS; ++g) {
            const float4* part = reinterpret_cast<const float4*>(smem + (g - 1) * BM * BN) + gt;
#pragma unroll
            for (int i = 0; i < IM * 4; ++i)
#pragma unroll
                for (int q = 0; q < IN; ++q) {
                    const float4 v = part[(i * IN + q) * GT];
                    acc[i][4 * q] += v.x;
                    acc[i][4 * q + 1] += v.y;
                    acc[i][4 * q + 2] += v.z;
                    acc[i][4 * q + 3] += v.w;
                }
        }
    }
    // The staging buffers are free (last loop barrier); with KS > 1 the parking space follows the
    // k-slice partials, which other warps of group 0 may still be reading.
    float* const park = smem + (KS > 1 ? (KS - 1) * BM * BN : 0) + warp * 32 * (WN + 1);
    simt_park_and_store<IM, IN, WN, SPLIT>(acc, park, p, lane, lm, ln, m0 + wm0, n0 + wn0, c, bias, y);
}

// One kernel per tile configuration; the transposes are a runtime choice among four instances.
template <int BM, int BN, int WARPS_M, int WARPS_N, int KS, bool SPLIT = false>
__device__ __forceinline__ void gemm_simt_warp(const lk_gemm_params& p, const float* a, const float* b,
                                               float* c, const float* bias, const float* y, float* smem) {
    lk::with_transposes(p, [&](auto ta, auto tb) {
        gemm_simt_warp_body<BM, BN, WARPS_M, WARPS_N, KS, SPLIT, decltype(ta)::value, decltype(tb)::value>(
            p, a, b, c, bias, y, smem);
    });
}

}  // namespace

// Static shared memory (each fits the 48 KiB static limit): 128: 33 KiB; 64: 17 KiB; 32k4: 36 KiB,
// of which the k-slice reduction reuses 3 × 32 × 32 floats. The epilogue parks 32 × (WN + 1)
// floats per warp (128: exactly the 33 KiB).
LK_KERNEL void __launch_bounds__(256) gemm_simt128_warp_f32(lk_gemm_params p, const float* __restrict__ a,
                                                            const float* __restrict__ b, float* __restrict__ c,
                                                            const float* __restrict__ bias,
                                                            const float* __restrict__ y) {
    __shared__ __align__(16) float smem[LK_S3_GROUP_SMEM(128, 128)];
    gemm_simt_warp<128, 128, 2, 4, 1>(p, a, b, c, bias, y, smem);
}

// v3 gemm_simt128_warp4_f32: 128×128 tiles over 4 warps of 64×64 (128 threads, 8×16 = 128 outputs a
// thread): 6 float4 shared-memory reads per 128 FMAs (the 8-warp kernel: 4 per 64), and two blocks
// per SM (~200 registers × 128 threads, 33 KiB each) whose barriers need not coincide.
LK_KERNEL void __launch_bounds__(128) gemm_simt128_warp4_f32(lk_gemm_params p, const float* __restrict__ a,
                                                             const float* __restrict__ b, float* __restrict__ c,
                                                             const float* __restrict__ bias,
                                                             const float* __restrict__ y) {
    __shared__ __align__(16) float smem[LK_S3_GROUP_SMEM(128, 128)];
    gemm_simt_warp<128, 128, 2, 2, 1>(p, a, b, c, bias, y, smem);
}

// The same 128×128 configuration capped at 128 registers so that two blocks share an SM (16 warps
// instead of 8; the uncapped kernel takes 171 registers on sm_90, one block per SM). ptxas then
// spills ~370 bytes a thread (sm_80–sm_90); which of the two wins is a measurement
// (GemmTuning::Measure, bench_gemm --all), not a guess.
LK_KERNEL void __launch_bounds__(256, 2) gemm_simt128_warp_2cta_f32(lk_gemm_params p, const float* __restrict__ a,
                                                                    const float* __restrict__ b,
                                                                    float* __restrict__ c,
                                                                    const float* __restrict__ bias,
                                                                    const float* __restrict__ y) {
    __shared__ __align__(16) float smem[LK_S3_GROUP_SMEM(128, 128)];
    gemm_simt_warp<128, 128, 2, 4, 1>(p, a, b, c, bias, y, smem);
}

LK_KERNEL void __launch_bounds__(128) gemm_simt64_warp_f32(lk_gemm_params p, const float* __restrict__ a,
                                                           const float* __restrict__ b, float* __restrict__ c,
                                                           const float* __restrict__ bias,
                                                           const float* __restrict__ y) {
    __shared__ __align__(16) float smem[LK_S3_GROUP_SMEM(64, 64)];
    gemm_simt_warp<64, 64, 2, 2, 1>(p, a, b, c, bias, y, smem);
}

LK_KERNEL void __launch_bounds__(256) gemm_simt32_slicedk_f32(lk_gemm_params p, const float* __restrict__ a,
                                                              const float* __restrict__ b, float* __restrict__ c,
                                                              const float* __restrict__ bias,
                                                              const float* __restrict__ y) {
    __shared__ __align__(16) float smem[4 * LK_S3_GROUP_SMEM(32, 32)];
    gemm_simt_warp<32, 32, 1, 2, 4>(p, a, b, c, bias, y, smem);
}

// v5 gemm_simt64_slicedk4_f32: the 64×64 tiles of v3 with the block's k steps dealt round-robin to 4
// groups of 4 warps (512 threads), whose partial sums group 0 adds in group order (KS = 4, like
// the 32×32 sliced kernel). For outputs of about one 64-tile per SM with a medium k (the 784↔400
// products of a batch of 1024: 112 tiles on an H100's 132 SMs), where v3 runs 4 warps per SM and
// stalls on latency (ncu, 2026-11-27: 6% achieved occupancy at 1024×400×784): 16 warps per SM
// instead, on the same tiles, without split-k's workspace round trip. Dynamic shared memory (the
// backend raises the limit): the 4 groups' double buffers, 4 × 2 × 16 × (68 + 68) floats = 68 KiB,
// which the 3 partial tiles (48 KiB) and the epilogue's parking space (16.5 KiB) then reuse.
extern __shared__ __align__(16) float lk_simt_dyn_smem[];
LK_KERNEL void __launch_bounds__(512) gemm_simt64_slicedk4_f32(lk_gemm_params p, const float* __restrict__ a,
                                                               const float* __restrict__ b, float* __restrict__ c,
                                                               const float* __restrict__ bias,
                                                               const float* __restrict__ y) {
    gemm_simt_warp<64, 64, 2, 2, 4>(p, a, b, c, bias, y, lk_simt_dyn_smem);
}

// v4 gemm_simt64_splitk_f32 + gemm_splitk_reduce_f32: split-k across blocks for outputs too small
// to fill the GPU with a long k (the dW = dYᵀX products of a large batch, e.g. 20×400×8192, which
// the 64-tiles run as 7 blocks). Block (x, y, z) runs the 64×64 tile (y, x) of v3 over k in
// [z·k_split, (z + 1)·k_split) and writes its raw sum to slice z of a [splits, m, n] workspace;
// the reduce kernel then adds the slices in order z = 0, 1, ... (deterministic, no atomics) and
// applies α, β·C, bias and activation like every other kernel (gemm_store).
LK_KERNEL void __launch_bounds__(128) gemm_simt64_splitk_f32(lk_gemm_params p, const float* __restrict__ a,
                                                             const float* __restrict__ b, float* __restrict__ ws,
                                                             const float* __restrict__ bias,
                                                             const float* __restrict__ y) {
    __shared__ __align__(16) float smem[LK_S3_GROUP_SMEM(64, 64)];
    gemm_simt_warp<64, 64, 2, 2, 1, true>(p, a, b, ws, bias, y, smem);
}

// C[i] = epilogue(α·Σ_{z<splits} ws[z·m·n + i] + β·C[i]) for i = row·n + col: one thread per
// output (grid-stride), the slices read coalesced.
LK_KERNEL void gemm_splitk_reduce_f32(lk_gemm_params p, const float* __restrict__ ws, int32_t splits,
                                      float* __restrict__ c, const float* __restrict__ bias,
                                      const float* __restrict__ y) {
    const int64_t mn = p.m * p.n;
    LK_GRID_STRIDE(i, mn) {
        float acc = 0.0f;
        for (int32_t z = 0; z < splits; ++z) acc += ws[z * mn + i];
        gemm_store(p, i / p.n, i % p.n, acc, c, bias, y);
    }
}

// v16 gemm_simt128_warp_db_f32 and v17 gemm_simt64_warp_db_f32: v3's warp-tiled SIMT tiles with a
// main loop rebuilt so that almost every instruction it issues is an FFMA. One template body, two
// tile configurations, each with the tiles, warp tiles, lane layout and shared memory of its v3
// counterpart:
//   v16 gemm_simt128_warp_db_f32  128×128, 256 threads, 8 warps of 64×32 as 2×4, 8×8 outputs a
//                                 thread, 33 KiB (v3 gemm_simt128_warp_f32)
//   v17 gemm_simt64_warp_db_f32   64×64, 128 threads, 4 warps of 32×32 as 2×2, 4×8 outputs a
//                                 thread, 17 KiB (v3 gemm_simt64_warp_f32)
// Both: BK = 16, k-major shared tiles with rows padded by 4 floats, two stages; each thread loads
// two 4-element chunks of each operand per tile. The loop:
// - fragments double-buffered in registers: the float4 fragments of step kk + 1 are read from
//   shared memory while step kk's FMAs run (64 a thread for 128-tiles, 32 for 64-tiles; and those
//   of the next tile's step 0 right after its barrier, while the tile's last step runs), so the
//   LDS latency hides under FMAs instead of stalling them;
// - addresses computed once: each thread's four global chunks are pointers advanced by a constant
//   per tile, and the shared-memory reads and writes are a per-thread base plus compile-time
//   offsets (the k loop is fully unrolled), so the loop has no per-element index arithmetic;
// - no bounds checks on the hot path: rows of A past m and columns of B past n are clamped to the
//   last one, since they only feed outputs that are never stored; only k must read as zero past
//   its end, which the last (partial) tile alone checks. When an operand's rows are not 16-byte
//   aligned or its contiguous dimension is not a multiple of 4, a second instance loads element by
//   element with the same clamps (correct, not fast);
// - global → shared double buffering with one __syncthreads per 16 k: the next tile's chunks are
//   loaded into registers at the start of a tile and stored into the other buffer before its last
//   step; the barrier there both publishes them and retires the buffer read in the tile before.
// Each output's k order is fixed (ascending k), so results are bitwise reproducible; they are not
// bitwise those of v3 (same order, but ptxas may contract differently), only within the f32 bound.
// SASS (CUDA 13.0, sm_90), one whole 16-k tile of an interior block with 16-byte rows, A and B not
// transposed:
//   v16: 1139 instructions, of which 1024 FFMA (89.9%), 64 LDS.128 and 51 others (4 LDG.128, 8
//   STS + 2 STS.128, 1 BAR); v3 128 issues 1243 (82.4% FFMA: 64 LDS.128 and 155 others, its
//   bounds checks and index arithmetic). 187 registers (sm_80: 175), no spills, one block per SM
//   (with the stage swizzle, sdb_swizzle: 191, sm_80 192, and 0.3-1.6% more instructions a tile);
//   capped at 128 for two blocks per SM it spills ~2.6 KB a thread. H100 (2026-11-27): 44.9
//   TFLOP/s at 4096³, 0.89× cuBLAS.
//   v17: 614 instructions, of which 512 FFMA (83.4%), 48 LDS.128 and 54 others (4 LDG.128, 8
//   STS + 2 STS.128, 1 BAR, 8 MOV of the pointers into the LDG registers, pointer adds, loop
//   control); v3 64 issues 740 (69.2% FFMA: 48 LDS.128 and 180 others). NT / TN / TT: 614 / 604
//   / 613 (v3 64: 705 / 698 / 734). The same per-thread global and shared traffic as v16 for half
//   the FMAs, hence the lower FFMA share. 128 registers on sm_90 (sm_80: 126, sm_86/89: 127; v3
//   64: 113 / 113 / 117; with the stage swizzle 125 / 128 / 127, v3 64 123 / 127 / 123), no
//   spills: 4 blocks (16 warps) per SM, as v3 64. Counts above are before the swizzle. H100 (2026-11-27,
//   fourth run): 28.7 µs at 1024×784×400 (v3 64: 35.3; cuBLAS 23.0).
#define LK_SDB_BK 16
// One stage of BM-wide tiles (floats): the A tile, then the B tile, k-major, rows padded by 4.
#define LK_SDB_STAGE(BM) (LK_SDB_BK * 2 * ((BM) + 4))

namespace {

// The source pointers of a thread's two 4-element chunks of each operand (v16–v22 loops) at k = kb
// (SPLIT; else 0): m/n-contiguous operand (A [k, m], B [k, n]): k rows r_mn (+ RMN), columns from
// m0 / n0 + c_mn; k-contiguous (A [m, k], B [n, k]): rows m0 / n0 + r_k (+ RK), k columns c_k..+3.
// The m / n index is clamped into the matrix (VEC: the contiguous dimension is a multiple of 4, so a
// chunk is wholly inside or outside; else the first element, the rest clamped on copy); ia / ib keep
// it unclamped.
template <int RMN, int RK, bool SPLIT, bool TA, bool TB, bool VEC>
__device__ __forceinline__ void simt_chunk_sources(const lk_gemm_params& p, const float* a, const float* b, int64_t m0,
                                                   int64_t n0, int64_t kb, int r_mn, int c_mn, int r_k, int c_k,
                                                   const float* (&pa)[2], const float* (&pb)[2], int64_t (&ia)[2],
                                                   int64_t (&ib)[2]) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        if (TA) {
            const int64_t col = m0 + c_mn;
            ia[i] = col;
            const int64_t cl = VEC ? (col < p.m - 4 ? col : p.m - 4) : (col < p.m - 1 ? col : p.m - 1);
            pa[i] = a + (int64_t)(r_mn + RMN * i) * p.lda + cl;
        } else {
            const int64_t row = m0 + r_k + RK * i;
            ia[i] = row;
            pa[i] = a + (row < p.m - 1 ? row : p.m - 1) * p.lda + c_k;
        }
        if (TB) {
            const int64_t row = n0 + r_k + RK * i;
            ib[i] = row;
            pb[i] = b + (row < p.n - 1 ? row : p.n - 1) * p.ldb + c_k;
        } else {
            const int64_t col = n0 + c_mn;
            ib[i] = col;
            const int64_t cl = VEC ? (col < p.n - 4 ? col : p.n - 4) : (col < p.n - 1 ? col : p.n - 1);
            pb[i] = b + (int64_t)(r_mn + RMN * i) * p.ldb + cl;
        }
    }
    if (SPLIT) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            pa[i] += TA ? kb * p.lda : kb;
            pb[i] += TB ? kb : kb * p.ldb;
        }
    }
}

// One chunk of 4 elements of a stored operand for the v16-family loaders (v16–v22, v28–v30), at
// `ptr`: `kchunk` is the k index of its first element (k-contiguous) or of its row
// (m/n-contiguous); elements at k ≥ K read as zero (checked only when !full). VEC: one 16-byte
// load. Else k-contiguous: ptr is at the chunk's first k of the clamped row; m/n-contiguous: ptr is
// at the clamped first column (unclamped: mn, of mn_end) and the others clamp one by one.
template <bool VEC>
__device__ __forceinline__ float4 simt_load_chunk(const float* ptr, int64_t mn, int64_t mn_end, bool k_contig,
                                                  int64_t kchunk, int64_t K, bool full) {
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (VEC) {
        if (full || kchunk < K) v = *reinterpret_cast<const float4*>(ptr);
    } else if (k_contig) {
        if (full || kchunk + 0 < K) v.x = ptr[0];
        if (full || kchunk + 1 < K) v.y = ptr[1];
        if (full || kchunk + 2 < K) v.z = ptr[2];
        if (full || kchunk + 3 < K) v.w = ptr[3];
    } else if (full || kchunk < K) {
        const int64_t base = mn < mn_end - 1 ? mn : mn_end - 1;
        const float* row = ptr - base;
        v.x = row[base];
        v.y = row[mn + 1 < mn_end ? mn + 1 : mn_end - 1];
        v.z = row[mn + 2 < mn_end ? mn + 2 : mn_end - 1];
        v.w = row[mn + 3 < mn_end ? mn + 3 : mn_end - 1];
    }
    return v;
}

// The register-fragment loops (v16, v17, v20) over k-major shared tiles: a thread's IM float4 of A
// (32 apart) and IN float4 of B (16 apart) of one k step, from offsets at_a and at_b of the stage.
template <int IM, int IN>
__device__ __forceinline__ void simt_load_frags(float4 (&fa)[IM], float4 (&fb)[IN], const float* stage, int at_a,
                                                int at_b) {
#pragma unroll
    for (int im = 0; im < IM; ++im) fa[im] = *reinterpret_cast<const float4*>(&stage[at_a + im * 32]);
#pragma unroll
    for (int in = 0; in < IN; ++in) fb[in] = *reinterpret_cast<const float4*>(&stage[at_b + in * 16]);
}

// One k step of a thread of the register-fragment loops (v16, v17, v20): acc[i][j] += a_i · b_j over
// the IM float4 of A and IN float4 of B it read from shared memory for the step.
template <int IM, int IN>
__device__ __forceinline__ void simt_fma_step(float (&acc)[IM * 4][IN * 4], const float4 (&fa)[IM],
                                              const float4 (&fb)[IN]) {
    float fav[IM * 4], fbv[IN * 4];
#pragma unroll
    for (int im = 0; im < IM; ++im) {
        fav[im * 4 + 0] = fa[im].x; fav[im * 4 + 1] = fa[im].y;
        fav[im * 4 + 2] = fa[im].z; fav[im * 4 + 3] = fa[im].w;
    }
#pragma unroll
    for (int in = 0; in < IN; ++in) {
        fbv[in * 4 + 0] = fb[in].x; fbv[in * 4 + 1] = fb[in].y;
        fbv[in * 4 + 2] = fb[in].z; fbv[in * 4 + 3] = fb[in].w;
    }
#pragma unroll
    for (int i = 0; i < IM * 4; ++i)
#pragma unroll
        for (int j = 0; j < IN * 4; ++j) acc[i][j] += fav[i] * fbv[j];
}

// The k loop of the v16-family main loops (v16–v22, v28–v31) over k in [0, K) (relative to the
// operands' start), two shared stages of STAGE floats at smem: load_global(k0, full) loads the
// 16-k tile at k0 into registers and moves on (full: no k check), store_shared(stage) stores them,
// load_frags(stage, kk, s) reads step kk's fragments into set s, fma_step(s) multiplies set s.
// - Fragments double-buffered in registers: step kk + 1's are read while step kk's FMAs run (and
//   the next tile's step 0 right after its barrier, while the tile's last step runs).
// - Global → shared double buffering with one __syncthreads per 16 k: the next tile is loaded into
//   registers at the start of a tile and stored into the other stage before its last step; the
//   barrier there both publishes it and retires the stage read in the tile before.
// Ends with a barrier: every warp is done reading the stages, so the epilogue may park in them.
template <int STAGE, typename LoadGlobal, typename StoreShared, typename LoadFrags, typename FmaStep>
__device__ __forceinline__ void simt_db_kloop(int64_t K, float* smem, LoadGlobal&& load_global,
                                              StoreShared&& store_shared, LoadFrags&& load_frags,
                                              FmaStep&& fma_step) {
    constexpr int BK = LK_SDB_BK;
    // Tiles of 16 along k, and how many of them are whole (32-bit counters: k < 2^35, since a
    // row of A alone would otherwise exceed any GPU's memory).
    const int tiles = (int)((K + BK - 1) / BK), full_tiles = (int)(K / BK);
    load_global(0, full_tiles > 0);
    store_shared(smem);
    __syncthreads();
    int rd = 0;  // float offset of the stage being read: 0 or STAGE
    load_frags(smem, 0, 0);
    for (int t = 0; t < tiles; ++t) {
        const bool more = t + 1 < tiles;
        // Two call sites, so that the whole tiles' loads are inlined without any k check.
        if (t + 1 < full_tiles) load_global((int64_t)(t + 1) * BK, true);
        else if (more) load_global((int64_t)(t + 1) * BK, false);
        const float* cur = smem + rd;
        float* nxt = smem + (STAGE - rd);
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            const int s = kk % 2;
            if (kk < BK - 1) {
                load_frags(cur, kk + 1, s ^ 1);
            } else if (more) {
                // The other stage was last read before the previous tile's barrier.
                store_shared(nxt);
                __syncthreads();
                load_frags(nxt, 0, s ^ 1);
            }
            fma_step(s);
        }
        rd = STAGE - rd;
    }
    __syncthreads();
}

// The tiles of the v16-family loop: BM×BM over WARPS_M × WARPS_N warps (warp w at m offset
// (w % WARPS_M)·WM, n offset (w / WARPS_M)·WN), NT threads, each IM × IN float4 fragments of A and B
// a k step ((IM·4) × (IN·4) outputs).
template <int BM, int WARPS_M, int WARPS_N>
struct SimtDbTile {
    static constexpr int BN = BM, NT = WARPS_M * WARPS_N * 32;
    static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N, IM = WM / 32, IN = WN / 16;
    static_assert(WM % 32 == 0 && WN % 16 == 0, "warp tile must be a multiple of 32×16");
    static_assert(WARPS_M * WARPS_N * 32 * (WN + 1) <= 2 * LK_SDB_STAGE(BM),
                  "the epilogue's parking space must fit the stages");
};

// The main loop of v16-family blocks: the raw sums over k in [kb, kb + K) of the BM×BM tile at
// (m0, n0) into acc (the block's threads must number a quarter of a tile's elements per 16 k: two
// chunks of each operand a thread). SPLIT: kb may be nonzero (the pointers start there and k
// counts from there); else kb is 0. Ends with a barrier: the stages are free for the epilogue.
template <int BM, int WARPS_M, int WARPS_N, bool SPLIT, bool TA, bool TB, bool VEC>
__device__ __forceinline__ void simt_db_mainloop(
    const lk_gemm_params& p, const float* __restrict__ a, const float* __restrict__ b, int64_t m0, int64_t n0,
    int64_t kb, int64_t K,
    float (&acc)[SimtDbTile<BM, WARPS_M, WARPS_N>::IM * 4][SimtDbTile<BM, WARPS_M, WARPS_N>::IN * 4], float* smem) {
    using Tile = SimtDbTile<BM, WARPS_M, WARPS_N>;
    constexpr int BK = LK_SDB_BK, S = BM + 4, STAGE = LK_SDB_STAGE(BM);
    constexpr int NT = Tile::NT, WM = Tile::WM, WN = Tile::WN, IM = Tile::IM, IN = Tile::IN;
    // Chunks of 4 elements: BM / 4 to a k row of an m/n-contiguous operand, BK / 4 to a row of a
    // k-contiguous one; RMN, RK: the rows between a thread's two chunks in each case.
    constexpr int CPR = BM / 4, RMN = NT / CPR, RK = NT / (BK / 4);
    static_assert(2 * NT * 4 == BM * BK && NT % CPR == 0, "two chunks of each operand a thread");

    const int tid = threadIdx.x;
    const int warp = tid / 32, lane = tid % 32;
    const int wm0 = (warp % WARPS_M) * WM, wn0 = (warp / WARPS_M) * WN;
    const int lm = lane / 4, ln = lane % 4;

    // This thread's chunks of 4 elements (e = tid and tid + NT of the tile's 2·NT):
    // - operand stored with m (n) contiguous (A [k, m], B [k, n]): k row r_mn (+ RMN), columns c_mn..+3;
    // - operand stored with k contiguous (A [m, k], B [n, k]): row r_k (+ RK), k columns c_k..+3.
    const int r_mn = tid / CPR, c_mn = (tid % CPR) * 4;
    const int r_k = tid / 4, c_k = (tid % 4) * 4;
    // The stages are swizzled (sdb_swizzle): a chunk's k row, or its 4 k rows, lie in one half of
    // a 16-k tile, so one XOR places the whole chunk.

    // Stored coordinates of each chunk at k = kb, with the m / n index clamped into the matrix.
    const float* pa[2];
    const float* pb[2];
    int64_t ia[2], ib[2];  // the m / n index of the chunk (scalar path: per-element clamps)
    simt_chunk_sources<RMN, RK, SPLIT, TA, TB, VEC>(p, a, b, m0, n0, kb, r_mn, c_mn, r_k, c_k, pa, pb, ia, ib);
    const int64_t step_a = TA ? BK * p.lda : BK, step_b = TB ? BK : BK * p.ldb;

    float4 ga[2], gb[2];
    // Loads the tile at k0 into ga / gb and advances the pointers to the next tile.
    auto load_global = [&](int64_t k0, bool full) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            ga[i] = simt_load_chunk<VEC>(pa[i], ia[i], p.m, !TA, TA ? k0 + r_mn + RMN * i : k0 + c_k, K, full);
            gb[i] = simt_load_chunk<VEC>(pb[i], ib[i], p.n, TB, TB ? k0 + c_k : k0 + r_mn + RMN * i, K, full);
            pa[i] += step_a;
            pb[i] += step_b;
        }
    };
    // Stores ga / gb k-major into the stage at `st` (A tile, then B tile).
    auto store_shared = [&](float* st) {
        float* as = st;
        float* bs = st + BK * S;
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int mn_at = (r_mn + RMN * i) * S + (c_mn ^ sdb_swizzle(r_mn + RMN * i));
            const int k_at = c_k * S + ((r_k + RK * i) ^ sdb_swizzle(c_k));
            if (TA) {
                *reinterpret_cast<float4*>(&as[mn_at]) = ga[i];
            } else {
                as[k_at + 0 * S] = ga[i].x;
                as[k_at + 1 * S] = ga[i].y;
                as[k_at + 2 * S] = ga[i].z;
                as[k_at + 3 * S] = ga[i].w;
            }
            if (TB) {
                bs[k_at + 0 * S] = gb[i].x;
                bs[k_at + 1 * S] = gb[i].y;
                bs[k_at + 2 * S] = gb[i].z;
                bs[k_at + 3 * S] = gb[i].w;
            } else {
                *reinterpret_cast<float4*>(&bs[mn_at]) = gb[i];
            }
        }
    };

#pragma unroll
    for (int i = 0; i < IM * 4; ++i)
#pragma unroll
        for (int j = 0; j < IN * 4; ++j) acc[i][j] = 0.0f;

    // Fragments: fa[s] / fb[s] hold step kk's values for s = kk % 2.
    float4 fa[2][IM], fb[2][IN];
    const int frag_a = wm0 + lm * 4, frag_b = wn0 + ln * 4;  // columns in a k row of the tiles
    auto load_frags = [&](const float* st, int kk, int s) {
        simt_load_frags<IM, IN>(fa[s], fb[s], st, kk * S + (frag_a ^ sdb_swizzle(kk)),
                                BK * S + kk * S + (frag_b ^ sdb_swizzle(kk)));
    };

    simt_db_kloop<STAGE>(K, smem, load_global, store_shared, load_frags,
                         [&](int s) { simt_fma_step<IM, IN>(acc, fa[s], fb[s]); });
}

// The epilogue of v16-family blocks, as v3's: the tile at (m0, n0) parked warp by warp in the
// stages and stored (SPLIT: the raw sums into workspace slice blockIdx.z).
template <int BM, int WARPS_M, int WARPS_N, bool SPLIT>
__device__ __forceinline__ void simt_db_store(
    const lk_gemm_params& p,
    const float (&acc)[SimtDbTile<BM, WARPS_M, WARPS_N>::IM * 4][SimtDbTile<BM, WARPS_M, WARPS_N>::IN * 4],
    int64_t m0, int64_t n0, float* __restrict__ c, const float* __restrict__ bias, const float* __restrict__ y,
    float* smem) {
    using Tile = SimtDbTile<BM, WARPS_M, WARPS_N>;
    const int tid = threadIdx.x;
    const int warp = tid / 32, lane = tid % 32;
    const int wm0 = (warp % WARPS_M) * Tile::WM, wn0 = (warp / WARPS_M) * Tile::WN;
    const int lm = lane / 4, ln = lane % 4;
    simt_park_and_store<Tile::IM, Tile::IN, Tile::WN, SPLIT>(acc, smem + warp * 32 * (Tile::WN + 1), p, lane, lm, ln,
                                                             m0 + wm0, n0 + wn0, c, bias, y);
}

// One v16-family block: the tile at blockIdx (y, x); SPLIT (v18, v19, v22): k in [kb, kb + K) only,
// range z = blockIdx.z of p.k_split elements (a multiple of BK), raw sums to the workspace.
template <int BM, int WARPS_M, int WARPS_N, bool SPLIT, bool TA, bool TB, bool VEC>
__device__ __forceinline__ void gemm_simt_db_body(const lk_gemm_params& p, const float* __restrict__ a,
                                                  const float* __restrict__ b, float* __restrict__ c,
                                                  const float* __restrict__ bias, const float* __restrict__ y,
                                                  float* smem) {
    using Tile = SimtDbTile<BM, WARPS_M, WARPS_N>;
    const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BM;
    const int64_t kb = SPLIT ? (int64_t)blockIdx.z * p.k_split : 0;
    const int64_t K = SPLIT ? (kb + p.k_split < p.k ? p.k_split : p.k - kb) : p.k;
    float acc[Tile::IM * 4][Tile::IN * 4];
    simt_db_mainloop<BM, WARPS_M, WARPS_N, SPLIT, TA, TB, VEC>(p, a, b, m0, n0, kb, K, acc, smem);
    simt_db_store<BM, WARPS_M, WARPS_N, SPLIT>(p, acc, m0, n0, c, bias, y, smem);
}

// Calls body(TA, TB, VEC), each an lk::Flag, for the layout of p's operands: TA / TB the transposes,
// VEC when both operands' rows are 16-byte aligned and each one's contiguous dimension (A: m if
// stored [k, m], else k; B: k if stored [n, k], else n) is a multiple of 4. One kernel per tile
// configuration; the transposes are a runtime choice among four instances (eight with the
// element-wise loads).
template <typename Body>
__device__ __forceinline__ void simt_db_layouts(const lk_gemm_params& p, const float* a, const float* b, Body&& body) {
    lk::with_transposes(p, [&](auto ta, auto tb) {
        const bool vec = lk::rows_16b_aligned(a, p.lda, 4) && lk::rows_16b_aligned(b, p.ldb, 4) &&
                         (decltype(ta)::value ? p.m : p.k) % 4 == 0 && (decltype(tb)::value ? p.k : p.n) % 4 == 0;
        if (vec) body(ta, tb, lk::Flag<true>{});
        else body(ta, tb, lk::Flag<false>{});
    });
}

// A v16-family kernel's blocks, one tile each (gemm_simt_db_body).
template <int BM, int WARPS_M, int WARPS_N, bool SPLIT = false>
__device__ __forceinline__ void gemm_simt_db(const lk_gemm_params& p, const float* a, const float* b, float* c,
                                             const float* bias, const float* y, float* smem) {
    simt_db_layouts(p, a, b, [&](auto ta, auto tb, auto vec) {
        gemm_simt_db_body<BM, WARPS_M, WARPS_N, SPLIT, decltype(ta)::value, decltype(tb)::value, decltype(vec)::value>(
            p, a, b, c, bias, y, smem);
    });
}

}  // namespace

LK_KERNEL void __launch_bounds__(256) gemm_simt128_warp_db_f32(lk_gemm_params p, const float* __restrict__ a,
                                                               const float* __restrict__ b, float* __restrict__ c,
                                                               const float* __restrict__ bias,
                                                               const float* __restrict__ y) {
    __shared__ __align__(16) float smem[2 * LK_SDB_STAGE(128)];
    gemm_simt_db<128, 2, 4>(p, a, b, c, bias, y, smem);
}

LK_KERNEL void __launch_bounds__(128) gemm_simt64_warp_db_f32(lk_gemm_params p, const float* __restrict__ a,
                                                              const float* __restrict__ b, float* __restrict__ c,
                                                              const float* __restrict__ bias,
                                                              const float* __restrict__ y) {
    __shared__ __align__(16) float smem[2 * LK_SDB_STAGE(64)];
    gemm_simt_db<64, 2, 2>(p, a, b, c, bias, y, smem);
}

// v18 gemm_simt64_warp_db_splitk_f32 (+ gemm_splitk_reduce_f32): v17's 64-tiles and main loop with
// v4's split-k: block (x, y, z) sums k in [z·k_split, (z + 1)·k_split) of tile (y, x) and writes the
// raw sum to slice z of the [splits, m, n] workspace, which the reduce kernel adds in order z = 0,
// 1, ... and applies the epilogue to. For the long-k products whose output is a few dozen 64-tiles
// (the dW = dYᵀX of a batch of 8192: 400×784×8192, 91 tiles), where v4 runs v3's loop.
LK_KERNEL void __launch_bounds__(128) gemm_simt64_warp_db_splitk_f32(lk_gemm_params p, const float* __restrict__ a,
                                                                     const float* __restrict__ b,
                                                                     float* __restrict__ ws,
                                                                     const float* __restrict__ bias,
                                                                     const float* __restrict__ y) {
    __shared__ __align__(16) float smem[2 * LK_SDB_STAGE(64)];
    gemm_simt_db<64, 2, 2, true>(p, a, b, ws, bias, y, smem);
}

// The parameters of the one-launch split-k kernels (v19, v21, v22): the GEMM's, then the
// workspace of the k ranges' sums and its per-tile arrival counts.
#define LK_GEMM_SPLITK_FUSED_PARAMS                                                                    \
    lk_gemm_params p, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c, \
        const float* __restrict__ bias, const float* __restrict__ y, float* __restrict__ ws,          \
        uint32_t* __restrict__ tile_counts

namespace {

// v19, v21, v22, v31: after the block's raw sums went to slice blockIdx.z of the workspace (SPLIT
// epilogue), counts the block in on its BM×BN output tile; the tile's last block adds the slices in
// order z = 0, 1, ..., applies the epilogue and zeroes the count (the pattern of the CUDA samples'
// threadFenceReduction: each thread's workspace stores are fenced before the count, and the last
// block reads the slices from L2, past its own L1). NT threads; `smem`: 32·NT floats (16·NT when a
// thread's share of the tile is not a multiple of 32), free (the epilogue's last barrier is behind).
template <int BM, int BN, int NT>
__device__ __forceinline__ void splitk_last_block_adds(const lk_gemm_params& p, float* __restrict__ c,
                                                       const float* __restrict__ bias, const float* __restrict__ y,
                                                       const float* __restrict__ ws, uint32_t* __restrict__ tile_counts,
                                                       float* smem) {
    // Thread t sums outputs t + NT·i of the tile (row-major, so each i reads coalesced), slice by
    // slice, CH outputs at a time: CH independent loads in flight per thread, one L2 round trip per
    // slice and chunk. When NT is a multiple of BN each thread keeps one column: rows RS apart.
    constexpr int PER = BM * BN / NT, CH = PER % 32 == 0 ? 32 : 16, CHUNKS = PER / CH;
    constexpr bool ONE_COL = NT % BN == 0;
    constexpr int RS = ONE_COL ? NT / BN : 0;  // ONE_COL: the rows between a thread's outputs
    static_assert(BM * BN % NT == 0 && PER % CH == 0, "whole chunks of outputs a thread");
    __shared__ bool last;
    __threadfence();  // this thread's slice stores are visible GPU-wide before the block counts
    __syncthreads();
    const uint32_t tile = blockIdx.y * gridDim.x + blockIdx.x;
    if (threadIdx.x == 0) last = atomicAdd(&tile_counts[tile], 1u) == gridDim.z - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();  // the other blocks' slices, counted before ours, are read after the count
    const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN, mn = p.m * p.n;
#pragma unroll 1
    for (int h = 0; h < CHUNKS; ++h) {
        // The thread's outputs i of this chunk, rows row[i] and columns col[i] of C (those outside
        // C are read clamped to its last row / column, and not stored).
        int64_t row[CH], col[CH];
        if constexpr (ONE_COL) {
            const int64_t rh = m0 + threadIdx.x / BN + RS * CH * h, cc = n0 + threadIdx.x % BN;
#pragma unroll
            for (int i = 0; i < CH; ++i) {
                row[i] = rh + RS * i;
                col[i] = cc;
            }
        } else {
#pragma unroll
            for (int i = 0; i < CH; ++i) {
                const int e = (int)threadIdx.x + NT * (CH * h + i);
                row[i] = m0 + e / BN;
                col[i] = n0 + e % BN;
            }
        }
        float acc[CH];
#pragma unroll
        for (int i = 0; i < CH; ++i) acc[i] = 0.0f;
        for (uint32_t z = 0; z < gridDim.z; ++z) {
            const float* slice = ws + z * mn;
#pragma unroll
            for (int i = 0; i < CH; ++i)
                acc[i] += __ldcg(slice + (row[i] < p.m ? row[i] : p.m - 1) * p.n + (col[i] < p.n ? col[i] : p.n - 1));
        }
        // Through shared memory (each thread reads back only its own outputs, so no barrier), so
        // that one non-unrolled copy of the epilogue code stores them.
#pragma unroll
        for (int i = 0; i < CH; ++i) smem[threadIdx.x + NT * i] = acc[i];
#pragma unroll 1
        for (int i = 0; i < CH; ++i) {
            int64_t r, cc;
            if constexpr (ONE_COL) {
                r = m0 + threadIdx.x / BN + RS * (CH * h + i);
                cc = n0 + threadIdx.x % BN;
            } else {
                const int e = (int)threadIdx.x + NT * (CH * h + i);
                r = m0 + e / BN;
                cc = n0 + e % BN;
            }
            if (r < p.m && cc < p.n) gemm_store(p, r, cc, smem[threadIdx.x + NT * i], c, bias, y);
        }
    }
    if (threadIdx.x == 0) tile_counts[tile] = 0;
}

}  // namespace

// v19 gemm_simt64_warp_db_splitk_fused_f32: v18 without the second launch. Each block writes its
// k range's raw sums to slice z of the workspace as v18 does, then counts itself in on its tile's
// counter (one u32 per output tile, zero between GEMMs); the block that counts last adds the
// tile's slices in order z = 0, 1, ... (the reduce kernel's order: v19 and v18 agree bit for bit),
// applies the epilogue, and zeroes the counter for the next GEMM (or the next replay of a captured
// graph): splitk_last_block_adds. For the small products whose k is what can be split (128×400×784
// at a batch of 128), where v4 pays a second launch for its reduction.
// Bounded to 4 blocks per SM: 128 registers, as v17 and v18 (unbounded, the fix-up's 32 sums took
// it to 168, 3 blocks per SM).
LK_KERNEL void __launch_bounds__(128, 4) gemm_simt64_warp_db_splitk_fused_f32(LK_GEMM_SPLITK_FUSED_PARAMS) {
    __shared__ __align__(16) float smem[2 * LK_SDB_STAGE(64)];
    gemm_simt_db<64, 2, 2, true>(p, a, b, ws, bias, y, smem);
    splitk_last_block_adds<64, 64, 128>(p, c, bias, y, ws, tile_counts, smem);
}

// v22 gemm_simt128_warp_db_splitk_fused_f32: v16's 128-tiles and main loop (256 threads, one block
// per SM) with v19's one-launch split-k. For the long-k products whose output is a few dozen
// 128-tiles: the dW = dYᵀX of a batch of 1024 or 8192 (400×784: 28 tiles), where v16's loop, the
// most FFMA-dense here, would otherwise run on a fifth of the SMs. The number of k ranges is
// chosen to fill whole waves of one block per SM (ops::gemm::splitk_splits_waves): 400×784×8192
// on 132 SMs takes 9 ranges, 252 blocks in two waves.
LK_KERNEL void __launch_bounds__(256) gemm_simt128_warp_db_splitk_fused_f32(LK_GEMM_SPLITK_FUSED_PARAMS) {
    __shared__ __align__(16) float smem[2 * LK_SDB_STAGE(128)];
    gemm_simt_db<128, 2, 4, true>(p, a, b, ws, bias, y, smem);
    splitk_last_block_adds<128, 128, 256>(p, c, bias, y, ws, tile_counts, smem);
}

// v28 gemm_simt128_warp_db_streamk_f32 and v29 gemm_simt64_warp_db_streamk_f32: stream-K (Osama et
// al., 2023) over the main loop of v16 (128-tiles, 256 threads, one block per SM) and v17
// (64-tiles, 128 threads, four per SM), for outputs whose tiles don't come in whole waves: the
// 784↔400 products of a batch of 1024 (1024×400×784: 32 128-tiles on 132 SMs, so v16 runs on a
// quarter of them and v17's 112 64-tiles on 85%) and 8192×784×400 (448 128-tiles: 3.4 waves).
//   C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), as every kernel here.
// Work split: the grid is the GPU's resident blocks (ops::gemm::streamk_blocks). The product's
// units, (tile, 16-k step) pairs numbered tile by tile (tiles row-major, steps ascending), are
// dealt out in equal contiguous ranges, one per block: each block does the same number of FMAs
// whatever the tile count. A block walks its range from the top down, one tile segment at a time
// (one v16/v17 main loop each):
// - a whole tile: stored with the epilogue, as v16 / v17 do;
// - a segment that stops short of its tile's last step (at most one a block: the top of its range,
//   which it does first): its raw sums go to the block's slot of the workspace (BM² floats, each
//   thread's accumulators as float4, coalesced) and the block raises its flag;
// - a segment that holds the tile's last step but not its first (at most one: the bottom of its
//   range, which it does last): the block waits for the flags of the lower blocks that hold the
//   tile's earlier steps (those did them first, so the wait is short) and lowers them, adds their
//   slots to its registers, from the block below down, then stores with the epilogue.
// A block only waits on blocks with lower tickets (an atomic counter each block takes on start,
// as CUB's decoupled look-back takes its tile ids), which started before it and wait on none above
// them: no deadlock even if fewer blocks fit than were launched. Each output's sum order is fixed
// by (m, n, k and the grid), so results are reproducible run to run. Flags: the backend's tile
// counters, [0] the ticket counter (the last ticket resets it), [1 + j] block j's slot is full;
// all zero between launches. The spin traps after 2^38 clocks (minutes), a hang made an error.
namespace {

// Block g's segment that ends at unit `end`, and the numbers it derives from (units in 32 bits: the
// launcher refuses products of 2^31 units or more).
struct StreamkSegment {
    int units;          // of the product
    int per;            // a block's
    int lo;             // the block's first
    int steps;          // a tile's (16-k steps)
    int tile, tile_lo;  // the tile, and its first unit
    int start;          // the segment: units [start, end)
    int64_t m0, n0;     // the tile's first row and column
};
template <int BM>
__device__ __forceinline__ StreamkSegment streamk_segment(const lk_gemm_params& p, int g, int end) {
    StreamkSegment s;
    const int tiles_n = (int)((p.n + BM - 1) / BM);
    s.steps = (int)((p.k + LK_SDB_BK - 1) / LK_SDB_BK);
    s.units = (int)((p.m + BM - 1) / BM) * tiles_n * s.steps;
    s.per = (s.units + (int)gridDim.x - 1) / (int)gridDim.x;
    s.lo = g * s.per;
    s.tile = (end - 1) / s.steps;
    s.tile_lo = s.tile * s.steps;
    s.start = s.lo > s.tile_lo ? s.lo : s.tile_lo;
    s.m0 = (int64_t)(s.tile / tiles_n) * BM;
    s.n0 = (int64_t)(s.tile % tiles_n) * BM;
    return s;
}

template <int BM, int WARPS_M, int WARPS_N, bool TA, bool TB, bool VEC>
__device__ __forceinline__ void gemm_simt_db_streamk_body(const lk_gemm_params& p, const float* __restrict__ a,
                                                          const float* __restrict__ b, float* __restrict__ c,
                                                          const float* __restrict__ bias,
                                                          const float* __restrict__ y, float* __restrict__ ws,
                                                          uint32_t* __restrict__ flags, float* smem) {
    using Tile = SimtDbTile<BM, WARPS_M, WARPS_N>;
    constexpr int NT = Tile::NT, IN = Tile::IN, Q = Tile::IM * 4 * Tile::IN;  // Q: float4 of sums a thread
    // The block's ticket, and the end of its segment `it` at [it % 2] (thread 0 writes the next one
    // while the others may still read this one). A segment's numbers are recomputed from these
    // after the main loop rather than held in registers across it (v29 would spill at 128).
    __shared__ int ticket, seg_end[2];
    const auto shared_int = [](const int& v) { return *reinterpret_cast<const volatile int*>(&v); };
    if (threadIdx.x == 0) {
        const uint32_t t = atomicAdd(&flags[0], 1u);
        if (t == gridDim.x - 1) atomicExch(&flags[0], 0u);  // every block holds its ticket
        ticket = (int)t;
        const StreamkSegment s = streamk_segment<BM>(p, (int)t, 1);  // (any end: only lo, per, units)
        seg_end[0] = s.lo + s.per < s.units ? s.lo + s.per : s.units;
    }
    __syncthreads();
    float4* const slots = reinterpret_cast<float4*>(ws);
    for (int it = 0;; ++it) {
        if (it > 0) __syncthreads();  // seg_end[it % 2] is written; the last epilogue is done with the stages
        float acc[Tile::IM * 4][IN * 4];
        {
            const int end = shared_int(seg_end[it & 1]);
            const StreamkSegment s = streamk_segment<BM>(p, shared_int(ticket), end);
            if (end <= s.lo) break;
            const int64_t kb = (int64_t)(s.start - s.tile_lo) * LK_SDB_BK;
            const int64_t ke = (int64_t)(end - s.tile_lo) * LK_SDB_BK;
            simt_db_mainloop<BM, WARPS_M, WARPS_N, true, TA, TB, VEC>(p, a, b, s.m0, s.n0, kb,
                                                                      (ke < p.k ? ke : p.k) - kb, acc, smem);
        }
        const int g = shared_int(ticket), end = shared_int(seg_end[it & 1]);
        const StreamkSegment s = streamk_segment<BM>(p, g, end);
        if (threadIdx.x == 0) seg_end[(it + 1) & 1] = s.start;
        if (end - s.tile_lo < s.steps) {
            // The tile's later steps are another block's: park the raw sums in this block's slot.
            float4* slot = slots + (int64_t)g * (Q * NT) + threadIdx.x;
#pragma unroll
            for (int q = 0; q < Q; ++q) {
                const float* r = &acc[q / IN][(q % IN) * 4];
                slot[q * NT] = make_float4(r[0], r[1], r[2], r[3]);
            }
            __threadfence();  // this thread's sums are visible GPU-wide before the flag
            __syncthreads();
            if (threadIdx.x == 0) atomicExch(&flags[1 + g], 1u);
            continue;
        }
        if (s.start > s.tile_lo) {
            // The tile's earlier steps are in the slots of blocks j0 .. g - 1.
            const int j0 = s.tile_lo / s.per;
            if (threadIdx.x == 0) {
                const long long t0 = clock64();
                for (int j = j0; j < g; ++j) {
                    while (*reinterpret_cast<volatile uint32_t*>(&flags[1 + j]) == 0u) {
                        __nanosleep(64);
                        if (clock64() - t0 > (1ll << 38)) __trap();
                    }
                    flags[1 + j] = 0u;
                }
                __threadfence();  // the slots are read after the flags
            }
            __syncthreads();
            for (int j = g - 1; j >= j0; --j) {
                const float4* slot = slots + (int64_t)j * (Q * NT) + threadIdx.x;
#pragma unroll
                for (int q = 0; q < Q; ++q) {
                    const float4 v = __ldcg(slot + q * NT);
                    float* r = &acc[q / IN][(q % IN) * 4];
                    r[0] += v.x;
                    r[1] += v.y;
                    r[2] += v.z;
                    r[3] += v.w;
                }
            }
        }
        simt_db_store<BM, WARPS_M, WARPS_N, false>(p, acc, s.m0, s.n0, c, bias, y, smem);
    }
}

template <int BM, int WARPS_M, int WARPS_N>
__device__ __forceinline__ void gemm_simt_db_streamk(LK_GEMM_SPLITK_FUSED_PARAMS, float* smem) {
    simt_db_layouts(p, a, b, [&](auto ta, auto tb, auto vec) {
        gemm_simt_db_streamk_body<BM, WARPS_M, WARPS_N, decltype(ta)::value, decltype(tb)::value, decltype(vec)::value>(
            p, a, b, c, bias, y, ws, tile_counts, smem);
    });
}

}  // namespace

LK_KERNEL void __launch_bounds__(256, 1) gemm_simt128_warp_db_streamk_f32(LK_GEMM_SPLITK_FUSED_PARAMS) {
    __shared__ __align__(16) float smem[2 * LK_SDB_STAGE(128)];
    gemm_simt_db_streamk<128, 2, 4>(p, a, b, c, bias, y, ws, tile_counts, smem);
}

LK_KERNEL void __launch_bounds__(128, 4) gemm_simt64_warp_db_streamk_f32(LK_GEMM_SPLITK_FUSED_PARAMS) {
    __shared__ __align__(16) float smem[2 * LK_SDB_STAGE(64)];
    gemm_simt_db_streamk<64, 2, 2>(p, a, b, c, bias, y, ws, tile_counts, smem);
}

// v20 gemm_simt64_async_f32 and v21 gemm_simt64_async_splitk_fused_f32: v17's 64×64 tiles, warp
// tiles, lane layout and fragment loop, fed by a 4-stage cp.async ring instead of v17's register
// double buffering, so that three 16-k tiles are in flight while one is multiplied. For the
// products that wait on memory latency rather than on FMAs: outputs of a few tiles per SM with
// k split into short ranges (v21: v19's split-k and last-block reduction), or a short k (the
// dW = dYᵀX of a batch of 128: k = 128, 8 tiles, which v17 loads one round trip at a time).
//   C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), as every kernel here.
// Work split: as v17 (128 threads, 4 warps of 32×32 as 2×2, 4×8 outputs a thread). Copies: each
// thread copies two 4-element chunks of each operand per tile, at v17's chunk coordinates; shared
// tiles are k-major (A [16][64 + 4], B likewise), so a chunk of an m/n-contiguous operand is one
// 16-byte cp.async and a chunk of a k-contiguous one four 4-byte cp.async (the transpose). m / n
// edges are clamped as in v17 (those rows only feed outputs that are not stored); k ≥ K copies
// nothing and zero-fills (src-size 0), in the last partial tile only. Operands whose rows are not
// 16-byte aligned, or whose contiguous dimension is not a multiple of 4, copy every element with a
// 4-byte cp.async (clamped one by one). Ring: tile t lands in stage t % 4; one wait + barrier per
// tile, after which the stage read in tile t − 1 is refilled with tile t + 3 (a commit per tile,
// empty past the end, keeps the wait count uniform). Each output sums k in ascending order.
// Shared memory: 4 stages × 2 × 16 × 68 floats = 34 KiB (static), reused by the epilogue.
#define LK_SAS_STAGES 4


namespace {

template <bool SPLIT, bool TA, bool TB, bool VEC>
__device__ __forceinline__ void gemm_simt_async_body(const lk_gemm_params& p, const float* __restrict__ a,
                                                     const float* __restrict__ b, float* __restrict__ c,
                                                     const float* __restrict__ bias, const float* __restrict__ y,
                                                     float* smem) {
#if LK_CP_ASYNC_SUPPORTED
    constexpr int BM = 64, BN = 64, BK = LK_SDB_BK, S = BM + 4, STAGE = LK_SDB_STAGE(BM), ST = LK_SAS_STAGES;
    constexpr int WARPS_M = 2, NT = 128;
    constexpr int WM = 32, WN = 32, IM = WM / 32, IN = WN / 16;
    constexpr int CPR = BM / 4, RMN = NT / CPR, RK = NT / (BK / 4);

    const int tid = threadIdx.x;
    const int warp = tid / 32, lane = tid % 32;
    const int wm0 = (warp % WARPS_M) * WM, wn0 = (warp / WARPS_M) * WN;
    const int lm = lane / 4, ln = lane % 4;
    const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
    // SPLIT (v21): k in [kb, kb + K) only, as v18.
    const int64_t kb = SPLIT ? (int64_t)blockIdx.z * p.k_split : 0;
    const int64_t K = SPLIT ? (kb + p.k_split < p.k ? p.k_split : p.k - kb) : p.k;

    // This thread's chunks, at v17's coordinates: m/n-contiguous operand: k row r_mn (+ RMN),
    // columns c_mn..+3; k-contiguous: row r_k (+ RK), k columns c_k..+3. Source pointers at k = kb,
    // m / n clamped (VEC: whole chunks; else the chunk's first element, the rest clamped on copy).
    const int r_mn = tid / CPR, c_mn = (tid % CPR) * 4;
    const int r_k = tid / 4, c_k = (tid % 4) * 4;
    // The stages are swizzled (sdb_swizzle): a chunk's k row, or its 4 k rows, lie in one half of
    // a 16-k tile, so one XOR places the whole chunk.
    const float* pa[2];
    const float* pb[2];
    int64_t ia[2], ib[2];  // the m / n index of each chunk's first element
    simt_chunk_sources<RMN, RK, SPLIT, TA, TB, VEC>(p, a, b, m0, n0, kb, r_mn, c_mn, r_k, c_k, pa, pb, ia, ib);
    const int64_t step_a = TA ? BK * p.lda : BK, step_b = TB ? BK : BK * p.ldb;

    // One chunk into shared memory: `dst` its first element's place, `dstep` the floats between
    // its elements there (1: m/n-contiguous; S: k-contiguous, transposed). `kk0`: the k (relative
    // to kb) of its first element (k-contiguous) or of its row; nothing past K is read, and a copy
    // that reads nothing is given the operand's base `safe` (an address inside the matrix).
    auto copy_chunk = [&](float* dst, int dstep, const float* src, const float* safe, int64_t mn, int64_t mn_end,
                          bool k_contig, int64_t kk0, bool full) {
        if (!k_contig) {
            const bool in_k = full || kk0 < K;
            if (VEC) {
                cp_async_16(dst, in_k ? src : safe, in_k ? 16 : 0);
            } else {
                // src is at the clamped first column; the others clamp one by one
                const int64_t base = mn < mn_end - 1 ? mn : mn_end - 1;
                const float* row = src - base;
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int64_t e = mn + j < mn_end ? mn + j : mn_end - 1;
                    cp_async_4(dst + j, in_k ? row + e : safe, in_k ? 4 : 0);
                }
            }
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const bool in_k = full || kk0 + j < K;
                cp_async_4(dst + j * dstep, in_k ? src + j : safe, in_k ? 4 : 0);
            }
        }
    };
    // Copies the tile at k0 (relative to kb) into the stage at `st` and advances the pointers.
    auto copy_tile = [&](float* st, int64_t k0, bool full) {
        float* as = st;
        float* bs = st + BK * S;
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int mn_at = (r_mn + RMN * i) * S + (c_mn ^ sdb_swizzle(r_mn + RMN * i));
            const int k_at = c_k * S + ((r_k + RK * i) ^ sdb_swizzle(c_k));
            if (TA) copy_chunk(&as[mn_at], 1, pa[i], a, ia[i], p.m, false, k0 + r_mn + RMN * i, full);
            else copy_chunk(&as[k_at], S, pa[i], a, ia[i], p.m, true, k0 + c_k, full);
            if (TB) copy_chunk(&bs[k_at], S, pb[i], b, ib[i], p.n, true, k0 + c_k, full);
            else copy_chunk(&bs[mn_at], 1, pb[i], b, ib[i], p.n, false, k0 + r_mn + RMN * i, full);
            pa[i] += step_a;
            pb[i] += step_b;
        }
    };

    float acc[IM * 4][IN * 4];
#pragma unroll
    for (int i = 0; i < IM * 4; ++i)
#pragma unroll
        for (int j = 0; j < IN * 4; ++j) acc[i][j] = 0.0f;
    float4 fa[2][IM], fb[2][IN];
    const int frag_a = wm0 + lm * 4, frag_b = wn0 + ln * 4;  // columns in a k row of the tiles
    auto load_frags = [&](const float* st, int kk, int s) {
        simt_load_frags<IM, IN>(fa[s], fb[s], st, kk * S + (frag_a ^ sdb_swizzle(kk)),
                                BK * S + kk * S + (frag_b ^ sdb_swizzle(kk)));
    };

    const int tiles = (int)((K + BK - 1) / BK), full_tiles = (int)(K / BK);
    // Tiles 0 .. ST − 2 into stages 0 .. ST − 2 (a commit each, empty past the end).
#pragma unroll
    for (int t = 0; t < ST - 1; ++t) {
        if (t < tiles) copy_tile(smem + t * STAGE, (int64_t)t * BK, t < full_tiles);
        cp_async_commit();
    }
    int rd = 0, wr = (ST - 1) * STAGE;  // float offsets of the stage read now and of the one refilled next
    for (int t = 0; t < tiles; ++t) {
        cp_async_wait<ST - 2>();
        __syncthreads();  // tile t is in for every thread; every warp is done with tile t − 1's stage
        {
            const int next = t + ST - 1;
            // Two call sites, so that the whole tiles' copies are inlined without any k check.
            if (next < full_tiles) copy_tile(smem + wr, (int64_t)next * BK, true);
            else if (next < tiles) copy_tile(smem + wr, (int64_t)next * BK, false);
            cp_async_commit();
        }
        const float* cur = smem + rd;
        rd = rd == (ST - 1) * STAGE ? 0 : rd + STAGE;
        wr = wr == (ST - 1) * STAGE ? 0 : wr + STAGE;
        load_frags(cur, 0, 0);
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            const int s = kk % 2;
            if (kk < BK - 1) load_frags(cur, kk + 1, s ^ 1);
            simt_fma_step<IM, IN>(acc, fa[s], fb[s]);
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // every warp is done with the stages: the epilogue parks in them

    simt_park_and_store<IM, IN, WN, SPLIT>(acc, smem + warp * 32 * (WN + 1), p, lane, lm, ln, m0 + wm0, n0 + wn0, c, bias, y);
#else
    __trap();
#endif
}

template <bool SPLIT>
__device__ __forceinline__ void gemm_simt_async(const lk_gemm_params& p, const float* a, const float* b, float* c,
                                                const float* bias, const float* y, float* smem) {
    // VEC as in v17, decided once before the layout dispatch (simt_db_layouts decides it per layout,
    // which costs this kernel two registers on sm_80).
    const bool vec = lk::rows_16b_aligned(a, p.lda, 4) && lk::rows_16b_aligned(b, p.ldb, 4) &&
                     (p.trans_a ? p.m : p.k) % 4 == 0 && (p.trans_b ? p.k : p.n) % 4 == 0;
    lk::with_transposes(p, [&](auto ta, auto tb) {
        constexpr bool TA = decltype(ta)::value, TB = decltype(tb)::value;
        if (vec) gemm_simt_async_body<SPLIT, TA, TB, true>(p, a, b, c, bias, y, smem);
        else gemm_simt_async_body<SPLIT, TA, TB, false>(p, a, b, c, bias, y, smem);
    });
}

}  // namespace

LK_KERNEL void __launch_bounds__(128, 4) gemm_simt64_async_f32(lk_gemm_params p, const float* __restrict__ a,
                                                            const float* __restrict__ b, float* __restrict__ c,
                                                            const float* __restrict__ bias,
                                                            const float* __restrict__ y) {
    __shared__ __align__(16) float smem[LK_SAS_STAGES * LK_SDB_STAGE(64)];
    gemm_simt_async<false>(p, a, b, c, bias, y, smem);
}

LK_KERNEL void __launch_bounds__(128, 4) gemm_simt64_async_splitk_fused_f32(LK_GEMM_SPLITK_FUSED_PARAMS) {
    __shared__ __align__(16) float smem[LK_SAS_STAGES * LK_SDB_STAGE(64)];
    gemm_simt_async<true>(p, a, b, ws, bias, y, smem);
    splitk_last_block_adds<64, 64, 128>(p, c, bias, y, ws, tile_counts, smem);
}

namespace {

// v23 and v25: the 128×64 tile's 8×4 outputs of thread (tx, ty) = (tid % 16, tid / 16) (rows
// 8·ty .. + 7, columns 4·tx .. + 3) over `kn` k steps of a chunk held k-major in shared memory:
// `as` [k][128 + 4], `bs` [k][64 + 4]. Per k step two float4 reads of A (broadcast across the 16
// lanes of a row group) and one of B feed 32 FMAs; k ascending.
__device__ __forceinline__ void shortk_multiply(float (&acc)[8][4], const float* as, const float* bs, int kn, int tx,
                                                int ty) {
    constexpr int SA = 128 + 4, SB = 64 + 4;
#pragma unroll 4
    for (int kk = 0; kk < kn; ++kk) {
        const float4 a0 = *reinterpret_cast<const float4*>(&as[kk * SA + 8 * ty]);
        const float4 a1 = *reinterpret_cast<const float4*>(&as[kk * SA + 8 * ty + 4]);
        const float4 bv = *reinterpret_cast<const float4*>(&bs[kk * SB + 4 * tx]);
        const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float bw[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bw[j], acc[i][j]);
    }
}

// v23 and v25: one row's four outputs (row, col .. col + 3) through gemm_output: a float4 when C's
// rows are 16-byte aligned (`vec`) and all four columns are inside, else one by one. Out of line,
// so that the unrolled store loop below holds one copy of the epilogue code.
__device__ LK_GEMM_OUT_OF_LINE void shortk_store_row_slow(const lk_gemm_params& p, bool vec, int64_t row, int64_t col,
                                                          float v0, float v1, float v2, float v3,
                                                          float* __restrict__ c, const float* __restrict__ bias,
                                                          const float* __restrict__ y) {
    float* out = c + row * p.ldc + col;
    const float v[4] = {v0, v1, v2, v3};
    if (vec && col + 3 < p.n) {
        float4 o;
        o.x = lk::gemm_output(p, row, col, v[0], out, bias, y);
        o.y = lk::gemm_output(p, row, col + 1, v[1], out + 1, bias, y);
        o.z = lk::gemm_output(p, row, col + 2, v[2], out + 2, bias, y);
        o.w = lk::gemm_output(p, row, col + 3, v[3], out + 3, bias, y);
        *reinterpret_cast<float4*>(out) = o;
    } else {
        for (int j = 0; j < 4 && col + j < p.n; ++j) out[j] = lk::gemm_output(p, row, col + j, v[j], out + j, bias, y);
    }
}

// v23 and v25: stores those outputs of the tile at (m0, n0) straight from registers: for the plain
// product (no epilogue, beta = 0) a float4 per row (alpha · acc, as gemm_output gives it) when C's
// rows are 16-byte aligned (`vec`) and all four columns are inside, else shortk_store_row_slow. A
// warp's stores cover two rows of 64 consecutive columns. Unrolled, so that the accumulators stay
// in registers (a loop indexing them would copy them to local memory).
__device__ __forceinline__ void shortk_store(const lk_gemm_params& p, const float (&acc)[8][4], bool vec, int64_t m0,
                                             int64_t n0, int tx, int ty, float* __restrict__ c,
                                             const float* __restrict__ bias, const float* __restrict__ y) {
    const int64_t col = n0 + 4 * tx;
    if (col >= p.n) return;
    const bool fast = vec && col + 3 < p.n && p.epilogue == LK_EPI_NONE && p.beta == 0.0f;
    const float al = p.alpha;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int64_t row = m0 + 8 * ty + i;
        if (row >= p.m) break;
        if (fast) {
            const float4 o = make_float4(al == 0.0f ? 0.0f : al * acc[i][0], al == 0.0f ? 0.0f : al * acc[i][1],
                                         al == 0.0f ? 0.0f : al * acc[i][2], al == 0.0f ? 0.0f : al * acc[i][3]);
            *reinterpret_cast<float4*>(c + row * p.ldc + col) = o;
        } else {
            shortk_store_row_slow(p, vec, row, col, acc[i][0], acc[i][1], acc[i][2], acc[i][3], c, bias, y);
        }
    }
}

}  // namespace

// v23 gemm_simt_shortk_f32: for products whose k is a few dozen and whose output is large (the
// dX = dY·W of a 400→20 layer: 8192×400×20, where the output is 13 MB and A and B together 0.7 MB),
// so the time is that of writing C, which the warp-tiled kernels do one scalar store per output
// after parking their accumulators in shared memory, in blocks that live for one or two 16-k steps.
//   C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), as every kernel here.
// Work split: a block (256 threads) computes a 128×64 tile of C; thread t holds the 8×4 outputs of
// rows 8·(t / 16) .. + 7 and columns 4·(t % 16) .. + 3, so a warp's stores cover two rows of 64
// consecutive columns. k runs in chunks of 32: the block copies the chunk's A (128×32) and B
// (32×64) into shared memory, k-major, element by element in the order of each operand's
// contiguous dimension (coalesced for either transpose; zero past m, n and k), and each thread
// multiplies from float4 reads (two of A, broadcast across the 16 lanes of a row group, one of B).
// Each output sums k in ascending order. The epilogue stores straight from registers
// (shortk_store): a float4 per 4 columns when C's rows are 16-byte aligned and all four columns
// are inside, else one by one. 25 KiB of static shared memory.
LK_KERNEL void __launch_bounds__(256) gemm_simt_shortk_f32(lk_gemm_params p, const float* __restrict__ a,
                                                           const float* __restrict__ b, float* __restrict__ c,
                                                           const float* __restrict__ bias,
                                                           const float* __restrict__ y) {
    constexpr int BM = 128, BN = 64, KC = 32, NT = 256;
    constexpr int SA = BM + 4, SB = BN + 4;  // padded k rows (16-byte multiples, for the float4 reads)
    __shared__ __align__(16) float as[KC * SA];
    __shared__ __align__(16) float bs[KC * SB];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
    float acc[8][4];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

    for (int64_t k0 = 0; k0 < p.k; k0 += KC) {
        if (k0 > 0) __syncthreads();  // the previous chunk's reads are done
        // A chunk: A[m0 + mm][k0 + kk], stored [m, k] (k contiguous) or, transposed, [k, m].
#pragma unroll 4
        for (int e = tid; e < KC * BM; e += NT) {
            const int kk = p.trans_a ? e / BM : e % KC, mm = p.trans_a ? e % BM : e / KC;
            const int64_t row = m0 + mm, kg = k0 + kk;
            float v = 0.0f;
            if (row < p.m && kg < p.k) v = p.trans_a ? a[kg * p.lda + row] : a[row * p.lda + kg];
            as[kk * SA + mm] = v;
        }
        // B chunk: B[k0 + kk][n0 + nn], stored [k, n] (n contiguous) or, transposed, [n, k].
#pragma unroll 4
        for (int e = tid; e < KC * BN; e += NT) {
            const int kk = p.trans_b ? e % KC : e / BN, nn = p.trans_b ? e / KC : e % BN;
            const int64_t col = n0 + nn, kg = k0 + kk;
            float v = 0.0f;
            if (col < p.n && kg < p.k) v = p.trans_b ? b[col * p.ldb + kg] : b[kg * p.ldb + col];
            bs[kk * SB + nn] = v;
        }
        __syncthreads();
        shortk_multiply(acc, as, bs, p.k - k0 < KC ? (int)(p.k - k0) : KC, tx, ty);
    }
    shortk_store(p, acc, lk::rows_16b_aligned(c, p.ldc, 4), m0, n0, tx, ty, c, bias, y);
}

// v25 gemm_simt_shortk_persistent_f32: v23's tiles, thread layout, multiply and register-stored
// epilogue, rebuilt so that a tile's copies, multiply and stores overlap those of the next one.
// v23 ran 19.4 µs at 8192×400×20 on an H100 (2026-11-27, fourth run; cuBLAS 11.3): each block
// copies its operands with scalar loads a few at a time, then multiplies, then stores, and its
// 448 tiles run as 1.7 waves of 2 blocks per SM, so every block waits on its own loads.
//   C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), as every kernel here.
// Work split: persistent blocks of 256 threads, at most 2 per SM (the launcher: min(tiles, 2·SMs));
// block b walks the 128×64 tiles b, b + gridDim.x, ... (row-major over the tile grid), and each
// (tile, 32-k chunk) is one work item. Items pass through two shared-memory stages: item w + 1's
// copy is issued (cp.async) before item w is multiplied and, at a tile's last chunk, stored, so
// the next tile's operands arrive while this one's outputs leave. One wait and two barriers per
// item (the second: every warp is done with the stage that item w + 2 refills).
// Copies, into v23's k-major stages ([k][128 + 4] of A, [k][64 + 4] of B): an m/n-contiguous
// operand (A transposed, B not) 16 bytes a cp.async, a warp per 128 or two per 64 columns of a k
// row, when its rows are 16-byte aligned and m (n) a multiple of 4, else 4 bytes; a
// k-contiguous operand 4 bytes a cp.async, consecutive lanes on consecutive rows (so that the
// transposed writes hit 32 banks). m / n edges are clamped (rows past them feed only outputs that
// are not stored); k past the chunk's end is neither copied nor read. Each output sums k in
// ascending order: v23's results, bit for bit. Dynamic shared memory: 2 × 32 × (132 + 68) floats
// = 50 KiB. sm_80+.
namespace {

constexpr int LK_SKP_STAGE = 32 * (128 + 4 + 64 + 4);  // floats in one v25 stage

// One operand's part of a v25 work item: the ROWS × kn slice at (mn0, k0) into `dst` ([kn][ROWS + 4]).
// K_CONTIG: stored [mn][k] (element at src[mn · ld + k]); else [k][mn] (src[k · ld + mn]), copied 16
// bytes at a time when `vec` (16-byte rows and mn_end a multiple of 4).
template <int ROWS, bool K_CONTIG>
__device__ __forceinline__ void shortk_copy_async(float* dst, const float* __restrict__ src, int64_t ld, int64_t mn0,
                                                  int64_t mn_end, int64_t k0, int kn, bool vec) {
#if LK_CP_ASYNC_SUPPORTED
    constexpr int S = ROWS + 4, NT = 256;
    if (K_CONTIG || !vec) {
        // a lane per row (or column), NT / ROWS k rows per pass
        const int r = threadIdx.x % ROWS;
        const int64_t mn = mn0 + r < mn_end ? mn0 + r : mn_end - 1;
        const float* s = K_CONTIG ? src + mn * ld + k0 : src + k0 * ld + mn;
        const int64_t kstep = K_CONTIG ? 1 : ld;
        for (int kk = threadIdx.x / ROWS; kk < kn; kk += NT / ROWS) cp_async_4(&dst[kk * S + r], s + kk * kstep, 4);
    } else {
        // 16-byte chunks: ROWS / 4 lanes a k row; mn_end is a multiple of 4, so a chunk is wholly
        // inside or wholly past the edge (then clamped to the last one inside)
        constexpr int CPR = ROWS / 4;
        const int c4 = (threadIdx.x % CPR) * 4;
        const int64_t mn = mn0 + c4 < mn_end ? mn0 + c4 : mn_end - 4;
        const float* s = src + k0 * ld + mn;
        for (int kk = threadIdx.x / CPR; kk < kn; kk += NT / CPR) cp_async_16(&dst[kk * S + c4], s + kk * ld, 16);
    }
#endif
}

template <bool TA, bool TB>
__device__ __forceinline__ void gemm_simt_shortk_persistent_body(const lk_gemm_params& p, const float* __restrict__ a,
                                                                 const float* __restrict__ b, float* __restrict__ c,
                                                                 const float* __restrict__ bias,
                                                                 const float* __restrict__ y, float* smem) {
#if LK_CP_ASYNC_SUPPORTED
    constexpr int BM = 128, BN = 64, KC = 32;
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t tiles_n = (p.n + BN - 1) / BN, tiles = (p.m + BM - 1) / BM * tiles_n;
    const int64_t chunks = (p.k + KC - 1) / KC;
    const bool vec_c = lk::rows_16b_aligned(c, p.ldc, 4);
    // 16-byte copies of each m/n-contiguous operand whose rows are 16-byte aligned and whose m (n)
    // is a multiple of 4
    const bool vec_a = TA && lk::rows_16b_aligned(a, p.lda, 4) && p.m % 4 == 0;
    const bool vec_b = !TB && lk::rows_16b_aligned(b, p.ldb, 4) && p.n % 4 == 0;
    auto chunk_len = [&](int64_t chunk) { return p.k - chunk * KC < KC ? (int)(p.k - chunk * KC) : KC; };
    // Two cursors over this block's items, advanced without dividing: the copy's (tile ct, chunk
    // cc), one item ahead, and the multiply's (tile t, chunk ck).
    int64_t ct = blockIdx.x, cc = 0;
    auto copy_next = [&](float* st) {
        const int64_t m0 = ct / tiles_n * BM, n0 = ct % tiles_n * BN, k0 = cc * KC;
        const int kn = chunk_len(cc);
        shortk_copy_async<BM, !TA>(st, a, p.lda, m0, p.m, k0, kn, vec_a);
        shortk_copy_async<BN, TB>(st + KC * (BM + 4), b, p.ldb, n0, p.n, k0, kn, vec_b);
        if (++cc == chunks) {
            cc = 0;
            ct += gridDim.x;
        }
    };

    float acc[8][4];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    if (ct < tiles) copy_next(smem);
    cp_async_commit();
    int stage = 0;
    for (int64_t t = blockIdx.x, ck = 0; t < tiles;) {
        const float* cur = smem + stage * LK_SKP_STAGE;
        if (ct < tiles) copy_next(smem + (stage ^ 1) * LK_SKP_STAGE);
        cp_async_commit();  // (empty after the last item: the wait count stays uniform)
        cp_async_wait<1>();
        __syncthreads();  // this item is in for every thread
        shortk_multiply(acc, cur, cur + KC * (BM + 4), chunk_len(ck), tx, ty);
        if (++ck == chunks) {
            shortk_store(p, acc, vec_c, t / tiles_n * BM, t % tiles_n * BN, tx, ty, c, bias, y);
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
            ck = 0;
            t += gridDim.x;
        }
        __syncthreads();  // every warp is done with this stage before the item after next is copied into it
        stage ^= 1;
    }
    cp_async_wait<0>();
#else
    __trap();
#endif
}

}  // namespace

LK_KERNEL void __launch_bounds__(256, 2) gemm_simt_shortk_persistent_f32(lk_gemm_params p, const float* __restrict__ a,
                                                                        const float* __restrict__ b,
                                                                        float* __restrict__ c,
                                                                        const float* __restrict__ bias,
                                                                        const float* __restrict__ y) {
    float* smem = lk_simt_dyn_smem;
    lk::with_transposes(p, [&](auto ta, auto tb) {
        gemm_simt_shortk_persistent_body<decltype(ta)::value, decltype(tb)::value>(p, a, b, c, bias, y, smem);
    });
}

// v26 gemm_simt_small_m_splitk_f32 and v27 gemm_simt_small_n_splitk_f32 (+ gemm_splitk_reduce_f32):
// split-k for outputs with one short side and a long k.
//   v26, a few rows: the dW = dYᵀX of a narrow layer at a large batch (20×400×8192), where the
//   64-row tiles of v4 and v18 compute 64 rows for 20 (v18 23.0 µs against cuBLAS 20.4 on an H100,
//   2026-11-27, fourth run).
//   v27, a few columns: Y = XWᵀ into a narrow layer (8192×20×400; v3's k-sliced 32-tiles 14.5 µs
//   against cuBLAS 13.8 there), v26 with the roles of the operands swapped.
//   C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), as every kernel here.
// Work split: block (x, y, z), 128 threads, sums k in [z·k_split, (z + 1)·k_split) of one output
// tile, 32 along the short side (v26: rows; v27: columns) by 128 along the other, and writes the
// raw sums to slice z of the [splits, m, n] workspace, which the reduce kernel adds in order
// z = 0, 1, ... and applies the epilogue to (v4's scheme). Thread t owns line t of the long side
// and the tile's short side in groups of 4, of which only those that exist are computed (20:
// 5 groups, nothing wasted). The short side's operand S (v26: A, v27: B) is staged in shared
// memory, k-major [k][32 + 4], zero past the edge and past the range, with 4-byte cp.async, in
// chunks copied into two stages so that the next chunk's copy runs under this chunk's multiply
// (one wait and two barriers a chunk). The other operand T (v26: B, v27: A), one line per thread:
//   - contiguous along the long side (B of the dW case, [k, n]): read from global memory, 8 k
//     ahead of the multiply, coalesced across the warp; chunks of 64 k;
//   - contiguous along k (A of Y = XWᵀ, [m, k]): its 128 lines are staged too, [line][32 + 4],
//     copied coalesced (16 bytes a cp.async where its rows are 16-byte aligned, else 4), and each
//     thread reads its line with float4 reads; chunks of 32 k (a lane per line reading global
//     memory would touch 32 lines per load).
// Per k and group, one float4 of S (the same address for the whole block: a broadcast) and 4
// FMAs. Lines past the long side are clamped (their sums are not stored), and a warp whose lines
// are all past it skips the multiply. Each output sums its range in k order (the padding past the
// range adds zeros). 45 KiB of static shared memory. sm_80+.
// Shared memory of v26 and v27: two stages of the larger chunk layout (T_KC below: 32 × (32 + 4)
// floats of S and 128 × (32 + 4) of T).
#define LK_SMS_SMEM_FLOATS (2 * (32 * 36 + 128 * 36))

namespace {

template <bool TA, bool TB, bool SMALL_N>
__device__ __forceinline__ void gemm_simt_small_side_splitk_body(const lk_gemm_params& p, const float* __restrict__ a,
                                                                 const float* __restrict__ b, float* __restrict__ ws,
                                                                 float* ss) {
#if LK_CP_ASYNC_SUPPORTED
    // T_KC: T is stored contiguous along k, so its lines are staged in shared memory too (copied
    // coalesced, 16 bytes at a time where its rows allow), in chunks of 32 k instead of 64.
    constexpr bool T_KC = SMALL_N ? !TA : TB;
    constexpr int BS = 32, BT = 128, KC = T_KC ? 32 : 64, SS = BS + 4, ST = KC + 4, U = 8, NT = 128;
    constexpr int STAGE = KC * SS + (T_KC ? BT * ST : 0);
    static_assert(2 * STAGE <= LK_SMS_SMEM_FLOATS, "two stages fit the kernel's shared memory");
    const int tid = threadIdx.x;
    // The short side (s: v26 rows, v27 columns) and the long one (t), their lengths and origins.
    const int64_t s_len = SMALL_N ? p.n : p.m, t_len = SMALL_N ? p.m : p.n;
    const int64_t s0 = (int64_t)(SMALL_N ? blockIdx.x : blockIdx.y) * BS;
    const int64_t t0 = (int64_t)(SMALL_N ? blockIdx.y : blockIdx.x) * BT;
    const int64_t kb = (int64_t)blockIdx.z * p.k_split;
    const int64_t K = kb + p.k_split < p.k ? p.k_split : p.k - kb;
    const int groups = (int)(((s_len - s0 < BS ? s_len - s0 : BS) + 3) / 4);
    const int64_t line = t0 + tid < t_len ? t0 + tid : t_len - 1;
    const bool warp_inside = t0 + (tid & ~31) < t_len;  // some lane of this warp owns a line inside
    const int chunks = (int)((K + KC - 1) / KC);
    auto chunk_len = [&](int ch) { return K - (int64_t)ch * KC < KC ? (int)(K - (int64_t)ch * KC) : KC; };
    // Element (short index si, k) of S: A(si, k) for v26, B(k, si) for v27.
    auto s_elem = [&](int64_t si, int64_t kg) {
        return SMALL_N ? (TB ? b + si * p.ldb + kg : b + kg * p.ldb + si)
                       : (TA ? a + kg * p.lda + si : a + si * p.lda + kg);
    };
    // T_KC: T as stored, line by line (line l, k at t_mat[l · t_ld + k]).
    const float* t_mat = SMALL_N ? a : b;
    const int64_t t_ld = SMALL_N ? p.lda : p.ldb;
    const bool t_vec = T_KC && lk::rows_16b_aligned(t_mat, t_ld, 4);
    // Chunk ch into stage `st`: S(s0 + r, kb + KC·ch + kk) at st[kk][r], zero past the short side
    // and for the padding kn ≤ kk < kpad (a multiple of U); T_KC: T(t0 + l, kb + KC·ch + kk) at
    // st[KC · SS + l · ST + kk], lines past the long side clamped, zero for kk ≥ kn.
    auto copy_chunk = [&](int ch, float* st) {
        const int kn = chunk_len(ch), kpad = (kn + U - 1) / U * U;
        const int64_t k0 = kb + (int64_t)ch * KC;
        for (int e = tid; e < kpad * BS; e += NT) {
            const int r = e % BS, kk = e / BS;
            const int64_t si = s0 + r;
            const bool in = si < s_len && kk < kn;
            cp_async_4(&st[kk * SS + r], in ? s_elem(si, k0 + kk) : a, in ? 4 : 0);
        }
        if constexpr (T_KC) {
            float* tt = st + KC * SS;
            if (t_vec) {
                // k0 is a multiple of 16 and the rows 16-byte aligned: whole 16-byte pieces, the
                // one across kn zero-filled past it
                for (int e = tid; e < BT * (KC / 4); e += NT) {
                    const int l = e / (KC / 4), kk = e % (KC / 4) * 4;
                    const int64_t ln = t0 + l < t_len ? t0 + l : t_len - 1;
                    const int bytes = kn - kk >= 4 ? 16 : (kn > kk ? 4 * (kn - kk) : 0);
                    cp_async_16(&tt[l * ST + kk], bytes > 0 ? t_mat + ln * t_ld + k0 + kk : t_mat, bytes);
                }
            } else {
                for (int e = tid; e < BT * KC; e += NT) {
                    const int l = e / KC, kk = e % KC;
                    const int64_t ln = t0 + l < t_len ? t0 + l : t_len - 1;
                    cp_async_4(&tt[l * ST + kk], kk < kn ? t_mat + ln * t_ld + k0 + kk : t_mat, kk < kn ? 4 : 0);
                }
            }
        }
    };
    float acc[8][4];
#pragma unroll
    for (int g = 0; g < 8; ++g)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[g][i] = 0.0f;

    copy_chunk(0, ss);
    cp_async_commit();
    for (int ch = 0; ch < chunks; ++ch) {
        const float* cur = ss + (ch & 1) * STAGE;
        if (ch + 1 < chunks) copy_chunk(ch + 1, ss + ((ch + 1) & 1) * STAGE);
        cp_async_commit();  // (empty after the last chunk: the wait count stays uniform)
        cp_async_wait<1>();
        __syncthreads();  // chunk ch is in for every thread
        if (warp_inside) {
            const int kn = chunk_len(ch), kpad = (kn + U - 1) / U * U;
            // T(line, kb + KC·ch + kk): B(k, line) for v26, A(line, k) for v27; U at a time. T_KC:
            // from this thread's staged line; else from global memory, the next U loaded while
            // these are multiplied.
            const int64_t k0 = kb + (int64_t)ch * KC;
            const float* tp = T_KC ? cur + KC * SS + tid * ST
                                   : (SMALL_N ? a + k0 * p.lda + line : b + k0 * p.ldb + line);
            const int64_t tstep = T_KC ? 1 : (SMALL_N ? p.lda : p.ldb);
            float x[U];
            if constexpr (!T_KC) {
#pragma unroll
                for (int u = 0; u < U; ++u) x[u] = u < kn ? tp[u * tstep] : 0.0f;
            }
#pragma unroll 1
            for (int kk = 0; kk < kpad; kk += U) {
                float xn[U];
                if constexpr (T_KC) {
                    const float4 lo = *reinterpret_cast<const float4*>(&tp[kk]);
                    const float4 hi = *reinterpret_cast<const float4*>(&tp[kk + 4]);
                    const float staged[U] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
                    for (int u = 0; u < U; ++u) x[u] = staged[u];
                } else {
#pragma unroll
                    for (int u = 0; u < U; ++u) xn[u] = kk + U + u < kn ? tp[(kk + U + u) * tstep] : 0.0f;
                }
#pragma unroll
                for (int g = 0; g < 8; ++g) {
                    if (g >= groups) break;
#pragma unroll
                    for (int u = 0; u < U; ++u) {
                        const float4 sv = *reinterpret_cast<const float4*>(&cur[(kk + u) * SS + 4 * g]);
                        acc[g][0] = fmaf(sv.x, x[u], acc[g][0]);
                        acc[g][1] = fmaf(sv.y, x[u], acc[g][1]);
                        acc[g][2] = fmaf(sv.z, x[u], acc[g][2]);
                        acc[g][3] = fmaf(sv.w, x[u], acc[g][3]);
                    }
                }
                if constexpr (!T_KC) {
#pragma unroll
                    for (int u = 0; u < U; ++u) x[u] = xn[u];
                }
            }
        }
        __syncthreads();  // every warp is done with this stage before chunk ch + 2 is copied into it
    }
    cp_async_wait<0>();

    if (t0 + tid >= t_len) return;
#pragma unroll
    for (int g = 0; g < 8; ++g)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int64_t si = s0 + 4 * g + i;
            if (g < groups && si < s_len) {
                if (SMALL_N) lk::splitk_store_raw(p, line, si, acc[g][i], ws);
                else lk::splitk_store_raw(p, si, line, acc[g][i], ws);
            }
        }
#else
    __trap();
#endif
}

template <bool SMALL_N>
__device__ __forceinline__ void gemm_simt_small_side_splitk(const lk_gemm_params& p, const float* a, const float* b,
                                                            float* ws, float* ss) {
    lk::with_transposes(p, [&](auto ta, auto tb) {
        gemm_simt_small_side_splitk_body<decltype(ta)::value, decltype(tb)::value, SMALL_N>(p, a, b, ws, ss);
    });
}

}  // namespace

// (bias and y are the reduce kernel's: it applies the epilogue.)
LK_KERNEL void __launch_bounds__(128) gemm_simt_small_m_splitk_f32(lk_gemm_params p, const float* __restrict__ a,
                                                                  const float* __restrict__ b, float* __restrict__ ws,
                                                                  const float* __restrict__ bias,
                                                                  const float* __restrict__ y) {
    __shared__ __align__(16) float ss[LK_SMS_SMEM_FLOATS];
    gemm_simt_small_side_splitk<false>(p, a, b, ws, ss);
}

LK_KERNEL void __launch_bounds__(128) gemm_simt_small_n_splitk_f32(lk_gemm_params p, const float* __restrict__ a,
                                                                  const float* __restrict__ b, float* __restrict__ ws,
                                                                  const float* __restrict__ bias,
                                                                  const float* __restrict__ y) {
    __shared__ __align__(16) float ss[LK_SMS_SMEM_FLOATS];
    gemm_simt_small_side_splitk<true>(p, a, b, ws, ss);
}

// v30 gemm_simt128x200_warp_db_f32: v16's main loop on 128×200 tiles, for outputs 400 (or 784 ≈
// 4·200) columns wide with many rows, where v16's square tiles pad the columns and leave the last
// wave part-empty:
//   8192×400×784 (Y = XWᵀ into 400 features, and dX of a 400→784 layer, at a batch of 8192):
//   64×2 = 128 tiles, one wave on 132 SMs, 25600 outputs an SM; v16 pads 400 to 512 and makes 256
//   128-tiles, two waves, 32768 outputs an SM (H100, 2026-11-27, fourth run: v16 158.5 µs, cuBLAS
//   134.6). 8192×784×400: 64×4 = 256 tiles (784 padded to 800), two an SM (51200 outputs) against
//   v16's 448 (3.4 waves: 65536).
//   C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), as every kernel here.
// Work split: block (x, y) computes the tile at rows 128·y, columns 200·x, with 320 threads: 10
// warps of 64×40 as 2 (m) × 5 (n). Lane (lm, ln) = (lane / 4, lane % 4) owns 8 rows (lm·4 + 0..3 and
// 32 + lm·4 + 0..3 of its warp tile) × 10 columns (ln·4 + 0..3, 16 + ln·4 + 0..3, 32 + ln·2 + 0..1):
// a k step reads 2 float4 of A and 2 float4 + 1 float2 of B from shared memory for 80 FMAs (v16: 4
// float4 for 64), each a broadcast to the lanes that share it, without bank conflicts. The loop is
// v16's (BK = 16, two stages, fragments double-buffered in registers, one barrier per 16 k, no
// bounds checks on the hot path: rows past m / n are clamped, only the last partial tile checks k).
// A 16-k tile is 512 chunks of 4 elements of A and 800 of B: chunk tid + 320·i goes to slot i of the
// thread (A: 2 slots, the second held by the first 6 warps; B: 3, the third by the first 5), so a
// slot is held or not by whole warps. Shared memory: two stages of A [16][132] and B [16][204], 42
// KiB; the epilogue parks each warp's tile 16 rows at a time (16 × 41 floats a warp) and stores it
// row by row, as v16 does 32 rows at a time. Each output's k order is ascending k, as in v16:
// the same sums, bit for bit.
namespace {

constexpr int kWideBM = 128, kWideBN = 200, kWideWarpsM = 2, kWideNT = 320, kWideWN = 40;
// One stage (floats): the A tile, then the B tile, k-major, rows padded by 4.
constexpr int kWideStage = LK_SDB_BK * (kWideBM + 4 + kWideBN + 4);
static_assert(kWideNT / 32 * 16 * (kWideWN + 1) <= 2 * kWideStage && 16 * kWideNT <= 2 * kWideStage,
              "the epilogue's parking space and v31's fix-up fit the stages");

// Column `col` of k row `k` of a v30 operand's W-wide shared tile sits at simt_wide_swizzle<W>(k, col):
// v16's stage swizzle (sdb_swizzle), but for the last W % 16 columns of a 200-wide tile, which it
// would move past the row; their warp's transposing stores stay 2-way conflicted.
template <int W>
__device__ __forceinline__ int simt_wide_swizzle(int k, int col) {
    return col < W / 16 * 16 ? col ^ sdb_swizzle(k) : col;
}

// One v30 operand's part of a 16-k tile: W (128 rows of A, 200 of B) × 16 elements as C chunks of 4,
// chunk tid + NT·i in slot i of thread tid. K_CONTIG: stored with k contiguous (A [m, k], B [n, k]):
// chunk e is row e / 4, k columns (e % 4)·4..+3; else stored with m / n contiguous ([k, m], [k, n]):
// k row e / (W / 4), columns (e % (W / 4))·4..+3. Rows past the matrix clamp to its last one, as in
// v16. Shared tile: k-major, rows of W + 4 floats.
template <int W, bool K_CONTIG, bool VEC>
struct SimtWideOperand {
    static constexpr int BK = LK_SDB_BK, S = W + 4, C = W * BK / 4, NT = kWideNT, SLOTS = (C + NT - 1) / NT;
    static_assert(C % NT % 32 == 0, "a slot is held by whole warps");
    const float* ptr[SLOTS];
    int64_t mn[SLOTS];  // the chunk's unclamped m / n index (element-wise loads)
    int sm[SLOTS];      // its offset in the shared tile
    int kof[SLOTS];     // the k offset in a 16-k tile of its first element (k-contiguous) or row
    float4 v[SLOTS];
    int64_t step;  // elements from one 16-k tile to the next

    static __device__ __forceinline__ bool held(int i) { return i < C / NT || (int)threadIdx.x < C % NT; }

    // g: the stored operand, ld its row stride, extent its m (n), mn0 the tile's first row (column)
    // and kb the first k.
    __device__ __forceinline__ SimtWideOperand(const float* g, int64_t ld, int64_t extent, int64_t mn0, int64_t kb) {
#pragma unroll
        for (int i = 0; i < SLOTS; ++i) {
            const int e = held(i) ? (int)threadIdx.x + NT * i : 0;
            if (K_CONTIG) {
                const int r = e / 4, kc = (e % 4) * 4;
                mn[i] = mn0 + r;
                ptr[i] = g + (mn[i] < extent - 1 ? mn[i] : extent - 1) * ld + kb + kc;
                sm[i] = kc * S + simt_wide_swizzle<W>(kc, r);  // its 4 k rows lie in one half
                kof[i] = kc;
            } else {
                const int kr = e / (W / 4), col = (e % (W / 4)) * 4;
                mn[i] = mn0 + col;
                // VEC: the extent is a multiple of 4, so a chunk is wholly inside or outside.
                const int64_t last = VEC ? extent - 4 : extent - 1;
                ptr[i] = g + (kb + kr) * ld + (mn[i] < last ? mn[i] : last);
                sm[i] = kr * S + simt_wide_swizzle<W>(kr, col);
                kof[i] = kr;
            }
        }
        step = K_CONTIG ? BK : BK * ld;
    }
    // Loads the 16-k tile at k0 into v (elements at k ≥ K as zero unless `full`) and moves on to the
    // next tile.
    __device__ __forceinline__ void load(int64_t k0, int64_t K, int64_t extent, bool full) {
#pragma unroll
        for (int i = 0; i < SLOTS; ++i) {
            if (held(i)) v[i] = simt_load_chunk<VEC>(ptr[i], mn[i], extent, K_CONTIG, k0 + kof[i], K, full);
            ptr[i] += step;
        }
    }
    // Stores v into the operand's shared tile.
    __device__ __forceinline__ void store(float* tile) const {
#pragma unroll
        for (int i = 0; i < SLOTS; ++i) {
            if (!held(i)) continue;
            if (K_CONTIG) {
                tile[sm[i] + 0 * S] = v[i].x;
                tile[sm[i] + 1 * S] = v[i].y;
                tile[sm[i] + 2 * S] = v[i].z;
                tile[sm[i] + 3 * S] = v[i].w;
            } else {
                *reinterpret_cast<float4*>(&tile[sm[i]]) = v[i];
            }
        }
    }
};

// The column in its warp tile of a v30 thread's output column j (0..9), for lane column ln.
__device__ __forceinline__ int simt_wide_col(int j, int ln) {
    return j < 8 ? (j / 4) * 16 + ln * 4 + j % 4 : 32 + ln * 2 + (j - 8);
}

// Where the v30 epilogue parks column col (0..39) of a warp tile's row: park_column's 4×4
// transposes for the first 32, and the last 8 as 2×4 (ln·2 + t at t·4 + ln), so that the 16 lanes
// parking one (i, j) write 16 banks (rows 41 ≡ 9 apart).
__device__ __forceinline__ int simt_wide_park_column(int col) {
    return col < 32 ? park_column(col) : 32 + ((col - 32) & 1) * 4 + ((col - 32) >> 1);
}

// The main loop of v30 / v31: the raw sums of the tile at (m0, n0) over k in [kb, kb + K) into acc
// (v16's loop with 10 columns a thread; k counts from kb). Ends with a barrier: the stages are
// free for the epilogue.
template <bool TA, bool TB, bool VEC>
__device__ __forceinline__ void simt_wide_mainloop(const lk_gemm_params& p, const float* __restrict__ a,
                                                   const float* __restrict__ b, int64_t m0, int64_t n0, int64_t kb,
                                                   int64_t K, float (&acc)[8][10], float* smem) {
    constexpr int BK = LK_SDB_BK, SA = kWideBM + 4, SB = kWideBN + 4, STAGE = kWideStage;
    SimtWideOperand<kWideBM, !TA, VEC> opa(a, p.lda, p.m, m0, kb);
    SimtWideOperand<kWideBN, TB, VEC> opb(b, p.ldb, p.n, n0, kb);
    auto load_global = [&](int64_t k0, bool full) {
        opa.load(k0, K, p.m, full);
        opb.load(k0, K, p.n, full);
    };
    auto store_shared = [&](float* st) {
        opa.store(st);
        opb.store(st + BK * SA);
    };

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm0 = (warp % kWideWarpsM) * 64, wn0 = (warp / kWideWarpsM) * kWideWN;
    const int lm = lane / 4, ln = lane % 4;
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 10; ++j) acc[i][j] = 0.0f;

    // Fragments: fa[s] / fb[s] / ft[s] hold step kk's values for s = kk % 2.
    float4 fa[2][2], fb[2][2];
    float2 ft[2];
    // Columns in a k row of the tiles (swizzled per k half: simt_wide_swizzle; the +32 and +16
    // fragments stay inside their 16-column groups, so they follow their first's swizzle).
    const int frag_a = wm0 + lm * 4, frag_b = wn0 + ln * 4, frag_t = wn0 + 32 + ln * 2;
    auto load_frags = [&](const float* st, int kk, int s) {
        const int at_a = kk * SA + simt_wide_swizzle<kWideBM>(kk, frag_a);
        const int at_b = BK * SA + kk * SB + simt_wide_swizzle<kWideBN>(kk, frag_b);
        fa[s][0] = *reinterpret_cast<const float4*>(&st[at_a]);
        fa[s][1] = *reinterpret_cast<const float4*>(&st[at_a + 32]);
        fb[s][0] = *reinterpret_cast<const float4*>(&st[at_b]);
        fb[s][1] = *reinterpret_cast<const float4*>(&st[at_b + 16]);
        ft[s] = *reinterpret_cast<const float2*>(&st[BK * SA + kk * SB + simt_wide_swizzle<kWideBN>(kk, frag_t)]);
    };
    auto fma_step = [&](int s) {
        const float fav[8] = {fa[s][0].x, fa[s][0].y, fa[s][0].z, fa[s][0].w,
                              fa[s][1].x, fa[s][1].y, fa[s][1].z, fa[s][1].w};
        const float fbv[10] = {fb[s][0].x, fb[s][0].y, fb[s][0].z, fb[s][0].w, fb[s][1].x,
                               fb[s][1].y, fb[s][1].z, fb[s][1].w, ft[s].x,    ft[s].y};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 10; ++j) acc[i][j] += fav[i] * fbv[j];
    };

    simt_db_kloop<STAGE>(K, smem, load_global, store_shared, load_frags, fma_step);
}

// The epilogue of v30–v32: each warp's 64×40 tile parked 16 rows at a time (16 × 41 floats a warp;
// 32 rows of 10 warps would not fit the stages) and stored row by row through one non-unrolled copy
// of the epilogue code, as simt_park_and_store does (SPLIT, v31 / v32: the raw sums into workspace
// slice blockIdx.z, c). SWAP (v32): the tile at (m0, n0) is of Cᵀ (p is C's product): its output
// (i, j) goes to C's (j, i), and the 16 parked rows are stored 16 consecutive C columns at a time.
template <bool SPLIT, bool SWAP>
__device__ __forceinline__ void simt_wide_store(const lk_gemm_params& p, const float (&acc)[8][10], int64_t m0,
                                                int64_t n0, float* __restrict__ c, const float* __restrict__ bias,
                                                const float* __restrict__ y, float* smem) {
    constexpr int WN = kWideWN, SP = WN + 1;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int lm = lane / 4, ln = lane % 4;
    const int64_t row0 = m0 + (warp % kWideWarpsM) * 64, col0 = n0 + (warp / kWideWarpsM) * WN;
    float* park = smem + warp * 16 * SP;
#pragma unroll
    for (int im = 0; im < 2; ++im) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            __syncwarp();  // the previous rows' reads are done
            if (lm / 4 == h) {
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 10; ++j)
                        park[((lm % 4) * 4 + i) * SP + simt_wide_park_column(simt_wide_col(j, ln))] =
                            acc[im * 4 + i][j];
            }
            __syncwarp();
#pragma unroll 1
            for (int idx = lane; idx < 16 * WN; idx += 32) {
                const int r = SWAP ? idx % 16 : idx / WN, cc = SWAP ? idx / 16 : idx % WN;
                const int64_t tr = row0 + im * 32 + h * 16 + r, tc = col0 + cc;  // in the tile's matrix
                const int64_t row = SWAP ? tc : tr, col = SWAP ? tr : tc;          // in C
                if (row < p.m && col < p.n) {
                    const float v = park[r * SP + simt_wide_park_column(cc)];
                    if (SPLIT) lk::splitk_store_raw(p, row, col, v, c);
                    else gemm_store(p, row, col, v, c, bias, y);
                }
            }
        }
    }
}

// A v30–v32 block: the 128×200 tile at blockIdx (y, x); SPLIT (v31, v32): k range z = blockIdx.z of
// p.k_split elements (a multiple of 16), raw sums to the workspace (c). SWAP (v32): the block
// computes the tile of Cᵀ = op(B)ᵀ·op(A)ᵀ at rows 128·x, columns 200·y, i.e. C's 200×128 tile at
// blockIdx (y, x): the same main loop on the swapped product q.
template <bool SPLIT, bool SWAP>
__device__ __forceinline__ void gemm_simt_wide(const lk_gemm_params& p, const float* a, const float* b, float* c,
                                               const float* bias, const float* y, float* smem) {
    lk_gemm_params q = p;
    if (SWAP) {
        q.m = p.n;
        q.n = p.m;
        q.lda = p.ldb;
        q.ldb = p.lda;
        q.trans_a = !p.trans_b;
        q.trans_b = !p.trans_a;
    }
    const float* qa = SWAP ? b : a;
    const float* qb = SWAP ? a : b;
    const int64_t m0 = (int64_t)(SWAP ? blockIdx.x : blockIdx.y) * kWideBM;
    const int64_t n0 = (int64_t)(SWAP ? blockIdx.y : blockIdx.x) * kWideBN;
    const int64_t kb = SPLIT ? (int64_t)blockIdx.z * p.k_split : 0;
    const int64_t K = SPLIT ? (kb + p.k_split < p.k ? p.k_split : p.k - kb) : p.k;
    simt_db_layouts(q, qa, qb, [&](auto ta, auto tb, auto vec) {
        float acc[8][10];
        simt_wide_mainloop<decltype(ta)::value, decltype(tb)::value, decltype(vec)::value>(q, qa, qb, m0, n0, kb, K,
                                                                                         acc, smem);
        simt_wide_store<SPLIT, SWAP>(p, acc, m0, n0, c, bias, y, smem);
    });
}

}  // namespace

LK_KERNEL void __launch_bounds__(320, 1) gemm_simt128x200_warp_db_f32(lk_gemm_params p, const float* __restrict__ a,
                                                                      const float* __restrict__ b,
                                                                      float* __restrict__ c,
                                                                      const float* __restrict__ bias,
                                                                      const float* __restrict__ y) {
    __shared__ __align__(16) float smem[2 * kWideStage];
    gemm_simt_wide<false, false>(p, a, b, c, bias, y, smem);
}

// v31 gemm_simt128x200_warp_db_splitk_fused_f32: v30's 128×200 tiles and main loop with v22's
// one-launch split-k (each block sums one k range of its tile into workspace slice z; the tile's
// last block adds the slices in order z = 0, 1, ... and stores with the epilogue), the range count
// filling whole waves of one block per SM (ops::gemm::splitk_splits_waves). For the dW = dYᵀX of a
// large batch: 784×400×8192 is 7×2 = 14 tiles of 128×200, 87.5% of their outputs inside the
// product (v22's 7×4 128-tiles: 78%); 400×784×8192 16 tiles, 77% (v22: 68%).
LK_KERNEL void __launch_bounds__(320, 1) gemm_simt128x200_warp_db_splitk_fused_f32(LK_GEMM_SPLITK_FUSED_PARAMS) {
    __shared__ __align__(16) float smem[2 * kWideStage];
    gemm_simt_wide<true, false>(p, a, b, ws, bias, y, smem);
    splitk_last_block_adds<kWideBM, kWideBN, kWideNT>(p, c, bias, y, ws, tile_counts, smem);
}

// v32 gemm_simt200x128_warp_db_splitk_fused_f32: v31 on the transposed product, so C's tiles are
// 200×128: each block computes its tile of Cᵀ = op(B)ᵀ·op(A)ᵀ with v30's main loop (A and B swap
// roles, their transposes flipped) and stores it transposed (16 consecutive C columns at a time),
// then the tile's last block adds the slices as in v31. For outputs 400 rows tall: the dW of a
// 784→400 layer (400×784×8192 is 2×7 = 14 tiles of 200×128, 87.5% of their outputs inside the
// product, against v31's 16 tiles of 128×200 at 77% and v22's 28 128-tiles at 68%; 9 ranges, one
// wave of 126 blocks on 132 SMs).
LK_KERNEL void __launch_bounds__(320, 1) gemm_simt200x128_warp_db_splitk_fused_f32(LK_GEMM_SPLITK_FUSED_PARAMS) {
    __shared__ __align__(16) float smem[2 * kWideStage];
    gemm_simt_wide<true, true>(p, a, b, ws, bias, y, smem);
    splitk_last_block_adds<kWideBN, kWideBM, kWideNT>(p, c, bias, y, ws, tile_counts, smem);
}
