// Fused triplet mining + triplet loss (forward and backward) and exact k-NN, without an N×M matrix.
//
// Anchors are the rows of q [n, d] (labels ql [n]), candidates the rows of r [m, d] (labels rl [m]),
// row-major. κ_ij is the pairwise distance of kernels/distance.cu computed the same way: the dot
// product is one chain of rounded FMAs in increasing k per pair, the squared norms the same chains
// (row_sqnorm_f32, computed once per row), κ = lk::kappa_from_dot; so κ is bit-identical to
// pairwise_distance (see kappa_tile). The loss works on ℓ = square_kappa ? κ·κ : κ. Positive:
// rl[j] == ql[i], negative: rl[j] != ql[i], neither when same_set and j == i (whatever the labels
// say). With same_set the self distance is taken as exactly 0. A triplet's value is v = (ℓ_ap − ℓ_an) + margin, its loss
// max(v, 0), active when v > 0. Every choice is an argmin/argmax over (ℓ, index) with ties to the
// lower index (lk::better), so the order of the parallel reductions does not matter. The rules of
// each miner are in src/ops/mining/mod.rs and their CPU twin in src/ops/mining/cpu.rs.
//
// Per-anchor outputs go to planes au [LK_ANCHOR_U32_LEN, n] and af [LK_ANCHOR_F32_LEN, n]; the
// statistics (triplet_stats_f32) to stats [LK_TRIPLET_STAT_LEN] u32 words.
//
// Work split and memory (T = LK_MINE_TILE = 64, blocks of 256 threads for the tiled kernels):
// - kappa_tile (device): a T × T tile of κ like a register-tiled SGEMM: 16 × 16 threads of 4 × 4
//   pairs, k-slices of 16 of both operand tiles staged (coalesced, software-pipelined) in shared
//   memory; each reference row is read once per 64 anchors. O(T²·d) FMAs per tile.
// - triplet_hard_partial{,_compat,_pass2}_f32 (BatchHard, ClosestFartherThanPositive): block =
//   (anchor tile, reference split); the tile's κ goes through shared memory to a layout of 4
//   threads per anchor that keep running candidates and pair statistics in registers (f64 sums);
//   one partial per (split, anchor) in part [LK_HARD_PART_LEN, splits, n]. splits (chosen by the
//   launcher) fills the GPU when n alone gives few tiles. triplet_hard_combine_f32 merges the
//   splits in order (thread per anchor). ClosestFartherThanPositive runs partial + combine twice
//   (the second pass needs the hardest positive). Work O(n·m·d), memory O(splits·n).
// - triplet_kappa_rows_f32 + triplet_rows_f32 (FaceNet, TfAddons, BatchAll): per chunk of `rows`
//   anchors starting at row0, the tiled kernel writes the chunk's κ rows to krows [rows, m] (global
//   workspace, bounded: rows·m floats); then one block per anchor reads its row, each warp takes
//   positives in turn and its lanes scan the row's negatives (O(P·N) per anchor: semi-hard and
//   batch-all are exact over every (positive, negative) pair). The negatives are first compacted
//   into a shared-memory list of (ℓ, index) in reference order (ballot + prefix counts:
//   deterministic), and in BatchAll's backward pass the positives, so the scans read P·N list
//   entries rather than P·M (and, for the negatives' counts, N·M) row entries and labels; a row with
//   more than list_cap (4096) of them scans the row as before. In backward mode it also builds
//   the integer gradient counts crows[t, :] (+1 for the positive, −1 for the negative of each
//   active triplet; integer atomics, so deterministic) and adds dq_i = w Σ_j c_ij ∂ℓ_ij/∂q_i
//   (thread per column k, j in order). Loss and distance sums in f64.
// - triplet_rows_bwd_cols_f32: one block per reference j adds dr_j = w Σ_i c_ij ∂ℓ_ij/∂r_j over
//   the chunk's anchors in order.
// - v2 (TripletKernel::V2 in src/ops/mining/mod.rs; the numbered versions stay side by side):
//   triplet_hard_partial{,_compat,_pass2}_v2_f32 (128 × 64 κ tiles, 8 × 4 pairs per thread, 2
//   epilogue threads per anchor, same partials) and triplet_rows_bwd_{q,r}_v2_f32 (the rows'
//   gradient: blocks of 8 output rows × a thread per column, terms staged 32 at a time; after
//   triplet_rows_f32 with backward = 2). Details where they are defined.
// - triplet_hard_bwd_rows_f32: block per anchor adds w(∂ℓ_ip/∂q_i − ∂ℓ_in/∂q_i). O(n·d).
// - triplet_bucket_{count,scan,fill}_u32 + triplet_hard_bwd_cols_f32: the anchors that chose each
//   reference, as a CSR (integer atomics), then a block per reference sorts its bucket and sums
//   ±∂ℓ/∂r_j in (anchor, positive-before-negative) order. O(n·d + m) work, O(n + m) memory.
// - triplet_stats_f32: one block reduces the planes in a fixed order (f64 and u64).
// - knn_fwd_f32: one block per query; each thread keeps a sorted top-k of its strided references
//   (local memory, k ≤ LK_KNN_MAX_K), then k rounds of block argmin pop the block's best.
// No float atomics anywhere; every float sum has a fixed order for a given launch shape (the
// launch shapes depend only on n, m and d).
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

__device__ __forceinline__ double warp_sum_f64(double v) {
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

// ---- The tiled κ core (shared by triplet_kappa_rows_f32 and triplet_hard_partial_f32) ----
//
// A block of LK_MINE_TILE_THREADS = 256 threads computes the LK_MINE_TILE × LK_MINE_TILE (64 × 64)
// tile of κ between anchors [a0, a0 + 64) and references [b0, b0 + 64). Thread (ty, tx) =
// (tid / 16, tid % 16) owns the 4 × 4 pairs (a0 + 4·ty + ii, b0 + 4·tx + jj). The tile walks k in
// steps of MBK = 16: the 64 × 16 slices of q and r are staged in shared memory, k-major (As[k][row]),
// zero-padded past the ends; each pair's dot product is one accumulator receiving rounded FMAs in
// increasing k, the chain of kernels/distance.cuh (dist_acc). The squared norms come precomputed
// (row_sqnorm_f32: the same k-ordered FMA chain), so κ = kappa_from_dot(dot, nq_i, nr_j) is the
// value pairwise_distance writes (its forward is this core) and kappa_staged computes. (The padding
// only ever adds fma(0, 0, dot), which can turn a −0 dot into +0; κ is the same for both.)
namespace {

constexpr int MT = LK_MINE_TILE;  // anchors (and references) per tile
constexpr int MBK = 16;           // k per staging step
constexpr int MTM = 4;            // anchors per thread
constexpr int MTN = 4;            // references per thread
constexpr int MPAD = MT + 4;      // row stride of the staged slices (16-byte aligned rows)
static_assert(MT == 16 * MTM && MT == 16 * MTN, "16 × 16 threads of 4 × 4 pairs");
static_assert(LK_MINE_TILE_THREADS == 256, "the tile core assumes 256 threads");
static_assert((MT * MBK) % LK_MINE_TILE_THREADS == 0, "each thread stages whole elements");

// κ of this thread's 4 × 4 pairs of the tile (a0, b0) into kap. Anchors at or past a_end and
// references at or past m read as zero rows (their κ is garbage: callers skip them). Every thread
// of the block must call it (it synchronizes); blockDim.x must be LK_MINE_TILE_THREADS.
__device__ __forceinline__ void kappa_tile(int metric, const float* __restrict__ q, int64_t a0, int64_t a_end,
                                           const float* __restrict__ r, int64_t b0, int64_t m, int64_t d,
                                           const float (&na)[MTM], const float (&nb)[MTN], float (&kap)[MTM][MTN]) {
    __shared__ __align__(16) float As[MBK][MPAD];
    __shared__ __align__(16) float Bs[MBK][MPAD];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    float acc[MTM][MTN];
#pragma unroll
    for (int ii = 0; ii < MTM; ++ii)
#pragma unroll
        for (int jj = 0; jj < MTN; ++jj) acc[ii][jj] = 0.0f;
    // Software pipelining: the next k-slice is read into registers while the current one, already
    // in shared memory, is multiplied. Thread tid stages elements e = tid + 256·s (s < 4): row e / 16,
    // column e % 16, so 16 consecutive threads read 16 consecutive floats of one row.
    constexpr int SPT = (MT * MBK) / LK_MINE_TILE_THREADS;
    const int kk_ld = tid % MBK, row_ld = tid / MBK;  // row of s = 0; s adds 16 rows
    const float* qa[SPT];
    const float* rb[SPT];
    bool oka[SPT], okb[SPT];
#pragma unroll
    for (int s = 0; s < SPT; ++s) {
        const int64_t ia = a0 + row_ld + 16 * s, jb = b0 + row_ld + 16 * s;
        oka[s] = ia < a_end;
        okb[s] = jb < m;
        qa[s] = q + (oka[s] ? ia : 0) * d + kk_ld;
        rb[s] = r + (okb[s] ? jb : 0) * d + kk_ld;
    }
    float ra[SPT], rbv[SPT];
    auto fetch = [&](int64_t k0) {
        const bool okk = k0 + kk_ld < d;
#pragma unroll
        for (int s = 0; s < SPT; ++s) {
            ra[s] = (oka[s] && okk) ? qa[s][k0] : 0.0f;
            rbv[s] = (okb[s] && okk) ? rb[s][k0] : 0.0f;
        }
    };
    fetch(0);
    for (int64_t k0 = 0; k0 < d; k0 += MBK) {
        __syncthreads();  // the previous step's (or the previous tile's) reads of As / Bs are done
#pragma unroll
        for (int s = 0; s < SPT; ++s) {
            As[kk_ld][row_ld + 16 * s] = ra[s];
            Bs[kk_ld][row_ld + 16 * s] = rbv[s];
        }
        __syncthreads();
        if (k0 + MBK < d) fetch(k0 + MBK);
#pragma unroll 4
        for (int kk = 0; kk < MBK; ++kk) {
            const float4 av = *reinterpret_cast<const float4*>(&As[kk][ty * MTM]);
            const float4 bv = *reinterpret_cast<const float4*>(&Bs[kk][tx * MTN]);
            const float a[MTM] = {av.x, av.y, av.z, av.w};
            const float b[MTN] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
            for (int ii = 0; ii < MTM; ++ii)
#pragma unroll
                for (int jj = 0; jj < MTN; ++jj) acc[ii][jj] = __fmaf_rn(a[ii], b[jj], acc[ii][jj]);
        }
    }
#pragma unroll
    for (int ii = 0; ii < MTM; ++ii)
#pragma unroll
        for (int jj = 0; jj < MTN; ++jj) kap[ii][jj] = lk::kappa_from_dot(metric, acc[ii][jj], na[ii], nb[jj]);
}

// The best candidate among the LANES lanes LANES·a … LANES·a + LANES − 1 of a warp (xor partners
// LANES / 2 … 1 stay inside the group); every lane of the group gets it. All 32 lanes must call it.
template <int LANES>
__device__ __forceinline__ void group_argbest(bool want_max, float& v, uint32_t& i, float& pl) {
    for (int off = LANES / 2; off > 0; off >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, off);
        const uint32_t oi = __shfl_xor_sync(0xffffffffu, i, off);
        const float opl = __shfl_xor_sync(0xffffffffu, pl, off);
        lk::offer(want_max, v, i, pl, ov, oi, opl);
    }
}

template <int LANES, typename T>
__device__ __forceinline__ T group_sum(T v) {
    for (int off = LANES / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;  // the xor butterfly gives every lane of the group the same bits
}

__device__ __forceinline__ int64_t part_at(int plane, int64_t s, int64_t splits, int64_t n, int64_t i) {
    return ((int64_t)plane * splits + s) * n + i;
}

// One anchor's merged state at the end of a split of the streaming pass (v1 and v2).
struct HardPartial {
    uint32_t bn_i, bp_i, mn_i, mx_i, np, nn, nc;
    float bn_k, bp_k, mn_k, mx_k;
    double sdp, sdn;
};

// Writes anchor i's partial of split s (pass 2 keeps only the negative).
template <bool FIRST>
__device__ __forceinline__ void put_hard_partial(uint32_t* __restrict__ part, int64_t s, int64_t splits, int64_t n,
                                                 int64_t i, const HardPartial& h) {
    auto put = [&](int plane, uint32_t v) { part[part_at(plane, s, splits, n, i)] = v; };
    put(LK_HARD_PART_BN_I, h.bn_i);
    put(LK_HARD_PART_BN_K, __float_as_uint(h.bn_k));
    if constexpr (FIRST) {
        put(LK_HARD_PART_BP_I, h.bp_i);
        put(LK_HARD_PART_BP_K, __float_as_uint(h.bp_k));
        put(LK_HARD_PART_MN_I, h.mn_i);
        put(LK_HARD_PART_MN_K, __float_as_uint(h.mn_k));
        put(LK_HARD_PART_MX_I, h.mx_i);
        put(LK_HARD_PART_MX_K, __float_as_uint(h.mx_k));
        put(LK_HARD_PART_N_POS, h.np);
        put(LK_HARD_PART_N_NEG, h.nn);
        put(LK_HARD_PART_N_COLLAPSE, h.nc);
        put(LK_HARD_PART_SUM_D_POS_LO, (uint32_t)__double2loint(h.sdp));
        put(LK_HARD_PART_SUM_D_POS_HI, (uint32_t)__double2hiint(h.sdp));
        put(LK_HARD_PART_SUM_D_NEG_LO, (uint32_t)__double2loint(h.sdn));
        put(LK_HARD_PART_SUM_D_NEG_HI, (uint32_t)__double2hiint(h.sdn));
    }
}

}  // namespace

// κ rows of the anchors [row0, row0 + rows) into krows [rows, m] (the anchor itself: 0 with
// same_set), for triplet_rows_f32. Grid-stride over the (anchor tile, reference tile) pairs.
LK_KERNEL void __launch_bounds__(LK_MINE_TILE_THREADS, 2) triplet_kappa_rows_f32(
    lk_triplet_params p, const float* __restrict__ q, const float* __restrict__ r, const float* __restrict__ norms_q,
    const float* __restrict__ norms_r, float* __restrict__ krows) {
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int64_t a_end = p.row0 + p.rows;
    const int64_t anchor_tiles = (p.rows + MT - 1) / MT, ref_tiles = (p.m + MT - 1) / MT;
    for (int64_t w = blockIdx.x; w < anchor_tiles * ref_tiles; w += gridDim.x) {  // block-uniform
        const int64_t a0 = p.row0 + (w / ref_tiles) * MT, b0 = (w % ref_tiles) * MT;
        float na[MTM], nb[MTN], kap[MTM][MTN];
#pragma unroll
        for (int ii = 0; ii < MTM; ++ii) {
            const int64_t i = a0 + ty * MTM + ii;
            na[ii] = i < a_end ? norms_q[i] : 0.0f;
        }
#pragma unroll
        for (int jj = 0; jj < MTN; ++jj) {
            const int64_t j = b0 + tx * MTN + jj;
            nb[jj] = j < p.m ? norms_r[j] : 0.0f;
        }
        kappa_tile(p.metric, q, a0, a_end, r, b0, p.m, p.d, na, nb, kap);
#pragma unroll
        for (int ii = 0; ii < MTM; ++ii) {
            const int64_t i = a0 + ty * MTM + ii;
#pragma unroll
            for (int jj = 0; jj < MTN; ++jj) {
                const int64_t j = b0 + tx * MTN + jj;
                if (i < a_end && j < p.m) krows[(i - p.row0) * p.m + j] = (p.same_set && j == i) ? 0.0f : kap[ii][jj];
            }
        }
    }
}

namespace {

// BatchHard and ClosestFartherThanPositive, the streaming pass: block = (anchor tile, split) with
// grid-stride over the anchor_tiles · splits pairs; the split s covers the reference tiles
// [s·per, min((s + 1)·per, ref_tiles)), per = ⌈ref_tiles / splits⌉. Per reference tile, kappa_tile
// computes the 64 × 64 κ values, which go through shared memory (Ks) to the epilogue layout:
// thread tid keeps the running state of anchor a0 + tid / 4 over the tile columns c ≡ tid mod 4
// (c = tid % 4 + 4u, u < 16) in registers. At the end the 4 threads of an anchor combine their
// states (group_argbest / group_sum, fixed order) and the first writes the split's partial (planes
// LK_HARD_PART_*, [LEN, splits, n]).
// PASS 1: pair statistics, the hardest positive and negative, with COMPAT the row min / max of ℓ.
// PASS 2 (ClosestFartherThanPositive): the closest negative with ℓ > ℓ of the hardest positive
// (read from the planes written by triplet_hard_combine_f32 pass 1); only BN_I / BN_K are written.
template <int PASS, bool COMPAT>
__device__ __forceinline__ void hard_partial(const lk_triplet_params& p, int32_t splits, const float* __restrict__ q,
                                             const uint32_t* __restrict__ ql, const float* __restrict__ r,
                                             const uint32_t* __restrict__ rl, const float* __restrict__ norms_q,
                                             const float* __restrict__ norms_r, const uint32_t* __restrict__ au,
                                             const float* __restrict__ af, uint32_t* __restrict__ part) {
    __shared__ __align__(16) float Ks[MT][MPAD];  // κ of the tile: [anchor][reference]
    __shared__ uint32_t Ls[MT];                   // the tile's reference labels
    constexpr bool first = PASS == 1;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int ea = tid >> 2, sub = tid & 3;  // epilogue: anchor a0 + ea, columns sub + 4u
    const int64_t anchor_tiles = (p.n + MT - 1) / MT, ref_tiles = (p.m + MT - 1) / MT;
    const int64_t per = (ref_tiles + splits - 1) / splits;
    for (int64_t w = blockIdx.x; w < anchor_tiles * splits; w += gridDim.x) {  // block-uniform
        const int64_t a0 = (w / splits) * MT, s = w % splits;
        const int64_t t_begin = s * per, t_end = min(ref_tiles, t_begin + per);
        float na[MTM];  // the GEMM layout's anchors a0 + 4·ty + ii
#pragma unroll
        for (int ii = 0; ii < MTM; ++ii) {
            const int64_t i = a0 + ty * MTM + ii;
            na[ii] = i < p.n ? norms_q[i] : 0.0f;
        }
        const int64_t i = a0 + ea;  // the epilogue's anchor
        bool live = i < p.n;
        const uint32_t li = live ? ql[i] : 0u;
        float lp = 0.0f;
        if (!first && live) {
            live = au[LK_ANCHOR_POS_IDX * p.n + i] != LK_NONE;  // no positive: no negative to look for
            lp = ell_of(p, af[LK_ANCHOR_KAPPA_POS * p.n + i]);
        }
        float bp_v = 0.0f, bp_k = 0.0f, bn_v = 0.0f, bn_k = 0.0f, mn_v = 0.0f, mn_k = 0.0f, mx_v = 0.0f, mx_k = 0.0f;
        uint32_t bp_i = LK_NONE, bn_i = LK_NONE, mn_i = LK_NONE, mx_i = LK_NONE, np = 0, nn = 0, nc = 0;
        double sdp = 0.0, sdn = 0.0;
        for (int64_t bt = t_begin; bt < t_end; ++bt) {  // block-uniform
            const int64_t b0 = bt * MT;
            float nb[MTN], kap[MTM][MTN];
#pragma unroll
            for (int jj = 0; jj < MTN; ++jj) {
                const int64_t j = b0 + tx * MTN + jj;
                nb[jj] = j < p.m ? norms_r[j] : 0.0f;
            }
            kappa_tile(p.metric, q, a0, p.n, r, b0, p.m, p.d, na, nb, kap);
            // Ks / Ls were last read by the previous tile's epilogue, before kappa_tile's barriers.
#pragma unroll
            for (int ii = 0; ii < MTM; ++ii)
                *reinterpret_cast<float4*>(&Ks[ty * MTM + ii][tx * MTN]) =
                    make_float4(kap[ii][0], kap[ii][1], kap[ii][2], kap[ii][3]);
            if (tid < MT) Ls[tid] = b0 + tid < p.m ? rl[b0 + tid] : 0u;
            __syncthreads();
            if (live) {
                const int cols = (int)min((int64_t)MT, p.m - b0);
                for (int c = sub; c < cols; c += 4) {
                    const int64_t j = b0 + c;
                    const bool self = p.same_set && j == i;
                    const float kappa = self ? 0.0f : Ks[ea][c];
                    const float l = ell_of(p, kappa);
                    const uint32_t ju = (uint32_t)j;
                    const bool same_label = Ls[c] == li;
                    if constexpr (first) {
                        if constexpr (COMPAT) {
                            lk::offer(false, mn_v, mn_i, mn_k, l, ju, kappa);
                            lk::offer(true, mx_v, mx_i, mx_k, l, ju, kappa);
                        }
                        if (!self) {
                            const float dl = delta_of(p, kappa);
                            if (dl < p.collapse_eps) ++nc;
                            if (same_label) {
                                ++np;
                                sdp += (double)dl;
                                lk::offer(true, bp_v, bp_i, bp_k, l, ju, kappa);
                            } else {
                                ++nn;
                                sdn += (double)dl;
                                lk::offer(false, bn_v, bn_i, bn_k, l, ju, kappa);
                            }
                        }
                    } else if (!same_label && !self && l > lp) {
                        lk::offer(false, bn_v, bn_i, bn_k, l, ju, kappa);
                    }
                }
            }
        }
        // Combine the 4 threads of each anchor (all 32 lanes of every warp take part).
        group_argbest<4>(false, bn_v, bn_i, bn_k);
        if constexpr (first) {
            group_argbest<4>(true, bp_v, bp_i, bp_k);
            if constexpr (COMPAT) {
                group_argbest<4>(false, mn_v, mn_i, mn_k);
                group_argbest<4>(true, mx_v, mx_i, mx_k);
            }
            np = group_sum<4>(np);
            nn = group_sum<4>(nn);
            nc = group_sum<4>(nc);
            sdp = group_sum<4>(sdp);
            sdn = group_sum<4>(sdn);
        }
        if (sub == 0 && i < p.n)
            put_hard_partial<first>(part, s, splits, p.n, i,
                                    {bn_i, bp_i, mn_i, mx_i, np, nn, nc, bn_k, bp_k, mn_k, mx_k, sdp, sdn});
        __syncthreads();  // (not needed for Ks / Ls, whose rewrite follows kappa_tile's barriers; keeps work items apart)
    }
}

}  // namespace

// The three instantiations (pass 1 without / with the tfa_compat row extremes, pass 2): each keeps
// only the registers its state needs. Signature: (lk_triplet_params p, int32 splits, q, ql, r, rl,
// norms_q, norms_r, au, af, part).
LK_KERNEL void __launch_bounds__(LK_MINE_TILE_THREADS, 2) triplet_hard_partial_f32(
    lk_triplet_params p, int32_t splits, const float* __restrict__ q, const uint32_t* __restrict__ ql,
    const float* __restrict__ r, const uint32_t* __restrict__ rl, const float* __restrict__ norms_q,
    const float* __restrict__ norms_r, const uint32_t* __restrict__ au, const float* __restrict__ af,
    uint32_t* __restrict__ part) {
    hard_partial<1, false>(p, splits, q, ql, r, rl, norms_q, norms_r, au, af, part);
}
LK_KERNEL void __launch_bounds__(LK_MINE_TILE_THREADS, 2) triplet_hard_partial_compat_f32(
    lk_triplet_params p, int32_t splits, const float* __restrict__ q, const uint32_t* __restrict__ ql,
    const float* __restrict__ r, const uint32_t* __restrict__ rl, const float* __restrict__ norms_q,
    const float* __restrict__ norms_r, const uint32_t* __restrict__ au, const float* __restrict__ af,
    uint32_t* __restrict__ part) {
    hard_partial<1, true>(p, splits, q, ql, r, rl, norms_q, norms_r, au, af, part);
}
LK_KERNEL void __launch_bounds__(LK_MINE_TILE_THREADS, 2) triplet_hard_partial_pass2_f32(
    lk_triplet_params p, int32_t splits, const float* __restrict__ q, const uint32_t* __restrict__ ql,
    const float* __restrict__ r, const uint32_t* __restrict__ rl, const float* __restrict__ norms_q,
    const float* __restrict__ norms_r, const uint32_t* __restrict__ au, const float* __restrict__ af,
    uint32_t* __restrict__ part) {
    hard_partial<2, false>(p, splits, q, ql, r, rl, norms_q, norms_r, au, af, part);
}

// ---- v2 of the one-triplet miners' streaming pass: 128 × 64 tiles, 8 × 4 pairs per thread ----
//
// triplet_hard_partial{,_compat,_pass2}_v2_f32 compute what the v1 kernels compute (same partials,
// planes [LK_HARD_PART_LEN, splits, n], merged by triplet_hard_combine_f32), for splits chosen for
// 128-anchor tiles (hard_splits_for_v2 in src/ops/mining/mod.rs). Differences from v1:
// - the κ tile is 128 anchors × 64 references: thread (ty, tx) = (tid / 16, tid % 16) owns the
//   8 × 4 pairs (a0 + 8·ty + ii, b0 + 4·tx + jj); per k it reads 3 float4 from shared memory for 32
//   FMAs (v1: 2 for 16), the k loop of 16 is unrolled whole, and the staging loads use offsets
//   computed once per tile (v1 rebuilt 64-bit addresses per load and step: ~125 of its ~425
//   instructions per thread and k-step). The dot products are the same FMA chains (increasing k,
//   zero padding), so κ is bit-identical to v1's and to pairwise_distance.
// - the epilogue has 2 threads per anchor (columns 8u + 4·sub + e, e < 4: one float4 of κ and one
//   uint4 of labels per 4 pairs) and takes candidates with lk offer rules specialised to a stream
//   in increasing reference order (offer_later: a later candidate wins only when strictly better,
//   so the tie rule needs no index compare), branch-free except for the positive/negative split.
// Shared memory: 8.4 + 4.4 KiB staging, 34 KiB κ tile, 256 B labels (< 48 KiB static); registers
// capped at 128 (2 blocks of 256 threads per SM, as v1).
namespace {

constexpr int HA = 128;       // anchors per tile
constexpr int HB = MT;        // references per tile (64)
constexpr int HTM = 8;        // anchors per thread
constexpr int HTN = 4;        // references per thread
constexpr int HAPAD = HA + 4;  // row strides of the staged slices and of the κ tile
constexpr int HBPAD = HB + 4;
static_assert(HA == 16 * HTM && HB == 16 * HTN, "16 × 16 threads of 8 × 4 pairs");
static_assert((HA * MBK) % LK_MINE_TILE_THREADS == 0 && (HB * MBK) % LK_MINE_TILE_THREADS == 0, "whole elements");

// The candidate (cv, ci, cpl) replaces (v, i, pl) when it is better in lk::better's order, given that
// ci is larger than i whenever i is a candidate (a stream in increasing reference order): then a tie
// keeps the current one, a NaN loses to every non-NaN and a non-NaN beats a current NaN.
__device__ __forceinline__ void offer_later(bool want_max, float& v, uint32_t& i, float& pl, float cv, uint32_t ci,
                                            float cpl) {
    const bool take = i == LK_NONE || (want_max ? cv > v : cv < v) || (isnan(v) && !isnan(cv));
    v = take ? cv : v;
    i = take ? ci : i;
    pl = take ? cpl : pl;
}

// κ of this thread's 8 × 4 pairs of the 128 × 64 tile (a0, b0) into kap; the v2 analogue of
// kappa_tile (same FMA chains). Every thread of the block must call it (it synchronizes).
__device__ __forceinline__ void kappa_tile_v2(int metric, const float* __restrict__ q, int64_t a0, int64_t a_end,
                                              const float* __restrict__ r, int64_t b0, int64_t m, int64_t d,
                                              const float (&na)[HTM], const float (&nb)[HTN],
                                              float (&kap)[HTM][HTN], float (*As)[HAPAD], float (*Bs)[HBPAD]) {
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int kk_ld = tid % MBK, row_ld = tid / MBK;  // staged element (row row_ld + 16·s, column kk_ld)
    constexpr int SA = (HA * MBK) / LK_MINE_TILE_THREADS, SB = (HB * MBK) / LK_MINE_TILE_THREADS;
    float acc[HTM][HTN];
#pragma unroll
    for (int ii = 0; ii < HTM; ++ii)
#pragma unroll
        for (int jj = 0; jj < HTN; ++jj) acc[ii][jj] = 0.0f;
    // Row validity as bit masks and the element offsets of row s = 0 (rows s add 16·d each).
    uint32_t oka = 0, okb = 0;
#pragma unroll
    for (int s = 0; s < SA; ++s) oka |= (a0 + row_ld + 16 * s < a_end ? 1u : 0u) << s;
#pragma unroll
    for (int s = 0; s < SB; ++s) okb |= (b0 + row_ld + 16 * s < m ? 1u : 0u) << s;
    const int64_t offa = (a0 + row_ld) * d + kk_ld, offb = (b0 + row_ld) * d + kk_ld, step = 16 * d;
    float ra[SA], rbv[SB];
    auto fetch = [&](int64_t k0) {
        const bool okk = k0 + kk_ld < d;
#pragma unroll
        for (int s = 0; s < SA; ++s) ra[s] = (okk && ((oka >> s) & 1u)) ? q[offa + s * step + k0] : 0.0f;
#pragma unroll
        for (int s = 0; s < SB; ++s) rbv[s] = (okk && ((okb >> s) & 1u)) ? r[offb + s * step + k0] : 0.0f;
    };
    fetch(0);
    for (int64_t k0 = 0; k0 < d; k0 += MBK) {
        __syncthreads();  // the previous step's (or the previous tile's) reads of As / Bs are done
#pragma unroll
        for (int s = 0; s < SA; ++s) As[kk_ld][row_ld + 16 * s] = ra[s];
#pragma unroll
        for (int s = 0; s < SB; ++s) Bs[kk_ld][row_ld + 16 * s] = rbv[s];
        __syncthreads();
        if (k0 + MBK < d) fetch(k0 + MBK);
#pragma unroll
        for (int kk = 0; kk < MBK; ++kk) {
            const float4 a_lo = *reinterpret_cast<const float4*>(&As[kk][ty * HTM]);
            const float4 a_hi = *reinterpret_cast<const float4*>(&As[kk][ty * HTM + 4]);
            const float4 bv = *reinterpret_cast<const float4*>(&Bs[kk][tx * HTN]);
            const float a[HTM] = {a_lo.x, a_lo.y, a_lo.z, a_lo.w, a_hi.x, a_hi.y, a_hi.z, a_hi.w};
            const float b[HTN] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
            for (int ii = 0; ii < HTM; ++ii)
#pragma unroll
                for (int jj = 0; jj < HTN; ++jj) acc[ii][jj] = __fmaf_rn(a[ii], b[jj], acc[ii][jj]);
        }
    }
#pragma unroll
    for (int ii = 0; ii < HTM; ++ii)
#pragma unroll
        for (int jj = 0; jj < HTN; ++jj) kap[ii][jj] = lk::kappa_from_dot(metric, acc[ii][jj], na[ii], nb[jj]);
}

template <int PASS, bool COMPAT>
__device__ __forceinline__ void hard_partial_v2(const lk_triplet_params& p, int32_t splits,
                                                const float* __restrict__ q, const uint32_t* __restrict__ ql,
                                                const float* __restrict__ r, const uint32_t* __restrict__ rl,
                                                const float* __restrict__ norms_q, const float* __restrict__ norms_r,
                                                const uint32_t* __restrict__ au, const float* __restrict__ af,
                                                uint32_t* __restrict__ part) {
    __shared__ __align__(16) float As[MBK][HAPAD];
    __shared__ __align__(16) float Bs[MBK][HBPAD];
    __shared__ __align__(16) float Ks[HA][HBPAD];  // κ of the tile: [anchor][reference]
    __shared__ __align__(16) uint32_t Ls[HB];      // the tile's reference labels
    constexpr bool first = PASS == 1;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int ea = tid >> 1, sub = tid & 1;  // epilogue: anchor a0 + ea, columns 8u + 4·sub + e
    const int64_t anchor_tiles = (p.n + HA - 1) / HA, ref_tiles = (p.m + HB - 1) / HB;
    const int64_t per = (ref_tiles + splits - 1) / splits;
    for (int64_t w = blockIdx.x; w < anchor_tiles * splits; w += gridDim.x) {  // block-uniform
        const int64_t a0 = (w / splits) * HA, s = w % splits;
        const int64_t t_begin = s * per, t_end = min(ref_tiles, t_begin + per);
        float na[HTM];  // the GEMM layout's anchors a0 + 8·ty + ii
#pragma unroll
        for (int ii = 0; ii < HTM; ++ii) {
            const int64_t i = a0 + ty * HTM + ii;
            na[ii] = i < p.n ? norms_q[i] : 0.0f;
        }
        const int64_t i = a0 + ea;  // the epilogue's anchor
        bool live = i < p.n;
        const uint32_t li = live ? ql[i] : 0u;
        // The self pair: reference index i with same_set (never matches when it is not one).
        const uint32_t self_j = (p.same_set && live) ? (uint32_t)i : LK_NONE;
        float lp = 0.0f;
        if (!first && live) {
            live = au[LK_ANCHOR_POS_IDX * p.n + i] != LK_NONE;  // no positive: no negative to look for
            lp = ell_of(p, af[LK_ANCHOR_KAPPA_POS * p.n + i]);
        }
        float bp_v = 0.0f, bp_k = 0.0f, bn_v = 0.0f, bn_k = 0.0f, mn_v = 0.0f, mn_k = 0.0f, mx_v = 0.0f, mx_k = 0.0f;
        uint32_t bp_i = LK_NONE, bn_i = LK_NONE, mn_i = LK_NONE, mx_i = LK_NONE, np = 0, nn = 0, nc = 0;
        double sdp = 0.0, sdn = 0.0;
        for (int64_t bt = t_begin; bt < t_end; ++bt) {  // block-uniform
            const int64_t b0 = bt * HB;
            float nb[HTN], kap[HTM][HTN];
#pragma unroll
            for (int jj = 0; jj < HTN; ++jj) {
                const int64_t j = b0 + tx * HTN + jj;
                nb[jj] = j < p.m ? norms_r[j] : 0.0f;
            }
            kappa_tile_v2(p.metric, q, a0, p.n, r, b0, p.m, p.d, na, nb, kap, As, Bs);
            // Ks / Ls were last read by the previous tile's epilogue, before kappa_tile_v2's barriers.
#pragma unroll
            for (int ii = 0; ii < HTM; ++ii)
                *reinterpret_cast<float4*>(&Ks[ty * HTM + ii][tx * HTN]) =
                    make_float4(kap[ii][0], kap[ii][1], kap[ii][2], kap[ii][3]);
            if (tid < HB) Ls[tid] = b0 + tid < p.m ? rl[b0 + tid] : 0u;
            __syncthreads();
            if (live) {
                const int cols = (int)min((int64_t)HB, p.m - b0);
#pragma unroll 2
                for (int u = 0; u < HB / 8; ++u) {
                    const int c0 = 8 * u + 4 * sub;
                    if (c0 >= cols) break;  // columns increase with u: the rest is past the end too
                    const float4 kv4 = *reinterpret_cast<const float4*>(&Ks[ea][c0]);
                    const uint4 lv4 = *reinterpret_cast<const uint4*>(&Ls[c0]);
                    const float kv[4] = {kv4.x, kv4.y, kv4.z, kv4.w};
                    const uint32_t lv[4] = {lv4.x, lv4.y, lv4.z, lv4.w};
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        if (c0 + e >= cols) break;
                        const uint32_t ju = (uint32_t)(b0 + c0 + e);
                        const bool self = ju == self_j;
                        const float kappa = self ? 0.0f : kv[e];
                        const float l = ell_of(p, kappa);
                        const bool same_label = lv[e] == li;
                        if constexpr (first) {
                            if constexpr (COMPAT) {
                                offer_later(false, mn_v, mn_i, mn_k, l, ju, kappa);
                                offer_later(true, mx_v, mx_i, mx_k, l, ju, kappa);
                            }
                            if (!self) {
                                const float dl = delta_of(p, kappa);
                                nc += dl < p.collapse_eps ? 1u : 0u;
                                if (same_label) {
                                    ++np;
                                    sdp += (double)dl;
                                    offer_later(true, bp_v, bp_i, bp_k, l, ju, kappa);
                                } else {
                                    ++nn;
                                    sdn += (double)dl;
                                    offer_later(false, bn_v, bn_i, bn_k, l, ju, kappa);
                                }
                            }
                        } else if (!same_label && !self && l > lp) {
                            offer_later(false, bn_v, bn_i, bn_k, l, ju, kappa);
                        }
                    }
                }
            }
        }
        // Combine the 2 threads of each anchor (all 32 lanes of every warp take part).
        group_argbest<2>(false, bn_v, bn_i, bn_k);
        if constexpr (first) {
            group_argbest<2>(true, bp_v, bp_i, bp_k);
            if constexpr (COMPAT) {
                group_argbest<2>(false, mn_v, mn_i, mn_k);
                group_argbest<2>(true, mx_v, mx_i, mx_k);
            }
            np = group_sum<2>(np);
            nn = group_sum<2>(nn);
            nc = group_sum<2>(nc);
            sdp = group_sum<2>(sdp);
            sdn = group_sum<2>(sdn);
        }
        if (sub == 0 && i < p.n)
            put_hard_partial<first>(part, s, splits, p.n, i,
                                    {bn_i, bp_i, mn_i, mx_i, np, nn, nc, bn_k, bp_k, mn_k, mx_k, sdp, sdn});
        __syncthreads();  // keeps work items apart
    }
}

}  // namespace

LK_KERNEL void __launch_bounds__(LK_MINE_TILE_THREADS, 2) triplet_hard_partial_v2_f32(
    lk_triplet_params p, int32_t splits, const float* __restrict__ q, const uint32_t* __restrict__ ql,
    const float* __restrict__ r, const uint32_t* __restrict__ rl, const float* __restrict__ norms_q,
    const float* __restrict__ norms_r, const uint32_t* __restrict__ au, const float* __restrict__ af,
    uint32_t* __restrict__ part) {
    hard_partial_v2<1, false>(p, splits, q, ql, r, rl, norms_q, norms_r, au, af, part);
}
LK_KERNEL void __launch_bounds__(LK_MINE_TILE_THREADS, 2) triplet_hard_partial_compat_v2_f32(
    lk_triplet_params p, int32_t splits, const float* __restrict__ q, const uint32_t* __restrict__ ql,
    const float* __restrict__ r, const uint32_t* __restrict__ rl, const float* __restrict__ norms_q,
    const float* __restrict__ norms_r, const uint32_t* __restrict__ au, const float* __restrict__ af,
    uint32_t* __restrict__ part) {
    hard_partial_v2<1, true>(p, splits, q, ql, r, rl, norms_q, norms_r, au, af, part);
}
LK_KERNEL void __launch_bounds__(LK_MINE_TILE_THREADS, 2) triplet_hard_partial_pass2_v2_f32(
    lk_triplet_params p, int32_t splits, const float* __restrict__ q, const uint32_t* __restrict__ ql,
    const float* __restrict__ r, const uint32_t* __restrict__ rl, const float* __restrict__ norms_q,
    const float* __restrict__ norms_r, const uint32_t* __restrict__ au, const float* __restrict__ af,
    uint32_t* __restrict__ part) {
    hard_partial_v2<2, false>(p, splits, q, ql, r, rl, norms_q, norms_r, au, af, part);
}

// Merges the splits' partials of each anchor in split order (thread per anchor) and writes the
// per-anchor planes. pass 1: BatchHard is final (with the tfa_compat fallbacks); for
// ClosestFartherThanPositive the pair statistics and the hardest positive (POS_IDX, KAPPA_POS) are
// written and the triplet fields left "no triplet" until pass 2, which merges the negatives and
// finalizes.
LK_KERNEL void triplet_hard_combine_f32(lk_triplet_params p, int32_t pass, int32_t splits,
                                        const uint32_t* __restrict__ part, uint32_t* __restrict__ au,
                                        float* __restrict__ af) {
    const bool cftp = p.miner == LK_MINER_SEMIHARD_CFTP;
    const bool compat = p.tfa_compat && !cftp;
    const bool first = pass == 1;
    LK_GRID_STRIDE(i, p.n) {
        auto get = [&](int plane, int64_t s) { return part[part_at(plane, s, splits, p.n, i)]; };
        auto get_f64 = [&](int lo, int hi, int64_t s) { return __hiloint2double((int)get(hi, s), (int)get(lo, s)); };
        float bp_v = 0.0f, bp_k = 0.0f, bn_v = 0.0f, bn_k = 0.0f, mn_v = 0.0f, mn_k = 0.0f, mx_v = 0.0f, mx_k = 0.0f;
        uint32_t bp_i = LK_NONE, bn_i = LK_NONE, mn_i = LK_NONE, mx_i = LK_NONE, np = 0, nn = 0, nc = 0;
        double sdp = 0.0, sdn = 0.0;
        for (int64_t s = 0; s < splits; ++s) {
            // ℓ is recomputed from the stored κ: ℓ = ell_of(κ) is how every candidate's value was made.
            float k = __uint_as_float(get(LK_HARD_PART_BN_K, s));
            lk::offer(false, bn_v, bn_i, bn_k, ell_of(p, k), get(LK_HARD_PART_BN_I, s), k);
            if (!first) continue;
            k = __uint_as_float(get(LK_HARD_PART_BP_K, s));
            lk::offer(true, bp_v, bp_i, bp_k, ell_of(p, k), get(LK_HARD_PART_BP_I, s), k);
            if (compat) {
                k = __uint_as_float(get(LK_HARD_PART_MN_K, s));
                lk::offer(false, mn_v, mn_i, mn_k, ell_of(p, k), get(LK_HARD_PART_MN_I, s), k);
                k = __uint_as_float(get(LK_HARD_PART_MX_K, s));
                lk::offer(true, mx_v, mx_i, mx_k, ell_of(p, k), get(LK_HARD_PART_MX_I, s), k);
            }
            np += get(LK_HARD_PART_N_POS, s);
            nn += get(LK_HARD_PART_N_NEG, s);
            nc += get(LK_HARD_PART_N_COLLAPSE, s);
            sdp += get_f64(LK_HARD_PART_SUM_D_POS_LO, LK_HARD_PART_SUM_D_POS_HI, s);
            sdn += get_f64(LK_HARD_PART_SUM_D_NEG_LO, LK_HARD_PART_SUM_D_NEG_HI, s);
        }
        if (first) {
            au[LK_ANCHOR_N_POS * p.n + i] = np;
            au[LK_ANCHOR_N_NEG * p.n + i] = nn;
            au[LK_ANCHOR_N_COLLAPSE * p.n + i] = nc;
            af[LK_ANCHOR_SUM_D_POS * p.n + i] = (float)sdp;
            af[LK_ANCHOR_SUM_D_NEG * p.n + i] = (float)sdn;
            if (cftp) {
                au[LK_ANCHOR_POS_IDX * p.n + i] = bp_i;  // read by pass 2
                af[LK_ANCHOR_KAPPA_POS * p.n + i] = bp_k;
                au[LK_ANCHOR_NEG_IDX * p.n + i] = LK_NONE;
                au[LK_ANCHOR_TRIPLETS * p.n + i] = 0u;
                au[LK_ANCHOR_ACTIVE * p.n + i] = 0u;
                af[LK_ANCHOR_LOSS * p.n + i] = 0.0f;
                af[LK_ANCHOR_KAPPA_NEG * p.n + i] = 0.0f;
                continue;
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
        } else {
            bp_i = au[LK_ANCHOR_POS_IDX * p.n + i];
            bp_k = af[LK_ANCHOR_KAPPA_POS * p.n + i];
            bp_v = ell_of(p, bp_k);
        }
        const bool valid = bp_i != LK_NONE && bn_i != LK_NONE;
        const float v = valid ? triplet_value(bp_v, bn_v, p.margin) : 0.0f;
        au[LK_ANCHOR_POS_IDX * p.n + i] = valid ? bp_i : LK_NONE;
        au[LK_ANCHOR_NEG_IDX * p.n + i] = valid ? bn_i : LK_NONE;
        au[LK_ANCHOR_TRIPLETS * p.n + i] = valid ? 1u : 0u;
        au[LK_ANCHOR_ACTIVE * p.n + i] = (valid && v > 0.0f) ? 1u : 0u;
        af[LK_ANCHOR_LOSS * p.n + i] = valid ? lk::relu_keep_nan(v) : 0.0f;
        af[LK_ANCHOR_KAPPA_POS * p.n + i] = valid ? bp_k : 0.0f;
        af[LK_ANCHOR_KAPPA_NEG * p.n + i] = valid ? bn_k : 0.0f;
    }
}

namespace {

// The references j < m with keep(j), in increasing j, as (ℓ_ij, j) pairs in list_l / list_i (the
// caller knows their count fits); returns the count to every thread. Block-wide (it synchronizes):
// every thread calls it; blockDim.x a multiple of 32. Deterministic: ballot + prefix counts, no
// atomics, so the list's order (and every sum over it) is the same run after run.
template <class Keep>
__device__ uint32_t compact_refs(const lk_triplet_params& p, const float* __restrict__ krow, Keep keep,
                                 float* __restrict__ list_l, uint32_t* __restrict__ list_i) {
    __shared__ uint32_t warp_counts[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    uint32_t base = 0;
    for (int64_t j0 = 0; j0 < p.m; j0 += blockDim.x) {
        const int64_t j = j0 + threadIdx.x;
        const bool k = j < p.m && keep(j);
        const uint32_t mask = __ballot_sync(0xffffffffu, k);
        if (lane == 0) warp_counts[warp] = __popc(mask);
        __syncthreads();
        uint32_t before = base, total = 0;
        for (int w = 0; w < nwarps; ++w) {
            const uint32_t c = warp_counts[w];
            if (w < warp) before += c;
            total += c;
        }
        if (k) {
            const uint32_t at = before + __popc(mask & ((1u << lane) - 1u));
            list_l[at] = ell_of(p, krow[j]);
            list_i[at] = (uint32_t)j;
        }
        base += total;
        __syncthreads();  // warp_counts is rewritten by the next round
    }
    return base;
}

}  // namespace

// FaceNet, TfAddons and BatchAll, forward (backward = 0: per-anchor planes) or backward
// (backward = 1: count rows and dq; backward = 2: count rows only, dq left to
// triplet_rows_bwd_q_v2_f32). Anchors [row0, row0 + rows); krows [rows, m] holds their κ rows
// (triplet_kappa_rows_f32, launched just before), crows [rows, m] the gradient counts.
LK_KERNEL void triplet_rows_f32(lk_triplet_params p, int32_t backward, const float* __restrict__ q,
                                const uint32_t* __restrict__ ql, const float* __restrict__ r,
                                const uint32_t* __restrict__ rl, const float* __restrict__ norms_q,
                                const float* __restrict__ norms_r, const uint32_t* __restrict__ stats,
                                uint32_t* __restrict__ au, float* __restrict__ af, const float* __restrict__ krows,
                                int32_t* __restrict__ crows, float* __restrict__ dq, int32_t list_cap) {
    // Dynamic shared memory: list_cap (ℓ, index) pairs, the anchor's negatives for step 2 and its
    // positives for step 2b, when they fit (else those steps scan the whole row, as v1 did).
    extern __shared__ __align__(8) unsigned char rows_smem[];
    float* const list_l = reinterpret_cast<float*>(rows_smem);
    uint32_t* const list_i = reinterpret_cast<uint32_t*>(rows_smem + (size_t)list_cap * sizeof(float));
    __shared__ double warp_loss[32];
    __shared__ uint32_t warp_trip[32], warp_act[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    const bool tfa = p.miner == LK_MINER_SEMIHARD_TFA;
    const bool batch_all = p.miner == LK_MINER_BATCH_ALL;
    for (int64_t t = blockIdx.x; t < p.rows; t += gridDim.x) {
        const int64_t i = p.row0 + t;
        const float* qi = q + i * p.d;
        const uint32_t li = ql[i];
        const float* krow = krows + t * p.m;
        int32_t* crow = crows + t * p.m;
        // The anchor itself (same_set) is neither, whatever rl[i] says.
        auto is_positive = [&](int64_t j) { return rl[j] == li && !(p.same_set && j == i); };
        auto is_negative = [&](int64_t j) { return rl[j] != li && !(p.same_set && j == i); };
        // 1. Pair statistics, the largest negative and the row minimum (TFA fallbacks).
        float nx_v = 0.0f, nx_k = 0.0f, mn_v = 0.0f, mn_k = 0.0f;
        uint32_t nx_i = LK_NONE, mn_i = LK_NONE;
        double sdp = 0.0, sdn = 0.0;
        uint32_t np = 0, nn = 0, nc = 0;
        for (int64_t j = threadIdx.x; j < p.m; j += blockDim.x) {
            const float kappa = krow[j];  // 0 for the anchor itself (same_set)
            const bool self = p.same_set && j == i;
            if (backward) crow[j] = 0;
            const float l = ell_of(p, kappa);
            lk::offer(false, mn_v, mn_i, mn_k, l, (uint32_t)j, kappa);
            if (!self) {
                const float dl = delta_of(p, kappa);
                if (dl < p.collapse_eps) ++nc;
                if (rl[j] == li) {
                    ++np;
                    sdp += (double)dl;
                } else {
                    ++nn;
                    sdn += (double)dl;
                    lk::offer(true, nx_v, nx_i, nx_k, l, (uint32_t)j, kappa);
                }
            }
        }
        lk::block_argbest(true, nx_v, nx_i, nx_k);
        lk::block_argbest(false, mn_v, mn_i, mn_k);
        sdp = lk::block_sum_f64(sdp);  // thread 0's value (the only one used) is the fixed-order sum
        sdn = lk::block_sum_f64(sdn);
        np = lk::block_sum_int(np);
        nn = lk::block_sum_int(nn);
        nc = lk::block_sum_int(nc);
        __syncthreads();  // crow zeroed and visible to the whole block

        // 1b. The anchor's negatives as a compact (ℓ, index) list in reference order, when they fit
        // (nn is the same on every thread): step 2 then reads nn entries per positive instead of the
        // whole row and its labels.
        const bool neg_list = nn <= (uint32_t)list_cap;
        uint32_t n_list = 0;
        if (neg_list) n_list = compact_refs(p, krow, is_negative, list_l, list_i);
        // f(ℓ_in, n) for this lane's share of the anchor's negatives (the same share either way).
        auto each_negative = [&](auto&& f) {
            if (neg_list) {
                for (uint32_t e = lane; e < n_list; e += 32) f(list_l[e], list_i[e]);
            } else {
                for (int64_t nj = lane; nj < p.m; nj += 32)
                    if (is_negative(nj)) f(ell_of(p, krow[nj]), (uint32_t)nj);
            }
        };

        // 2. Warps over the positives (warp-uniform loop), lanes over the negatives.
        double wl = 0.0;  // f64 loss sums, like the CPU twin
        uint32_t wt = 0, wa = 0;
        for (int64_t pj = warp; pj < p.m; pj += nwarps) {
            if (!is_positive(pj)) continue;
            const float lp = ell_of(p, krow[pj]);
            if (batch_all) {
                double s = 0.0;
                uint32_t a = 0;
                each_negative([&](float ln, uint32_t) {
                    const float v = triplet_value(lp, ln, p.margin);
                    if (v > 0.0f) {
                        s += (double)v;
                        ++a;
                    }
                });
                s = warp_sum_f64(s);
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
                each_negative([&](float ln, uint32_t nj) {
                    if (ln > lp && (tfa || ln < hi)) lk::offer(false, bv, bi, bk, ln, nj, 0.0f);
                });
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
                    wl += (double)lk::relu_keep_nan(v);
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
            // 2b. BatchAll: each negative's count, −(number of active positives), warps over negatives,
            // lanes over the positives: from the list, which now takes the positives (np is the same
            // on every thread), when they fit; else over the whole row (O(m²) per anchor).
            const bool pos_list = np <= (uint32_t)list_cap;
            __syncthreads();  // every warp is done with the negatives' list
            uint32_t p_list = 0;
            if (pos_list) {
                p_list = compact_refs(p, krow, is_positive, list_l, list_i);
            }
            for (int64_t nj = warp; nj < p.m; nj += nwarps) {
                if (!is_negative(nj)) continue;
                const float ln = ell_of(p, krow[nj]);
                uint32_t a = 0;
                if (pos_list) {
                    for (uint32_t e = lane; e < p_list; e += 32)
                        if (triplet_value(list_l[e], ln, p.margin) > 0.0f) ++a;
                } else {
                    for (int64_t pj = lane; pj < p.m; pj += 32) {
                        if (!is_positive(pj)) continue;
                        if (triplet_value(ell_of(p, krow[pj]), ln, p.margin) > 0.0f) ++a;
                    }
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
            double loss = 0.0;
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
            af[LK_ANCHOR_LOSS * p.n + i] = (float)loss;
            af[LK_ANCHOR_KAPPA_POS * p.n + i] = 0.0f;
            af[LK_ANCHOR_KAPPA_NEG * p.n + i] = 0.0f;
            af[LK_ANCHOR_SUM_D_POS * p.n + i] = (float)sdp;
            af[LK_ANCHOR_SUM_D_NEG * p.n + i] = (float)sdn;
        }
        if (backward == 1) {
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

// ---- v2 of the row-buffer miners' gradient: output rows in groups, terms staged per step ----
//
// triplet_rows_bwd_q_v2_f32 (the anchors' side, after triplet_rows_f32 with backward = 2) and
// triplet_rows_bwd_r_v2_f32 (the references' side) compute what step 3 of triplet_rows_f32 and
// triplet_rows_bwd_cols_f32 compute, for one anchor chunk:
//   out_o[k] += w · Σ_u [c ≠ 0] term(c, κ, x_k, y_uk),  u in increasing order,
// q side: o = t (anchor row0 + t of the chunk), u = j < m, x = q_i, y_u = r_j, c/κ = crows/krows[t, j];
// r side: o = j < m, u = t < rows, x = r_j, y_u = q_{row0+t}, c/κ = crows/krows[t, j];
// term = s·(x_k − y_uk) with s = (c·dℓ/dκ)·a (Euclidean family) or W·(a·x_k + b·y_uk) with
// W = c·dℓ/dκ (cosine), (a, b) = lk::kappa_grad(κ, ‖x‖², ‖y_u‖²), added in the same order as v1.
// The Euclidean family uses explicitly rounded operations equal to v1's compiled kappa_grad_elem
// (FMUL w·a, FADD x − y, FMUL, FADD: nvcc does not contract it), so its sums are v1's bit for bit;
// the cosine term is v1's expression as written, so it is contracted (or not) alike.
// Why: v1 gives each output row to one block whose column threads walk the terms one at a time;
// every term is a chain of dependent global loads (the count, then κ, the norm and y) and
// recomputes kappa_grad per column: latency-bound, O(m) round trips per block. v2: a block owns
// RG_G = 8 consecutive output rows × a block of columns (thread per column, blockDim a multiple
// of 32, column blocks of blockDim when d is larger); per step of RG_U = 32 terms the block
// stages the 8 × 32 coefficient records (one kappa_grad per term, not per column) in shared memory
// while each thread loads its 32 values y_uk (independent loads), then every thread adds the
// 8 × 32 terms to its 8 accumulators: per (row, term, column) one LDS.128 (broadcast), 3–4 FP ops
// and a select; y is read once per 8 output rows. Work O(rows·m·d), shared memory 4 KiB.
namespace {

constexpr int RG_G = 8;   // output rows per block
constexpr int RG_U = 32;  // terms staged per step

template <bool REF_SIDE, bool COS>
__device__ __forceinline__ void rows_grad_v2(const lk_triplet_params& p, const float* __restrict__ q,
                                             const float* __restrict__ r, const float* __restrict__ norms_q,
                                             const float* __restrict__ norms_r, const uint32_t* __restrict__ stats,
                                             const float* __restrict__ krows, const int32_t* __restrict__ crows,
                                             float* __restrict__ out) {
    __shared__ float4 rec[RG_G][RG_U];  // cosine {W, a, b, c ≠ 0}, else {s, c ≠ 0, 0, 0}
    const float wt = p.scale * stat_weight(stats);
    const int64_t n_out = REF_SIDE ? p.m : p.rows, n_oth = REF_SIDE ? p.rows : p.m;
    for (int64_t o0 = (int64_t)blockIdx.x * RG_G; o0 < n_out; o0 += (int64_t)gridDim.x * RG_G) {  // block-uniform
        for (int64_t k0 = 0; k0 < p.d; k0 += blockDim.x) {                                         // block-uniform
            const int64_t k = k0 + threadIdx.x;
            const bool kok = k < p.d;
            float x[RG_G], acc[RG_G];
#pragma unroll
            for (int g = 0; g < RG_G; ++g) {
                const int64_t o = o0 + g;
                const float* xrow = REF_SIDE ? r + o * p.d : q + (p.row0 + o) * p.d;
                x[g] = (kok && o < n_out) ? xrow[k] : 0.0f;
                acc[g] = 0.0f;
            }
            for (int64_t u0 = 0; u0 < n_oth; u0 += RG_U) {  // block-uniform
                float yv[RG_U];
#pragma unroll
                for (int uu = 0; uu < RG_U; ++uu) {
                    const int64_t u = u0 + uu;
                    const float* yrow = REF_SIDE ? q + (p.row0 + u) * p.d : r + u * p.d;
                    yv[uu] = (kok && u < n_oth) ? yrow[k] : 0.0f;
                }
                __syncthreads();  // every thread is done with the previous step's records
                for (int e = threadIdx.x; e < RG_G * RG_U; e += blockDim.x) {
                    // Consecutive threads read consecutive references of a count row.
                    const int g = REF_SIDE ? e % RG_G : e / RG_U, uu = REF_SIDE ? e / RG_G : e % RG_U;
                    const int64_t o = o0 + g, u = u0 + uu;
                    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);  // no term
                    if (o < n_out && u < n_oth) {
                        const int64_t t = REF_SIDE ? u : o, j = REF_SIDE ? o : u;
                        const int32_t c = crows[t * p.m + j];
                        if (c != 0) {
                            const float kap = krows[t * p.m + j];
                            const float nx = REF_SIDE ? norms_r[j] : norms_q[p.row0 + t];
                            const float ny = REF_SIDE ? norms_q[p.row0 + t] : norms_r[j];
                            const lk::DistGrad gr = lk::kappa_grad(p.metric, kap, nx, ny);
                            const float w = __fmul_rn((float)c, dell(p, kap));
                            v = COS ? make_float4(w, gr.a, gr.b, 1.0f) : make_float4(__fmul_rn(w, gr.a), 1.0f, 0.0f, 0.0f);
                        }
                    }
                    rec[g][uu] = v;
                }
                __syncthreads();
#pragma unroll
                for (int uu = 0; uu < RG_U; ++uu) {
                    const float y = yv[uu];
#pragma unroll
                    for (int g = 0; g < RG_G; ++g) {
                        if constexpr (COS) {
                            const float4 v = rec[g][uu];
                            // v1's expression as written (kappa_grad_elem): whether a·x + b·y becomes an
                            // FMA is the compiler's choice, made alike for both versions.
                            const float term = v.x * (v.y * x[g] + v.z * y);
                            acc[g] = v.w != 0.0f ? acc[g] + term : acc[g];
                        } else {
                            const float2 v = *reinterpret_cast<const float2*>(&rec[g][uu]);  // {s, c ≠ 0}
                            const float term = __fmul_rn(v.x, __fsub_rn(x[g], y));
                            acc[g] = v.y != 0.0f ? __fadd_rn(acc[g], term) : acc[g];
                        }
                    }
                }
            }
#pragma unroll
            for (int g = 0; g < RG_G; ++g) {
                const int64_t o = o0 + g;
                float* orow = REF_SIDE ? out + o * p.d : out + (p.row0 + o) * p.d;
                if (kok && o < n_out) orow[k] += wt * acc[g];
            }
        }
    }
}

}  // namespace

// dq_i += w Σ_j c_ij ∂ℓ_ij/∂q_i for the chunk's anchors (v2; blocks of RG_G = 8 anchors).
LK_KERNEL void triplet_rows_bwd_q_v2_f32(lk_triplet_params p, const float* __restrict__ q,
                                         const float* __restrict__ r, const float* __restrict__ norms_q,
                                         const float* __restrict__ norms_r, const uint32_t* __restrict__ stats,
                                         const float* __restrict__ krows, const int32_t* __restrict__ crows,
                                         float* __restrict__ dq) {
    if (p.metric == LK_METRIC_COSINE)
        rows_grad_v2<false, true>(p, q, r, norms_q, norms_r, stats, krows, crows, dq);
    else
        rows_grad_v2<false, false>(p, q, r, norms_q, norms_r, stats, krows, crows, dq);
}

// dr_j += w Σ_{t < rows} c_{row0+t, j} ∂ℓ/∂r_j for the chunk's count rows (v2 of
// triplet_rows_bwd_cols_f32; blocks of RG_G = 8 references).
LK_KERNEL void triplet_rows_bwd_r_v2_f32(lk_triplet_params p, const float* __restrict__ q,
                                         const float* __restrict__ r, const float* __restrict__ norms_q,
                                         const float* __restrict__ norms_r, const uint32_t* __restrict__ stats,
                                         const float* __restrict__ krows, const int32_t* __restrict__ crows,
                                         float* __restrict__ dr) {
    if (p.metric == LK_METRIC_COSINE)
        rows_grad_v2<true, true>(p, q, r, norms_q, norms_r, stats, krows, crows, dr);
    else
        rows_grad_v2<true, false>(p, q, r, norms_q, norms_r, stats, krows, crows, dr);
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

// ---- One-triplet miners, reference side: buckets of the anchors that chose each reference ----
//
// An entry (i << 1) | kind stands for "anchor i chose this reference as its positive (kind 0) or
// negative (kind 1)", for active anchors and not the anchor itself (same_set). The caller checks
// n < 2³¹, so entries fit in u32 and never equal LK_NONE. Buckets are a CSR over the references:
// count (integer atomics), exclusive scan, fill (integer atomics: the order inside a bucket is
// arbitrary), after which off[j] is the end of bucket j and off[j − 1] (0 for j = 0) its start.
// triplet_hard_bwd_cols_f32 sorts each bucket, so every sum runs in (anchor, kind) order.
namespace {

__device__ __forceinline__ bool hard_uses(const lk_triplet_params& p, int64_t i, uint32_t j) {
    return !(p.same_set && (int64_t)j == i);
}

// Ascending bitonic sort of buf[0, len) in shared memory, len a power of two; all threads call it.
__device__ inline void bitonic_sort_u32(uint32_t* buf, uint32_t len) {
    for (uint32_t k = 2; k <= len; k <<= 1) {
        for (uint32_t jj = k >> 1; jj > 0; jj >>= 1) {
            for (uint32_t t = threadIdx.x; t < len; t += blockDim.x) {
                const uint32_t o = t ^ jj;
                if (o > t) {  // the pair (t, o) belongs to the thread holding its lower index
                    const uint32_t a = buf[t], b = buf[o];
                    if ((a > b) == ((t & k) == 0)) {
                        buf[t] = b;
                        buf[o] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
}

}  // namespace

LK_KERNEL void triplet_zero_u32(uint32_t* __restrict__ x, int64_t len) {
    LK_GRID_STRIDE(i, len) { x[i] = 0u; }
}

// off [m] (zeroed) += the size of each reference's bucket.
LK_KERNEL void triplet_bucket_count_u32(lk_triplet_params p, const uint32_t* __restrict__ au,
                                        uint32_t* __restrict__ off) {
    LK_GRID_STRIDE(i, p.n) {
        if (au[LK_ANCHOR_ACTIVE * p.n + i] == 0) continue;
        const uint32_t pos = au[LK_ANCHOR_POS_IDX * p.n + i], neg = au[LK_ANCHOR_NEG_IDX * p.n + i];
        if (hard_uses(p, i, pos)) atomicAdd(&off[pos], 1u);
        if (hard_uses(p, i, neg)) atomicAdd(&off[neg], 1u);
    }
}

// In-place exclusive scan of off [m], one block of at most 1024 threads: thread t owns the
// contiguous segment [t·per, (t + 1)·per), per = ⌈m / blockDim⌉ (sum, scan of the segment sums,
// rewrite). Totals stay below 2n < 2³².
LK_KERNEL void triplet_bucket_scan_u32(int64_t m, uint32_t* __restrict__ off) {
    __shared__ uint32_t seg[1024];
    const int t = threadIdx.x, nt = blockDim.x;
    const int64_t per = (m + nt - 1) / nt;
    const int64_t lo = min(m, (int64_t)t * per), hi = min(m, lo + per);
    uint32_t sum = 0;
    for (int64_t j = lo; j < hi; ++j) sum += off[j];
    seg[t] = sum;
    __syncthreads();
    for (int o = 1; o < nt; o <<= 1) {  // Hillis–Steele inclusive scan of the segment sums
        const uint32_t v = t >= o ? seg[t - o] : 0u;
        __syncthreads();
        seg[t] += v;
        __syncthreads();
    }
    uint32_t run = seg[t] - sum;  // exclusive
    for (int64_t j = lo; j < hi; ++j) {
        const uint32_t c = off[j];
        off[j] = run;
        run += c;
    }
}

// ent [2n]: each entry into its bucket; off[j] advances from the bucket's start to its end.
LK_KERNEL void triplet_bucket_fill_u32(lk_triplet_params p, const uint32_t* __restrict__ au,
                                       uint32_t* __restrict__ off, uint32_t* __restrict__ ent) {
    LK_GRID_STRIDE(i, p.n) {
        if (au[LK_ANCHOR_ACTIVE * p.n + i] == 0) continue;
        const uint32_t pos = au[LK_ANCHOR_POS_IDX * p.n + i], neg = au[LK_ANCHOR_NEG_IDX * p.n + i];
        if (hard_uses(p, i, pos)) ent[atomicAdd(&off[pos], 1u)] = (uint32_t)i << 1;
        if (hard_uses(p, i, neg)) ent[atomicAdd(&off[neg], 1u)] = ((uint32_t)i << 1) | 1u;
    }
}

// One-triplet miners, dr_j += w Σ_{entries e of bucket j, in (anchor, kind) order}
// ±∂ℓ_{i(e) j}/∂r_j (+ for a positive, − for a negative). Block per reference (grid-stride),
// thread per column. A bucket of at most LK_BUCKET_SORT_CAP entries is loaded into shared memory
// and sorted (bitonic); a larger one (rare: a hub chosen by thousands of anchors) is gathered in
// the same order by scanning the anchors' choices in chunks of LK_BUCKET_SORT_CAP / 2. Work:
// O(Σ bucket sizes · D) = O(N·D), plus O(N) per oversized bucket (fewer than 2N / CAP of them).
LK_KERNEL void triplet_hard_bwd_cols_f32(lk_triplet_params p, const float* __restrict__ q,
                                         const float* __restrict__ r, const float* __restrict__ norms_q,
                                         const float* __restrict__ norms_r, const uint32_t* __restrict__ stats,
                                         const uint32_t* __restrict__ au, const float* __restrict__ af,
                                         const uint32_t* __restrict__ off, const uint32_t* __restrict__ ent,
                                         float* __restrict__ dr) {
    __shared__ uint32_t buf[LK_BUCKET_SORT_CAP];
    const float w = p.scale * stat_weight(stats);
    for (int64_t j = blockIdx.x; j < p.m; j += gridDim.x) {  // block-uniform
        const uint32_t start = j > 0 ? off[j - 1] : 0u, cnt = off[j] - start;
        if (cnt == 0) continue;
        const float nrj = norms_r[j];
        // Adds the entries buf[0, len) (LK_NONE slots skipped) to acc for column k.
        auto add = [&](uint32_t len, int64_t k, float xk, float& acc) {
            for (uint32_t e = 0; e < len; ++e) {
                const uint32_t v = buf[e];
                if (v == LK_NONE) continue;
                const int64_t i = v >> 1;
                const bool neg = (v & 1u) != 0;
                const float kap = af[(neg ? LK_ANCHOR_KAPPA_NEG : LK_ANCHOR_KAPPA_POS) * p.n + i];
                const lk::DistGrad g = lk::kappa_grad(p.metric, kap, nrj, norms_q[i]);
                const float term = lk::kappa_grad_elem(p.metric, g, dell(p, kap), xk, q[i * p.d + k]);
                acc += neg ? -term : term;
            }
        };
        const bool small = cnt <= LK_BUCKET_SORT_CAP;
        if (small) {
            uint32_t len = 1;
            while (len < cnt) len <<= 1;
            __syncthreads();  // buf may still be read for the previous reference
            for (uint32_t t = threadIdx.x; t < len; t += blockDim.x) buf[t] = t < cnt ? ent[start + t] : LK_NONE;
            __syncthreads();
            bitonic_sort_u32(buf, len);  // the padding (LK_NONE) sorts last
        }
        for (int64_t k0 = 0; k0 < p.d; k0 += blockDim.x) {  // block-uniform
            const int64_t k = k0 + threadIdx.x;
            const float xk = k < p.d ? r[j * p.d + k] : 0.0f;
            float acc = 0.0f;
            if (small) {
                if (k < p.d) add(cnt, k, xk, acc);
            } else {
                constexpr int64_t CH = LK_BUCKET_SORT_CAP / 2;  // anchors per chunk
                for (int64_t i0 = 0; i0 < p.n; i0 += CH) {
                    __syncthreads();  // buf may still be read (previous chunk, column block, reference)
                    for (int64_t t = threadIdx.x; t < CH; t += blockDim.x) {
                        const int64_t i = i0 + t;
                        uint32_t e0 = LK_NONE, e1 = LK_NONE;
                        if (i < p.n && au[LK_ANCHOR_ACTIVE * p.n + i] != 0) {
                            if (au[LK_ANCHOR_POS_IDX * p.n + i] == (uint32_t)j && hard_uses(p, i, (uint32_t)j))
                                e0 = (uint32_t)i << 1;
                            if (au[LK_ANCHOR_NEG_IDX * p.n + i] == (uint32_t)j && hard_uses(p, i, (uint32_t)j))
                                e1 = ((uint32_t)i << 1) | 1u;
                        }
                        buf[2 * t] = e0;
                        buf[2 * t + 1] = e1;
                    }
                    __syncthreads();
                    if (k < p.d) add((uint32_t)(2 * CH), k, xk, acc);
                }
            }
            if (k < p.d) dr[j * p.d + k] += w * acc;
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
