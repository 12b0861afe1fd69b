// The CPU emulator's models of the PTX in kernels/gemm_tc.cu (included there, and in peak.cu,
// instead of the asm helpers when LK_CUDA_EMULATOR is defined): cp.async (cp_async_emu.cuh),
// ldmatrix x4 (and .trans), mma.sync m16n8k16 for bf16 / f16 and m16n8k8 for TF32 with the PTX
// ISA's fragment layouts, and cvt.rna.tf32.f32.
// mma sums each output's 16 (or 8) exact products in double, then adds the accumulator: close to the
// hardware, which keeps more than f32 precision inside the tile, though not bit-identical to it.
#pragma once
#include <vector>

#include "cp_async_emu.cuh"

namespace lk_emu_tc {

inline unsigned lane() { return lk_emu_linear_tid() % 32; }
inline void require_aligned(const void* p, const char* what) {
    if (reinterpret_cast<uintptr_t>(p) % 16) lk_emu_trap(what);
}

// d[i] += row · column of this lane's four accumulator elements (rows g, g + 8; columns 2q, 2q + 1
// for lane 4g + q), the products summed in double.
template <int K>
inline void accumulate(float (&d)[4], const float (&A)[16][K], const float (&B)[K][8]) {
    const int t = (int)lane(), g = t / 4, q = t % 4;
    for (int i = 0; i < 4; ++i) {
        const int row = g + (i >= 2 ? 8 : 0), col = 2 * q + (i & 1);
        double s = 0;
        for (int k = 0; k < K; ++k) s += (double)A[row][k] * (double)B[k][col];
        d[i] = (float)((double)d[i] + s);
    }
}

}  // namespace lk_emu_tc

// Lanes 8i..8i+7 give the row addresses of matrix i (8 rows of 8 b16); lane t receives, of matrix
// i, row t/4's elements 2(t%4) and 2(t%4)+1 (transposed: column t/4 of rows 2(t%4) and 2(t%4)+1).
template <bool TRANS>
__device__ __forceinline__ void ldmatrix_x4_model(uint32_t (&r)[4], const void* p) {
    lk_emu_tc::require_aligned(p, "ldmatrix: row address not 16-byte aligned");
    lk_emu_banks_ldmatrix(p);
    const void* rows[32];
    lk_emu_warp_gather(0xffffffffu, &p, sizeof p, rows);
    const unsigned t = lk_emu_tc::lane();
    lk_emu_banks_quiet(1);  // the other lanes' rows: one request, recorded above
    for (int i = 0; i < 4; ++i) {
        if (!TRANS) {
            const uint16_t* row = static_cast<const uint16_t*>(rows[8 * i + t / 4]);
            r[i] = (uint32_t)row[2 * (t % 4)] | (uint32_t)row[2 * (t % 4) + 1] << 16;
        } else {
            const uint16_t* r0 = static_cast<const uint16_t*>(rows[8 * i + 2 * (t % 4)]);
            const uint16_t* r1 = static_cast<const uint16_t*>(rows[8 * i + 2 * (t % 4) + 1]);
            r[i] = (uint32_t)r0[t / 4] | (uint32_t)r1[t / 4] << 16;
        }
    }
    lk_emu_banks_quiet(0);
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) { ldmatrix_x4_model<false>(r, p); }
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { ldmatrix_x4_model<true>(r, p); }

struct LkEmuMmaFrag {
    uint32_t a[4], b[2];
};

// d += a·b for one 16×8×16 tile (bf16 or f16 inputs, f32 accumulators).
template <TcType T>
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    LkEmuMmaFrag mine{{a[0], a[1], a[2], a[3]}, {b0, b1}}, all[32];
    lk_emu_warp_gather(0xffffffffu, &mine, sizeof mine, all);
    auto val = [](uint32_t reg, int half) {
        const uint16_t h = (uint16_t)(reg >> (16 * half));
        return lk_emu_half_to_f32(h, T == TC_BF16);
    };
    float A[16][16], B[16][8];
    for (int s = 0; s < 32; ++s) {
        const int g = s / 4, q = s % 4;
        for (int h = 0; h < 2; ++h) {
            A[g][2 * q + h] = val(all[s].a[0], h);
            A[g + 8][2 * q + h] = val(all[s].a[1], h);
            A[g][2 * q + 8 + h] = val(all[s].a[2], h);
            A[g + 8][2 * q + 8 + h] = val(all[s].a[3], h);
            B[2 * q + h][g] = val(all[s].b[0], h);
            B[2 * q + 8 + h][g] = val(all[s].b[1], h);
        }
    }
    lk_emu_tc::accumulate(d, A, B);
}

// d += a·b for one 16×8×8 TF32 tile (each operand's low 13 bits are ignored, as the hardware does).
__device__ __forceinline__ void mma_16x8x8_tf32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    LkEmuMmaFrag mine{{a[0], a[1], a[2], a[3]}, {b0, b1}}, all[32];
    lk_emu_warp_gather(0xffffffffu, &mine, sizeof mine, all);
    auto val = [](uint32_t reg) { return __uint_as_float(reg & 0xffffe000u); };
    float A[16][8], B[8][8];
    for (int s = 0; s < 32; ++s) {
        const int g = s / 4, q = s % 4;
        A[g][q] = val(all[s].a[0]);
        A[g + 8][q] = val(all[s].a[1]);
        A[g][q + 4] = val(all[s].a[2]);
        A[g + 8][q + 4] = val(all[s].a[3]);
        B[q][g] = val(all[s].b[0]);
        B[q + 4][g] = val(all[s].b[1]);
    }
    lk_emu_tc::accumulate(d, A, B);
}

// cvt.rna.tf32.f32: nearest, ties away from zero, to 10 mantissa bits (NaN and ±inf kept).
__device__ __forceinline__ uint32_t to_tf32(float x) {
    const uint32_t u = __float_as_uint(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return u;
    return (u + 0x1000u) & 0xffffe000u;
}
