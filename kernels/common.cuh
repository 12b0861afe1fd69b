// Shared device helpers for latentkit kernels: index types, deterministic block reductions and the
// numerically stable scalar functions that the CPU twins mirror (src/ops/*/cpu.rs).
#pragma once

#include <stdint.h>
#include "latentkit_abi.h"

#define LK_KERNEL extern "C" __global__

namespace lk {

// Grid-stride loop over [0, n) with 64-bit indices: sizes past INT_MAX are legal.
#define LK_GRID_STRIDE(i, n)                                                      \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);    \
         i += (int64_t)blockDim.x * gridDim.x)

// Sum over the block in a fixed order (warp shuffles, then warp partials in lane order): the result
// depends only on blockDim and the per-thread values, never on timing. Every thread gets the sum.
// Needs blockDim.x to be a multiple of 32 and at most 1024.
__device__ inline float block_sum(float v) {
    __shared__ float warp_partials[32];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    __syncthreads();  // warp_partials may still be read by a previous call
    if (lane == 0) warp_partials[warp] = v;
    __syncthreads();
    float s = lane < nwarps ? warp_partials[lane] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    return s;
}

// log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)).
__device__ inline float softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

// 1 / (1 + exp(-x)) evaluated on the side where exp can't overflow.
__device__ inline float sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

// max(x, 0) that lets a NaN through (fmaxf would turn it into 0 and hide it from the loss check).
__device__ inline float relu_keep_nan(float x) { return x <= 0.0f ? 0.0f : x; }

__device__ inline float activation_fwd(int act, float x) {
    switch (act) {
        // Not fmaxf: a NaN must reach the loss (and the non-finite check), as in PyTorch.
        case LK_ACT_RELU: return relu_keep_nan(x);
        case LK_ACT_SIGMOID: return sigmoid(x);
        case LK_ACT_TANH: return tanhf(x);
        default: return x;
    }
}

// Derivative written in terms of the activation's output y = f(x), so backward needs only y.
// ReLU: 1 where y > 0 (the subgradient at 0 is 0, as in PyTorch).
__device__ inline float activation_grad_from_output(int act, float y) {
    switch (act) {
        case LK_ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
        case LK_ACT_SIGMOID: return y * (1.0f - y);
        case LK_ACT_TANH: return 1.0f - y * y;
        default: return 1.0f;
    }
}

}  // namespace lk
