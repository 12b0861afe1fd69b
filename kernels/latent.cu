// Fused VAE reparameterization + Gaussian KL, forward and backward.
//
// Shapes: mu, logvar, z, dz, dmu, dlogvar, kl_elem are [rows, cols] row-major; kl_row is [rows];
// kl_weight is [cols]. With lv = clamp(logvar, LK_LOGVAR_MIN, LK_LOGVAR_MAX), σ = exp(lv / 2) and
// ε = philox_normal(seed, offset, r·cols + c):
//   forward:  z = μ + ε·σ   (z = μ when sample = 0)
//             kl_elem = ½(μ² + e^lv − lv − 1),  kl_row[r] = Σ_c kl_elem[r, c]
//   backward: dμ = dz + w_c·μ,   dlogvar = dz·ε·σ/2 + w_c·(e^lv − 1)/2
// where w_c = kl_weight[c] is the KL's weight in the loss (β / batch, or 0 for a dimension held at
// its free-bits floor). ε is regenerated from the counter, never stored. The gradient passes
// straight through the clamp (so a saturated log σ² is still pulled back by the KL term).
//
// Work split: forward runs one block per row (grid-stride over rows); each thread handles a strided
// subset of the row's columns and lk::block_sum adds the KL terms in a fixed order, so kl_row is
// bit-reproducible. Backward is a grid-stride pointwise loop.
#include "common.cuh"
#include "philox.cuh"

__device__ inline float clamp_logvar(float lv) { return fminf(fmaxf(lv, LK_LOGVAR_MIN), LK_LOGVAR_MAX); }

LK_KERNEL void reparam_kl_fwd_f32(lk_latent_params p, const uint32_t* __restrict__ offset_ptr,
                                  const float* __restrict__ mu, const float* __restrict__ logvar,
                                  float* __restrict__ z, float* __restrict__ kl_row,
                                  float* __restrict__ kl_elem, int64_t rows, int64_t cols) {
    const uint64_t offset = lk::load_offset(offset_ptr);
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        float s = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const int64_t i = r * cols + c;
            const float m = mu[i];
            const float lv = clamp_logvar(logvar[i]);
            const float var = expf(lv);
            if (p.sample) {
                const float eps = lk::philox_normal(p.seed, offset, (uint64_t)i);
                z[i] = m + eps * expf(0.5f * lv);
            } else {
                z[i] = m;
            }
            const float k = 0.5f * (m * m + var - lv - 1.0f);
            if (p.write_kl_elem) kl_elem[i] = k;
            s += k;
        }
        s = lk::block_sum(s);
        if (threadIdx.x == 0) kl_row[r] = s;
    }
}

LK_KERNEL void reparam_kl_bwd_f32(lk_latent_params p, const uint32_t* __restrict__ offset_ptr,
                                  const float* __restrict__ mu, const float* __restrict__ logvar,
                                  const float* __restrict__ dz, const float* __restrict__ kl_weight,
                                  float* __restrict__ dmu, float* __restrict__ dlogvar, int64_t rows,
                                  int64_t cols) {
    const uint64_t offset = lk::load_offset(offset_ptr);
    LK_GRID_STRIDE(i, rows * cols) {
        const float w = kl_weight[i % cols];
        const float m = mu[i];
        const float lv = clamp_logvar(logvar[i]);
        const float g = dz[i];
        float dlv = 0.5f * w * (expf(lv) - 1.0f);
        if (p.sample) {
            const float eps = lk::philox_normal(p.seed, offset, (uint64_t)i);
            dlv += 0.5f * g * eps * expf(0.5f * lv);
        }
        dmu[i] = g + w * m;
        dlogvar[i] = dlv;
    }
}
