// Pairwise distances between the rows of q [n, d] and r [m, d] (row-major), and their gradient.
//
//   dot_ij = Σ_k q_ik r_jk,  nq_i = Σ_k q_ik²,  nr_j = Σ_k r_jk²   (f32, rounded FMAs in k order)
//   SquaredEuclidean: κ = max(nq + nr − 2·dot, 0)
//   Euclidean:        κ = √max(nq + nr − 2·dot, 0)
//   Cosine:           κ = 1 − dot / (max(√nq, 1e-12) · max(√nr, 1e-12))
// Forward: out [n, m] = κ_ij.
// Backward, for g = d_out [n, m]:  dq_i = Σ_j g_ij ∂κ_ij/∂q_i,  dr_j = Σ_i g_ij ∂κ_ij/∂r_j  with
//   SquaredEuclidean ∂κ/∂q = 2(q − r);  Euclidean (q − r)/κ, 0 at κ = 0;
//   Cosine ∂κ/∂q = −r/(Nq·Nr) + cos·q/Nq² (the second term only when ‖q‖ > 1e-12), cos = 1 − κ.
// κ is symmetric, so dr is the same kernel with the roles of q and r swapped and g read transposed.
//
// Work split. Forward: the miners' tiled κ core (triplet_kappa_rows_f32 in kernels/mining.cu, 64×64
// tiles, 4×4 pairs per thread) on the norms of row_sqnorm_f32 below: per pair one dot chain in
// increasing k, so κ is bit-identical everywhere it is computed (kernels/distance.cuh).
// Backward: a 16×16 block owns 16 rows of dx (grid-stride over row tiles) and walks the rows of y
// in tiles of 16: it first computes the 16×16 pair coefficients (as the forward does), then adds
// Σ_b coef_ab·(…) to its rows of dx, column tile by column tile; thread (ty, tx) always owns
// dx[a0 + ty, k0 + tx], so the accumulation order is fixed (y rows in order) and no atomics are used.
#include "distance.cuh"

#define LK_DT 16

// dx [n, d] (n = p.n rows of x) from y [m, d] and g (see the header comment for g's layout).
LK_KERNEL void pairwise_distance_bwd_f32(lk_distance_params p, const float* __restrict__ x,
                                         const float* __restrict__ y, const float* __restrict__ g,
                                         float* __restrict__ dx) {
    __shared__ float xs[LK_DT][LK_DT + 1];
    __shared__ float ys[LK_DT][LK_DT + 1];
    __shared__ float ca[LK_DT][LK_DT + 1];  // coefficient a of pair (a0 + row, b0 + col), times g
    __shared__ float cb[LK_DT][LK_DT + 1];  // coefficient b, times g
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t tiles = (p.n + LK_DT - 1) / LK_DT;
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
        const int64_t a0 = t * LK_DT;
        const int64_t a = a0 + ty;
        for (int64_t k0 = 0; k0 < p.d; k0 += LK_DT)
            if (a < p.n && k0 + tx < p.d) dx[a * p.d + k0 + tx] = 0.0f;
        for (int64_t b0 = 0; b0 < p.m; b0 += LK_DT) {
            // 1. κ and the coefficients of the 16×16 pairs: thread (ty, tx) → (x row a0+ty, y row b0+tx).
            float dot = 0.0f, na = 0.0f, nb = 0.0f;
            for (int64_t k0 = 0; k0 < p.d; k0 += LK_DT) {
                const int64_t k = k0 + tx;
                xs[ty][tx] = (a < p.n && k < p.d) ? x[a * p.d + k] : 0.0f;
                ys[ty][tx] = (b0 + ty < p.m && k < p.d) ? y[(b0 + ty) * p.d + k] : 0.0f;
                __syncthreads();
#pragma unroll
                for (int kk = 0; kk < LK_DT; ++kk) lk::dist_acc(xs[ty][kk], ys[tx][kk], dot, na, nb);
                __syncthreads();
            }
            const int64_t b = b0 + tx;
            float gab = 0.0f;
            if (a < p.n && b < p.m) gab = p.trans_g ? g[b * p.ldg + a] : g[a * p.ldg + b];
            const float kappa = lk::kappa_from_dot(p.metric, dot, na, nb);
            const lk::DistGrad c = lk::kappa_grad(p.metric, kappa, na, nb);
            ca[ty][tx] = gab * c.a;
            cb[ty][tx] = gab * c.b;
            __syncthreads();
            // 2. dx[a, k] += Σ_bb ca·x[a, k] + cb·y[b0 + bb, k] (Euclidean family: ca·(x − y)).
            const int nb_valid = (int)(p.m - b0 < LK_DT ? p.m - b0 : LK_DT);
            for (int64_t k0 = 0; k0 < p.d; k0 += LK_DT) {
                const int64_t k = k0 + tx;
                ys[ty][tx] = (b0 + ty < p.m && k < p.d) ? y[(b0 + ty) * p.d + k] : 0.0f;
                __syncthreads();
                if (a < p.n && k < p.d) {
                    const float xv = x[a * p.d + k];
                    float acc = 0.0f;
                    for (int bb = 0; bb < nb_valid; ++bb) {
                        if (p.metric == LK_METRIC_COSINE)
                            acc += ca[ty][bb] * xv + cb[ty][bb] * ys[bb][tx];
                        else
                            acc += ca[ty][bb] * (xv - ys[bb][tx]);
                    }
                    dx[a * p.d + k] += acc;
                }
                __syncthreads();
            }
        }
    }
}

// out[i] = Σ_k x[i, k]² in k order with rounded FMAs (the norms of the tiled kernels); one thread
// per row.
LK_KERNEL void row_sqnorm_f32(const float* __restrict__ x, int64_t rows, int64_t d, float* __restrict__ out) {
    LK_GRID_STRIDE(i, rows) { out[i] = lk::sqnorm_seq(x + i * d, d); }
}
