// Optimizer steps. The step count lives in device memory (state[LK_OPTIM_STATE_*], latentkit_abi.h)
// and is advanced by optim_tick_f32, so one captured CUDA graph can replay every training step.
//
//   optim_tick_f32:        t += 1;  state = [t, 1 − β1^t, 1 − β2^t]            (one thread)
//   adam_step_f32 (PyTorch Adam / AdamW, per element i):
//       g = grad + wd·p                       (Adam: L2 penalty in the gradient)
//       p = p·(1 − lr·wd)                     (AdamW: decoupled decay instead)
//       m = β1·m + (1 − β1)·g;   v = β2·v + (1 − β2)·g²
//       p −= (lr / bc1) · m / (√v / √bc2 + eps)
//   sgd_momentum_step_f32 (PyTorch SGD, per element i):
//       g = grad + wd·p
//       buf = g at t = 1, else momentum·buf + (1 − dampening)·g     (skipped when momentum = 0)
//       g = nesterov ? g + momentum·buf : buf
//       p −= lr·g
//
//   adam_multi_step_f32: the same update over up to LK_ADAM_MULTI_MAX tensors in one launch (a
//       training step's parameters: one graph node instead of one per tensor), bit for bit what
//       adam_step_f32 writes (the same adam_update).
//
// Shapes: p, grad, m, v, buf are flat [n]. Work split: grid-stride loops, one element per thread;
// adam_multi_step_f32 gives tensor j the blocks [t[j].block0, t[j + 1].block0), each block
// LK_ADAM_MULTI_CHUNK consecutive elements of it.
#include "common.cuh"

// One element of PyTorch's Adam / AdamW (formula above). Every rounding is spelled out (no
// mul + add left for the compiler to contract), so adam_step_f32 and adam_multi_step_f32, which
// inline this in different surroundings, write the same bits; the operations are the ones nvcc
// 13.0 chose for adam_step_f32 before (the moments as one FMA each).
__device__ inline void adam_update(float* __restrict__ p, const float* __restrict__ grad,
                                   float* __restrict__ m, float* __restrict__ v, int64_t i,
                                   const lk_adam_params& hp, float step_size, float bc2_sqrt) {
    float w = p[i];
    float g = grad[i];
    if (hp.weight_decay != 0.0f) {
        if (hp.decoupled_weight_decay) w = __fmul_rn(w, __fsub_rn(1.0f, __fmul_rn(hp.lr, hp.weight_decay)));
        else g = __fmaf_rn(hp.weight_decay, w, g);
    }
    const float mi = __fmaf_rn(__fsub_rn(1.0f, hp.beta1), g, __fmul_rn(hp.beta1, m[i]));
    const float vi = __fmaf_rn(g, __fmul_rn(__fsub_rn(1.0f, hp.beta2), g), __fmul_rn(hp.beta2, v[i]));
    m[i] = mi;
    v[i] = vi;
    const float denom = __fadd_rn(hp.eps, __fdiv_rn(__fsqrt_rn(vi), bc2_sqrt));
    p[i] = __fsub_rn(w, __fdiv_rn(__fmul_rn(step_size, mi), denom));
}

// The bias corrections of the state: step size lr / (1 − β1^t) and √(1 − β2^t).
__device__ inline void adam_corrections(const float* __restrict__ state, const lk_adam_params& hp,
                                        float* step_size, float* bc2_sqrt) {
    *step_size = __fdiv_rn(hp.lr, state[LK_OPTIM_STATE_BIAS_CORR1]);
    *bc2_sqrt = __fsqrt_rn(state[LK_OPTIM_STATE_BIAS_CORR2]);
}

LK_KERNEL void optim_tick_f32(float* __restrict__ state, float beta1, float beta2) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        const float t = state[LK_OPTIM_STATE_T] + 1.0f;
        state[LK_OPTIM_STATE_T] = t;
        state[LK_OPTIM_STATE_BIAS_CORR1] = 1.0f - powf(beta1, t);
        state[LK_OPTIM_STATE_BIAS_CORR2] = 1.0f - powf(beta2, t);
    }
}

LK_KERNEL void adam_step_f32(float* __restrict__ p, const float* __restrict__ grad,
                             float* __restrict__ m, float* __restrict__ v,
                             const float* __restrict__ state, lk_adam_params hp, int64_t n) {
    float step_size, bc2_sqrt;
    adam_corrections(state, hp, &step_size, &bc2_sqrt);
    LK_GRID_STRIDE(i, n) { adam_update(p, grad, m, v, i, hp, step_size, bc2_sqrt); }
}

LK_KERNEL void adam_multi_step_f32(const lk_adam_multi_params mp, const float* __restrict__ state) {
    float step_size, bc2_sqrt;
    adam_corrections(state, mp.hp, &step_size, &bc2_sqrt);
    const int64_t block = blockIdx.x;
    int j = 0;  // the tensor of this block: the last one whose first block is <= this block
    while (j + 1 < mp.count && mp.t[j + 1].block0 <= block) ++j;
    const lk_adam_tensor& t = mp.t[j];
    float* p = reinterpret_cast<float*>(t.p);
    const float* g = reinterpret_cast<const float*>(t.grad);
    float* m = reinterpret_cast<float*>(t.m);
    float* v = reinterpret_cast<float*>(t.v);
    const int64_t begin = (block - t.block0) * LK_ADAM_MULTI_CHUNK;
    const int64_t end = begin + LK_ADAM_MULTI_CHUNK < t.n ? begin + LK_ADAM_MULTI_CHUNK : t.n;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) adam_update(p, g, m, v, i, mp.hp, step_size, bc2_sqrt);
}

LK_KERNEL void sgd_momentum_step_f32(float* __restrict__ p, const float* __restrict__ grad,
                                     float* __restrict__ buf, const float* __restrict__ state,
                                     lk_sgd_params hp, int64_t n) {
    const bool first = state[LK_OPTIM_STATE_T] <= 1.0f;
    LK_GRID_STRIDE(i, n) {
        float g = grad[i];
        if (hp.weight_decay != 0.0f) g += hp.weight_decay * p[i];
        if (hp.momentum != 0.0f) {
            const float b = first ? g : hp.momentum * buf[i] + (1.0f - hp.dampening) * g;
            buf[i] = b;
            g = hp.nesterov ? g + hp.momentum * b : b;
        }
        p[i] -= hp.lr * g;
    }
}
