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
// Numbered versions (llm.c style; the launcher in src/ops/latent/cuda.rs picks by LatentKernel):
//   v1 reparam_kl_fwd_f32: one block per row (grid-stride over rows), blockDim = cols rounded up to
//      whole warps, at most 256;
//      each thread handles a strided subset of the row's columns, one Philox block per element
//      (3 of its 4 outputs thrown away), and lk::block_sum adds the row's KL terms in a fixed order.
//      Kept as the fallback for rows wider than the quad kernel's limit.
//   v1 reparam_kl_bwd_f32: grid-stride pointwise loop, one Philox block per element.
//   v2 reparam_kl_fwd_quad_f32: the rows are cut into groups of R rows (R a multiple of 4, passed by
//      the launcher, ≈ 1024 / cols), so a group's flat range [r0·cols, (r0 + R)·cols) starts at a
//      multiple of 4 and is a whole number of quads: quad k of the group is the elements
//      4k .. 4k + 3 of that range, i.e. exactly Philox block (r0·cols)/4 + k. One 256-thread block per
//      group (grid-stride over groups); each thread takes quads k = tid, tid + 256, ...: one Philox
//      call for its 4 normals, float4 loads of μ, log σ² and stores of z (and kl_elem) when every
//      pointer is 16-byte aligned (scalar otherwise, and for the last group's partial quad: elements
//      at or past rows·cols are neither read nor written), and parks the 4 KL terms in shared memory
//      as terms[row][col] with an odd row stride (no bank conflicts below). After __syncthreads one
//      thread per row adds its row's terms sequentially in column order into kl_row (fixed order,
//      bit-reproducible); another __syncthreads before the next group reuses the buffer.
//   v2 reparam_kl_bwd_quad_f32: grid-stride over quads of the flat range, one Philox call per quad,
//      float4 loads of μ, log σ², dz and stores of dμ, dlog σ² when aligned (scalar otherwise and for
//      a partial last quad); w_c walks the columns from (4q mod cols) with a wrap.
// Both versions compute each element with the same helpers (reparam_kl_fwd_elem / _bwd_elem) and the
// same ε (philox_normal is lane i % 4 of philox_normal4(i / 4)), so z, kl_elem, dμ and dlog σ² are
// the same bits; only kl_row's summation order differs (block_sum vs sequential).
#include "common.cuh"
#include "philox.cuh"

// NaN passes through (fminf/fmaxf alone would turn it into −30 and hide it from the loss check).
__device__ inline float clamp_logvar(float lv) {
    return lv != lv ? lv : fminf(fmaxf(lv, LK_LOGVAR_MIN), LK_LOGVAR_MAX);
}

// One forward element: z and the KL term from μ, the unclamped log σ² and ε (unused when !sample).
// Written once for both kernel versions. The roundings are spelled out (__fmaf_rn etc.) as nvcc
// compiled the original v1's `m + eps * expf(0.5f * lv)` and `0.5f * (m * m + var - lv - 1.0f)`
// (one fma each), so they can't change with the code around them: left to contraction, the quad
// kernel's straight-line code was fused differently (see reparam_kl_bwd_elem).
__device__ __forceinline__ void reparam_kl_fwd_elem(float m, float logvar, float eps, bool sample, float* z,
                                                    float* k) {
    const float lv = clamp_logvar(logvar);
    const float var = expf(lv);
    *z = sample ? __fmaf_rn(eps, expf(0.5f * lv), m) : m;
    *k = __fmul_rn(0.5f, __fsub_rn(__fsub_rn(__fmaf_rn(m, m, var), lv), 1.0f));
}

// One backward element: dμ and dlog σ² from the weight w_c, μ, the unclamped log σ², dz and ε.
// As the original v1 compiled: dlv = (½w)·(e^lv − 1) rounded, then dlv = fma(½·dz·ε, σ, dlv),
// dμ = fma(w, μ, dz). `expf(lv) - 1.0f` stays a contraction inside expf's last step (fma of its 2^k
// scaling with −1), as it was. Left to nvcc, the unrolled quad loop (no branch between the two
// terms) fused the first product instead of the second: different bits.
__device__ __forceinline__ void reparam_kl_bwd_elem(float w, float m, float logvar, float g, float eps, bool sample,
                                                    float* dmu, float* dlogvar) {
    const float lv = clamp_logvar(logvar);
    float dlv = __fmul_rn(0.5f * w, expf(lv) - 1.0f);
    if (sample) dlv = __fmaf_rn(0.5f * g * eps, expf(0.5f * lv), dlv);
    *dmu = __fmaf_rn(w, m, g);
    *dlogvar = dlv;
}

__device__ __forceinline__ bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

// ---- v1 ----

LK_KERNEL void reparam_kl_fwd_f32(lk_latent_params p, const uint32_t* __restrict__ offset_ptr,
                                  const float* __restrict__ mu, const float* __restrict__ logvar,
                                  float* __restrict__ z, float* __restrict__ kl_row,
                                  float* __restrict__ kl_elem, int64_t rows, int64_t cols) {
    const uint64_t offset = lk::load_offset(offset_ptr);
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        float s = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const int64_t i = r * cols + c;
            const float eps = p.sample ? lk::philox_normal(p.seed, offset, (uint64_t)i) : 0.0f;
            float zi, k;
            reparam_kl_fwd_elem(mu[i], logvar[i], eps, p.sample != 0, &zi, &k);
            z[i] = zi;
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
        const float eps = p.sample ? lk::philox_normal(p.seed, offset, (uint64_t)i) : 0.0f;
        float dm, dlv;
        reparam_kl_bwd_elem(kl_weight[i % cols], mu[i], logvar[i], dz[i], eps, p.sample != 0, &dm, &dlv);
        dmu[i] = dm;
        dlogvar[i] = dlv;
    }
}

// ---- v2 ----

// Loads elements i0 .. i0 + cnt − 1 (cnt ≤ 4) of x into v; one float4 load when vec and cnt = 4.
// Lanes past cnt get 0 and are never stored.
__device__ __forceinline__ void load_quad(const float* __restrict__ x, int64_t i0, int cnt, bool vec, float v[4]) {
    if (vec && cnt == 4) {
        const float4 q = __ldg(reinterpret_cast<const float4*>(x + i0));
        v[0] = q.x;
        v[1] = q.y;
        v[2] = q.z;
        v[3] = q.w;
    } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) v[j] = j < cnt ? x[i0 + j] : 0.0f;
    }
}

__device__ __forceinline__ void store_quad(float* __restrict__ x, int64_t i0, int cnt, bool vec, const float v[4]) {
    if (vec && cnt == 4) {
        // __stwb: st.global.wb.v4 (the default policy); a plain float4 assignment was split into
        // four scalar stores by nvcc 13.0.
        __stwb(reinterpret_cast<float4*>(x + i0), make_float4(v[0], v[1], v[2], v[3]));
    } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
            if (j < cnt) x[i0 + j] = v[j];
    }
}

// Threads per block of reparam_kl_fwd_quad_f32 (QUAD_THREADS in src/ops/latent/cuda.rs).
#define LK_LATENT_QUAD_THREADS 256

// group_rows: R, a multiple of 4 (so every group starts on a Philox block). terms_stride: the row
// stride of the shared KL terms, ≥ cols and odd. Dynamic shared memory: group_rows·terms_stride
// floats. cols·group_rows must fit in int (the launcher keeps it ≤ about 1024).
LK_KERNEL void __launch_bounds__(LK_LATENT_QUAD_THREADS) reparam_kl_fwd_quad_f32(
    lk_latent_params p, const uint32_t* __restrict__ offset_ptr, const float* __restrict__ mu,
    const float* __restrict__ logvar, float* __restrict__ z, float* __restrict__ kl_row, float* __restrict__ kl_elem,
    int64_t rows, int64_t cols, int32_t group_rows, int32_t terms_stride) {
    extern __shared__ float terms[];  // [group_rows][terms_stride]
    const uint64_t offset = lk::load_offset(offset_ptr);
    const int ncols = (int)cols;
    const bool sample = p.sample != 0, write_kl_elem = p.write_kl_elem != 0;
    const bool vec = aligned16(mu) && aligned16(logvar) && aligned16(z) && (!write_kl_elem || aligned16(kl_elem));
    const int64_t groups = (rows + group_rows - 1) / group_rows;
    for (int64_t grp = blockIdx.x; grp < groups; grp += gridDim.x) {
        const int64_t r0 = grp * group_rows;
        const int g_rows = (int)min((int64_t)group_rows, rows - r0);
        const int g_elems = g_rows * ncols;  // a multiple of 4 except in the last group
        const int64_t base = r0 * cols;      // a multiple of 4: group_rows is
        for (int e0 = 4 * (int)threadIdx.x; e0 < g_elems; e0 += 4 * (int)blockDim.x) {
            const int64_t i0 = base + e0;
            const int cnt = min(4, g_elems - e0);
            float m[4], lv[4], eps[4] = {0.0f, 0.0f, 0.0f, 0.0f}, zq[4], kq[4];
            load_quad(mu, i0, cnt, vec, m);
            load_quad(logvar, i0, cnt, vec, lv);
            if (sample) lk::philox_normal4(p.seed, offset, (uint64_t)i0 >> 2, eps);
#pragma unroll
            for (int j = 0; j < 4; ++j) reparam_kl_fwd_elem(m[j], lv[j], eps[j], sample, &zq[j], &kq[j]);
            store_quad(z, i0, cnt, vec, zq);
            if (write_kl_elem) store_quad(kl_elem, i0, cnt, vec, kq);
            int r = e0 / ncols, c = e0 - r * ncols;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                if (j < cnt) terms[r * terms_stride + c] = kq[j];
                if (++c == ncols) {
                    c = 0;
                    ++r;
                }
            }
        }
        __syncthreads();
        for (int r = threadIdx.x; r < g_rows; r += blockDim.x) {
            const float* t = terms + r * terms_stride;
            float s = 0.0f;
            for (int c = 0; c < ncols; ++c) s += t[c];
            kl_row[r0 + r] = s;
        }
        __syncthreads();  // the next group overwrites terms
    }
}

LK_KERNEL void reparam_kl_bwd_quad_f32(lk_latent_params p, const uint32_t* __restrict__ offset_ptr,
                                       const float* __restrict__ mu, const float* __restrict__ logvar,
                                       const float* __restrict__ dz, const float* __restrict__ kl_weight,
                                       float* __restrict__ dmu, float* __restrict__ dlogvar, int64_t rows,
                                       int64_t cols) {
    const uint64_t offset = lk::load_offset(offset_ptr);
    const int64_t n = rows * cols, quads = (n + 3) >> 2;
    const bool sample = p.sample != 0;
    const bool vec = aligned16(mu) && aligned16(logvar) && aligned16(dz) && aligned16(dmu) && aligned16(dlogvar);
    LK_GRID_STRIDE(q, quads) {
        const int64_t i0 = q << 2;
        const int cnt = (int)min((int64_t)4, n - i0);
        float m[4], lv[4], g[4], eps[4] = {0.0f, 0.0f, 0.0f, 0.0f}, dm[4], dlv[4];
        load_quad(mu, i0, cnt, vec, m);
        load_quad(logvar, i0, cnt, vec, lv);
        load_quad(dz, i0, cnt, vec, g);
        if (sample) lk::philox_normal4(p.seed, offset, (uint64_t)q, eps);
        int64_t c = i0 % cols;  // then stepped with a wrap: always in [0, cols)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            reparam_kl_bwd_elem(kl_weight[c], m[j], lv[j], g[j], eps[j], sample, &dm[j], &dlv[j]);
            if (++c == cols) c = 0;
        }
        store_quad(dmu, i0, cnt, vec, dm);
        store_quad(dlogvar, i0, cnt, vec, dlv);
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
