// Peak-throughput probes: how fast one instruction issues when nothing else limits it, the ceiling
// that the GEMM kernels built on it are measured against (examples/bench_gemm.rs --ceilings).
//   peak_mma_bf16_f32: per warp, D[i][j] += A[i]·B[j] for i, j < 4, `iters` times, with
//     mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: A[i] 16×16, B[j] 16×8 (bf16), D[i][j]
//     16×8 (f32, from 0). The 16 accumulator tiles are independent (a 64×32 warp tile at one k
//     step, as in gemm_tc128), so the loop is bound by the tensor cores' issue rate, not by mma
//     latency. 2·16·8·16 = 4096 FLOP per mma, 65,536 per warp and iteration.
//   peak_ffma_f32: per thread, 16 independent chains acc[j] = fmaf(acc[j], m, c[j]), `iters` times,
//     from acc[j] = c[j]. 2 FLOP per FFMA, 32 per thread and iteration.
// Inputs, loaded once into registers before the loop; outputs written once after it (so nothing
// is dead code, and the memory traffic is a fraction of a percent of a millisecond-long launch):
//   mma: `sets` sets of 4 A tiles (row-major [m][k], 256 bf16 each) then 4 B tiles (row-major
//     [k][n], 128 bf16 each), 1536 bf16 a set; warp w (global index) uses set w % sets and writes
//     its 16 D tiles (row-major [m][n], tile i·4 + j) to out[w·2048 ..].
//   ffma: `sets` sets of 17 floats (m, c[0..16]); thread t (global index, T threads) uses set
//     t % sets and writes acc[j] to out[j·T + t].
// Work split: any grid of blocks of 32·warps threads (warps ≤ 16); every warp does the same work.
// The mma probe needs sm_80+ (bf16 mma); older targets get a trap. Its mma is gemm_tc.cu's
// (mma_sync.cuh); under the CUDA emulator, tools/cuda-emu's model (tc_ptx_emu.cuh), as there.
#include "common.cuh"

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define LK_PEAK_MMA_SUPPORTED 1
#else
#define LK_PEAK_MMA_SUPPORTED 0
#endif

namespace {

constexpr int PEAK_A_TILES = 4, PEAK_B_TILES = 4;
constexpr int PEAK_SET_HALVES = PEAK_A_TILES * 256 + PEAK_B_TILES * 128;
constexpr int PEAK_OUT_PER_WARP = PEAK_A_TILES * PEAK_B_TILES * 128;
constexpr int PEAK_CHAINS = 16;

#include "mma_sync.cuh"
#if defined(LK_CUDA_EMULATOR)
#include "tc_ptx_emu.cuh"
#endif

// Two adjacent bf16 of a row-major tile as one fragment register (lower index in the low half).
__device__ __forceinline__ uint32_t pack2(const uint16_t* __restrict__ p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 16;
}
// Two elements of one column (k and k + 1) of a row-major [k][8] tile.
__device__ __forceinline__ uint32_t pack2_col(const uint16_t* __restrict__ p) {
    return (uint32_t)p[0] | (uint32_t)p[8] << 16;
}

}  // namespace

LK_KERNEL void __launch_bounds__(512) peak_mma_bf16_f32(const uint16_t* __restrict__ tiles, int64_t sets,
                                                         int32_t iters, float* __restrict__ out) {
#if LK_PEAK_MMA_SUPPORTED
    const int64_t warp = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
    const uint16_t* set = tiles + (warp % sets) * PEAK_SET_HALVES;
    // Fragments in the PTX ISA's m16n8k16 layout: lane 4g + q holds A rows g, g + 8, columns 2q,
    // 2q + 1 (a0, a1) and 2q + 8, 2q + 9 (a2, a3); B rows 2q, 2q + 1 (b0) and 2q + 8, 2q + 9 (b1)
    // of column g; D rows g (d0, d1), g + 8 (d2, d3) of columns 2q, 2q + 1.
    uint32_t a[PEAK_A_TILES][4], b[PEAK_B_TILES][2];
#pragma unroll
    for (int i = 0; i < PEAK_A_TILES; ++i) {
        const uint16_t* t = set + i * 256;
        a[i][0] = pack2(t + g * 16 + 2 * q);
        a[i][1] = pack2(t + (g + 8) * 16 + 2 * q);
        a[i][2] = pack2(t + g * 16 + 2 * q + 8);
        a[i][3] = pack2(t + (g + 8) * 16 + 2 * q + 8);
    }
#pragma unroll
    for (int j = 0; j < PEAK_B_TILES; ++j) {
        const uint16_t* t = set + PEAK_A_TILES * 256 + j * 128;
        b[j][0] = pack2_col(t + (2 * q) * 8 + g);
        b[j][1] = pack2_col(t + (2 * q + 8) * 8 + g);
    }
    float d[PEAK_A_TILES][PEAK_B_TILES][4] = {};
    // 16 mmas an iteration: the loop's own three instructions are noise beside them.
#pragma unroll 1
    for (int it = 0; it < iters; ++it) {
#pragma unroll
        for (int i = 0; i < PEAK_A_TILES; ++i)
#pragma unroll
            for (int j = 0; j < PEAK_B_TILES; ++j) mma_16x8x16<TC_BF16>(d[i][j], a[i], b[j][0], b[j][1]);
    }
    float* o = out + warp * PEAK_OUT_PER_WARP;
#pragma unroll
    for (int i = 0; i < PEAK_A_TILES; ++i)
#pragma unroll
        for (int j = 0; j < PEAK_B_TILES; ++j) {
            float* t = o + (i * PEAK_B_TILES + j) * 128;
            t[g * 8 + 2 * q] = d[i][j][0];
            t[g * 8 + 2 * q + 1] = d[i][j][1];
            t[(g + 8) * 8 + 2 * q] = d[i][j][2];
            t[(g + 8) * 8 + 2 * q + 1] = d[i][j][3];
        }
#else
    __trap();
#endif
}

LK_KERNEL void __launch_bounds__(512) peak_ffma_f32(const float* __restrict__ in, int64_t sets, int32_t iters,
                                                     float* __restrict__ out) {
    const int64_t threads = (int64_t)gridDim.x * blockDim.x;
    const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const float* set = in + (t % sets) * (1 + PEAK_CHAINS);
    const float m = set[0];
    float c[PEAK_CHAINS], acc[PEAK_CHAINS];
#pragma unroll
    for (int j = 0; j < PEAK_CHAINS; ++j) acc[j] = c[j] = set[1 + j];
    // Unrolled 16 times: 256 FFMA to the loop's three other instructions, which take issue slots
    // of the same scheduler (FFMA alone can fill every slot: one warp instruction a cycle).
#pragma unroll 16
    for (int it = 0; it < iters; ++it) {
#pragma unroll
        for (int j = 0; j < PEAK_CHAINS; ++j) acc[j] = fmaf(acc[j], m, c[j]);
    }
#pragma unroll
    for (int j = 0; j < PEAK_CHAINS; ++j) out[j * threads + t] = acc[j];
}
