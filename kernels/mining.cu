// Fused triplet mining + triplet loss (forward and backward) and exact k-NN, without an N×M matrix.
//
// Anchors are the rows of q [n, d] (labels ql [n]), candidates the rows of r [m, d] (labels rl [m]),
// row-major. κ_ij is the pairwise distance of kernels/distance.cu computed the same way (one thread
// per pair, sequential rounded FMAs, lk::kappa_staged), so κ is bit-identical to pairwise_distance.
// The loss works on ℓ = square_kappa ? κ·κ : κ. Positive: rl[j] == ql[i] and not (same_set and
// j == i); negative: rl[j] != ql[i]. With same_set the self distance is taken as exactly 0. A
// triplet's value is v = (ℓ_ap − ℓ_an) + margin, its loss max(v, 0), active when v > 0. Every
// choice is an argmin/argmax over (ℓ, index) with ties to the lower index (lk::better), so the
// order of the parallel reductions does not matter. The rules of each miner are in
// src/ops/mining/mod.rs and their CPU twin in src/ops/mining/cpu.rs.
//
// Per-anchor outputs go to planes au [LK_ANCHOR_U32_LEN, n] and af [LK_ANCHOR_F32_LEN, n]; the
// statistics (triplet_stats_f32) to stats [LK_TRIPLET_STAT_LEN] u32 words.
//
// Work split and memory:
// - triplet_hard_fwd_f32 (BatchHard, ClosestFartherThanPositive): one block per anchor (grid-stride).
//   The anchor row is staged through shared memory in chunks of LK_ROW_CHUNK floats; each thread
//   streams a strided subset of the references, keeping its running candidates in registers; block
//   argbest reductions combine them. ClosestFartherThanPositive streams a second time once the
//   hardest positive is known. Memory: registers + LK_ROW_CHUNK floats of shared memory per block.
// - triplet_rows_f32 (FaceNet, TfAddons, BatchAll): one block per anchor of a chunk of `rows`
//   anchors starting at row0. The block writes the anchor's κ row to krows[t, :] (global workspace,
//   bounded: rows·m floats), then each warp takes positives in turn and its lanes scan the row's
//   negatives. In backward mode it also builds the integer gradient counts crows[t, :] (+1 for the
//   positive, −1 for the negative of each active triplet; integer atomics, so deterministic) and
//   adds dq_i = w Σ_j c_ij ∂ℓ_ij/∂q_i (thread per column k, j in order).
// - triplet_rows_bwd_cols_f32: one block per reference j adds dr_j = w Σ_i c_ij ∂ℓ_ij/∂r_j over
//   the chunk's anchors in order.
// - triplet_hard_bwd_{rows,cols}_f32: the same for the one-triplet miners from the stored choices:
//   a block per anchor adds w(∂ℓ_ip/∂q_i − ∂ℓ_in/∂q_i); a block per reference scans the n choices.
// - triplet_stats_f32: one block reduces the planes in a fixed order (f64 and u64).
// - knn_fwd_f32: one block per query; each thread keeps a sorted top-k of its strided references
//   (local memory, k ≤ LK_KNN_MAX_K), then k rounds of block argmin pop the block's best.
// No float atomics anywhere; every float sum has a fixed order for a given launch shape.
#include "distance.cuh"

namespace {

__device__ __forceinline__ float ell_of(const lk_triplet_params& p, float kappa) {
    return p.square_kappa ? __fmul_rn(kappa, kappa) : kappa;
}

__device__ __forceinline__ float delta_of(const lk_triplet_params& p, float kappa) {
    return p.sqrt_stats ? __fsqrt_rn(kappa) : kappa;
}

__device__ __forceinline__ float triplet_value(float lp, float ln, float margin) {
    return __fadd_rn(__fsub_rn(lp, ln), margin);
}

// dℓ/dκ.
__device__ __forceinline__ float dell(const lk_triplet_params& p, float kappa) {
    return p.square_kappa ? 2.0f * kappa : 1.0f;
}

__device__ __forceinline__ float warp_sum_f32(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return __shfl_sync(0xffffffffu, v, 0);  // lane 0's fixed-order sum, to every lane
}

__device__ __forceinline__ uint32_t warp_sum_u32(uint32_t v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ float stat_weight(const uint32_t* stats) {
    return __uint_as_float(stats[LK_TRIPLET_STAT_GRAD_WEIGHT]);
}

}  // namespace

// BatchHard and ClosestFartherThanPositive forward.
LK_KERNEL void triplet_hard_fwd_f32(lk_triplet_params p, const float* __restrict__ q,
                                    const uint32_t* __restrict__ ql, const float* __restrict__ r,
                                    const uint32_t* __restrict__ rl, uint32_t* __restrict__ au,
                                    float* __restrict__ af) {
    __shared__ float xs[LK_ROW_CHUNK];
    const bool cftp = p.miner == LK_MINER_SEMIHARD_CFTP;
    const bool compat = p.tfa_compat && !cftp;
    for (int64_t i = blockIdx.x; i < p.n; i += gridDim.x) {
        const float* qi = q + i * p.d;
        const uint32_t li = ql[i];
        float bp_v = 0.0f, bp_k = 0.0f, bn_v = 0.0f, bn_k = 0.0f;
        float mn_v = 0.0f, mn_k = 0.0f, mx_v = 0.0f, mx_k = 0.0f;
        uint32_t bp_i = LK_NONE, bn_i = LK_NONE, mn_i = LK_NONE, mx_i = LK_NONE;
        float sdp = 0.0f, sdn = 0.0f;
        uint32_t np = 0, nn = 0, nc = 0;
        for (int64_t jb = 0; jb < p.m; jb += blockDim.x) {
            const int64_t j = jb + threadIdx.x;
            float kappa = lk::kappa_staged(p.metric, qi, r, j, p.m, p.d, xs);
            if (j < p.m) {
                const bool self = p.same_set && j == i;
                if (self) kappa = 0.0f;
                const float l = ell_of(p, kappa);
                const uint32_t ju = (uint32_t)j;
                lk::offer(false, mn_v, mn_i, mn_k, l, ju, kappa);
                lk::offer(true, mx_v, mx_i, mx_k, l, ju, kappa);
                if (!self) {
                    const float dl = delta_of(p, kappa);
                    if (dl < p.collapse_eps) ++nc;
                    if (rl[j] == li) {
                        ++np;
                        sdp += dl;
                        lk::offer(true, bp_v, bp_i, bp_k, l, ju, kappa);
                    } else {
                        ++nn;
                        sdn += dl;
                        lk::offer(false, bn_v, bn_i, bn_k, l, ju, kappa);
                    }
                }
            }
        }
        lk::block_argbest(true, bp_v, bp_i, bp_k);
        lk::block_argbest(false, bn_v, bn_i, bn_k);
        if (compat) {
            lk::block_argbest(false, mn_v, mn_i, mn_k);
            lk::block_argbest(true, mx_v, mx_i, mx_k);
        }
        sdp = lk::block_sum(sdp);
        sdn = lk::block_sum(sdn);
        np = lk::block_sum_int(np);
        nn = lk::block_sum_int(nn);
        nc = lk::block_sum_int(nc);
        if (cftp) {
            // The closest negative strictly farther than the hardest positive (second stream).
            const float lp = bp_v;
            bn_v = 0.0f;
            bn_k = 0.0f;
            bn_i = LK_NONE;
            if (bp_i != LK_NONE) {  // block-uniform: every thread holds the reduced bp_i
                for (int64_t jb = 0; jb < p.m; jb += blockDim.x) {
                    const int64_t j = jb + threadIdx.x;
                    const float kappa = lk::kappa_staged(p.metric, qi, r, j, p.m, p.d, xs);
                    if (j < p.m && rl[j] != li) {
                        const float l = ell_of(p, kappa);
                        if (l > lp) lk::offer(false, bn_v, bn_i, bn_k, l, (uint32_t)j, kappa);
                    }
                }
                lk::block_argbest(false, bn_v, bn_i, bn_k);
            }
        }
        if (compat) {
            if (bp_i == LK_NONE) {
                bp_i = mn_i;
                bp_v = mn_v;
                bp_k = mn_k;
            }
            if (bn_i == LK_NONE) {
                bn_i = mx_i;
                bn_v = mx_v;
                bn_k = mx_k;
            }
        }
        if (threadIdx.x == 0) {
            const bool valid = bp_i != LK_NONE && bn_i != LK_NONE;
            const float v = valid ? triplet_value(bp_v, bn_v, p.margin) : 0.0f;
            au[LK_ANCHOR_POS_IDX * p.n + i] = valid ? bp_i : LK_NONE;
            au[LK_ANCHOR_NEG_IDX * p.n + i] = valid ? bn_i : LK_NONE;
            au[LK_ANCHOR_TRIPLETS * p.n + i] = valid ? 1u : 0u;
            au[LK_ANCHOR_ACTIVE * p.n + i] = (valid && v > 0.0f) ? 1u : 0u;
            au[LK_ANCHOR_N_POS * p.n + i] = np;
            au[LK_ANCHOR_N_NEG * p.n + i] = nn;
            au[LK_ANCHOR_N_COLLAPSE * p.n + i] = nc;
            af[LK_ANCHOR_LOSS * p.n + i] = valid ? lk::relu_keep_nan(v) : 0.0f;
            af[LK_ANCHOR_KAPPA_POS * p.n + i] = valid ? bp_k : 0.0f;
            af[LK_ANCHOR_KAPPA_NEG * p.n + i] = valid ? bn_k : 0.0f;
            af[LK_ANCHOR_SUM_D_POS * p.n + i] = sdp;
            af[LK_ANCHOR_SUM_D_NEG * p.n + i] = sdn;
        }
    }
}

// FaceNet, TfAddons and BatchAll, forward (backward = 0: per-anchor planes) or backward
// (backward = 1: count rows and dq). Anchors [row0, row0 + rows); krows, crows: [rows, m].
LK_KERNEL void triplet_rows_f32(lk_triplet_params p, int32_t backward, const float* __restrict__ q,
                                const uint32_t* __restrict__ ql, const float* __restrict__ r,
                                const uint32_t* __restrict__ rl, const float* __restrict__ norms_q,
                                const float* __restrict__ norms_r, const uint32_t* __restrict__ stats,
                                uint32_t* __restrict__ au, float* __restrict__ af, float* __restrict__ krows,
                                int32_t* __restrict__ crows, float* __restrict__ dq) {
    __shared__ float xs[LK_ROW_CHUNK];
    __shared__ float warp_loss[32];
    __shared__ uint32_t warp_trip[32], warp_act[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    const bool tfa = p.miner == LK_MINER_SEMIHARD_TFA;
    const bool batch_all = p.miner == LK_MINER_BATCH_ALL;
    for (int64_t t = blockIdx.x; t < p.rows; t += gridDim.x) {
        const int64_t i = p.row0 + t;
        const float* qi = q + i * p.d;
        const uint32_t li = ql[i];
        float* krow = krows + t * p.m;
        int32_t* crow = crows + t * p.m;
        // 1. κ row, pair statistics, the largest negative and the row minimum (TFA fallbacks).
        float nx_v = 0.0f, nx_k = 0.0f, mn_v = 0.0f, mn_k = 0.0f;
        uint32_t nx_i = LK_NONE, mn_i = LK_NONE;
        float sdp = 0.0f, sdn = 0.0f;
        uint32_t np = 0, nn = 0, nc = 0;
        for (int64_t jb = 0; jb < p.m; jb += blockDim.x) {
            const int64_t j = jb + threadIdx.x;
            float kappa = lk::kappa_staged(p.metric, qi, r, j, p.m, p.d, xs);
            if (j < p.m) {
                const bool self = p.same_set && j == i;
                if (self) kappa = 0.0f;
                krow[j] = kappa;
                if (backward) crow[j] = 0;
                const float l = ell_of(p, kappa);
                lk::offer(false, mn_v, mn_i, mn_k, l, (uint32_t)j, kappa);
                if (!self) {
                    const float dl = delta_of(p, kappa);
                    if (dl < p.collapse_eps) ++nc;
                    if (rl[j] == li) {
                        ++np;
                        sdp += dl;
                    } else {
                        ++nn;
                        sdn += dl;
                        lk::offer(true, nx_v, nx_i, nx_k, l, (uint32_t)j, kappa);
                    }
                }
            }
        }
        lk::block_argbest(true, nx_v, nx_i, nx_k);
        lk::block_argbest(false, mn_v, mn_i, mn_k);
        sdp = lk::block_sum(sdp);
        sdn = lk::block_sum(sdn);
        np = lk::block_sum_int(np);
        nn = lk::block_sum_int(nn);
        nc = lk::block_sum_int(nc);
        __syncthreads();  // krow / crow complete and visible to the whole block

        // 2. Warps over the positives (warp-uniform loop), lanes over the negatives.
        float wl = 0.0f;
        uint32_t wt = 0, wa = 0;
        for (int64_t pj = warp; pj < p.m; pj += nwarps) {
            if ((p.same_set && pj == i) || rl[pj] != li) continue;
            const float lp = ell_of(p, krow[pj]);
            if (batch_all) {
                float s = 0.0f;
                uint32_t a = 0;
                for (int64_t nj = lane; nj < p.m; nj += 32) {
                    if (rl[nj] == li) continue;
                    const float v = triplet_value(lp, ell_of(p, krow[nj]), p.margin);
                    if (v > 0.0f) {
                        s += v;
                        ++a;
                    }
                }
                s = warp_sum_f32(s);
                a = warp_sum_u32(a);
                wl += s;
                wa += a;
                wt += nn;
                // Only this warp writes the positive's count; negatives are written in step 2b.
                if (backward && lane == 0) crow[pj] = (int32_t)a;
            } else {
                const float hi = __fadd_rn(lp, p.margin);
                float bv = 0.0f, bk = 0.0f;
                uint32_t bi = LK_NONE;
                for (int64_t nj = lane; nj < p.m; nj += 32) {
                    if (rl[nj] == li) continue;
                    const float ln = ell_of(p, krow[nj]);
                    if (ln > lp && (tfa || ln < hi)) lk::offer(false, bv, bi, bk, ln, (uint32_t)nj, 0.0f);
                }
                lk::warp_argbest(false, bv, bi, bk);
                if (bi == LK_NONE && tfa) {
                    if (nx_i != LK_NONE) {  // the anchor's largest negative
                        bi = nx_i;
                        bv = nx_v;
                    } else if (p.tfa_compat) {  // TFA's masked maximum over no negative: the row minimum
                        bi = mn_i;
                        bv = mn_v;
                    }
                }
                if (bi != LK_NONE) {
                    const float v = triplet_value(lp, bv, p.margin);
                    wl += lk::relu_keep_nan(v);
                    ++wt;
                    if (v > 0.0f) {
                        ++wa;
                        if (backward && lane == 0) {
                            atomicAdd(&crow[pj], 1);
                            if (!(p.same_set && (int64_t)bi == i)) atomicAdd(&crow[bi], -1);
                        }
                    }
                }
            }
        }
        if (backward && batch_all) {
            // 2b. BatchAll: each negative's count, −(number of active positives), warps over negatives.
            for (int64_t nj = warp; nj < p.m; nj += nwarps) {
                if (rl[nj] == li) continue;
                const float ln = ell_of(p, krow[nj]);
                uint32_t a = 0;
                for (int64_t pj = lane; pj < p.m; pj += 32) {
                    if ((p.same_set && pj == i) || rl[pj] != li) continue;
                    if (triplet_value(ell_of(p, krow[pj]), ln, p.margin) > 0.0f) ++a;
                }
                a = warp_sum_u32(a);
                if (lane == 0) crow[nj] = -(int32_t)a;
            }
        }
        if (lane == 0) {
            warp_loss[warp] = wl;
            warp_trip[warp] = wt;
            warp_act[warp] = wa;
        }
        __syncthreads();  // warp partials and the count row complete
        if (!backward && threadIdx.x == 0) {
            float loss = 0.0f;
            uint32_t trip = 0, act = 0;
            for (int w = 0; w < nwarps; ++w) {
                loss += warp_loss[w];
                trip += warp_trip[w];
                act += warp_act[w];
            }
            au[LK_ANCHOR_POS_IDX * p.n + i] = LK_NONE;
            au[LK_ANCHOR_NEG_IDX * p.n + i] = LK_NONE;
            au[LK_ANCHOR_TRIPLETS * p.n + i] = trip;
            au[LK_ANCHOR_ACTIVE * p.n + i] = act;
            au[LK_ANCHOR_N_POS * p.n + i] = np;
            au[LK_ANCHOR_N_NEG * p.n + i] = nn;
            au[LK_ANCHOR_N_COLLAPSE * p.n + i] = nc;
            af[LK_ANCHOR_LOSS * p.n + i] = loss;
            af[LK_ANCHOR_KAPPA_POS * p.n + i] = 0.0f;
            af[LK_ANCHOR_KAPPA_NEG * p.n + i] = 0.0f;
            af[LK_ANCHOR_SUM_D_POS * p.n + i] = sdp;
            af[LK_ANCHOR_SUM_D_NEG * p.n + i] = sdn;
        }
        if (backward) {
            // 3. dq_i += w Σ_j c_ij ∂ℓ_ij/∂q_i, thread per column, references in order.
            const float w = p.scale * stat_weight(stats);
            const float nqi = norms_q[i];
            for (int64_t k = threadIdx.x; k < p.d; k += blockDim.x) {
                const float xk = qi[k];
                float acc = 0.0f;
                for (int64_t j = 0; j < p.m; ++j) {
                    const int32_t c = crow[j];
                    if (c == 0) continue;
                    const float kap = krow[j];
                    const lk::DistGrad g = lk::kappa_grad(p.metric, kap, nqi, norms_r[j]);
                    acc += lk::kappa_grad_elem(p.metric, g, (float)c * dell(p, kap), xk, r[j * p.d + k]);
                }
                dq[i * p.d + k] += w * acc;
            }
        }
        __syncthreads();  // the next anchor reuses the shared partials
    }
}

// dr_j += w Σ_{t < rows} c_{row0+t, j} ∂ℓ/∂r_j for the chunk's count rows.
LK_KERNEL void triplet_rows_bwd_cols_f32(lk_triplet_params p, const float* __restrict__ q,
                                         const float* __restrict__ r, const float* __restrict__ norms_q,
                                         const float* __restrict__ norms_r, const uint32_t* __restrict__ stats,
                                         const float* __restrict__ krows, const int32_t* __restrict__ crows,
                                         float* __restrict__ dr) {
    const float w = p.scale * stat_weight(stats);
    for (int64_t j = blockIdx.x; j < p.m; j += gridDim.x) {
        const float nrj = norms_r[j];
        for (int64_t k = threadIdx.x; k < p.d; k += blockDim.x) {
            const float xk = r[j * p.d + k];
            float acc = 0.0f;
            for (int64_t t = 0; t < p.rows; ++t) {
                const int32_t c = crows[t * p.m + j];
                if (c == 0) continue;
                const int64_t i = p.row0 + t;
                const float kap = krows[t * p.m + j];
                const lk::DistGrad g = lk::kappa_grad(p.metric, kap, nrj, norms_q[i]);
                acc += lk::kappa_grad_elem(p.metric, g, (float)c * dell(p, kap), xk, q[i * p.d + k]);
            }
            dr[j * p.d + k] += w * acc;
        }
    }
}

// One-triplet miners, dq_i += w (∂ℓ_ip/∂q_i − ∂ℓ_in/∂q_i) for active anchors (self pairs skipped).
LK_KERNEL void triplet_hard_bwd_rows_f32(lk_triplet_params p, const float* __restrict__ q,
                                         const float* __restrict__ r, const float* __restrict__ norms_q,
                                         const float* __restrict__ norms_r, const uint32_t* __restrict__ stats,
                                         const uint32_t* __restrict__ au, const float* __restrict__ af,
                                         float* __restrict__ dq) {
    const float w = p.scale * stat_weight(stats);
    for (int64_t i = blockIdx.x; i < p.n; i += gridDim.x) {
        if (au[LK_ANCHOR_ACTIVE * p.n + i] == 0) continue;
        const uint32_t pos = au[LK_ANCHOR_POS_IDX * p.n + i], neg = au[LK_ANCHOR_NEG_IDX * p.n + i];
        const float kp = af[LK_ANCHOR_KAPPA_POS * p.n + i], kn = af[LK_ANCHOR_KAPPA_NEG * p.n + i];
        const bool use_p = !(p.same_set && (int64_t)pos == i), use_n = !(p.same_set && (int64_t)neg == i);
        const float nqi = norms_q[i];
        const lk::DistGrad gp = lk::kappa_grad(p.metric, kp, nqi, use_p ? norms_r[pos] : 0.0f);
        const lk::DistGrad gn = lk::kappa_grad(p.metric, kn, nqi, use_n ? norms_r[neg] : 0.0f);
        for (int64_t k = threadIdx.x; k < p.d; k += blockDim.x) {
            const float xk = q[i * p.d + k];
            float acc = 0.0f;
            if (use_p) acc += lk::kappa_grad_elem(p.metric, gp, dell(p, kp), xk, r[(int64_t)pos * p.d + k]);
            if (use_n) acc -= lk::kappa_grad_elem(p.metric, gn, dell(p, kn), xk, r[(int64_t)neg * p.d + k]);
            dq[i * p.d + k] += w * acc;
        }
    }
}

// One-triplet miners, dr_j += w Σ_i ([pos_i = j] ∂ℓ_ij/∂r_j − [neg_i = j] ∂ℓ_ij/∂r_j), anchors in order.
LK_KERNEL void triplet_hard_bwd_cols_f32(lk_triplet_params p, const float* __restrict__ q,
                                         const float* __restrict__ r, const float* __restrict__ norms_q,
                                         const float* __restrict__ norms_r, const uint32_t* __restrict__ stats,
                                         const uint32_t* __restrict__ au, const float* __restrict__ af,
                                         float* __restrict__ dr) {
    const float w = p.scale * stat_weight(stats);
    for (int64_t j = blockIdx.x; j < p.m; j += gridDim.x) {
        const float nrj = norms_r[j];
        for (int64_t k = threadIdx.x; k < p.d; k += blockDim.x) {
            const float xk = r[j * p.d + k];
            float acc = 0.0f;
            for (int64_t i = 0; i < p.n; ++i) {
                if (au[LK_ANCHOR_ACTIVE * p.n + i] == 0 || (p.same_set && i == j)) continue;
                if ((int64_t)au[LK_ANCHOR_POS_IDX * p.n + i] == j) {
                    const float kp = af[LK_ANCHOR_KAPPA_POS * p.n + i];
                    const lk::DistGrad g = lk::kappa_grad(p.metric, kp, nrj, norms_q[i]);
                    acc += lk::kappa_grad_elem(p.metric, g, dell(p, kp), xk, q[i * p.d + k]);
                }
                if ((int64_t)au[LK_ANCHOR_NEG_IDX * p.n + i] == j) {
                    const float kn = af[LK_ANCHOR_KAPPA_NEG * p.n + i];
                    const lk::DistGrad g = lk::kappa_grad(p.metric, kn, nrj, norms_q[i]);
                    acc -= lk::kappa_grad_elem(p.metric, g, dell(p, kn), xk, q[i * p.d + k]);
                }
            }
            dr[j * p.d + k] += w * acc;
        }
    }
}

// The batch statistics from the per-anchor planes: one block, f64 / u64 sums in a fixed order.
LK_KERNEL void triplet_stats_f32(lk_triplet_params p, const uint32_t* __restrict__ au,
                                 const float* __restrict__ af, uint32_t* __restrict__ stats) {
    double loss = 0.0, sdp = 0.0, sdn = 0.0;
    unsigned long long trip = 0, act = 0, np = 0, nn = 0, nc = 0, valid = 0;
    for (int64_t i = threadIdx.x; i < p.n; i += blockDim.x) {
        const uint32_t t = au[LK_ANCHOR_TRIPLETS * p.n + i];
        trip += t;
        valid += t > 0 ? 1 : 0;
        act += au[LK_ANCHOR_ACTIVE * p.n + i];
        np += au[LK_ANCHOR_N_POS * p.n + i];
        nn += au[LK_ANCHOR_N_NEG * p.n + i];
        nc += au[LK_ANCHOR_N_COLLAPSE * p.n + i];
        loss += (double)af[LK_ANCHOR_LOSS * p.n + i];
        sdp += (double)af[LK_ANCHOR_SUM_D_POS * p.n + i];
        sdn += (double)af[LK_ANCHOR_SUM_D_NEG * p.n + i];
    }
    loss = lk::block_sum_f64(loss);
    sdp = lk::block_sum_f64(sdp);
    sdn = lk::block_sum_f64(sdn);
    trip = lk::block_sum_int(trip);
    act = lk::block_sum_int(act);
    np = lk::block_sum_int(np);
    nn = lk::block_sum_int(nn);
    nc = lk::block_sum_int(nc);
    valid = lk::block_sum_int(valid);
    if (threadIdx.x != 0) return;
    const unsigned long long div = p.miner == LK_MINER_BATCH_ALL ? act : trip;
    const float l = div ? (float)(loss / (double)div) : 0.0f;
    const float wgt = div ? (float)(1.0 / (double)div) : 0.0f;
    const float af_ = trip ? (float)((double)act / (double)trip) : 0.0f;
    const float mdp = np ? (float)(sdp / (double)np) : 0.0f;
    const float mdn = nn ? (float)(sdn / (double)nn) : 0.0f;
    const float col = (np + nn) ? (float)((double)nc / (double)(np + nn)) : 0.0f;
    stats[LK_TRIPLET_STAT_LOSS] = __float_as_uint(l);
    stats[LK_TRIPLET_STAT_GRAD_WEIGHT] = __float_as_uint(wgt);
    stats[LK_TRIPLET_STAT_ACTIVE_FRACTION] = __float_as_uint(af_);
    stats[LK_TRIPLET_STAT_MEAN_D_AP] = __float_as_uint(mdp);
    stats[LK_TRIPLET_STAT_MEAN_D_AN] = __float_as_uint(mdn);
    stats[LK_TRIPLET_STAT_COLLAPSE_FRACTION] = __float_as_uint(col);
    stats[LK_TRIPLET_STAT_VALID_ANCHORS] = (uint32_t)valid;
    stats[LK_TRIPLET_STAT_SKIPPED_ANCHORS] = (uint32_t)(p.n - (int64_t)valid);
    stats[LK_TRIPLET_STAT_TRIPLETS_LO] = (uint32_t)trip;
    stats[LK_TRIPLET_STAT_TRIPLETS_HI] = (uint32_t)(trip >> 32);
    stats[LK_TRIPLET_STAT_ACTIVE_LO] = (uint32_t)act;
    stats[LK_TRIPLET_STAT_ACTIVE_HI] = (uint32_t)(act >> 32);
}

// Exact k nearest references of each query: out_idx, out_dist [n, k], ascending κ, ties to the
// lower index (NaN last), j == i excluded with same_set. The caller guarantees 1 ≤ k ≤ LK_KNN_MAX_K
// and at least k valid references. Each thread keeps the sorted top-k of its strided references
// (insertion, local memory); then k rounds of a block argmin over the threads' list heads pop the
// block's next nearest (the owner advances its head: each reference belongs to one thread).
LK_KERNEL void knn_fwd_f32(lk_knn_params p, const float* __restrict__ q, const float* __restrict__ r,
                           uint32_t* __restrict__ out_idx, float* __restrict__ out_dist) {
    __shared__ float xs[LK_ROW_CHUNK];
    float lv[LK_KNN_MAX_K];
    uint32_t li[LK_KNN_MAX_K];
    const int k = (int)p.k;
    for (int64_t i = blockIdx.x; i < p.n; i += gridDim.x) {
        int cnt = 0;
        for (int64_t jb = 0; jb < p.m; jb += blockDim.x) {
            const int64_t j = jb + threadIdx.x;
            const float kappa = lk::kappa_staged(p.metric, q + i * p.d, r, j, p.m, p.d, xs);
            if (j < p.m && !(p.same_set && j == i)) {
                const uint32_t ju = (uint32_t)j;
                if (cnt < k || lk::better(false, kappa, ju, lv[cnt - 1], li[cnt - 1])) {
                    int pos = cnt < k ? cnt : k - 1;
                    while (pos > 0 && lk::better(false, kappa, ju, lv[pos - 1], li[pos - 1])) {
                        lv[pos] = lv[pos - 1];
                        li[pos] = li[pos - 1];
                        --pos;
                    }
                    lv[pos] = kappa;
                    li[pos] = ju;
                    if (cnt < k) ++cnt;
                }
            }
        }
        int head = 0;
        for (int t = 0; t < k; ++t) {
            float v = head < cnt ? lv[head] : 0.0f, pl = 0.0f;
            uint32_t idx = head < cnt ? li[head] : LK_NONE;
            lk::block_argbest(false, v, idx, pl);
            if (head < cnt && li[head] == idx) ++head;
            if (threadIdx.x == 0) {
                out_idx[i * p.k + t] = idx;
                out_dist[i * p.k + t] = v;
            }
        }
    }
}
