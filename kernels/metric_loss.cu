// Pair losses of siamese networks: contrastive loss (given pairs, and all in-batch pairs streamed)
// and the cosine-similarity head with BCE-with-logits.
//
// Contrastive (Hadsell et al. 2006), d = ‖x1 − x2‖ computed from the difference (so identical
// points give exactly 0), y = 1 for a similar pair, 0 for a dissimilar one:
//   ℓ = ½·y·d² + ½·(1 − y)·max(0, m − d)²
//   ∂ℓ/∂x1 = c·(x1 − x2) = −∂ℓ/∂x2,  c = y ? 1 : −max(0, m − d)/d, and c = 0 at d = 0 (the stated
//   subgradient of the dissimilar branch, whose direction is undefined there).
// Given pairs: x1, x2 [n, d], y [n] (u32, nonzero = similar); loss [n]; backward with the upstream
// g [n]: dx1 = g_i·c_i·(x1 − x2), dx2 = −dx1. One block per pair; Σ_k (x1 − x2)² by lk::block_sum
// (fixed order).
// In-batch pairs: x [n, d], labels [n] (u32), y_ij = [labels equal], every unordered pair once:
//   row_loss[i] = Σ_{j > i} ℓ(x_i, x_j);  loss = Σ_i row_loss[i] / (n(n − 1)/2)
//   dx_i = weight · Σ_{j ≠ i} c_ij (x_i − x_j),  weight = scale / (n(n − 1)/2)
// One block per row i; each thread owns a strided reference j (d_ij by sequential sums, the row x_i
// staged through shared memory); the backward puts a chunk's coefficients in shared memory and the
// threads, one per column k, add Σ_j c_ij (x_ik − x_jk) in j order to the row they own. No N×N.
//
// Siamese cosine head: cos_i = x1·x2 / (max(‖x1‖, 1e−12)·max(‖x2‖, 1e−12)), s_i = scale·cos_i + bias,
//   loss_i = softplus(s_i) − y_i·s_i (BCE with logits, stable), ds_i = g_i·(σ(s_i) − y_i),
//   dx1 = ds·scale·(x2/(N1·N2) − cos·x1/N1²) (the second term only when ‖x1‖ > 1e−12), dx2 likewise,
//   dscale = Σ_i ds_i·cos_i, dbias = Σ_i ds_i.
// scale and bias are 1-element device tensors (learnable, graph friendly). One block per pair for
// the forward and dx; one block, a thread per pair, for dscale/dbias (block_sum, fixed order).
#include "distance.cuh"

namespace {

__device__ __forceinline__ float contrastive_loss(bool similar, float sq, float margin) {
    if (similar) return 0.5f * sq;
    const float h = lk::relu_keep_nan(margin - sqrtf(sq));
    return 0.5f * h * h;
}

__device__ __forceinline__ float contrastive_coef(bool similar, float sq, float margin) {
    if (similar) return 1.0f;
    const float dd = sqrtf(sq);
    return dd > 0.0f ? -lk::relu_keep_nan(margin - dd) / dd : 0.0f;
}

// Σ_k (x_k − y_jk)² for this thread's row j (any value for j ≥ n); x staged through xs, every
// thread of the block must call it.
__device__ float sqdist_staged(const float* __restrict__ x, const float* __restrict__ y, int64_t j, int64_t n,
                               int64_t d, float* xs) {
    float s = 0.0f;
    const float* yj = y + (j < n ? j : 0) * d;
    for (int64_t k0 = 0; k0 < d; k0 += LK_ROW_CHUNK) {
        const int64_t len = d - k0 < LK_ROW_CHUNK ? d - k0 : LK_ROW_CHUNK;
        __syncthreads();
        for (int64_t t = threadIdx.x; t < len; t += blockDim.x) xs[t] = x[k0 + t];
        __syncthreads();
        if (j < n)
            for (int64_t kk = 0; kk < len; ++kk) {
                const float diff = xs[kk] - yj[k0 + kk];
                s = __fmaf_rn(diff, diff, s);
            }
    }
    return s;
}

// Σ_k (a_k − b_k)² over the block, fixed order; every thread gets it.
__device__ float block_sqdist(const float* __restrict__ a, const float* __restrict__ b, int64_t d) {
    float s = 0.0f;
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
        const float diff = a[k] - b[k];
        s += diff * diff;
    }
    return lk::block_sum(s);
}

}  // namespace

LK_KERNEL void contrastive_pair_fwd_f32(lk_contrastive_params p, const float* __restrict__ x1,
                                        const float* __restrict__ x2, const uint32_t* __restrict__ y,
                                        float* __restrict__ loss) {
    for (int64_t i = blockIdx.x; i < p.n; i += gridDim.x) {
        const float sq = block_sqdist(x1 + i * p.d, x2 + i * p.d, p.d);
        if (threadIdx.x == 0) loss[i] = contrastive_loss(y[i] != 0, sq, p.margin);
    }
}

LK_KERNEL void contrastive_pair_bwd_f32(lk_contrastive_params p, const float* __restrict__ x1,
                                        const float* __restrict__ x2, const uint32_t* __restrict__ y,
                                        const float* __restrict__ g, float* __restrict__ dx1,
                                        float* __restrict__ dx2) {
    for (int64_t i = blockIdx.x; i < p.n; i += gridDim.x) {
        const float sq = block_sqdist(x1 + i * p.d, x2 + i * p.d, p.d);
        const float c = g[i] * contrastive_coef(y[i] != 0, sq, p.margin);
        for (int64_t k = threadIdx.x; k < p.d; k += blockDim.x) {
            const int64_t e = i * p.d + k;
            const float v = c * (x1[e] - x2[e]);
            dx1[e] = v;
            dx2[e] = -v;
        }
    }
}

LK_KERNEL void contrastive_batch_fwd_f32(lk_contrastive_params p, const float* __restrict__ x,
                                         const uint32_t* __restrict__ labels, float* __restrict__ row_loss) {
    __shared__ float xs[LK_ROW_CHUNK];
    for (int64_t i = blockIdx.x; i < p.n; i += gridDim.x) {
        const uint32_t li = labels[i];
        float acc = 0.0f;
        for (int64_t jb = 0; jb < p.n; jb += blockDim.x) {
            const int64_t j = jb + threadIdx.x;
            const float sq = sqdist_staged(x + i * p.d, x, j, p.n, p.d, xs);
            if (j < p.n && j > i) acc += contrastive_loss(labels[j] == li, sq, p.margin);
        }
        acc = lk::block_sum(acc);
        if (threadIdx.x == 0) row_loss[i] = acc;
    }
}

// blockDim.x ≤ 256 (the coefficient chunk).
LK_KERNEL void contrastive_batch_bwd_f32(lk_contrastive_params p, const float* __restrict__ x,
                                         const uint32_t* __restrict__ labels, float* __restrict__ dx) {
    __shared__ float xs[LK_ROW_CHUNK];
    __shared__ float cs[256];
    for (int64_t i = blockIdx.x; i < p.n; i += gridDim.x) {
        const uint32_t li = labels[i];
        const float* xi = x + i * p.d;
        for (int64_t k = threadIdx.x; k < p.d; k += blockDim.x) dx[i * p.d + k] = 0.0f;
        for (int64_t jb = 0; jb < p.n; jb += blockDim.x) {
            const int64_t j = jb + threadIdx.x;
            const float sq = sqdist_staged(xi, x, j, p.n, p.d, xs);
            float c = 0.0f;
            if (j < p.n && j != i) c = contrastive_coef(labels[j] == li, sq, p.margin);
            __syncthreads();  // cs may still be read for the previous chunk
            cs[threadIdx.x] = c;
            __syncthreads();
            const int64_t cnt = p.n - jb < (int64_t)blockDim.x ? p.n - jb : (int64_t)blockDim.x;
            for (int64_t k = threadIdx.x; k < p.d; k += blockDim.x) {
                const float xk = xi[k];
                float acc = 0.0f;
                for (int64_t t = 0; t < cnt; ++t) acc += cs[t] * (xk - x[(jb + t) * p.d + k]);
                dx[i * p.d + k] += p.weight * acc;
            }
        }
    }
}

namespace {

struct CosParts {
    float cos, n1, n2, big1, big2;
};

__device__ __forceinline__ CosParts cos_parts(float dot, float s1, float s2) {
    CosParts c;
    c.n1 = sqrtf(s1);
    c.n2 = sqrtf(s2);
    c.big1 = fmaxf(c.n1, LK_COSINE_NORM_FLOOR);
    c.big2 = fmaxf(c.n2, LK_COSINE_NORM_FLOOR);
    c.cos = dot / (c.big1 * c.big2);
    return c;
}

}  // namespace

LK_KERNEL void siamese_cos_fwd_f32(const float* __restrict__ x1, const float* __restrict__ x2,
                                   const float* __restrict__ y, const float* __restrict__ scale,
                                   const float* __restrict__ bias, float* __restrict__ logits,
                                   float* __restrict__ loss, int64_t n, int64_t d) {
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        float dot = 0.0f, s1 = 0.0f, s2 = 0.0f;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
            const float a = x1[i * d + k], b = x2[i * d + k];
            dot += a * b;
            s1 += a * a;
            s2 += b * b;
        }
        dot = lk::block_sum(dot);
        s1 = lk::block_sum(s1);
        s2 = lk::block_sum(s2);
        if (threadIdx.x == 0) {
            const float s = scale[0] * cos_parts(dot, s1, s2).cos + bias[0];
            logits[i] = s;
            loss[i] = lk::softplus(s) - y[i] * s;
        }
    }
}

LK_KERNEL void siamese_cos_bwd_f32(const float* __restrict__ x1, const float* __restrict__ x2,
                                   const float* __restrict__ y, const float* __restrict__ g,
                                   const float* __restrict__ scale, const float* __restrict__ bias,
                                   float* __restrict__ dx1, float* __restrict__ dx2, int64_t n, int64_t d) {
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        float dot = 0.0f, s1 = 0.0f, s2 = 0.0f;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
            const float a = x1[i * d + k], b = x2[i * d + k];
            dot += a * b;
            s1 += a * a;
            s2 += b * b;
        }
        dot = lk::block_sum(dot);
        s1 = lk::block_sum(s1);
        s2 = lk::block_sum(s2);
        const CosParts c = cos_parts(dot, s1, s2);
        const float s = scale[0] * c.cos + bias[0];
        const float dcos = g[i] * (lk::sigmoid(s) - y[i]) * scale[0];
        const float inv12 = 1.0f / (c.big1 * c.big2);
        const float a1 = c.n1 > LK_COSINE_NORM_FLOOR ? c.cos / (c.big1 * c.big1) : 0.0f;
        const float a2 = c.n2 > LK_COSINE_NORM_FLOOR ? c.cos / (c.big2 * c.big2) : 0.0f;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
            const float a = x1[i * d + k], b = x2[i * d + k];
            dx1[i * d + k] = dcos * (b * inv12 - a1 * a);
            dx2[i * d + k] = dcos * (a * inv12 - a2 * b);
        }
    }
}

// dscale = Σ ds_i cos_i, dbias = Σ ds_i: one block, a thread per pair (sequential sums over d).
LK_KERNEL void siamese_cos_param_bwd_f32(const float* __restrict__ x1, const float* __restrict__ x2,
                                         const float* __restrict__ y, const float* __restrict__ g,
                                         const float* __restrict__ scale, const float* __restrict__ bias,
                                         float* __restrict__ dscale, float* __restrict__ dbias, int64_t n,
                                         int64_t d) {
    float ps = 0.0f, pb = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float dot = 0.0f, s1 = 0.0f, s2 = 0.0f;
        for (int64_t k = 0; k < d; ++k) {
            const float a = x1[i * d + k], b = x2[i * d + k];
            dot += a * b;
            s1 += a * a;
            s2 += b * b;
        }
        const float cs = cos_parts(dot, s1, s2).cos;
        const float ds = g[i] * (lk::sigmoid(scale[0] * cs + bias[0]) - y[i]);
        ps += ds * cs;
        pb += ds;
    }
    ps = lk::block_sum(ps);
    pb = lk::block_sum(pb);
    if (threadIdx.x == 0) {
        dscale[0] = ps;
        dbias[0] = pb;
    }
}
