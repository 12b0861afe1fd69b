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

// NaN passes through (fminf/fmaxf alone would turn it into −30 and hide it from the loss check).
__device__ inline float clamp_logvar(float lv) {
    return lv != lv ? lv : fminf(fmaxf(lv, LK_LOGVAR_MIN), LK_LOGVAR_MAX);
}

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

// The VAE objective of one batch, entirely on the device (no host round trip, so a training step
// can be captured in a CUDA graph):
//   recon = Σ_r recon_row[r] / rows,   kl = Σ_r kl_row[r] / rows
//   β_t = β · min(1, (t + 1) / warmup_steps)  (β when warmup_steps = 0), t = optim_state[0]
//   without free bits: w_c = β_t / rows,  loss = recon + β_t · kl
//   with free bits λ:  m_c = kl_dim[c] / rows (batch-mean KL of dimension c),
//                      w_c = m_c < λ ? 0 : β_t / rows,  loss = recon + β_t · Σ_c max(m_c, λ)
//   stats = [recon, kl, loss];  acc += stats  (the epoch's running sums)
// Shapes: recon_row, kl_row [rows]; kl_dim, kl_weight [cols]; stats, acc [LK_VAE_STAT_LEN].
// Work split: one block; the row sums use lk::block_sum (fixed order), then thread 0 walks the
// latent dimensions in order.
LK_KERNEL void vae_objective_f32(lk_kl_schedule_params p, const float* __restrict__ optim_state,
                                 const float* __restrict__ recon_row, const float* __restrict__ kl_row,
                                 const float* __restrict__ kl_dim, float* __restrict__ kl_weight,
                                 float* __restrict__ stats, float* __restrict__ acc, int64_t rows,
                                 int64_t cols) {
    float rs = 0.0f, ks = 0.0f;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
        rs += recon_row[r];
        ks += kl_row[r];
    }
    rs = lk::block_sum(rs);
    ks = lk::block_sum(ks);
    if (threadIdx.x != 0) return;
    const float n = (float)rows;
    const float t = optim_state[LK_OPTIM_STATE_T];
    const float beta = p.warmup_steps > 0.0f ? p.beta * fminf(1.0f, (t + 1.0f) / p.warmup_steps) : p.beta;
    const float recon = rs / n, kl = ks / n;
    float kl_objective = kl;
    if (p.use_free_bits) kl_objective = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
        float w = beta / n;
        if (p.use_free_bits) {
            const float m = kl_dim[c] / n;
            if (m < p.free_bits) w = 0.0f;
            kl_objective += m != m ? m : fmaxf(m, p.free_bits);  // keep a NaN visible
        }
        kl_weight[c] = w;
    }
    const float loss = recon + beta * kl_objective;
    stats[LK_VAE_STAT_RECON] = recon;
    stats[LK_VAE_STAT_KL] = kl;
    stats[LK_VAE_STAT_LOSS] = loss;
    acc[LK_VAE_STAT_RECON] += recon;
    acc[LK_VAE_STAT_KL] += kl;
    acc[LK_VAE_STAT_LOSS] += loss;
}
