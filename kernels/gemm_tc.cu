// Tensor-core GEMM, row-major: C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C), op ∈
// {N, T}, with f32 accumulation and f32 C; the epilogues, BLAS α/β conventions and storage rules are
// those of gemm.cu (shared code in gemm.cuh).
//   gemm_tc{128,64,128x256}_bf16 / _f16: A and B in bfloat16 / IEEE half (products exact in f32),
//     mma.sync.m16n8k16, fragments through ldmatrix (.trans for the operand layouts that store k
//     as the row index).
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
// (72 KiB, 18 KiB, 72 KiB: 32 columns of each warp tile at a time); the backend raises the 48 KiB
// default limit of the larger kernels when it loads them
// (src/ops/gemm/cuda.rs). Needs sm_80+ (ldmatrix, cp.async,
// bf16 mma); older targets get a trap.
#include "gemm.cuh"

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define LK_TC_SUPPORTED 1
#else
#define LK_TC_SUPPORTED 0
#endif

extern __shared__ uint4 lk_tc_smem[];

namespace {

enum TcType { TC_BF16, TC_F16, TC_TF32 };

constexpr int TC_STAGES = 3;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#if defined(LK_CUDA_EMULATOR)
// The CPU emulator's models of the PTX below (tools/cuda-emu), for the tests on machines without a GPU.
#include "tc_ptx_emu.cuh"
#elif LK_TC_SUPPORTED
// 16-byte global → shared copy; bytes past src_bytes are zero-filled (src_bytes = 0 reads nothing).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

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

// d += a·b for one 16×8×16 tile (bf16 or f16 inputs, f32 accumulators).
template <TcType T>
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    if constexpr (T == TC_BF16) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
            "{%8, %9}, {%0, %1, %2, %3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    } else {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
            "{%8, %9}, {%0, %1, %2, %3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
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
template <typename E, int R, int C, int S, int NT>
__device__ __forceinline__ void tc_load_tile(E* __restrict__ s, const E* __restrict__ g, int64_t ld, int64_t rows,
                                             int64_t cols, int64_t r0, int64_t c0, bool vec, int tid) {
#if LK_TC_SUPPORTED
    constexpr int EPC = 16 / (int)sizeof(E);  // elements per 16-byte chunk
    constexpr int CHUNKS = R * (C / EPC);
    static_assert(CHUNKS % NT == 0, "chunks must divide evenly over the threads");
#pragma unroll
    for (int i = 0; i < CHUNKS / NT; ++i) {
        const int e = tid + i * NT;
        const int r = e / (C / EPC), cc = (e % (C / EPC)) * EPC;
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

template <TcType T, int BM, int BN, int WARPS_M, int WARPS_N, bool TA, bool TB>
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
        const int64_t k0 = step * BK;
        if (TA) tc_load_tile<E, BK, BM, SA, NT>(sa, a, p.lda, p.k, p.m, k0, m0, vec_a, tid);
        else tc_load_tile<E, BM, BK, SA, NT>(sa, a, p.lda, p.m, p.k, m0, k0, vec_a, tid);
        if (TB) tc_load_tile<E, BN, BK, SB, NT>(sb, b, p.ldb, p.n, p.k, n0, k0, vec_b, tid);
        else tc_load_tile<E, BK, BN, SB, NT>(sb, b, p.ldb, p.k, p.n, k0, n0, vec_b, tid);
    };

    // Pipeline: group s holds step s's copies; a commit per step (empty past the end) keeps the
    // group count uniform, so waiting until ≤ STAGES − 2 groups are pending means step kt landed.
    const int64_t steps = (p.k + BK - 1) / BK;
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

    // Epilogue through shared memory: each warp parks its WM×WN accumulators (fragment layout: d0,
    // d1 at (g, 2t), (g, 2t+1); d2, d3 at (g+8, ...)), then stores them row by row, 32 consecutive
    // columns per instruction (coalesced), through one non-unrolled copy of the epilogue code.
    // 64-wide warp tiles go in two halves of 32 columns, so the parking space stays that of a
    // 32-wide tile (the 128×256 kernel then fits the 99 KiB of sm_86 / sm_89).
    constexpr int PARTS = WN >= 64 ? 2 : 1, PW = WN / PARTS, P8 = NT8 / PARTS;
    constexpr int SC = PW + 4;  // row stride: the fragment writes of a warp hit distinct banks
    float* const park = reinterpret_cast<float*>(lk_tc_smem) + warp * WM * SC;
#pragma unroll
    for (int part = 0; part < PARTS; ++part) {
        if (part > 0) __syncwarp();  // the previous part's stores have read the parking space
#pragma unroll
        for (int mi = 0; mi < MT; ++mi)
#pragma unroll
            for (int ni = 0; ni < P8; ++ni)
#pragma unroll
                for (int q = 0; q < 4; ++q)
                    park[(mi * 16 + g + (q >> 1) * 8) * SC + ni * 8 + 2 * t + (q & 1)] = acc[mi][part * P8 + ni][q];
        __syncwarp();
#pragma unroll 1
        for (int idx = lane; idx < WM * PW; idx += 32) {
            const int r = idx / PW, cc = idx % PW;
            const int64_t row = m0 + wm0 + r, col = n0 + wn0 + part * PW + cc;
            if (row < p.m && col < p.n) lk::gemm_store(p, row, col, park[r * SC + cc], c, bias, y);
        }
    }
#else
    __trap();
#endif
}

template <TcType T, int BM, int BN, int WARPS_M, int WARPS_N>
__device__ __forceinline__ void gemm_tc(const lk_gemm_params& p, const typename TcElem<T>::type* a,
                                        const typename TcElem<T>::type* b, float* c, const float* bias,
                                        const float* y) {
    if (p.trans_a) {
        if (p.trans_b) gemm_tc_body<T, BM, BN, WARPS_M, WARPS_N, true, true>(p, a, b, c, bias, y);
        else gemm_tc_body<T, BM, BN, WARPS_M, WARPS_N, true, false>(p, a, b, c, bias, y);
    } else {
        if (p.trans_b) gemm_tc_body<T, BM, BN, WARPS_M, WARPS_N, false, true>(p, a, b, c, bias, y);
        else gemm_tc_body<T, BM, BN, WARPS_M, WARPS_N, false, false>(p, a, b, c, bias, y);
    }
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
