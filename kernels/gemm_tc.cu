// Tensor-core GEMM, row-major: C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), op ∈
// {N, T}, with f32 accumulation and f32 C; the epilogues, BLAS α/β conventions and storage rules are
// those of gemm.cu (shared code in gemm.cuh).
//   gemm_tc{128,64,128x256}_bf16 / _f16: A and B in bfloat16 / IEEE half (products exact in f32),
//     mma.sync.m16n8k16, fragments through ldmatrix (.trans for the operand layouts that store k
//     as the row index).
//   gemm_tc2_128x256_bf16 / _f16 (v7, its own section at the end of this file): 128×256 tiles with
//     swizzled unpadded shared memory, hoisted addressing and double-buffered fragments.
//   gemm_tc64_splitk_bf16 / _f16 / _tf32 (v24): the 64×64 tiles summing one k range each into the
//     split-k workspace (gemm_splitk_reduce_f32 in gemm.cu adds the ranges).
//   gemm_tc{128,64,128x256}_tf32: A and B in f32, rounded to TF32 (cvt.rna: nearest, ties away from zero,
//     10 mantissa bits) as fragments are read, mma.sync.m16n8k8. Only on explicit request
//     (GemmMath::Tf32): f32 GEMMs are otherwise exact-f32 SIMT (gemm.cu).
// Work split: a block computes a BM×BN tile (128×128 with 8 warps as 2×4, 64×64 with 4 warps as
// 2×2, or 128×256 with 8 warps as 2×4; each warp a 64×32, 32×32 or 64×64 sub-tile of 16×8 mma
// tiles). k advances in steps of BK (32
// for 16-bit inputs, 16 for TF32) through a 3-stage cp.async pipeline: the tiles of step s + 2 are
// in flight while step s is multiplied. Tiles keep the operand's global layout in shared memory
// (16-byte chunks copied as they are; rows padded by 16 bytes (8 halves / 4 floats, or 32 bytes
// for the m/n-contiguous f32 layouts) so ldmatrix and the fragment loads hit distinct banks).
// Edges: a chunk partly outside the matrix is copied with cp.async's source size (the rest
// zero-filled), so any m, n, k ≥ 1 works; when rows are not 16-byte aligned (lda·size % 16 ≠ 0 or an
// unaligned base) the tile is loaded element by element instead, zero-padded. Each output's k order
// is fixed for a given kernel, so results are deterministic.
// Dynamic shared memory: the larger of the pipeline (3 stages: 60 KiB for 128-tiles, 30 KiB for
// 64-tiles, 90 KiB for 128×256, every type) and the epilogue's parking space for the accumulators
// (64 KiB, 16 KiB, 64 KiB: 32 columns of each warp tile at a time); the backend raises the 48 KiB
// default limit of the larger kernels when it loads them (src/ops/gemm/cuda.rs). Needs sm_80+
// (ldmatrix, cp.async, bf16 mma); older targets get a trap.
#include "cp_async.cuh"  // cp_async_16, commit, wait
#include "gemm.cuh"

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define LK_TC_SUPPORTED 1
#else
#define LK_TC_SUPPORTED 0
#endif

extern __shared__ uint4 lk_tc_smem[];

namespace {

#include "mma_sync.cuh"

constexpr int TC_STAGES = 3;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#if defined(LK_CUDA_EMULATOR)
// The CPU emulator's models of the PTX below (tools/cuda-emu), for the tests on machines without a GPU
// (cp.async's comes through cp_async.cuh).
#include "tc_ptx_emu.cuh"
#elif LK_TC_SUPPORTED
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

// d += a·b for one 16×8×8 TF32 tile.
__device__ __forceinline__ void mma_16x8x8_tf32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}
#endif

template <TcType T>
struct TcElem {
    using type = uint16_t;  // bf16 / f16 bits: the kernel only moves them, mma reads them
    static constexpr int BK = 32;
};
template <>
struct TcElem<TC_TF32> {
    using type = float;
    static constexpr int BK = 16;
};

// Shared-memory row strides (elements) of a tile whose contiguous dimension has `cols` elements:
// one 16-byte chunk of padding, two for f32 tiles that are m/n-contiguous (fragment reads there
// step along k, i.e. across rows: a row stride ≡ 8 banks keeps the 4 k's of a quad apart).
template <TcType T, int COLS, bool K_CONTIGUOUS>
struct TcStride {
    static constexpr int value = COLS + (T == TC_TF32 ? (K_CONTIGUOUS ? 4 : 8) : 8);
};

// Copies the R×C tile at (r0, c0) of a rows × cols matrix (row stride ld) into shared memory
// (row stride S), zero outside the matrix.
// A warp copies 32 consecutive chunks. Where a row has fewer than 8 (the k-contiguous tiles: 4
// chunks of 64 bytes, rows 80 bytes apart), its lanes go down the warp's rows first, chunk column
// by column: a quarter-warp (one shared-memory wavefront of 16-byte stores) then writes one column
// of 8 rows, which the 80-byte row stride spreads over the 8 16-byte bank groups, where row-first
// order put its lanes 0 and 7 in one group (2-way). The warp still reads the same whole 64-byte
// row segments from global memory.
template <typename E, int R, int C, int S, int NT>
__device__ __forceinline__ void tc_load_tile(E* __restrict__ s, const E* __restrict__ g, int64_t ld, int64_t rows,
                                             int64_t cols, int64_t r0, int64_t c0, bool vec, int tid) {
#if LK_TC_SUPPORTED
    constexpr int EPC = 16 / (int)sizeof(E);  // elements per 16-byte chunk
    constexpr int CPR = C / EPC;               // chunks per row
    constexpr int CHUNKS = R * CPR;
    static_assert(CHUNKS % NT == 0, "chunks must divide evenly over the threads");
    static_assert(CPR >= 8 || (32 % CPR == 0 && CHUNKS % 32 == 0), "a warp's 32 chunks are whole rows");
    constexpr int WARP_ROWS = CPR >= 8 ? 1 : 32 / CPR;  // rows one warp's 32 chunks cover
#pragma unroll
    for (int i = 0; i < CHUNKS / NT; ++i) {
        const int e = tid + i * NT;
        const int w = e & 31;
        const int r = CPR >= 8 ? e / CPR : (e >> 5) * WARP_ROWS + w % WARP_ROWS;
        const int cc = (CPR >= 8 ? e % CPR : w / WARP_ROWS) * EPC;
        const int64_t gr = r0 + r, gc = c0 + cc;
        const int valid = lk::chunk_valid(rows, cols, gr, gc, EPC);
        E* dst = s + r * S + cc;
        if (vec) {
            cp_async_16(dst, valid > 0 ? g + gr * ld + gc : g, valid * (int)sizeof(E));
        } else {
#pragma unroll
            for (int t = 0; t < EPC; ++t) dst[t] = t < valid ? g[gr * ld + gc + t] : E(0);
        }
    }
#endif
}

// Epilogue of the mma.sync kernels, through shared memory: each warp parks its WM×WN accumulators
// (fragment layout: d0, d1 at (g, 2t), (g, 2t+1); d2, d3 at (g+8, ...)), then stores them row by
// row, 32 consecutive columns per instruction (coalesced), through one non-unrolled copy of the
// epilogue code. 64-wide warp tiles go in two halves of 32 columns, so the parking space stays that
// of a 32-wide tile (the 128×256 kernel then fits the 99 KiB of sm_86 / sm_89). The caller has
// finished with the pipeline's shared memory (barrier); (row0, col0) is the warp tile's origin in C.
// SPLIT (v24): the raw sums go to slice blockIdx.z of the [splits, m, n] workspace (c) instead,
// which gemm_splitk_reduce_f32 (gemm.cu) adds up and applies the epilogue to.
// Parking layout: rows of 32 floats, unpadded, each row's columns permuted by XOR with
// park_key(row) = 8·(row & 3). A fragment pair (d0, d1 or d2, d3: row g (+8), columns 2t, 2t + 1 of
// an 8-column tile) goes as one 8-byte store; a half-warp's (rows g = 0..3 or 4..7) then covers
// the 32 banks once, where the former +4 padding put two of its lanes on one bank pair (2-way).
// The store loop reads 32 consecutive columns of one row: a permutation of the 32 banks.
__device__ __forceinline__ int park_key(int row) { return (row & 3) << 3; }

template <int MT, int NT8, int WM, int WN, bool SPLIT>
__device__ __forceinline__ void tc_park_and_store(const float (&acc)[MT][NT8][4], const lk_gemm_params& p, int warp,
                                                  int lane, int64_t row0, int64_t col0, float* __restrict__ c,
                                                  const float* __restrict__ bias, const float* __restrict__ y) {
    const int g = lane >> 2, t = lane & 3;
    constexpr int PARTS = WN >= 64 ? 2 : 1, PW = WN / PARTS, P8 = NT8 / PARTS;
    static_assert(PW == 32, "park rows are 32 columns (the key permutes within 32 banks)");
    float* const park = reinterpret_cast<float*>(lk_tc_smem) + warp * WM * PW;
    const int key = park_key(g);  // = park_key of rows mi·16 + g (+ 8) too
#pragma unroll
    for (int part = 0; part < PARTS; ++part) {
        if (part > 0) __syncwarp();  // the previous part's stores have read the parking space
#pragma unroll
        for (int mi = 0; mi < MT; ++mi)
#pragma unroll
            for (int ni = 0; ni < P8; ++ni)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const float (&d)[4] = acc[mi][part * P8 + ni];
                    *reinterpret_cast<float2*>(&park[(mi * 16 + g + h * 8) * PW + ((ni * 8 + 2 * t) ^ key)]) =
                        make_float2(d[2 * h], d[2 * h + 1]);
                }
        __syncwarp();
#pragma unroll 1
        for (int idx = lane; idx < WM * PW; idx += 32) {
            const int r = idx / PW, cc = idx % PW;
            const int64_t row = row0 + r, col = col0 + part * PW + cc;
            if (row >= p.m || col >= p.n) continue;
            const float v = park[r * PW + (cc ^ park_key(r))];
            if (SPLIT) lk::splitk_store_raw(p, row, col, v, c);
            else lk::gemm_store(p, row, col, v, c, bias, y);
        }
    }
}

template <TcType T, int BM, int BN, int WARPS_M, int WARPS_N, bool SPLIT, bool TA, bool TB>
__device__ __forceinline__ void gemm_tc_body(const lk_gemm_params& p, const typename TcElem<T>::type* __restrict__ a,
                                             const typename TcElem<T>::type* __restrict__ b, float* __restrict__ c,
                                             const float* __restrict__ bias, const float* __restrict__ y) {
#if LK_TC_SUPPORTED
    using E = typename TcElem<T>::type;
    constexpr int BK = TcElem<T>::BK;
    constexpr int NT = WARPS_M * WARPS_N * 32;
    // A is stored [m, k] (k contiguous) unless TA; B is stored [n, k] (k contiguous) when TB.
    constexpr int SA = TA ? TcStride<T, BM, false>::value : TcStride<T, BK, true>::value;
    constexpr int SB = TB ? TcStride<T, BK, true>::value : TcStride<T, BN, false>::value;
    constexpr int A_ELEMS = (TA ? BK : BM) * SA;
    constexpr int B_ELEMS = (TB ? BN : BK) * SB;
    constexpr int STAGE = A_ELEMS + B_ELEMS;
    static_assert((A_ELEMS * sizeof(E)) % 16 == 0 && (STAGE * sizeof(E)) % 16 == 0, "stages stay 16-byte aligned");
    constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;
    constexpr int MT = WM / 16, NT8 = WN / 8;  // mma tiles per warp
    static_assert(WM % 16 == 0 && NT8 % 2 == 0, "warp tile must be whole 16×16 blocks");

    E* const smem = reinterpret_cast<E*>(lk_tc_smem);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm0 = (warp % WARPS_M) * WM, wn0 = (warp / WARPS_M) * WN;
    const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
    const bool vec_a = lk::rows_16b_aligned(a, p.lda, sizeof(E));
    const bool vec_b = lk::rows_16b_aligned(b, p.ldb, sizeof(E));
    // SPLIT (v24): this block sums k in [kb, ke) only, range z = blockIdx.z of p.k_split elements (a
    // multiple of 16, so a range may start half-way into a 32-wide bf16 step; chunks stay 16-byte
    // aligned); the loads treat ke as the end of k, so they read zeros past it.
    const int64_t kb = SPLIT ? (int64_t)blockIdx.z * p.k_split : 0;
    const int64_t ke = SPLIT ? (kb + p.k_split < p.k ? kb + p.k_split : p.k) : p.k;

    float acc[MT][NT8][4];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NT8; ++j)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;

    auto load_stage = [&](int stage, int64_t step) {
        E* sa = smem + stage * STAGE;
        E* sb = sa + A_ELEMS;
        const int64_t k0 = kb + step * BK;
        if (TA) tc_load_tile<E, BK, BM, SA, NT>(sa, a, p.lda, ke, p.m, k0, m0, vec_a, tid);
        else tc_load_tile<E, BM, BK, SA, NT>(sa, a, p.lda, p.m, ke, m0, k0, vec_a, tid);
        if (TB) tc_load_tile<E, BN, BK, SB, NT>(sb, b, p.ldb, p.n, ke, n0, k0, vec_b, tid);
        else tc_load_tile<E, BK, BN, SB, NT>(sb, b, p.ldb, ke, p.n, k0, n0, vec_b, tid);
    };

    // Pipeline: group s holds step s's copies; a commit per step (empty past the end) keeps the
    // group count uniform, so waiting until ≤ STAGES − 2 groups are pending means step kt landed.
    const int64_t steps = (ke - kb + BK - 1) / BK;
#pragma unroll
    for (int s = 0; s < TC_STAGES - 1; ++s) {
        if (s < steps) load_stage(s, s);
        cp_async_commit();
    }
    const int g = lane >> 2, t = lane & 3;  // mma fragment coordinates: group and thread in group
    // Stage of step kt (read) and of step kt + STAGES − 1 (written), rotated instead of kt % STAGES.
    int read_stage = 0, write_stage = TC_STAGES - 1;
    for (int64_t kt = 0; kt < steps; ++kt) {
        cp_async_wait<TC_STAGES - 2>();
        __syncthreads();  // step kt visible to all; everyone is done with step kt − 1's stage
        {
            const int64_t next = kt + TC_STAGES - 1;
            if (next < steps) load_stage(write_stage, next);
            cp_async_commit();
        }
        const E* sa = smem + read_stage * STAGE;
        read_stage = read_stage == TC_STAGES - 1 ? 0 : read_stage + 1;
        write_stage = write_stage == TC_STAGES - 1 ? 0 : write_stage + 1;
        const E* sb = sa + A_ELEMS;
        if constexpr (T == TC_TF32) {
#pragma unroll
            for (int kk = 0; kk < BK; kk += 8) {
                uint32_t fa[MT][4], fb[NT8][2];
                // A fragment: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4) as (m, k).
#pragma unroll
                for (int mi = 0; mi < MT; ++mi) {
                    const int m = wm0 + mi * 16 + g;
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        const int mm = m + (q & 1) * 8, k = kk + t + (q >> 1) * 4;
                        fa[mi][q] = to_tf32(TA ? sa[k * SA + mm] : sa[mm * SA + k]);
                    }
                }
                // B fragment: b0 (k = t, n = g), b1 (k = t+4, n = g).
#pragma unroll
                for (int ni = 0; ni < NT8; ++ni) {
                    const int n = wn0 + ni * 8 + g;
#pragma unroll
                    for (int q = 0; q < 2; ++q) {
                        const int k = kk + t + q * 4;
                        fb[ni][q] = to_tf32(TB ? sb[n * SB + k] : sb[k * SB + n]);
                    }
                }
#pragma unroll
                for (int mi = 0; mi < MT; ++mi)
#pragma unroll
                    for (int ni = 0; ni < NT8; ++ni) mma_16x8x8_tf32(acc[mi][ni], fa[mi], fb[ni][0], fb[ni][1]);
            }
        } else {
            const int i8 = lane >> 3, r8 = lane & 7;  // which 8×8 matrix this lane addresses, which row
#pragma unroll
            for (int kk = 0; kk < BK; kk += 16) {
                uint32_t fa[MT][4], fb[NT8][2];
                // A's four 8×8 matrices in register order: (m 0-7, k 0-7), (m 8-15, k 0-7),
                // (m 0-7, k 8-15), (m 8-15, k 8-15) of the 16×16 block.
#pragma unroll
                for (int mi = 0; mi < MT; ++mi) {
                    const int mb = wm0 + mi * 16;
                    if (TA) ldmatrix_x4_trans(fa[mi], sa + (kk + (i8 >> 1) * 8 + r8) * SA + mb + (i8 & 1) * 8);
                    else ldmatrix_x4(fa[mi], sa + (mb + (lane & 15)) * SA + kk + (lane >> 4) * 8);
                }
                // B: per pair of 8-column tiles, (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7),
                // (n 8-15, k 8-15): b0/b1 of tile 2j then of tile 2j + 1.
#pragma unroll
                for (int nj = 0; nj < NT8 / 2; ++nj) {
                    const int nb = wn0 + nj * 16 + (i8 >> 1) * 8;
                    uint32_t r[4];
                    if (TB) ldmatrix_x4(r, sb + (nb + r8) * SB + kk + (i8 & 1) * 8);
                    else ldmatrix_x4_trans(r, sb + (kk + (i8 & 1) * 8 + r8) * SB + nb);
                    fb[2 * nj][0] = r[0];
                    fb[2 * nj][1] = r[1];
                    fb[2 * nj + 1][0] = r[2];
                    fb[2 * nj + 1][1] = r[3];
                }
#pragma unroll
                for (int mi = 0; mi < MT; ++mi)
#pragma unroll
                    for (int ni = 0; ni < NT8; ++ni) mma_16x8x16<T>(acc[mi][ni], fa[mi], fb[ni][0], fb[ni][1]);
            }
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // every warp is done with the pipeline's shared memory

    tc_park_and_store<MT, NT8, WM, WN, SPLIT>(acc, p, warp, lane, m0 + wm0, n0 + wn0, c, bias, y);
#else
    __trap();
#endif
}

template <TcType T, int BM, int BN, int WARPS_M, int WARPS_N, bool SPLIT = false>
__device__ __forceinline__ void gemm_tc(const lk_gemm_params& p, const typename TcElem<T>::type* a,
                                        const typename TcElem<T>::type* b, float* c, const float* bias,
                                        const float* y) {
    lk::with_transposes(p, [&](auto ta, auto tb) {
        gemm_tc_body<T, BM, BN, WARPS_M, WARPS_N, SPLIT, decltype(ta)::value, decltype(tb)::value>(p, a, b, c, bias, y);
    });
}

}  // namespace

// Nine entry points: {128×128 (256 threads), 64×64 (128 threads), 128×256 (256 threads, 64×64 warp
// tiles)} × {bf16, f16, tf32}.
LK_KERNEL void __launch_bounds__(256) gemm_tc128_bf16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                      const uint16_t* __restrict__ b, float* __restrict__ c,
                                                      const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc<TC_BF16, 128, 128, 2, 4>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(128) gemm_tc64_bf16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                     const uint16_t* __restrict__ b, float* __restrict__ c,
                                                     const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc<TC_BF16, 64, 64, 2, 2>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(256) gemm_tc128_f16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                     const uint16_t* __restrict__ b, float* __restrict__ c,
                                                     const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc<TC_F16, 128, 128, 2, 4>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(128) gemm_tc64_f16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                    const uint16_t* __restrict__ b, float* __restrict__ c,
                                                    const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc<TC_F16, 64, 64, 2, 2>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(256) gemm_tc128_tf32(lk_gemm_params p, const float* __restrict__ a,
                                                      const float* __restrict__ b, float* __restrict__ c,
                                                      const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc<TC_TF32, 128, 128, 2, 4>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(128) gemm_tc64_tf32(lk_gemm_params p, const float* __restrict__ a,
                                                     const float* __restrict__ b, float* __restrict__ c,
                                                     const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc<TC_TF32, 64, 64, 2, 2>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(256) gemm_tc128x256_bf16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                         const uint16_t* __restrict__ b, float* __restrict__ c,
                                                         const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc<TC_BF16, 128, 256, 2, 4>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(256) gemm_tc128x256_f16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                        const uint16_t* __restrict__ b, float* __restrict__ c,
                                                        const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc<TC_F16, 128, 256, 2, 4>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(256) gemm_tc128x256_tf32(lk_gemm_params p, const float* __restrict__ a,
                                                         const float* __restrict__ b, float* __restrict__ c,
                                                         const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc<TC_TF32, 128, 256, 2, 4>(p, a, b, c, bias, y);
}

// v24 gemm_tc64_splitk_{bf16,f16,tf32} (+ gemm_splitk_reduce_f32): the 64×64 tensor-core tiles
// with v4's split-k, for outputs of a few 64-tiles with a long k (the dW = dYᵀX of a large batch:
// 20×400×8192 is 7 tiles, which one k loop each ran at 0.07× cuBLAS bf16 on an H100, 2026-11-27).
// Block (x, y, z) sums k in [z·k_split, (z + 1)·k_split) of tile (y, x) into slice z of the
// workspace (c); the reduce kernel adds the slices in order and applies α, β·C and the epilogue.
LK_KERNEL void __launch_bounds__(128) gemm_tc64_splitk_bf16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                            const uint16_t* __restrict__ b, float* __restrict__ ws,
                                                            const float* __restrict__ bias,
                                                            const float* __restrict__ y) {
    gemm_tc<TC_BF16, 64, 64, 2, 2, true>(p, a, b, ws, bias, y);
}
LK_KERNEL void __launch_bounds__(128) gemm_tc64_splitk_f16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                           const uint16_t* __restrict__ b, float* __restrict__ ws,
                                                           const float* __restrict__ bias,
                                                           const float* __restrict__ y) {
    gemm_tc<TC_F16, 64, 64, 2, 2, true>(p, a, b, ws, bias, y);
}
LK_KERNEL void __launch_bounds__(128) gemm_tc64_splitk_tf32(lk_gemm_params p, const float* __restrict__ a,
                                                            const float* __restrict__ b, float* __restrict__ ws,
                                                            const float* __restrict__ bias,
                                                            const float* __restrict__ y) {
    gemm_tc<TC_TF32, 64, 64, 2, 2, true>(p, a, b, ws, bias, y);
}

// ---------------------------------------------------------------------------------------------------
// v7, v10, v11 (gemm_tc2_*): the same product, storage rules and epilogues as above,
//   C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), A, B bf16 or f16, f32 accumulation,
// rebuilt so that the tensor pipe is not starved by address arithmetic and bank conflicts. One body,
// templated on the block tile (Tc2Tile: BM × BN over WARPS_M × WARPS_N warps, STAGES):
//   v7  gemm_tc2_128x256_bf16 / _f16:   128×256, 8 warps (2×4), 3 stages: 144 KiB, 1 block per SM.
//   v10 gemm_tc2_128x128_bf16 / _f16:   128×128, 4 warps (2×2), 3 stages: 96 KiB, so two blocks share
//     an SM of an H100 / H200 (228 KiB an SM; an A100's 164 KiB holds one) and one's barrier and
//     load latency hide under the other's mma.
//   v11 gemm_tc2_128x256s4_bf16 / _f16: v7's tile with 4 stages: 192 KiB (H100 / H200 only).
// GPUs with less shared memory per block (A100: 163 KiB, sm_86 / sm_89: 99 KiB) refuse the launch
// of those that need more; measured tuning skips them.
// Work split: every warp computes a 64×64 warp tile of 4 × 8 mma.m16n8k16 tiles (128 f32
// accumulators a thread, ~240 registers). k advances by BK = 64 through the STAGES-stage cp.async
// ring: (BM + BN) · 128 bytes a stage.
// Shared memory: an operand tile keeps its global layout, unpadded: rows of C = 8, 16 or 32 16-byte
// chunks (128 / 256 / 512 bytes), chunk c of row r stored at chunk c ^ (r & 7). An ldmatrix 8×8
// matrix (8 consecutive rows, one logical chunk) and 8 threads' cp.async (8 consecutive chunks of a
// row) then each cover all 32 banks once: no conflicts.
// Loads: thread t copies chunk column t % C of rows t / C + i · THREADS / C; THREADS / C is a
// multiple of 8, so the swizzled shared offset is one number per thread, and the global pointer is
// computed once: each k step adds BK (k-contiguous operand) or BK · ld. Blocks wholly inside the
// output with 16-byte aligned rows take this path for every full k step; edge blocks, the k tail and
// unaligned rows take the bounds-checked copy (zero-filled; element-wise when rows are unaligned).
// Fragments: each ldmatrix address is a per-lane base, a compile-time offset and one XOR; the
// fragments of k16 slice s + 1 load while the mma of slice s issue (a stage's last slice is followed
// by the next stage's first, read after its wait and barrier). (Unrolling the k loop over the ring
// so that stage offsets become immediates, with the next slice's ldmatrix interleaved between rows
// of mma, ran v7 slower in a probe on an H100 at 4096³ (2026-11-27): not done.)
// Each output sums k in the same order in every variant: results are deterministic, and v7, v10
// and v11 agree bit for bit.
// Epilogue: that of the kernels above (32 columns of a warp tile parked at a time, lk::gemm_store).

namespace {

template <int BM_, int BN_, int WARPS_M_, int WARPS_N_, int STAGES_>
struct Tc2Tile {
    static constexpr int BM = BM_, BN = BN_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_, STAGES = STAGES_;
    static constexpr int BK = 64, THREADS = 32 * WARPS_M * WARPS_N;
    // Bytes of one stage (A and B tiles, 2-byte elements) and of the dynamic shared memory: the
    // pipeline, which is larger than the epilogue's parking space (a warp's 64 rows × 32 floats).
    static constexpr int STAGE_BYTES = (BM + BN) * BK * 2;
    static constexpr int SMEM_BYTES = STAGES * STAGE_BYTES;
    static_assert(BM == 64 * WARPS_M && BN == 64 * WARPS_N, "64×64 warp tiles");
    static_assert(STAGES >= 2, "the ring needs a stage in flight");
    static_assert(SMEM_BYTES >= WARPS_M * WARPS_N * 64 * 32 * 4, "the epilogue parks in the pipeline's memory");
};
// src/ops/gemm/cuda.rs (tc2_smem) launches them with these byte counts.
using Tc2V7 = Tc2Tile<128, 256, 2, 4, 3>;
using Tc2V10 = Tc2Tile<128, 128, 2, 2, 3>;
using Tc2V11 = Tc2Tile<128, 256, 2, 4, 4>;
static_assert(Tc2V7::SMEM_BYTES == 147456 && Tc2V10::SMEM_BYTES == 98304 && Tc2V11::SMEM_BYTES == 196608,
              "src/ops/gemm/cuda.rs");

#if defined(LK_CUDA_EMULATOR)
// Shared addresses: host pointers under the emulator (its PTX models take pointers).
using SAddr = char*;
__device__ __forceinline__ SAddr tc2_saddr(void* p) { return static_cast<char*>(p); }
__device__ __forceinline__ void cp_async_16s(SAddr dst, const void* src, int bytes) { cp_async_16(dst, src, bytes); }
__device__ __forceinline__ void cp_async_16s_full(SAddr dst, const void* src) { cp_async_16(dst, src, 16); }
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], SAddr p) { ldmatrix_x4(r, p); }
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], SAddr p) { ldmatrix_x4_trans(r, p); }
#elif LK_TC_SUPPORTED
// Shared addresses: the 32-bit shared-window addresses cp.async and ldmatrix take, so no
// generic → shared conversion is paid per instruction.
using SAddr = uint32_t;
__device__ __forceinline__ SAddr tc2_saddr(void* p) { return smem_addr(p); }
__device__ __forceinline__ void cp_async_16s(SAddr dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_16s_full(SAddr dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
}
// (ldsm_x4 / ldsm_x4_trans on these addresses: mma_sync.cuh.)
#endif

#if LK_TC_SUPPORTED
// Bounds-checked copy of the R × (8·C) tile at (r0, c0) of a rows × cols matrix of 16-bit elements
// (row stride ld) into the swizzled layout at s (generic pointer sg), zero outside the matrix: chunks
// partly outside through cp.async's source size, or element by element when rows are unaligned.
template <int R, int C, int NT>
__device__ __forceinline__ void tc2_load_checked(SAddr s, uint16_t* sg, const uint16_t* __restrict__ g, int64_t ld,
                                                 int64_t rows, int64_t cols, int64_t r0, int64_t c0, bool vec,
                                                 int tid) {
    static_assert((R * C) % NT == 0, "chunks must divide evenly over the threads");
#pragma unroll 1  // edge blocks only: small code, few registers
    for (int i = 0; i < R * C / NT; ++i) {
        const int e = tid + i * NT;
        const int r = e / C, cc = e % C;
        const int64_t gr = r0 + r, gc = c0 + cc * 8;
        const int valid = lk::chunk_valid(rows, cols, gr, gc, 8);
        const int off = (r * C + (cc ^ (r & 7))) * 16;
        if (vec) {
            cp_async_16s(s + off, valid > 0 ? g + gr * ld + gc : g, valid * 2);
        } else {
            uint16_t* dst = sg + off / 2;
#pragma unroll
            for (int t = 0; t < 8; ++t) dst[t] = t < valid ? g[gr * ld + gc + t] : uint16_t(0);
        }
    }
}
#endif

template <class Tile, TcType T, bool TA, bool TB, bool PERSISTENT>
__device__ __forceinline__ void gemm_tc2_body(const lk_gemm_params& p, const uint16_t* __restrict__ a,
                                              const uint16_t* __restrict__ b, float* __restrict__ c,
                                              const float* __restrict__ bias, const float* __restrict__ y) {
#if LK_TC_SUPPORTED
    constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, NT = Tile::THREADS, KS = BK / 16;
    constexpr int STAGES = Tile::STAGES, STAGE_BYTES = Tile::STAGE_BYTES;
    constexpr int WARPS_M = Tile::WARPS_M, WM = 64, WN = 64, MT = WM / 16, NT8 = WN / 8;
    // Stored tiles: A is [BM rows, BK] (k contiguous) unless TA ([BK rows, BM]); B is [BK rows, BN]
    // unless TB ([BN rows, BK]). C: 16-byte chunks per row.
    constexpr int A_R = TA ? BK : BM, A_C = (TA ? BM : BK) / 8;
    constexpr int B_R = TB ? BN : BK, B_C = (TB ? BK : BN) / 8;
    constexpr int A_BYTES = A_R * A_C * 16;
    constexpr int A_IT = A_R * A_C / NT, B_IT = B_R * B_C / NT;  // chunks a thread copies per step
    static_assert(A_BYTES + B_R * B_C * 16 == STAGE_BYTES, "stage size");
    static_assert((NT / A_C) % 8 == 0 && (NT / B_C) % 8 == 0, "a thread's rows share their swizzle");

    const SAddr smem = tc2_saddr(lk_tc_smem);
    uint16_t* const smem_g = reinterpret_cast<uint16_t*>(lk_tc_smem);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm0 = (warp % WARPS_M) * WM, wn0 = (warp / WARPS_M) * WN;
    const bool vec_a = lk::rows_16b_aligned(a, p.lda, 2);
    const bool vec_b = lk::rows_16b_aligned(b, p.ldb, 2);
    // PERSISTENT (v15): block b takes the output tiles b, b + grid, ... (n-tile fastest); else the
    // block's one tile is (blockIdx.y, blockIdx.x).
    const int tiles_n = PERSISTENT ? static_cast<int>((p.n + BN - 1) / BN) : 1;
    const int tiles = PERSISTENT ? tiles_n * static_cast<int>((p.m + BM - 1) / BM) : 1;
    const int grid = PERSISTENT ? static_cast<int>(gridDim.x) : 1, bid = PERSISTENT ? static_cast<int>(blockIdx.x) : 0;
    const int count = bid < tiles ? (tiles - 1 - bid) / grid + 1 : 0;  // this block's tiles
    int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
    // Interior tile: every full k step is copied without bounds checks.
    bool interior = vec_a && vec_b && m0 + BM <= p.m && n0 + BN <= p.n;

    // This thread's copies: row t / C, chunk t % C of the stored tile, then every NT / C rows
    // (shared: + NT · 16 bytes each). Global pointers of the next step's first chunk; formed for
    // every tile, dereferenced only by interior tiles on full steps.
    const int a_row = tid / A_C, a_chunk = tid % A_C, b_row = tid / B_C, b_chunk = tid % B_C;
    const int a_soff = (a_row * A_C + (a_chunk ^ (a_row & 7))) * 16;
    const int b_soff = A_BYTES + (b_row * B_C + (b_chunk ^ (b_row & 7))) * 16;
    const uint16_t* ga = TA ? a + a_row * p.lda + m0 + a_chunk * 8 : a + (m0 + a_row) * p.lda + a_chunk * 8;
    const uint16_t* gb = TB ? b + (n0 + b_row) * p.ldb + b_chunk * 8 : b + b_row * p.ldb + n0 + b_chunk * 8;
    // Moves the copies to the block's j-th tile, k step 0.
    auto start_tile = [&](int j) {
        const int tile = bid + j * grid;
        m0 = (int64_t)(tile / tiles_n) * BM;
        n0 = (int64_t)(tile % tiles_n) * BN;
        interior = vec_a && vec_b && m0 + BM <= p.m && n0 + BN <= p.n;
        ga = TA ? a + a_row * p.lda + m0 + a_chunk * 8 : a + (m0 + a_row) * p.lda + a_chunk * 8;
        gb = TB ? b + (n0 + b_row) * p.ldb + b_chunk * 8 : b + b_row * p.ldb + n0 + b_chunk * 8;
    };
    if constexpr (PERSISTENT) {
        if (count == 0) return;
        start_tile(0);
    }
    const int64_t a_rstep = (NT / A_C) * p.lda, b_rstep = (NT / B_C) * p.ldb;
    const int64_t a_kstep = TA ? BK * p.lda : BK, b_kstep = TB ? BK : BK * p.ldb;

    // Copies step `step` into the stage at byte offset `st` (steps are copied in order: the pointers
    // advance by one step per call).
    auto load_stage = [&](int st, int64_t step) {
        if (interior && (step + 1) * BK <= p.k) {
            const uint16_t* g = ga;
#pragma unroll
            for (int i = 0; i < A_IT; ++i, g += a_rstep) cp_async_16s_full(smem + (st + a_soff + i * NT * 16), g);
            g = gb;
#pragma unroll
            for (int i = 0; i < B_IT; ++i, g += b_rstep) cp_async_16s_full(smem + (st + b_soff + i * NT * 16), g);
        } else {
            const int64_t k0 = step * BK;
            const SAddr sa = smem + st, sb = smem + (st + A_BYTES);
            uint16_t* const sag = smem_g + st / 2;
            uint16_t* const sbg = sag + A_BYTES / 2;
            if (TA) tc2_load_checked<BK, BM / 8, NT>(sa, sag, a, p.lda, p.k, p.m, k0, m0, vec_a, tid);
            else tc2_load_checked<BM, BK / 8, NT>(sa, sag, a, p.lda, p.m, p.k, m0, k0, vec_a, tid);
            if (TB) tc2_load_checked<BN, BK / 8, NT>(sb, sbg, b, p.ldb, p.n, p.k, n0, k0, vec_b, tid);
            else tc2_load_checked<BK, BN / 8, NT>(sb, sbg, b, p.ldb, p.k, p.n, k0, n0, vec_b, tid);
        }
        ga += a_kstep;
        gb += b_kstep;
    };

    // ldmatrix addresses (bytes from the stage base): lane base + compile-time offset, XOR-ed
    // with the slice's (k-contiguous tiles) or the mma tile's (m/n-contiguous) chunk; row & 7 is
    // lane & 7 in every case. Register order as in gemm_tc_body: A's (m 0-7, k 0-7), (m 8-15, k 0-7),
    // (m 0-7, k 8-15), (m 8-15, k 8-15); B per 16 columns: b0/b1 of 8-column tile 2j, then 2j + 1.
    const int i8 = lane >> 3, r8 = lane & 7;
    // k-contiguous A: row wm0 + (lane & 15), chunk 2·slice + lane / 16. m-contiguous A (.trans):
    // k row (i8 / 2)·8 + r8, chunk wm0 / 8 + 2·mi + i8 % 2.
    const int a_x = TA ? ((i8 & 1) ^ r8) : ((lane >> 4) ^ r8);
    const int a_base = TA ? ((i8 >> 1) * 8 + r8) * (A_C * 16) + wm0 * 2 : (wm0 + (lane & 15)) * (A_C * 16);
    // k-contiguous B: n row wn0 + (i8 / 2)·8 + r8, chunk 2·slice + i8 % 2. n-contiguous B (.trans):
    // k row (i8 % 2)·8 + r8, chunk wn0 / 8 + 2·nj + i8 / 2.
    const int b_x = TB ? ((i8 & 1) ^ r8) : ((i8 >> 1) ^ r8);
    const int b_base =
        A_BYTES + (TB ? (wn0 + (i8 >> 1) * 8 + r8) * (B_C * 16) : ((i8 & 1) * 8 + r8) * (B_C * 16) + wn0 * 2);

    uint32_t fa[2][MT][4], fb[2][NT8][2];
    // Fragments of k16 slice ks of the stage at st into buffer buf.
    auto load_frags = [&](int buf, int st, int ks) {
#pragma unroll
        for (int mi = 0; mi < MT; ++mi) {
            if (TA) ldsm_x4_trans(fa[buf][mi], smem + (st + a_base + ks * 16 * (A_C * 16) + ((2 * mi ^ a_x) << 4)));
            else ldsm_x4(fa[buf][mi], smem + (st + a_base + mi * 16 * (A_C * 16) + ((2 * ks ^ a_x) << 4)));
        }
#pragma unroll
        for (int nj = 0; nj < NT8 / 2; ++nj) {
            uint32_t r[4];
            if (TB) ldsm_x4(r, smem + (st + b_base + nj * 16 * (B_C * 16) + ((2 * ks ^ b_x) << 4)));
            else ldsm_x4_trans(r, smem + (st + b_base + ks * 16 * (B_C * 16) + ((2 * nj ^ b_x) << 4)));
            fb[buf][2 * nj][0] = r[0];
            fb[buf][2 * nj][1] = r[1];
            fb[buf][2 * nj + 1][0] = r[2];
            fb[buf][2 * nj + 1][1] = r[3];
        }
    };

    // Pipeline as in gemm_tc_body: a commit per step (empty past the end) keeps the group count
    // uniform, so ≤ STAGES − 2 pending groups means the step about to be read has landed.
    const int64_t steps = (p.k + BK - 1) / BK;
    // The current tile's first STAGES − 1 steps into stages 0, 1, ... (the ring is idle).
    auto load_prologue = [&]() {
#pragma unroll
        for (int s = 0; s < STAGES - 1; ++s) {
            if (s < steps) load_stage(s * STAGE_BYTES, s);
            cp_async_commit();
        }
    };
    auto next_stage = [](int st) { return st == (STAGES - 1) * STAGE_BYTES ? 0 : st + STAGE_BYTES; };
    const bool plain = p.epilogue == LK_EPI_NONE && p.beta == 0.0f;
    const bool pairs = lk::gemm_store_pairs_ok(c, p.ldc);
    float acc[MT][NT8][4];
    auto zero_acc = [&]() {
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
            for (int jj = 0; jj < NT8; ++jj)
#pragma unroll
                for (int q = 0; q < 4; ++q) acc[i][jj][q] = 0.0f;
    };
    zero_acc();
    load_prologue();
    for (int j = 0; j < count; ++j) {
        int rd = 0, wr = (STAGES - 1) * STAGE_BYTES;  // stage read now, stage written next
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        load_frags(0, rd, 0);
        for (int64_t kt = 0; kt < steps; ++kt) {
#pragma unroll
            for (int ks = 0; ks < KS; ++ks) {
                if (ks == KS - 1) {
                    // Step kt + 1 landed and is visible; every warp has read its last slice of
                    // step kt − 1's stage (before this barrier, one step ago), which the copies
                    // below (next step) reuse.
                    cp_async_wait<STAGES - 2>();
                    __syncthreads();
                    rd = next_stage(rd);
                }
                if (ks == 0) {
                    // The stage read during step kt − 1: every warp passed the barrier after its
                    // last read. (Before the next fragments load, so the copies' registers don't
                    // add to both buffers'.)
                    if (kt + STAGES - 1 < steps) load_stage(wr, kt + STAGES - 1);
                    cp_async_commit();
                    wr = next_stage(wr);
                }
                load_frags((ks + 1) & 1, rd, (ks + 1) % KS);
#pragma unroll
                for (int mi = 0; mi < MT; ++mi)
#pragma unroll
                    for (int ni = 0; ni < NT8; ++ni)
                        mma_16x8x16<T>(acc[mi][ni], fa[ks & 1][mi], fb[ks & 1][ni][0], fb[ks & 1][ni][1]);
            }
        }
        cp_async_wait<0>();
        __syncthreads();  // every warp is done with the pipeline's shared memory

        if constexpr (PERSISTENT) {
            // The next tile's first steps load while this one is stored straight from registers.
            const int64_t r0 = m0 + wm0 + (lane >> 2), c0 = n0 + wn0 + 2 * (lane & 3);
            if (j + 1 < count) {
                start_tile(j + 1);
                load_prologue();
            }
#pragma unroll
            for (int mi = 0; mi < MT; ++mi)
#pragma unroll
                for (int ni = 0; ni < NT8; ++ni)
                    lk::gemm_store_quad(p, plain, pairs, r0 + 16 * mi, c0 + 8 * ni, acc[mi][ni], c, bias, y);
            zero_acc();
        } else {
            tc_park_and_store<MT, NT8, WM, WN, false>(acc, p, warp, lane, m0 + wm0, n0 + wn0, c, bias, y);
        }
    }
#else
    __trap();
#endif
}

template <class Tile, TcType T, bool PERSISTENT = false>
__device__ __forceinline__ void gemm_tc2(const lk_gemm_params& p, const uint16_t* a, const uint16_t* b, float* c,
                                         const float* bias, const float* y) {
    lk::with_transposes(p, [&](auto ta, auto tb) {
        gemm_tc2_body<Tile, T, decltype(ta)::value, decltype(tb)::value, PERSISTENT>(p, a, b, c, bias, y);
    });
}

}  // namespace

// v7 entry points: 128×256 tiles, 256 threads, one block per SM (minimum 1 block: up to 255 registers).
LK_KERNEL void __launch_bounds__(256, 1) gemm_tc2_128x256_bf16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                               const uint16_t* __restrict__ b, float* __restrict__ c,
                                                               const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc2<Tc2V7, TC_BF16>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(256, 1) gemm_tc2_128x256_f16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                              const uint16_t* __restrict__ b, float* __restrict__ c,
                                                              const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc2<Tc2V7, TC_F16>(p, a, b, c, bias, y);
}

// v10 entry points: 128×128 tiles, 128 threads, two blocks per SM (2 × 128 threads × 255 registers
// fit the 64K register file, so the bound costs no registers).
LK_KERNEL void __launch_bounds__(128, 2) gemm_tc2_128x128_bf16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                               const uint16_t* __restrict__ b, float* __restrict__ c,
                                                               const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc2<Tc2V10, TC_BF16>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(128, 2) gemm_tc2_128x128_f16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                              const uint16_t* __restrict__ b, float* __restrict__ c,
                                                              const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_tc2<Tc2V10, TC_F16>(p, a, b, c, bias, y);
}

// v11 entry points: v7's tiles with a 4-stage ring (192 KiB: H100 / H200), one block per SM.
LK_KERNEL void __launch_bounds__(256, 1) gemm_tc2_128x256s4_bf16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                                 const uint16_t* __restrict__ b, float* __restrict__ c,
                                                                 const float* __restrict__ bias,
                                                                 const float* __restrict__ y) {
    gemm_tc2<Tc2V11, TC_BF16>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(256, 1) gemm_tc2_128x256s4_f16(lk_gemm_params p, const uint16_t* __restrict__ a,
                                                                const uint16_t* __restrict__ b, float* __restrict__ c,
                                                                const float* __restrict__ bias,
                                                                const float* __restrict__ y) {
    gemm_tc2<Tc2V11, TC_F16>(p, a, b, c, bias, y);
}

// v15 entry points: v7 made persistent (grid = min(tiles, SMs), src/ops/gemm/cuda.rs): a block walks
// its tiles, loading the next tile's first stages while it stores the current one from registers.
LK_KERNEL void __launch_bounds__(256, 1) gemm_tc2p_128x256_bf16(const __grid_constant__ lk_gemm_params p,
                                                                const uint16_t* __restrict__ a,
                                                                const uint16_t* __restrict__ b, float* __restrict__ c,
                                                                const float* __restrict__ bias,
                                                                const float* __restrict__ y) {
    gemm_tc2<Tc2V7, TC_BF16, true>(p, a, b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(256, 1) gemm_tc2p_128x256_f16(const __grid_constant__ lk_gemm_params p,
                                                               const uint16_t* __restrict__ a,
                                                               const uint16_t* __restrict__ b, float* __restrict__ c,
                                                               const float* __restrict__ bias,
                                                               const float* __restrict__ y) {
    gemm_tc2<Tc2V7, TC_F16, true>(p, a, b, c, bias, y);
}
