// The mma.sync pieces that gemm_tc.cu, gemm_wgmma.cu (v33) and peak.cu share: the input type of a
// tensor-core kernel, ldmatrix from a shared-window address, and d += a·b for one m16n8k16 tile
// (bf16 or f16 inputs, f32 accumulators), sm_80+. Include it
// inside the includer's anonymous namespace; under the CUDA emulator the mma is tools/cuda-emu's
// model (tc_ptx_emu.cuh, a template on TcType), which the includer brings in after this.
#pragma once

enum TcType { TC_BF16, TC_F16, TC_TF32 };

#if !defined(LK_CUDA_EMULATOR) && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800)
// Four 8×8 b16 matrices from shared memory (lanes 8i..8i+7 give matrix i's row addresses), plain
// or transposed; `p` is a 32-bit shared-window address (no generic → shared conversion per load).
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(p));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(p));
}
// volatile: each mma issues where it is written (the peak probe counts on it).
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
#endif
