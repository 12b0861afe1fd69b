// The CPU emulator's models of the PTX in kernels/gemm_wgmma.cu (included there, inside its anonymous
// namespace, instead of the asm helpers when LK_CUDA_EMULATOR is defined). The semantics live in
// hopper.cpp; these are the helpers' signatures over it:
//   - shared addresses: 32-bit offsets in an emulated shared window (the block's dynamic shared
//     memory, then its static __shared__ variables), so the kernel's address arithmetic, 1024-byte
//     alignment and descriptors work as on the GPU;
//   - mbarriers: arrival counts, transaction bytes and phases; a failed try_wait lets the other
//     threads run (and a wait that nothing can ever complete fails the launch as a deadlock);
//   - TMA (cp.async.bulk.tensor.2d, multicast included): the box with zero fill and the 128-byte
//     swizzle, performed when a thread waits on its mbarrier (or at issue with LK_EMU_TMA=early);
//   - wgmma.mma_async m64nNk16 (bf16 / f16, f32 accumulators, K- or MN-major operands through
//     128-byte-swizzle descriptors): a warpgroup-wide operation performed at wgmma.wait_group,
//     products summed in double;
//   - named barriers, cluster barriers and cluster ranks, DSMEM arrivals (mapa);
//   - ldmatrix at a shared-window address (v33's mma.sync consumers): tc_ptx_emu.cuh's model;
//   - setmaxnreg, wgmma.fence and fence.mbarrier_init: nothing to model.
#pragma once

extern "C" {
uint32_t lk_emu_smem_window(const void* p);
void lk_emu_mbar_init(uint32_t bar, uint32_t count);
void lk_emu_mbar_arrive(uint32_t bar, int rank, uint32_t tx_bytes);
bool lk_emu_mbar_try_wait(uint32_t bar, uint32_t parity);
void lk_emu_tma_load_2d(uint32_t dst, const void* map, uint32_t bar, int c0, int c1, uint32_t cta_mask);
uint32_t lk_emu_cluster_rank();
void lk_emu_cluster_sync();
void lk_emu_named_barrier(int id, int count, int wait);
void lk_emu_wgmma(float* d, uint64_t da, uint64_t db, int scale_d, int n, int tnsp_a, int tnsp_b, int type);
void lk_emu_wgmma_commit();
void lk_emu_wgmma_wait(int pending);
void* lk_emu_smem_ptr(uint32_t w);
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return lk_emu_smem_window(p); }
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) { lk_emu_mbar_init(bar, count); }
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) { lk_emu_mbar_arrive(bar, -1, bytes); }
__device__ __forceinline__ void mbar_arrive(uint32_t bar) { lk_emu_mbar_arrive(bar, -1, 0); }
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) { return lk_emu_mbar_try_wait(bar, parity); }
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const lk_tma_map* map, uint32_t bar, int c0, int c1) {
    lk_emu_tma_load_2d(dst, map, bar, c0, c1, 0);
}
__device__ __forceinline__ void tma_load_2d_multicast(uint32_t dst, const lk_tma_map* map, uint32_t bar, int c0,
                                                      int c1, uint16_t cta_mask) {
    lk_emu_tma_load_2d(dst, map, bar, c0, c1, cta_mask);
}
__device__ __forceinline__ uint32_t cluster_ctarank() { return lk_emu_cluster_rank(); }
__device__ __forceinline__ void mbar_arrive_cluster(uint32_t bar, uint32_t rank) { lk_emu_mbar_arrive(bar, (int)rank, 0); }
__device__ __forceinline__ void cluster_sync() { lk_emu_cluster_sync(); }
__device__ __forceinline__ void wgmma_fence() {}
__device__ __forceinline__ void wgmma_commit() { lk_emu_wgmma_commit(); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    lk_emu_wgmma_wait(N);
}
// The accumulators' address went to the emulator with the wgmma: a compiler barrier is all it takes
// for the kernel to read what wgmma.wait_group wrote into them.
template <int N>
__device__ __forceinline__ void fence_accumulators(float (&)[N]) {
    asm volatile("" ::: "memory");
}
template <int R>
__device__ __forceinline__ void setmaxnreg_inc() {}
template <int R>
__device__ __forceinline__ void setmaxnreg_dec() {}
template <TcType T, int TA, int TB>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t da, uint64_t db, int scale_d) {
    lk_emu_wgmma(d, da, db, scale_d, 256, TA, TB, T == TC_BF16 ? 0 : 1);
}
template <TcType T, int TA, int TB>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
    lk_emu_wgmma(d, da, db, scale_d, 128, TA, TB, T == TC_BF16 ? 0 : 1);
}
// ldmatrix (v33) at a shared-window address: tc_ptx_emu.cuh's model (included before this file) on
// the bytes behind it.
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t p) { ldmatrix_x4(r, lk_emu_smem_ptr(p)); }
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t p) { ldmatrix_x4_trans(r, lk_emu_smem_ptr(p)); }
__device__ __forceinline__ void fence_mbarrier_init() {}
template <int ID, int COUNT>
__device__ __forceinline__ void bar_sync() {
    lk_emu_named_barrier(ID, COUNT, 1);
}
template <int ID, int COUNT>
__device__ __forceinline__ void bar_arrive() {
    lk_emu_named_barrier(ID, COUNT, 0);
}
