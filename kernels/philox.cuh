// Counter-based normal noise, identical bit for bit to the CPU twin (src/ops/rng/cpu.rs).
//
// Philox4x32-10 (Salmon et al., SC'11): key (k0, k1) = seed, counter (c0..c3) = (block low, block
// high, offset low, offset high) where block = element index / 4. One call yields four uint32;
// element i takes lane i % 4 (philox_normal4 returns all four normals of a block, philox_normal one
// element's). Box–Muller pairs lanes (0,1) and (2,3):
//   u = ((x >> 8) + 1)·2⁻²⁴ ∈ (0, 1],  r = √(−2 ln u_a),  θ = 2π·v,  v = (x_b >> 8)·2⁻²⁴ ∈ [0, 1)
//   lane 0/2: r·cos θ,  lane 1/3: r·sin θ.
// ln, sin and cos are evaluated with our own polynomials using only correctly rounded operations
// (__fadd_rn, __fmul_rn, __fdiv_rn, __fsqrt_rn: never contracted into FMA), so CPU and GPU agree
// exactly; accuracy is ~1e-7 relative, far below what sampling noise can notice.
#pragma once

#include <stdint.h>

namespace lk {

struct philox_out {
    uint32_t v[4];
};

__device__ inline philox_out philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                           uint32_t k0, uint32_t k1) {
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    philox_out o;
    o.v[0] = c0;
    o.v[1] = c1;
    o.v[2] = c2;
    o.v[3] = c3;
    return o;
}

// ln(u) for u in (0, 1] (normal, non-zero): u = m·2^e with m in [√½, √2), then
// ln m = 2s(1 + s²/3 + s⁴/5 + ... + s¹⁰/11), s = (m − 1)/(m + 1).
__device__ inline float ln_exact(float u) {
    uint32_t bits = __float_as_uint(u);
    int e = (int)((bits >> 23) & 0xffu) - 127;
    float m = __uint_as_float((bits & 0x007fffffu) | 0x3f800000u);
    if (m > 1.41421356f) {
        m = __fmul_rn(m, 0.5f);
        e += 1;
    }
    const float s = __fdiv_rn(__fsub_rn(m, 1.0f), __fadd_rn(m, 1.0f));
    const float z = __fmul_rn(s, s);
    float p = 0.0909090936f;                           // 1/11
    p = __fadd_rn(__fmul_rn(p, z), 0.111111112f);      // 1/9
    p = __fadd_rn(__fmul_rn(p, z), 0.142857149f);      // 1/7
    p = __fadd_rn(__fmul_rn(p, z), 0.200000003f);      // 1/5
    p = __fadd_rn(__fmul_rn(p, z), 0.333333343f);      // 1/3
    p = __fadd_rn(__fmul_rn(p, z), 1.0f);
    const float ln_m = __fmul_rn(__fmul_rn(2.0f, s), p);
    return __fadd_rn(__fmul_rn((float)e, 0.693147182f), ln_m);
}

// (sin 2πv, cos 2πv) for v in [0, 1): quadrant n = ⌊4v + ½⌋, a = (4v − n)·π/2 ∈ [−π/4, π/4]
// (4v and 4v + ½ are exact), then Taylor polynomials to a⁹ / a⁸.
__device__ inline void sincos_2pi_exact(float v, float* s_out, float* c_out) {
    const float v4 = __fmul_rn(v, 4.0f);
    const float nf = floorf(__fadd_rn(v4, 0.5f));
    const int n = (int)nf & 3;
    const float a = __fmul_rn(__fsub_rn(v4, nf), 1.57079637f);
    const float a2 = __fmul_rn(a, a);
    float sp = 2.75573188e-06f;                        // 1/9!
    sp = __fsub_rn(__fmul_rn(sp, a2), 1.98412701e-04f);  // 1/7!
    sp = __fadd_rn(__fmul_rn(sp, a2), 8.33333377e-03f);  // 1/5!
    sp = __fsub_rn(__fmul_rn(sp, a2), 0.166666672f);     // 1/3!
    sp = __fadd_rn(__fmul_rn(sp, a2), 1.0f);
    const float sa = __fmul_rn(sp, a);
    float cp = 2.48015876e-05f;                        // 1/8!
    cp = __fsub_rn(__fmul_rn(cp, a2), 1.38888892e-03f);  // 1/6!
    cp = __fadd_rn(__fmul_rn(cp, a2), 4.16666679e-02f);  // 1/4!
    cp = __fsub_rn(__fmul_rn(cp, a2), 0.5f);             // 1/2!
    const float ca = __fadd_rn(__fmul_rn(cp, a2), 1.0f);
    switch (n) {
        case 0: *s_out = sa; *c_out = ca; break;
        case 1: *s_out = ca; *c_out = -sa; break;
        case 2: *s_out = -sa; *c_out = -ca; break;
        default: *s_out = -ca; *c_out = sa; break;
    }
}

// Box–Muller on one pair of Philox outputs (x_a, x_b): *c_out = r·cos θ (lane 0/2), *s_out = r·sin θ
// (lane 1/3). The one place the formula is written; philox_normal4 and philox_normal both call it.
__device__ __forceinline__ void box_muller_pair(uint32_t x_a, uint32_t x_b, float* c_out, float* s_out) {
    const float u = __fmul_rn((float)((x_a >> 8) + 1u), 5.96046448e-08f);  // 2^-24
    const float v = __fmul_rn((float)(x_b >> 8), 5.96046448e-08f);
    const float radius = __fsqrt_rn(__fmul_rn(-2.0f, ln_exact(u)));
    float s, c;
    sincos_2pi_exact(v, &s, &c);
    *c_out = __fmul_rn(radius, c);
    *s_out = __fmul_rn(radius, s);
}

__device__ __forceinline__ philox_out philox_block(uint64_t seed, uint64_t offset, uint64_t block) {
    return philox4x32_10((uint32_t)block, (uint32_t)(block >> 32), (uint32_t)offset, (uint32_t)(offset >> 32),
                         (uint32_t)seed, (uint32_t)(seed >> 32));
}

// The four standard normals of Philox block `block` of the stream (seed, offset): out[k] is the
// normal of element 4·block + k. One Philox call and two Box–Muller pairs (CPU twin:
// philox_normal4 in src/ops/rng/cpu.rs).
__device__ __forceinline__ void philox_normal4(uint64_t seed, uint64_t offset, uint64_t block, float out[4]) {
    const philox_out r = philox_block(seed, offset, block);
    box_muller_pair(r.v[0], r.v[1], &out[0], &out[1]);
    box_muller_pair(r.v[2], r.v[3], &out[2], &out[3]);
}

// The standard normal for element `index` of the stream (seed, offset): lane index % 4 of
// philox_normal4(index / 4), computing only the Box–Muller pair that lane belongs to (the same
// operations, so the same bits). Per-element kernels pay a whole Philox block per element; kernels
// that own whole quads call philox_normal4 once per 4 elements.
__device__ inline float philox_normal(uint64_t seed, uint64_t offset, uint64_t index) {
    const philox_out r = philox_block(seed, offset, index >> 2);
    const int lane = (int)(index & 3);
    // Selects, not r.v[lane & 2]: a run-time index would put r in local memory.
    const bool hi = (lane & 2) != 0;  // lanes (0,1) use v[0], v[1]; lanes (2,3) use v[2], v[3]
    float c, s;
    box_muller_pair(hi ? r.v[2] : r.v[0], hi ? r.v[3] : r.v[1], &c, &s);
    return (lane & 1) ? s : c;
}

__device__ inline uint64_t load_offset(const uint32_t* offset) {
    return (uint64_t)offset[0] | ((uint64_t)offset[1] << 32);
}

}  // namespace lk
