// latentkit-arch: sm_90a
// Hopper tensor-core GEMM (v6), row-major: C[m,n] = epilogue(alpha · op(A)[m,k] · op(B)[k,n] + beta · C),
// op ∈ {N, T}, A and B in bfloat16 or IEEE half (products exact in f32), f32 accumulation, f32 C; the
// epilogues and the BLAS α/β rules are gemm.cu's (gemm.cuh). wgmma, TMA and setmaxnreg exist on
// sm_90a only: build.rs builds this file for that target alone and the backend loads it on compute
// capability 9.0 GPUs (H100, H200).
//   gemm_wgmma{256,128}_{bf16,f16}: block tile 128×BN, k step BK = 64.
// Work split: 3 warpgroups (384 threads), one block per SM.
//   - Warpgroup 0 produces: one thread issues the TMA copies of each k step's A tile (128×64) and
//     B tile (BN×64) into a ring of STAGES shared-memory stages (4 for BN = 256, 6 for BN = 128),
//     each guarded by a "full" mbarrier (the TMA bytes landed) and an "empty" one (all 8 consumer
//     warps are done reading it). It gives most of its registers to the consumers (setmaxnreg).
//   - Warpgroups 1 and 2 consume: each multiplies 64 rows of the tile by its BN columns with four
//     wgmma.m64nBNk16 per k step, both operands read from shared memory, BN/2 f32 accumulators per
//     thread. One k step's wgmma group stays in flight while the stage before it is released.
// Layouts: TMA writes tiles with the 128-byte swizzle, in one of two forms per operand:
//   - K-major (A stored [m,k], B stored [n,k]): one 128-byte row (64 k values) per m / n index,
//     8-row swizzle atoms of 1024 bytes; a k16 step advances the descriptor by 32 bytes.
//   - MN-major (A stored [k,m], B stored [k,n]): one 128-byte row (64 m / n values) per k index,
//     a separate 8 KiB atom per 64 m / n values; a k16 step advances by 16 rows (2048 bytes). wgmma
//     reads these through its transpose flags.
// Edges: TMA zero-fills the parts of a box outside the matrix, so any m, n, k ≥ 1 works, and the
// epilogue stores only inside C. TMA needs 16-byte aligned bases and rows (ld·2 % 16 = 0): the host
// checks (src/ops/gemm/cuda.rs). Each output's k order is fixed: results are deterministic.
// Epilogue: after the last k step the consumers park their accumulators in the (then idle) pipeline
// memory and store C row by row, coalesced, through gemm_store.
// Dynamic shared memory: 1 KiB of alignment slack (swizzle atoms must sit on 1024-byte boundaries)
// plus the larger of the pipeline (192 KiB for both tile widths) and the parking space.
#include "gemm.cuh"

// The driver's CUtensorMap (cuda.h): 128 opaque bytes, 64-byte aligned, passed by value.
struct alignas(64) lk_tma_map {
    unsigned long long opaque[16];
};

extern __shared__ uint8_t lk_wgmma_smem[];

namespace {

// TcType, and v33's ldmatrix and mma.sync (sm_80+ PTX: no sm_90a feature).
#include "mma_sync.cuh"

constexpr int WG_BM = 128, WG_BK = 64;  // and 384 threads (the entry points' launch bounds)
// A 64-wide (128-byte) swizzle atom of 64 rows: an MN-major box, or 64 K-major rows.
constexpr int ATOM_BYTES = 64 * 128;

template <int BN>
struct WgConfig {
    static constexpr int STAGES = BN == 256 ? 4 : 6;
    static constexpr int A_BYTES = WG_BM * WG_BK * 2;
    static constexpr int B_BYTES = BN * WG_BK * 2;
    static constexpr int STAGE_BYTES = A_BYTES + B_BYTES;
    static constexpr int PARK_STRIDE = BN + 8;  // floats; float2 writes of a half-warp hit distinct banks
    static constexpr int PIPE_BYTES = STAGES * STAGE_BYTES;
    static constexpr int PARK_BYTES = WG_BM * PARK_STRIDE * 4;
    static constexpr int SMEM_BYTES = 1024 + (PIPE_BYTES > PARK_BYTES ? PIPE_BYTES : PARK_BYTES);
};
static_assert(WgConfig<256>::SMEM_BYTES == 197632 && WgConfig<128>::SMEM_BYTES == 197632,
              "src/ops/gemm/cuda.rs (WGMMA_SMEM) must match");

// The PTX below exists on sm_90a only. The CPU emulator (tools/cuda-emu, LK_CUDA_EMULATOR) compiles
// the kernels too, with its models of these helpers (wgmma_ptx_emu.cuh) in place of the PTX.
#if defined(LK_CUDA_EMULATOR) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900)
#define LK_WGMMA_ARCH 1
#else
#define LK_WGMMA_ARCH 0
#endif

#if defined(LK_CUDA_EMULATOR)
#include "tc_ptx_emu.cuh"
#include "wgmma_ptx_emu.cuh"
#else
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#if LK_WGMMA_ARCH
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// One arrival that also announces `bytes` of TMA transactions before the phase can complete.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
    uint32_t done;
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    return done != 0;
}
// 2-D TMA tile copy global → shared at box coordinates (c0 innermost, c1), completing on `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const lk_tma_map* map, uint32_t bar, int c0, int c1) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
        "[%4];\n" ::"r"(dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
        : "memory");
}
// tma_load_2d into the same shared-memory offset of every CTA of the cluster in cta_mask, completing
// on the mbarrier at `bar`'s offset in each of them.
__device__ __forceinline__ void tma_load_2d_multicast(uint32_t dst, const lk_tma_map* map, uint32_t bar, int c0,
                                                      int c1, uint16_t cta_mask) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster "
        "[%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(cta_mask)
        : "memory");
}
__device__ __forceinline__ uint32_t cluster_ctarank() {
    uint32_t r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
    return r;
}
// One arrival on the mbarrier at `bar`'s offset in CTA `rank` of the cluster. The default
// (release, CTA scope) semantics: what the arrival announces is that this warp's wgmma reads of a
// stage are complete (wgmma.wait_group), not data for the other block to read, and a
// release.cluster arrive costs a cluster-scope fence per k step (the first H100 run of v9,
// 2026-11-27: 38% of its warps' cycles stalled on a memory barrier, 0.45× cuBLAS).
__device__ __forceinline__ void mbar_arrive_cluster(uint32_t bar, uint32_t rank) {
    asm volatile(
        "{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %0, %1;\n"
        "mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(bar),
        "r"(rank)
        : "memory");
}
// Every thread of the cluster that has not exited arrives, then waits for the others.
__device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accumulator reads or writes across wgmma's asynchronous window.
template <int N>
__device__ __forceinline__ void fence_accumulators(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
template <int R>
__device__ __forceinline__ void setmaxnreg_inc() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R));
}
template <int R>
__device__ __forceinline__ void setmaxnreg_dec() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R));
}
// d[0..128) = A(64×16) · B(16×256) + (scale_d ? d : 0) in TYPE ("bf16" or "f16"), both operands
// read from shared memory through descriptors; TA / TB = 1: that operand is MN-major (transposed).
#define LK_WGMMA_M64N256K16(TYPE)                                                                                         \
    asm volatile(                                                                                                         \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"                                                                     \
        "wgmma.mma_async.sync.aligned.m64n256k16.f32." TYPE "." TYPE " {"                                                 \
        "%0, %1, %2, %3, %4, %5, %6, %7, "                                                                                \
        "%8, %9, %10, %11, %12, %13, %14, %15, "                                                                          \
        "%16, %17, %18, %19, %20, %21, %22, %23, "                                                                        \
        "%24, %25, %26, %27, %28, %29, %30, %31, "                                                                        \
        "%32, %33, %34, %35, %36, %37, %38, %39, "                                                                        \
        "%40, %41, %42, %43, %44, %45, %46, %47, "                                                                        \
        "%48, %49, %50, %51, %52, %53, %54, %55, "                                                                        \
        "%56, %57, %58, %59, %60, %61, %62, %63, "                                                                        \
        "%64, %65, %66, %67, %68, %69, %70, %71, "                                                                        \
        "%72, %73, %74, %75, %76, %77, %78, %79, "                                                                        \
        "%80, %81, %82, %83, %84, %85, %86, %87, "                                                                        \
        "%88, %89, %90, %91, %92, %93, %94, %95, "                                                                        \
        "%96, %97, %98, %99, %100, %101, %102, %103, "                                                                    \
        "%104, %105, %106, %107, %108, %109, %110, %111, "                                                                \
        "%112, %113, %114, %115, %116, %117, %118, %119, "                                                                \
        "%120, %121, %122, %123, %124, %125, %126, %127"                                                                  \
        "}, %128, %129, p, 1, 1, %131, %132;\n}\n"                                                                        \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),                 \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),           \
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),         \
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),         \
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),         \
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),         \
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),         \
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),         \
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),         \
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),         \
          "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),         \
          "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),         \
          "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),     \
          "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
          "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
          "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])  \
        : "l"(da), "l"(db), "r"(scale_d), "n"(TA), "n"(TB))
template <TcType T, int TA, int TB>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t da, uint64_t db, int scale_d) {
    if constexpr (T == TC_BF16) LK_WGMMA_M64N256K16("bf16");
    else LK_WGMMA_M64N256K16("f16");
}
#undef LK_WGMMA_M64N256K16

// d[0..64) = A(64×16) · B(16×128) + (scale_d ? d : 0) in TYPE ("bf16" or "f16"), both operands
// read from shared memory through descriptors; TA / TB = 1: that operand is MN-major (transposed).
#define LK_WGMMA_M64N128K16(TYPE)                                                                                 \
    asm volatile(                                                                                                 \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                              \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " {"                                         \
        "%0, %1, %2, %3, %4, %5, %6, %7, "                                                                        \
        "%8, %9, %10, %11, %12, %13, %14, %15, "                                                                  \
        "%16, %17, %18, %19, %20, %21, %22, %23, "                                                                \
        "%24, %25, %26, %27, %28, %29, %30, %31, "                                                                \
        "%32, %33, %34, %35, %36, %37, %38, %39, "                                                                \
        "%40, %41, %42, %43, %44, %45, %46, %47, "                                                                \
        "%48, %49, %50, %51, %52, %53, %54, %55, "                                                                \
        "%56, %57, %58, %59, %60, %61, %62, %63"                                                                  \
        "}, %64, %65, p, 1, 1, %67, %68;\n}\n"                                                                    \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),         \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),   \
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])  \
        : "l"(da), "l"(db), "r"(scale_d), "n"(TA), "n"(TB))
template <TcType T, int TA, int TB>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
    if constexpr (T == TC_BF16) LK_WGMMA_M64N128K16("bf16");
    else LK_WGMMA_M64N128K16("f16");
}
#undef LK_WGMMA_M64N128K16
// The mbarrier initialisations above are visible to the cluster (and the async proxy) before use.
__device__ __forceinline__ void fence_mbarrier_init() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// Named barrier ID of COUNT threads (warp multiples): bar_sync waits for COUNT arrivals, bar_arrive
// adds this warp's and goes on.
template <int ID, int COUNT>
__device__ __forceinline__ void bar_sync() {
    asm volatile("bar.sync %0, %1;\n" ::"n"(ID), "n"(COUNT) : "memory");
}
template <int ID, int COUNT>
__device__ __forceinline__ void bar_arrive() {
    asm volatile("bar.arrive %0, %1;\n" ::"n"(ID), "n"(COUNT) : "memory");
}
#endif  // LK_WGMMA_ARCH
#endif  // LK_CUDA_EMULATOR

#if LK_WGMMA_ARCH
// Waits until the phase with parity `parity` of the barrier has completed. A wait of 2^39 cycles
// (over 4 minutes) can only be a pipeline bug: the kernel traps (a launch error) instead of
// hanging. (2^36, about 35 s, until 2026-11-28: compute-sanitizer's racecheck, which slows warps by
// orders of magnitude, may have run into it in the third H100 run's one-process racecheck of the
// whole wgmma test, a launch failure not reproduced since; a guess, not checked.)
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    if (mbar_try_wait(bar, parity)) return;
    const long long start = clock64();
    while (!mbar_try_wait(bar, parity)) {
        if (clock64() - start > (1ll << 39)) __trap();
    }
}
// wgmma shared-memory matrix descriptor for the 128-byte swizzle: start address (bits 0–13), leading
// byte offset (16–29) and stride byte offset (32–45), all in 16-byte units, layout type 1 =
// SWIZZLE_128B (bits 62–63); base offset 0 (atoms sit on 1024-byte boundaries).
//   K-major: SBO = 1024 (from one 8-row group to the next); LBO unused (a k16 slice stays inside
//   the 128-byte row).
//   MN-major: LBO = distance between 64-element m/n atoms, SBO = 1024 (8 k rows).
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>((lbo & 0x3FFFF) >> 4) << 16) |
           (static_cast<uint64_t>((sbo & 0x3FFFF) >> 4) << 32) | (1ull << 62);
}
template <TcType T, int BN, int A_MN, int B_MN>
__device__ __forceinline__ void wgmma_k16(float (&d)[BN / 2], uint64_t da, uint64_t db, int sd) {
    if constexpr (BN == 256) wgmma_m64n256k16<T, A_MN, B_MN>(d, da, db, sd);
    else wgmma_m64n128k16<T, A_MN, B_MN>(d, da, db, sd);
}

// One 64-wide k step of a consumer warpgroup (v6, v9, v12–v14): four wgmma k16 slices of its 64
// rows of A at `sa` (a K-major slice advances 32 bytes, an MN-major one 16 rows, 2048 bytes) by
// the BN columns of B at `sb`, committed as one group; scale-d = 0 on a tile's first slice (D = A·B).
template <TcType T, int BN, int A_MN, int B_MN>
__device__ __forceinline__ void wg_mma_step(float (&acc)[BN / 2], uint32_t sa, uint32_t sb, int kt) {
    fence_accumulators(acc);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < WG_BK / 16; ++kk) {
        const uint64_t da = A_MN ? smem_desc(sa + kk * 2048, ATOM_BYTES, 1024) : smem_desc(sa + kk * 32, 16, 1024);
        const uint64_t db = B_MN ? smem_desc(sb + kk * 2048, ATOM_BYTES, 1024) : smem_desc(sb + kk * 32, 16, 1024);
        wgmma_k16<T, BN, A_MN, B_MN>(acc, da, db, (kt | kk) != 0);
    }
    wgmma_commit();
}

// Sets up a ring of S stages (each "full" barrier: the producer's arrive.expect_tx plus the TMA
// bytes; each "empty" one: `consumers` arrivals), then syncs the block; MC: the cluster, since the
// other block's barriers must be initialised before anything arrives on them.
template <int S, bool MC>
__device__ __forceinline__ void wg_init_ring(uint64_t (&full_bar)[S], uint64_t (&empty_bar)[S], uint32_t consumers) {
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; ++s) {
            mbar_init(smem_u32(&full_bar[s]), 1);
            mbar_init(smem_u32(&empty_bar[s]), consumers);
        }
        fence_mbarrier_init();
    }
    if constexpr (MC) cluster_sync();
    else __syncthreads();
}
#endif

// One 128×BN tile's TMA copies (v6, v8, v9, v12–v14): which boxes each k step copies and the
// bytes they land. MN-major operands come in 64-wide boxes; those wholly past the matrix's m (n)
// are not copied: they would only feed rows (columns) of the tile that the epilogue never stores.
// MC (v9, v14): the block is one of a cluster of two along m that share their B tile, each copying
// one half into both; a block may lie wholly past m (the last pair of an odd count): it copies no A.
template <int BN, int A_MN, int B_MN, bool MC>
struct WgTileCopy {
    int m0, n0, a_boxes, b_boxes, b_halves;
    uint32_t rank;  // MC: this block's rank in its cluster
    __device__ __forceinline__ WgTileCopy(const lk_gemm_params& p, int m0_, int n0_, uint32_t rank_)
        : m0(m0_), n0(n0_), rank(rank_) {
        a_boxes = m0 >= p.m ? 0 : A_MN ? (m0 + 64 < p.m ? 2 : 1) : 1;
        const int b_left = static_cast<int>((p.n - n0 + 63) / 64);
        b_boxes = B_MN ? (b_left < BN / 64 ? b_left : BN / 64) : 1;
        // MC, K-major B: one box of BN / 2 rows per block, the upper one only when inside n.
        b_halves = n0 + BN / 2 < p.n ? 2 : 1;
    }
    // What one k step lands in this block's stage (boxes count whole, zero fill included).
    __device__ __forceinline__ uint32_t bytes() const {
        const uint32_t a = A_MN ? a_boxes * ATOM_BYTES : a_boxes * WgConfig<BN>::A_BYTES;
        const uint32_t b = B_MN ? b_boxes * ATOM_BYTES : MC ? b_halves * (WgConfig<BN>::B_BYTES / 2) : WgConfig<BN>::B_BYTES;
        return a + b;
    }
    // Copies k step k0 of the tile into the stage at `sa` (A; B follows it), completing on `bar`.
    __device__ __forceinline__ void load(const lk_tma_map* tma_a, const lk_tma_map* tma_b, uint32_t sa, uint32_t bar,
                                         int k0) const {
#if LK_WGMMA_ARCH
        const uint32_t sb = sa + WgConfig<BN>::A_BYTES;
        if (A_MN) {
            for (int j = 0; j < a_boxes; ++j) tma_load_2d(sa + j * ATOM_BYTES, tma_a, bar, m0 + 64 * j, k0);
        } else if (a_boxes > 0) {
            tma_load_2d(sa, tma_a, bar, k0, m0);
        }
        if constexpr (MC) {
            if (B_MN) {
                for (int j = 2 * (int)rank; j < 2 * (int)rank + 2 && j < b_boxes; ++j)
                    tma_load_2d_multicast(sb + j * ATOM_BYTES, tma_b, bar, n0 + 64 * j, k0, 3);
            } else if ((int)rank < b_halves) {
                tma_load_2d_multicast(sb + rank * (WgConfig<BN>::B_BYTES / 2), tma_b, bar, k0, n0 + (BN / 2) * rank, 3);
            }
        } else if (B_MN) {
            for (int j = 0; j < b_boxes; ++j) tma_load_2d(sb + j * ATOM_BYTES, tma_b, bar, n0 + 64 * j, k0);
        } else {
            tma_load_2d(sb, tma_b, bar, k0, n0);
        }
#endif
    }
};

// A_MN: A stored [k, m] (trans_a); B_MN: B stored [k, n] (not trans_b). MC (v9, BN = 256 only):
// the block is one of a cluster of two along m that share their B tile (see v9 below).
template <TcType T, int BN, int A_MN, int B_MN, bool MC = false>
__device__ __forceinline__ void gemm_wgmma_body(const lk_gemm_params& p, const lk_tma_map* tma_a,
                                                const lk_tma_map* tma_b, float* __restrict__ c,
                                                const float* __restrict__ bias, const float* __restrict__ y) {
#if LK_WGMMA_ARCH
    using Cfg = WgConfig<BN>;
    constexpr int S = Cfg::STAGES;
    __shared__ alignas(8) uint64_t full_bar[S], empty_bar[S];
    const uint32_t raw = smem_u32(lk_wgmma_smem);
    const uint32_t base = (raw + 1023u) & ~1023u;
    float* const park = reinterpret_cast<float*>(lk_wgmma_smem + (base - raw));
    const int tid = threadIdx.x, wg = tid / 128;
    const int steps = static_cast<int>((p.k + WG_BK - 1) / WG_BK);
    const int m0 = blockIdx.y * WG_BM, n0 = blockIdx.x * BN;
    auto full = [&](int s) { return smem_u32(&full_bar[s]); };
    auto empty = [&](int s) { return smem_u32(&empty_bar[s]); };

    // MC: this block's rank in its cluster and the other block's.
    const uint32_t rank = MC ? cluster_ctarank() : 0u, peer = rank ^ 1u;
    // One arrive per consumer warp (MC: of both blocks, whose B halves share the stage).
    wg_init_ring<S, MC>(full_bar, empty_bar, MC ? 16 : 8);

    if (wg == 0) {
        setmaxnreg_dec<40>();
        if (tid == 0) {
            const WgTileCopy<BN, A_MN, B_MN, MC> copy(p, m0, n0, rank);
            for (int kt = 0; kt < steps; ++kt) {
                const int s = kt % S, round = kt / S;
                // Reuse: both consumers (MC: of both blocks) released this stage's previous round.
                if (round > 0) mbar_wait(empty(s), (round - 1) & 1);
                mbar_arrive_expect_tx(full(s), copy.bytes());
                copy.load(tma_a, tma_b, base + s * Cfg::STAGE_BYTES, full(s), kt * WG_BK);
            }
        }
        // MC: the other block's consumers arrive on this block's barriers until their last step.
        if constexpr (MC) cluster_sync();
        return;  // the consumers never wait for the producer's other threads
    }

    setmaxnreg_inc<232>();
    const int w = wg - 1;  // rows 64w .. 64w + 63 of the tile
    // No zeroing: the first wgmma runs with scale-d = 0 (D = A·B). Writing the accumulators with
    // other instructions would make ptxas serialize every wgmma (C7515).
    float acc[BN / 2];
    for (int kt = 0; kt < steps; ++kt) {
        const int s = kt % S;
        mbar_wait(full(s), (kt / S) & 1);
        // This warpgroup's 64 rows of A: rows 64w.. of a K-major tile or atom w of an MN-major one,
        // 8 KiB from the tile's start either way.
        const uint32_t sa = base + s * Cfg::STAGE_BYTES + w * ATOM_BYTES, sb = base + s * Cfg::STAGE_BYTES + Cfg::A_BYTES;
        wg_mma_step<T, BN, A_MN, B_MN>(acc, sa, sb, kt);
        wgmma_wait<1>();  // this warp's share of step kt − 1 is done: the warp releases that stage
        fence_accumulators(acc);
        if (kt > 0 && (tid & 31) == 0) {
            mbar_arrive(empty((kt - 1) % S));
            // MC: the other block's producer writes its B half into this block's stage too.
            if constexpr (MC) mbar_arrive_cluster(empty((kt - 1) % S), peer);
        }
    }
    wgmma_wait<0>();
    fence_accumulators(acc);
    // MC: past this, no block of the cluster touches the other's shared memory (every copy into it
    // was waited for above), so each may park its results there and exit.
    if constexpr (MC) cluster_sync();
    if (steps == 0) {  // k ≥ 1 is validated; kept so acc is never read unset
#pragma unroll
        for (int i = 0; i < BN / 2; ++i) acc[i] = 0.0f;
    }

    // Both consumers are done reading the pipeline (every TMA copy has landed: each was waited
    // for), so its memory can take the accumulators.
    bar_sync<1, 256>();
    constexpr int PS = Cfg::PARK_STRIDE;
    const int lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int r0 = 64 * w + 16 * ((tid / 32) & 3) + g;  // fragment rows r0 and r0 + 8
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
        *reinterpret_cast<float2*>(park + r0 * PS + 8 * j + 2 * t) = make_float2(acc[4 * j], acc[4 * j + 1]);
        *reinterpret_cast<float2*>(park + (r0 + 8) * PS + 8 * j + 2 * t) = make_float2(acc[4 * j + 2], acc[4 * j + 3]);
    }
    // Each warpgroup stores the 64 rows it parked.
    if (w == 0) bar_sync<2, 128>();
    else bar_sync<3, 128>();
#pragma unroll 1
    for (int idx = tid % 128; idx < 64 * BN; idx += 128) {
        const int r = 64 * w + idx / BN, cc = idx % BN;
        const int64_t row = m0 + r, col = n0 + cc;
        if (row < p.m && col < p.n) lk::gemm_store(p, row, col, park[r * PS + cc], c, bias, y);
    }
#else
    __trap();
#endif
}

// ---- v8, gemm_wgmma128pp_{bf16,f16}: persistent ping-pong over 128×128 tiles ----
// The same product, layouts, TMA maps (those of the 128-wide v6 kernel) and stage ring (6 stages of
// a 128×64 A and a 128×64 B tile, 192 KiB) as v6, organised so that storing C overlaps the tensor
// work: v6 stores each tile's 64 KiB of f32 output after its last k step while its SM's tensor
// cores idle. (On an H100, 2026-11-27: 525–548 TFLOP/s at 4096³ against v6-128's 463–478.)
// Work split: one block per SM (grid = min(tiles, SMs)); block b takes the output tiles b, b + grid,
// b + 2·grid, ... (n-tile fastest), its j-th tile going to consumer warpgroup j % 2. The producer
// thread copies the k steps of the block's tiles in that order through the ring (global step
// g = j·steps + kt, stage g % 6, phase g / 6). A consumer multiplies all 128×128 of its tile (two
// wgmma.m64n128k16 per k16, 128 f32 accumulators a thread), releasing each stage to the producer,
// then stores its tile straight from registers (no parking: the ring is the other consumer's)
// while the other consumer multiplies the next tile. A named barrier hands the mainloop from one
// consumer to the other (tile j starts after tile j − 1's last stage was waited for), which also
// keeps a consumer from waiting on a stage's phase more than one round ahead of the ring.
// Each output's k order is that of v6's 128-wide kernel: results are bit-identical to it.
constexpr int PP_TILE = 128;

template <TcType T, int A_MN, int B_MN>
__device__ __forceinline__ void gemm_wgmma_pingpong_body(const lk_gemm_params& p, const lk_tma_map* tma_a,
                                                         const lk_tma_map* tma_b, float* __restrict__ c,
                                                         const float* __restrict__ bias, const float* __restrict__ y) {
#if LK_WGMMA_ARCH
    using Cfg = WgConfig<PP_TILE>;
    constexpr int S = Cfg::STAGES;
    __shared__ alignas(8) uint64_t full_bar[S], empty_bar[S];
    const uint32_t raw = smem_u32(lk_wgmma_smem);
    const uint32_t base = (raw + 1023u) & ~1023u;
    const int tid = threadIdx.x, wg = tid / 128;
    const int steps = static_cast<int>((p.k + WG_BK - 1) / WG_BK);
    const int tiles_n = static_cast<int>((p.n + PP_TILE - 1) / PP_TILE);
    const int tiles = tiles_n * static_cast<int>((p.m + PP_TILE - 1) / PP_TILE);
    const int grid = static_cast<int>(gridDim.x), bid = static_cast<int>(blockIdx.x);
    const int count = bid < tiles ? (tiles - 1 - bid) / grid + 1 : 0;  // this block's tiles
    auto full = [&](int s) { return smem_u32(&full_bar[s]); };
    auto empty = [&](int s) { return smem_u32(&empty_bar[s]); };

    wg_init_ring<S, false>(full_bar, empty_bar, 4);  // one arrive per warp of the consumer that read the stage

    if (wg == 0) {
        setmaxnreg_dec<40>();
        if (tid == 0) {
            for (int j = 0; j < count; ++j) {
                const int tile = bid + j * grid;
                const WgTileCopy<PP_TILE, A_MN, B_MN, false> copy(p, (tile / tiles_n) * PP_TILE, (tile % tiles_n) * PP_TILE, 0);
                for (int kt = 0; kt < steps; ++kt) {
                    const int g = j * steps + kt, s = g % S, round = g / S;
                    if (round > 0) mbar_wait(empty(s), (round - 1) & 1);  // its previous round was read
                    mbar_arrive_expect_tx(full(s), copy.bytes());
                    copy.load(tma_a, tma_b, base + s * Cfg::STAGE_BYTES, full(s), kt * WG_BK);
                }
            }
        }
        return;
    }

    setmaxnreg_inc<232>();
    const int w = wg - 1;  // consumer 0: the block's tiles j = 0, 2, 4, ...; consumer 1: j = 1, 3, ...
    const int lane = tid & 31;
    // Output layout of a wgmma.m64nNk16 accumulator: d[4i + q] at row 16·(warp % 4) + g + 8·(q / 2),
    // column 8i + 2t + q % 2 of the 64-row block.
    const int g4 = lane >> 2, t4 = lane & 3, wq = (tid / 32) & 3;
    const bool plain = p.epilogue == LK_EPI_NONE && p.beta == 0.0f;
    const bool pairs = lk::gemm_store_pairs_ok(c, p.ldc);
    float acc0[64], acc1[64];  // rows 0–63 and 64–127 of the tile
    for (int j = w; j < count; j += 2) {
        // Named barriers 1 (consumer 0 → 1) and 2 (1 → 0): tile j − 1's mainloop is done.
        if (j > 0) {
            if (w == 1) bar_sync<1, 256>();
            else bar_sync<2, 256>();
        }
        const int tile = bid + j * grid;
        const int64_t m0 = (int64_t)(tile / tiles_n) * PP_TILE, n0 = (int64_t)(tile % tiles_n) * PP_TILE;
        for (int kt = 0; kt < steps; ++kt) {
            const int g = j * steps + kt, s = g % S;
            mbar_wait(full(s), (g / S) & 1);
            const uint32_t sa = base + s * Cfg::STAGE_BYTES, sb = sa + Cfg::A_BYTES;
            fence_accumulators(acc0);
            fence_accumulators(acc1);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < WG_BK / 16; ++kk) {
                // Rows 64–127 of A: 8 KiB on from rows 0–63 in both layouts (as in v6).
                const uint32_t oa = A_MN ? kk * 2048 : kk * 32;
                const uint64_t da0 = A_MN ? smem_desc(sa + oa, ATOM_BYTES, 1024) : smem_desc(sa + oa, 16, 1024);
                const uint64_t da1 = A_MN ? smem_desc(sa + ATOM_BYTES + oa, ATOM_BYTES, 1024)
                                          : smem_desc(sa + ATOM_BYTES + oa, 16, 1024);
                const uint64_t db = B_MN ? smem_desc(sb + kk * 2048, ATOM_BYTES, 1024) : smem_desc(sb + kk * 32, 16, 1024);
                wgmma_m64n128k16<T, A_MN, B_MN>(acc0, da0, db, (kt | kk) != 0);
                wgmma_m64n128k16<T, A_MN, B_MN>(acc1, da1, db, (kt | kk) != 0);
            }
            wgmma_commit();
            wgmma_wait<1>();  // step g − 1's products are done: release its stage
            fence_accumulators(acc0);
            fence_accumulators(acc1);
            if (kt > 0 && lane == 0) mbar_arrive(empty((g - 1) % S));
        }
        wgmma_wait<0>();
        fence_accumulators(acc0);
        fence_accumulators(acc1);
        if (lane == 0) mbar_arrive(empty((j * steps + steps - 1) % S));
        if (j + 1 < count) {  // the other consumer's next tile may start
            if (w == 0) bar_arrive<1, 256>();
            else bar_arrive<2, 256>();
        }
        const int64_t r0 = m0 + 16 * wq + g4, c0 = n0 + 2 * t4;
#pragma unroll
        for (int i = 0; i < PP_TILE / 8; ++i) {
            lk::gemm_store_quad(p, plain, pairs, r0, c0 + 8 * i, &acc0[4 * i], c, bias, y);
            lk::gemm_store_quad(p, plain, pairs, r0 + 64, c0 + 8 * i, &acc1[4 * i], c, bias, y);
        }
    }
#else
    __trap();
#endif
}

template <TcType T>
__device__ __forceinline__ void gemm_wgmma_pingpong(const lk_gemm_params& p, const lk_tma_map* tma_a,
                                                    const lk_tma_map* tma_b, float* c, const float* bias,
                                                    const float* y) {
    // A_MN = trans_a (A stored [k, m]), B_MN = !trans_b (B stored [k, n]).
    lk::with_transposes(p, [&](auto ta, auto tb) {
        gemm_wgmma_pingpong_body<T, decltype(ta)::value, !decltype(tb)::value>(p, tma_a, tma_b, c, bias, y);
    });
}

// The tiles of a block of the persistent 128×256 kernels (v12–v14, v33): one block per SM (grid =
// min(items, SMs)); block b takes the items b, b + grid, ... (n-tile fastest). An item is a tile, or
// (MC, v14) a pair of vertically adjacent tiles, one per block of a cluster of two.
template <bool MC>
struct WgPersistentTiles {
    int tiles_n, count, grid, bid;
    uint32_t rank;  // MC: this block's rank in its cluster
    __device__ __forceinline__ WgPersistentTiles(const lk_gemm_params& p, uint32_t rank_) : rank(rank_) {
        tiles_n = static_cast<int>((p.n + 255) / 256);
        const int tiles_m = static_cast<int>((p.m + WG_BM - 1) / WG_BM);
        const int items = tiles_n * (MC ? (tiles_m + 1) / 2 : tiles_m);
        grid = static_cast<int>(gridDim.x) / (MC ? 2 : 1);
        bid = static_cast<int>(blockIdx.x) / (MC ? 2 : 1);
        count = bid < items ? (items - 1 - bid) / grid + 1 : 0;  // this block's tiles
    }
    // Origin of this block's j-th tile.
    __device__ __forceinline__ void origin(int j, int64_t& m0, int64_t& n0) const {
        const int item = bid + j * grid;
        const int tm = MC ? 2 * (item / tiles_n) + static_cast<int>(rank) : item / tiles_n;
        m0 = static_cast<int64_t>(tm) * WG_BM;
        n0 = static_cast<int64_t>(item % tiles_n) * 256;
    }
};

#if LK_WGMMA_ARCH
// The producer thread of the persistent 128×256 kernels (v12–v14, v33): copies the k steps of all
// of the block's tiles through the ring (global step g = j·steps + kt, stage g % S, phase g / S),
// each once the consumers have released the stage's previous round (MC: those of both blocks).
template <int A_MN, int B_MN, bool MC, int S>
__device__ __forceinline__ void wg_persistent_produce(const lk_gemm_params& p, const lk_tma_map* tma_a,
                                                      const lk_tma_map* tma_b, uint32_t base, uint64_t (&full_bar)[S],
                                                      uint64_t (&empty_bar)[S], const WgPersistentTiles<MC>& tiles,
                                                      int steps) {
    for (int j = 0; j < tiles.count; ++j) {
        int64_t m0, n0;
        tiles.origin(j, m0, n0);
        // MC: the second tile of the last pair may lie wholly past m: that block copies no A.
        const WgTileCopy<256, A_MN, B_MN, MC> copy(p, static_cast<int>(m0), static_cast<int>(n0), tiles.rank);
        for (int kt = 0; kt < steps; ++kt) {
            const int g = j * steps + kt, s = g % S, round = g / S;
            if (round > 0) mbar_wait(smem_u32(&empty_bar[s]), (round - 1) & 1);
            mbar_arrive_expect_tx(smem_u32(&full_bar[s]), copy.bytes());
            copy.load(tma_a, tma_b, base + s * WgConfig<256>::STAGE_BYTES, smem_u32(&full_bar[s]), kt * WG_BK);
        }
    }
}
#endif

// ---- v12 / v13, gemm_wgmma256p{,e}_{bf16,f16}: persistent cooperative 128×256 tiles ----
// v6's 128×256 tile, stage ring (4 stages of a 128×64 A and a 256×64 B tile, 192 KiB), TMA maps and
// wgmma sequence, made persistent so that a block's tiles follow one another without a gap:
//   - one block per SM (grid = min(tiles, SMs)); block b takes the output tiles b, b + grid, ...
//     (n-tile fastest, v6's order). The producer thread copies the k steps of all of them through the
//     ring (global step g = j·steps + kt, stage g % 4, phase g / 4), so the next tile's first stages
//     land while the consumers are still storing the current one (v6: a new block starts with an
//     empty ring after the previous block's epilogue);
//   - both consumer warpgroups work on every tile (rows 64w .. 64w + 63, all 256 columns, 128 f32
//     accumulators a thread), then store it straight from registers (no parking and no barrier
//     between the two: the ring belongs to the producer's next copies).
// v12 (EARLY = false) releases a stage as v6 does, once the next step's wgmma group is in flight
// (wgmma.wait_group 1). v13 (EARLY = true) waits for its own group (wait_group 0) and releases the
// stage it just read: one stage more of the ring is open to the producer (three instead of two
// ahead of the stage being read) while the other warpgroup's wgmma group keeps the tensor cores busy.
// Each output's k order is v6's: results are bit-identical to gemm_wgmma256.
template <TcType T, int A_MN, int B_MN, bool EARLY, bool MC>
__device__ __forceinline__ void gemm_wgmma_persistent_body(const lk_gemm_params& p, const lk_tma_map* tma_a,
                                                           const lk_tma_map* tma_b, float* __restrict__ c,
                                                           const float* __restrict__ bias, const float* __restrict__ y) {
#if LK_WGMMA_ARCH
    constexpr int BN = 256;
    using Cfg = WgConfig<BN>;
    constexpr int S = Cfg::STAGES;
    __shared__ alignas(8) uint64_t full_bar[S], empty_bar[S];
    const uint32_t raw = smem_u32(lk_wgmma_smem);
    const uint32_t base = (raw + 1023u) & ~1023u;
    const int tid = threadIdx.x, wg = tid / 128;
    const int steps = static_cast<int>((p.k + WG_BK - 1) / WG_BK);
    if (steps == 0) return;  // k ≥ 1 is validated; kept so no accumulator is read unset
    const uint32_t rank = MC ? cluster_ctarank() : 0u, peer = rank ^ 1u;
    const WgPersistentTiles<MC> tiles(p, rank);
    auto full = [&](int s) { return smem_u32(&full_bar[s]); };
    auto empty = [&](int s) { return smem_u32(&empty_bar[s]); };

    // v12 / v13: one arrive per consumer warp. MC: one per consumer warpgroup of each block of the
    // cluster (B halves from both blocks share the stage).
    wg_init_ring<S, MC>(full_bar, empty_bar, MC ? 4 : 8);

    if (wg == 0) {
        setmaxnreg_dec<40>();
        if (tid == 0) wg_persistent_produce<A_MN, B_MN, MC>(p, tma_a, tma_b, base, full_bar, empty_bar, tiles, steps);
        // MC: the other block's consumers arrive on this block's barriers until their last step.
        if constexpr (MC) cluster_sync();
        return;
    }

    setmaxnreg_inc<232>();
    const int w = wg - 1;  // rows 64w .. 64w + 63 of every tile
    const int lane = tid & 31, g4 = lane >> 2, t4 = lane & 3, wq = (tid / 32) & 3;
    const bool plain = p.epilogue == LK_EPI_NONE && p.beta == 0.0f;
    const bool pairs = lk::gemm_store_pairs_ok(c, p.ldc);
    // No zeroing: each tile's first wgmma runs with scale-d = 0 (D = A·B), as in v6.
    float acc[BN / 2];
    // MC: one thread of each consumer warpgroup releases a stage in both blocks, after its
    // warp's wgmma.wait_group (a wgmma is one operation of the whole warpgroup).
    const bool releaser = MC ? (tid & 127) == 0 : lane == 0;
    auto release = [&](int s) {
        if (!releaser) return;
        mbar_arrive(empty(s));
        if constexpr (MC) mbar_arrive_cluster(empty(s), peer);
    };
    for (int j = 0; j < tiles.count; ++j) {
        int64_t m0, n0;
        tiles.origin(j, m0, n0);
        for (int kt = 0; kt < steps; ++kt) {
            const int g = j * steps + kt, s = g % S;
            mbar_wait(full(s), (g / S) & 1);
            const uint32_t sa = base + s * Cfg::STAGE_BYTES + w * ATOM_BYTES, sb = base + s * Cfg::STAGE_BYTES + Cfg::A_BYTES;
            wg_mma_step<T, BN, A_MN, B_MN>(acc, sa, sb, kt);
            if constexpr (EARLY) {
                wgmma_wait<0>();  // this warp's reads of stage s are done
                fence_accumulators(acc);
                release(s);
            } else {
                wgmma_wait<1>();  // this warp's share of step g − 1 is done: release that stage
                fence_accumulators(acc);
                if (kt > 0) release((g - 1) % S);
            }
        }
        if constexpr (!EARLY) {
            wgmma_wait<0>();
            fence_accumulators(acc);
            release((j * steps + steps - 1) % S);
        }
        const int64_t r0 = m0 + 64 * w + 16 * wq + g4, c0 = n0 + 2 * t4;
#pragma unroll
        for (int i = 0; i < BN / 8; ++i) lk::gemm_store_quad(p, plain, pairs, r0, c0 + 8 * i, &acc[4 * i], c, bias, y);
    }
    // MC: past this, no block of the cluster touches the other's shared memory (each copy into
    // this block was waited for above, each release of the other's stages is done).
    if constexpr (MC) cluster_sync();
#else
    __trap();
#endif
}

template <TcType T, bool EARLY, bool MC = false>
__device__ __forceinline__ void gemm_wgmma_persistent(const lk_gemm_params& p, const lk_tma_map* tma_a,
                                                      const lk_tma_map* tma_b, float* c, const float* bias,
                                                      const float* y) {
    // A_MN = trans_a (A stored [k, m]), B_MN = !trans_b (B stored [k, n]).
    lk::with_transposes(p, [&](auto ta, auto tb) {
        gemm_wgmma_persistent_body<T, decltype(ta)::value, !decltype(tb)::value, EARLY, MC>(p, tma_a, tma_b, c, bias, y);
    });
}

// ---- v33, gemm_tma_mma256p_{bf16,f16}: v12's TMA ring feeding mma.sync consumer warps ----
// The same product, TMA maps, producer and 4-stage ring (128×64 A and 256×64 B tiles with the
// 128-byte swizzle) and persistent tile walk as v12, with the multiplication of v7 / v15
// (gemm_tc.cu): each of the 8 consumer warps (warpgroups 1 and 2) computes a 64×64 warp tile of
// 4 × 8 mma.sync.m16n8k16 tiles (128 f32 accumulators a thread), rows 64·(w % 2), columns
// 64·(w / 2) of the 128×256 tile, its fragments read by ldmatrix straight from the swizzled TMA
// stage (whose 128-byte rows, 8-row atoms and chunk ^ (row % 8) layout are v7's for BK = 64; an
// MN-major operand's 64-wide atoms sit 8 KiB apart, so a warp's base moves by 64 rows' bytes either
// way). Why: v7 / v15 reach 0.61 of the mma.sync issue rate on an H100 (fourth run) with every
// thread issuing cp.async and a block-wide barrier per k step, so the 8 warps load their fragments
// in lockstep after each barrier. Here one thread copies, and each warp waits on its stage's
// mbarrier alone and releases the stage (one arrival) once the mma of its last slice has issued
// (those mma read the registers its last ldmatrix of the stage filled), so warps drift apart
// and no k step costs a barrier. A guess to measure, not a measured result.
// Fragments of k16 slice s + 1 load while the mma of slice s issue, as in v7 (within a tile: the
// first slice of the next stage after waiting for it). Each output sums its k16 slices in v7's
// order through the same mma: bit-identical to gemm_tc2_128x256 (v7) and v15.
// Boxes TMA does not copy (wholly past m or n) leave old bytes in the stage: they only feed rows or
// columns of the warp tile that the epilogue never stores, as in v12.
template <TcType T, int A_MN, int B_MN>
__device__ __forceinline__ void gemm_tma_mma_persistent_body(const lk_gemm_params& p, const lk_tma_map* tma_a,
                                                             const lk_tma_map* tma_b, float* __restrict__ c,
                                                             const float* __restrict__ bias, const float* __restrict__ y) {
#if LK_WGMMA_ARCH
    using Cfg = WgConfig<256>;
    constexpr int S = Cfg::STAGES, MT = 4, NT8 = 8, ROW = 128;  // ROW: bytes of a swizzled row
    __shared__ alignas(8) uint64_t full_bar[S], empty_bar[S];
    const uint32_t raw = smem_u32(lk_wgmma_smem);
    const uint32_t base = (raw + 1023u) & ~1023u;
    const int tid = threadIdx.x;
    const int steps = static_cast<int>((p.k + WG_BK - 1) / WG_BK);
    if (steps == 0) return;  // k ≥ 1 is validated
    const WgPersistentTiles<false> tiles(p, 0u);
    auto full = [&](int s) { return smem_u32(&full_bar[s]); };
    auto empty = [&](int s) { return smem_u32(&empty_bar[s]); };
    wg_init_ring<S, false>(full_bar, empty_bar, 8);  // one arrival per consumer warp

    if (tid < 128) {
        setmaxnreg_dec<40>();
        if (tid == 0) wg_persistent_produce<A_MN, B_MN, false>(p, tma_a, tma_b, base, full_bar, empty_bar, tiles, steps);
        return;
    }

    setmaxnreg_inc<232>();
    const int lane = tid & 31, cw = tid / 32 - 4;  // consumer warp 0..7
    const int wm0 = (cw % 2) * 64, wn0 = (cw / 2) * 64;
    // ldmatrix addresses (bytes from a stage's start): lane base + compile-time offset, XOR-ed with
    // the slice's chunk (K-major) or the mma tile's (MN-major); v7's (gemm_tc2_body) with 128-byte
    // rows. Register order as there: A's (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15),
    // (m 8-15, k 8-15); B per 16 columns: b0 / b1 of 8-column tile 2j, then 2j + 1.
    const int i8 = lane >> 3, r8 = lane & 7;
    // K-major A: row wm0 + (lane & 15), chunk 2·slice + lane / 16. MN-major A (.trans): k row
    // (i8 / 2)·8 + r8 of atom wm0 / 64, chunk 2·mi + i8 % 2.
    const int a_x = A_MN ? ((i8 & 1) ^ r8) : ((lane >> 4) ^ r8);
    const uint32_t a_base = (A_MN ? wm0 + (i8 >> 1) * 8 + r8 : wm0 + (lane & 15)) * ROW;
    // K-major B: n row wn0 + (i8 / 2)·8 + r8, chunk 2·slice + i8 % 2. MN-major B (.trans): k row
    // (i8 % 2)·8 + r8 of atom wn0 / 64, chunk 2·nj + i8 / 2.
    const int b_x = B_MN ? ((i8 >> 1) ^ r8) : ((i8 & 1) ^ r8);
    const uint32_t b_base = Cfg::A_BYTES + (B_MN ? wn0 + (i8 & 1) * 8 + r8 : wn0 + (i8 >> 1) * 8 + r8) * ROW;

    uint32_t fa[2][MT][4], fb[2][NT8][2];
    // Fragments of k16 slice ks of the stage at st into buffer buf.
    auto load_frags = [&](int buf, uint32_t st, int ks) {
#pragma unroll
        for (int mi = 0; mi < MT; ++mi) {
            if (A_MN) ldsm_x4_trans(fa[buf][mi], st + a_base + ks * 16 * ROW + ((2 * mi ^ a_x) << 4));
            else ldsm_x4(fa[buf][mi], st + a_base + mi * 16 * ROW + ((2 * ks ^ a_x) << 4));
        }
#pragma unroll
        for (int nj = 0; nj < NT8 / 2; ++nj) {
            uint32_t r[4];
            if (B_MN) ldsm_x4_trans(r, st + b_base + ks * 16 * ROW + ((2 * nj ^ b_x) << 4));
            else ldsm_x4(r, st + b_base + nj * 16 * ROW + ((2 * ks ^ b_x) << 4));
            fb[buf][2 * nj][0] = r[0];
            fb[buf][2 * nj][1] = r[1];
            fb[buf][2 * nj + 1][0] = r[2];
            fb[buf][2 * nj + 1][1] = r[3];
        }
    };
    auto stage = [&](int g) { return base + static_cast<uint32_t>(g % S) * Cfg::STAGE_BYTES; };

    const bool plain = p.epilogue == LK_EPI_NONE && p.beta == 0.0f;
    const bool pairs = lk::gemm_store_pairs_ok(c, p.ldc);
    float acc[MT][NT8][4];
    int g = 0;  // this block's global k step: stage g % S, phase g / S (the producer's numbering)
    for (int j = 0; j < tiles.count; ++j) {
        int64_t m0, n0;
        tiles.origin(j, m0, n0);
#pragma unroll
        for (int mi = 0; mi < MT; ++mi)
#pragma unroll
            for (int ni = 0; ni < NT8; ++ni)
#pragma unroll
                for (int q = 0; q < 4; ++q) acc[mi][ni][q] = 0.0f;
        mbar_wait(full(g % S), (g / S) & 1);
        load_frags(0, stage(g), 0);
        for (int kt = 0; kt < steps; ++kt, ++g) {
#pragma unroll
            for (int ks = 0; ks < WG_BK / 16; ++ks) {
                if (ks + 1 < WG_BK / 16) {
                    load_frags((ks + 1) & 1, stage(g), ks + 1);
                } else if (kt + 1 < steps) {
                    mbar_wait(full((g + 1) % S), ((g + 1) / S) & 1);
                    load_frags(0, stage(g + 1), 0);
                }
#pragma unroll
                for (int mi = 0; mi < MT; ++mi)
#pragma unroll
                    for (int ni = 0; ni < NT8; ++ni)
                        mma_16x8x16<T>(acc[mi][ni], fa[ks & 1][mi], fb[ks & 1][ni][0], fb[ks & 1][ni][1]);
            }
            // The last slice's mma have issued, so this warp's ldmatrix reads of the stage are done.
            __syncwarp();
            if (lane == 0) mbar_arrive(empty(g % S));
        }
        const int64_t r0 = m0 + wm0 + (lane >> 2), c0 = n0 + wn0 + 2 * (lane & 3);
#pragma unroll
        for (int mi = 0; mi < MT; ++mi)
#pragma unroll
            for (int ni = 0; ni < NT8; ++ni)
                lk::gemm_store_quad(p, plain, pairs, r0 + 16 * mi, c0 + 8 * ni, acc[mi][ni], c, bias, y);
    }
#else
    __trap();
#endif
}

template <TcType T>
__device__ __forceinline__ void gemm_tma_mma_persistent(const lk_gemm_params& p, const lk_tma_map* tma_a,
                                                        const lk_tma_map* tma_b, float* c, const float* bias,
                                                        const float* y) {
    // A_MN = trans_a (A stored [k, m]), B_MN = !trans_b (B stored [k, n]).
    lk::with_transposes(p, [&](auto ta, auto tb) {
        gemm_tma_mma_persistent_body<T, decltype(ta)::value, !decltype(tb)::value>(p, tma_a, tma_b, c, bias, y);
    });
}

template <TcType T, int BN, bool MC = false>
__device__ __forceinline__ void gemm_wgmma(const lk_gemm_params& p, const lk_tma_map* tma_a, const lk_tma_map* tma_b,
                                           float* c, const float* bias, const float* y) {
    // A_MN = trans_a (A stored [k, m]), B_MN = !trans_b (B stored [k, n]).
    lk::with_transposes(p, [&](auto ta, auto tb) {
        gemm_wgmma_body<T, BN, decltype(ta)::value, !decltype(tb)::value, MC>(p, tma_a, tma_b, c, bias, y);
    });
}

}  // namespace

// Four entry points: {128×256, 128×128 tiles} × {bf16, f16}. tma_a / tma_b: the tensor maps of the
// operands as stored (encoded by src/ops/gemm/cuda.rs: 128-byte swizzle, boxes of 64 × rows).
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma256_bf16(lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                            const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                            const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma<TC_BF16, 256>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma256_f16(lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                            const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                            const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma<TC_F16, 256>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma128_bf16(lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                            const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                            const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma<TC_BF16, 128>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma128_f16(lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                            const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                            const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma<TC_F16, 128>(p, &tma_a, &tma_b, c, bias, y);
}

// v8: persistent ping-pong, 128×128 tiles, grid = min(tiles, SMs) (src/ops/gemm/cuda.rs).
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma128pp_bf16(const __grid_constant__ lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                              const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                              const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma_pingpong<TC_BF16>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma128pp_f16(const __grid_constant__ lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                             const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                             const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma_pingpong<TC_F16>(p, &tma_a, &tma_b, c, bias, y);
}

// ---- v9, gemm_wgmma256mc_{bf16,f16}: v6's 128×256 tiles in clusters of two blocks sharing B ----
// The two blocks of a cluster (blockIdx.y = 2c, 2c + 1: vertically adjacent tiles, same n0) need
// the same 256×64 B tile each k step. Each block's producer copies one half of it (K-major: a box of
// 128 n-rows; MN-major: two of the four 64-wide atoms) with TMA multicast into the same stage of
// both blocks, so a block reads 16 + 16 KiB from L2 per k step instead of 16 + 32: a third less
// L2 → SM traffic, in case that is what holds v6 at ~0.75× cuBLAS (a guess, not a measurement; on
// an H100, 2026-11-27, v9 ran at 498 TFLOP/s at 4096³, below v6). Each block's "full" barrier
// expects its A bytes and both B halves; a stage is free again when the consumer warps of both
// blocks have released it (the "empty" barrier counts 16 arrivals: each consumer warp arrives on
// its own block's and, through mapa, on the other block's). Cluster barriers after the barrier
// set-up and after the last k step keep either block from touching the other's shared memory
// before it is initialised or after it is released. The grid's rows of blocks are rounded up to
// pairs (src/ops/gemm/cuda.rs): a block past m copies no A and stores nothing. Same k order as
// Wgmma256: bit-identical results.
LK_KERNEL void __cluster_dims__(1, 2, 1) __launch_bounds__(384, 1) gemm_wgmma256mc_bf16(lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                         const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c, const float* __restrict__ bias,
                         const float* __restrict__ y) {
    gemm_wgmma<TC_BF16, 256, true>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __cluster_dims__(1, 2, 1) __launch_bounds__(384, 1) gemm_wgmma256mc_f16(lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                        const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c, const float* __restrict__ bias,
                        const float* __restrict__ y) {
    gemm_wgmma<TC_F16, 256, true>(p, &tma_a, &tma_b, c, bias, y);
}

// v12 / v13: persistent cooperative 128×256 tiles, grid = min(tiles, SMs) (src/ops/gemm/cuda.rs);
// v13 releases each stage as soon as its own wgmma group is done.
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma256p_bf16(const __grid_constant__ lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                             const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                             const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma_persistent<TC_BF16, false>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma256p_f16(const __grid_constant__ lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                            const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                            const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma_persistent<TC_F16, false>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma256pe_bf16(const __grid_constant__ lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                              const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                              const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma_persistent<TC_BF16, true>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(384, 1) gemm_wgmma256pe_f16(const __grid_constant__ lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                                                             const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c,
                                                             const float* __restrict__ bias, const float* __restrict__ y) {
    gemm_wgmma_persistent<TC_F16, true>(p, &tma_a, &tma_b, c, bias, y);
}

// v14: v12 in clusters of two blocks (consecutive blockIdx.x) that share each k step's B tile through
// TMA multicast (as v9), grid = 2 · min(tile pairs, SMs / 2) (src/ops/gemm/cuda.rs).
LK_KERNEL void __cluster_dims__(2, 1, 1) __launch_bounds__(384, 1) gemm_wgmma256pmc_bf16(
    const __grid_constant__ lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                          const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c, const float* __restrict__ bias,
                          const float* __restrict__ y) {
    gemm_wgmma_persistent<TC_BF16, false, true>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __cluster_dims__(2, 1, 1) __launch_bounds__(384, 1) gemm_wgmma256pmc_f16(
    const __grid_constant__ lk_gemm_params p, const __grid_constant__ lk_tma_map tma_a,
                         const __grid_constant__ lk_tma_map tma_b, float* __restrict__ c, const float* __restrict__ bias,
                         const float* __restrict__ y) {
    gemm_wgmma_persistent<TC_F16, false, true>(p, &tma_a, &tma_b, c, bias, y);
}

// v33: v12's producer and ring feeding 8 mma.sync consumer warps, grid = min(tiles, SMs)
// (src/ops/gemm/cuda.rs).
LK_KERNEL void __launch_bounds__(384, 1) gemm_tma_mma256p_bf16(const __grid_constant__ lk_gemm_params p,
                                                               const __grid_constant__ lk_tma_map tma_a,
                                                               const __grid_constant__ lk_tma_map tma_b,
                                                               float* __restrict__ c, const float* __restrict__ bias,
                                                               const float* __restrict__ y) {
    gemm_tma_mma_persistent<TC_BF16>(p, &tma_a, &tma_b, c, bias, y);
}
LK_KERNEL void __launch_bounds__(384, 1) gemm_tma_mma256p_f16(const __grid_constant__ lk_gemm_params p,
                                                              const __grid_constant__ lk_tma_map tma_a,
                                                              const __grid_constant__ lk_tma_map tma_b,
                                                              float* __restrict__ c, const float* __restrict__ bias,
                                                              const float* __restrict__ y) {
    gemm_tma_mma_persistent<TC_F16>(p, &tma_a, &tma_b, c, bias, y);
}
