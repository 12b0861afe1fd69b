// Distance helpers shared by kernels/distance.cu and kernels/mining.cu.
//
// Every kernel that computes a distance κ(q_i, r_j) does it the same way, so the fused miners see
// bit-for-bit the values that pairwise_distance writes:
//   - one thread owns the pair and accumulates dot = Σ q·r, nq = Σ q², nr = Σ r² with explicit
//     round-to-nearest FMAs in increasing k (no contraction choices left to the compiler);
//   - kappa_from_dot turns (dot, nq, nr) into κ with explicitly rounded operations.
// The CPU twin (src/ops/distance/cpu.rs) computes the same formulas in f64 and rounds once.
#pragma once

#include "common.cuh"

namespace lk {

// Largest value of the "none" index: an argbest slot that holds no candidate.
#define LK_NONE LK_INDEX_NONE

// One step of the sequential accumulation of the pair's dot product and squared norms.
__device__ __forceinline__ void dist_acc(float a, float b, float& dot, float& na, float& nb) {
    na = __fmaf_rn(a, a, na);
    nb = __fmaf_rn(b, b, nb);
    dot = __fmaf_rn(a, b, dot);
}

// κ from the dot product and the squared norms (see LK_METRIC_* in latentkit_abi.h).
__device__ __forceinline__ float kappa_from_dot(int metric, float dot, float na, float nb) {
    if (metric == LK_METRIC_COSINE) {
        const float a = fmaxf(__fsqrt_rn(na), LK_COSINE_NORM_FLOOR);
        const float b = fmaxf(__fsqrt_rn(nb), LK_COSINE_NORM_FLOOR);
        return __fsub_rn(1.0f, __fdiv_rn(dot, __fmul_rn(a, b)));
    }
    // Clamped at 0 (rounding can make it slightly negative), but a NaN from NaN/inf inputs stays.
    const float d2 = relu_keep_nan(__fmaf_rn(-2.0f, dot, __fadd_rn(na, nb)));
    return metric == LK_METRIC_EUCLIDEAN ? __fsqrt_rn(d2) : d2;
}

// ∂κ(x, y)/∂x = a·x + b·y for the Euclidean family (b = −a) and for the cosine distance:
//   SQEUCLIDEAN: a = 2;   EUCLIDEAN: a = 1/κ (0 at κ = 0, the stated subgradient);
//   COSINE:      a = cos/Nx² when ‖x‖ > floor (else 0), b = −1/(Nx·Ny), cos = 1 − κ,
//                Nx = max(‖x‖, floor), Ny = max(‖y‖, floor).
// nx, ny are the squared norms. Callers of the Euclidean family use a·(x − y).
struct DistGrad {
    float a;
    float b;
};

__device__ __forceinline__ DistGrad kappa_grad(int metric, float kappa, float nx, float ny) {
    DistGrad g;
    if (metric == LK_METRIC_COSINE) {
        const float sx = sqrtf(nx);
        const float Nx = fmaxf(sx, LK_COSINE_NORM_FLOOR);
        const float Ny = fmaxf(sqrtf(ny), LK_COSINE_NORM_FLOOR);
        const float c = 1.0f - kappa;
        g.a = sx > LK_COSINE_NORM_FLOOR ? c / (Nx * Nx) : 0.0f;
        g.b = -1.0f / (Nx * Ny);
    } else if (metric == LK_METRIC_EUCLIDEAN) {
        g.a = kappa > 0.0f ? 1.0f / kappa : 0.0f;
        g.b = -g.a;
    } else {
        g.a = 2.0f;
        g.b = -2.0f;
    }
    return g;
}

// The element k of ∂κ/∂x scaled by w: w·(a·x + b·y), written as w·a·(x − y) for the Euclidean family.
__device__ __forceinline__ float kappa_grad_elem(int metric, DistGrad g, float w, float x, float y) {
    if (metric == LK_METRIC_COSINE) return w * (g.a * x + g.b * y);
    return w * g.a * (x - y);
}

// Sum over the block of an integer type, in a fixed order; every thread gets the sum.
template <typename T>
__device__ inline T block_sum_int(T v) {
    __shared__ T partials[32];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) partials[warp] = v;
    __syncthreads();
    T s = lane < nwarps ? partials[lane] : T(0);
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    return s;
}

// Sum over the block of doubles; thread 0's value is the fixed-order sum (other lanes may differ
// in the last bits, so only thread 0 should use it).
__device__ inline double block_sum_f64(double v) {
    __shared__ double partials[32];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) partials[warp] = v;
    __syncthreads();
    double s = 0.0;
    if (threadIdx.x == 0)
        for (int w = 0; w < nwarps; ++w) s += partials[w];
    return s;
}

// Candidate order of the miners: (value, index) pairs, ties to the lower index, an index of
// LK_NONE is no candidate and loses to every candidate. NaN values are ranked worst (after +inf for
// a minimum, before −inf for a maximum) so the order stays total and the reductions deterministic.
__device__ __forceinline__ bool better(bool want_max, float av, uint32_t ai, float bv, uint32_t bi) {
    if (ai == LK_NONE) return false;
    if (bi == LK_NONE) return true;
    const bool an = isnan(av), bn = isnan(bv);
    if (an != bn) return bn;
    if (!an && av != bv) return want_max ? av > bv : av < bv;
    return ai < bi;
}

// Replaces (v, i, payload) by (cv, ci, cpayload) when the candidate is better.
__device__ __forceinline__ void offer(bool want_max, float& v, uint32_t& i, float& pl, float cv, uint32_t ci,
                                      float cpl) {
    if (better(want_max, cv, ci, v, i)) {
        v = cv;
        i = ci;
        pl = cpl;
    }
}

// The best candidate of the warp; every lane gets it (the order is total, so all lanes agree).
__device__ inline void warp_argbest(bool want_max, float& v, uint32_t& i, float& pl) {
    for (int off = 16; off > 0; off >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, off);
        const uint32_t oi = __shfl_xor_sync(0xffffffffu, i, off);
        const float opl = __shfl_xor_sync(0xffffffffu, pl, off);
        offer(want_max, v, i, pl, ov, oi, opl);
    }
}

// The best candidate of the block; every thread gets it. All threads must call it.
__device__ inline void block_argbest(bool want_max, float& v, uint32_t& i, float& pl) {
    __shared__ float sv[32], spl[32];
    __shared__ uint32_t si[32];
    warp_argbest(want_max, v, i, pl);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) {
        sv[warp] = v;
        si[warp] = i;
        spl[warp] = pl;
    }
    __syncthreads();
    v = 0.0f;
    i = LK_NONE;
    pl = 0.0f;
    if (lane < nwarps) {
        v = sv[lane];
        i = si[lane];
        pl = spl[lane];
    }
    warp_argbest(want_max, v, i, pl);
}

// Staging chunk of the anchor (query) row in shared memory, in floats.
#define LK_ROW_CHUNK 256

// κ(x, r_j) for this thread's reference j; j ≥ m gives an unused value. Every thread of the block
// must call it with the same x (it stages x through shared memory `xs` of LK_ROW_CHUNK floats).
__device__ inline float kappa_staged(int metric, const float* __restrict__ x, const float* __restrict__ r,
                                     int64_t j, int64_t m, int64_t d, float* xs) {
    float dot = 0.0f, na = 0.0f, nb = 0.0f;
    const float* rj = r + (j < m ? j : 0) * d;
    for (int64_t k0 = 0; k0 < d; k0 += LK_ROW_CHUNK) {
        const int64_t len = d - k0 < LK_ROW_CHUNK ? d - k0 : LK_ROW_CHUNK;
        __syncthreads();  // xs may still be read from the previous chunk
        for (int64_t t = threadIdx.x; t < len; t += blockDim.x) xs[t] = x[k0 + t];
        __syncthreads();
        if (j < m)
            for (int64_t kk = 0; kk < len; ++kk) dist_acc(xs[kk], rj[k0 + kk], dot, na, nb);
    }
    return kappa_from_dot(metric, dot, na, nb);
}

// Σ_k x_k² in increasing k with rounded FMAs (the nq / nr of kappa_staged and the tiled kernels).
__device__ inline float sqnorm_seq(const float* __restrict__ x, int64_t d) {
    float s = 0.0f;
    for (int64_t k = 0; k < d; ++k) s = __fmaf_rn(x[k], x[k], s);
    return s;
}

}  // namespace lk
