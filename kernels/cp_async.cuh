// cp.async (sm_80+), for the GEMM kernels that stage tiles with it (gemm_tc.cu; gemm.cu's v20 and
// v21): global → shared copies of 16 or 4 bytes whose bytes past src_bytes are zero-filled
// (src_bytes = 0 reads nothing), committed in groups and waited on. Under the CPU emulator they are
// its model (tools/cuda-emu/cp_async_emu.cuh). LK_CP_ASYNC_SUPPORTED is 0 on older targets, where
// the kernels that use them trap.
#pragma once

#include "common.cuh"

#if defined(LK_CUDA_EMULATOR)
#include "cp_async_emu.cuh"
#define LK_CP_ASYNC_SUPPORTED 1
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define LK_CP_ASYNC_SUPPORTED 1
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                     static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
                 "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_4(void* dst, const void* src, int src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(
                     static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
                 "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
#else
#define LK_CP_ASYNC_SUPPORTED 0
#endif
