/* latentkit kernel ABI: the parameter structs and enums passed by value to the kernels.
 *
 * This header is the single source of truth: the CUDA sources include it, and build.rs runs bindgen
 * on it to generate the Rust side (src/backend/cuda/abi.rs includes the output), so the two can't
 * drift. Plain C, fixed-width fields, no pointers: every struct is passed by value as one kernel
 * parameter. Field order is chosen so that no padding is needed.
 */
#ifndef LATENTKIT_ABI_H
#define LATENTKIT_ABI_H

#include <stdint.h>

/* Pointwise activation applied after a linear layer. */
typedef enum lk_activation {
    LK_ACT_NONE = 0,
    LK_ACT_RELU = 1,
    LK_ACT_SIGMOID = 2,
    LK_ACT_TANH = 3
} lk_activation;

/* Adam / AdamW hyper-parameters (PyTorch semantics). The step count and the bias corrections are
 * not here: they live in device memory (see optim.cu) so a captured CUDA graph can replay steps. */
typedef struct lk_adam_params {
    float lr;
    float beta1;
    float beta2;
    float eps;
    float weight_decay;
    /* 0: Adam (L2 penalty added to the gradient); 1: AdamW (decoupled decay of the weights). */
    int32_t decoupled_weight_decay;
} lk_adam_params;

/* At most this many tensors per adam_multi_step_f32 launch (they travel by value, in the kernel's
 * parameters, so a captured CUDA graph keeps them without a device-side table). */
#define LK_ADAM_MULTI_MAX 16
/* Elements of one tensor per block of adam_multi_step_f32. */
#define LK_ADAM_MULTI_CHUNK 2048

/* One tensor of adam_multi_step_f32: device addresses of its parameters, gradients and two
 * moments, its length, and the first block of the launch that works on it. */
typedef struct lk_adam_tensor {
    uint64_t p;
    uint64_t grad;
    uint64_t m;
    uint64_t v;
    int64_t n;
    int64_t block0;
} lk_adam_tensor;

typedef struct lk_adam_multi_params {
    lk_adam_params hp;
    int32_t count;
    int32_t _pad;
    lk_adam_tensor t[LK_ADAM_MULTI_MAX];
} lk_adam_multi_params;

/* SGD with momentum (PyTorch semantics: the first step seeds the velocity with the gradient). */
typedef struct lk_sgd_params {
    float lr;
    float momentum;
    float dampening;
    float weight_decay;
    int32_t nesterov;
    int32_t _pad;
} lk_sgd_params;

/* Row-major C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C. op(X) = X or X^T. Leading
 * dimensions are the row strides of the matrices as stored. beta == 0 means C is not read. */
/* What happens to each output v = alpha·(A·B)[i,j] + beta·C[i,j] before it is stored. */
typedef enum lk_gemm_epilogue {
    /* C = v */
    LK_EPI_NONE = 0,
    /* C = act(v + bias[j])   (bias optional: has_bias) — a Linear layer's forward in one kernel */
    LK_EPI_BIAS_ACT = 1,
    /* C = v · act'(y[i, j]), act' written from the forward output y — a layer's backward into the
     * pre-activation of the layer below */
    LK_EPI_ACT_GRAD = 2
} lk_gemm_epilogue;

typedef struct lk_gemm_params {
    int64_t m;
    int64_t n;
    int64_t k;
    int64_t lda;
    int64_t ldb;
    int64_t ldc;
    /* Row stride of y (LK_EPI_ACT_GRAD). */
    int64_t ldy;
    float alpha;
    float beta;
    int32_t trans_a;
    int32_t trans_b;
    lk_gemm_epilogue epilogue;
    lk_activation act;
    int32_t has_bias;
    /* Split-k kernels (v4): k elements per split, a multiple of 16; 0 for every other kernel. */
    int32_t k_split;
} lk_gemm_params;

/* Optimizer step state kept in device memory, advanced by optim_tick_f32 once per step:
 * [LK_OPTIM_STATE_T] = t (steps taken, as float: exact up to 2^24), then 1 - beta1^t, 1 - beta2^t. */
enum {
    LK_OPTIM_STATE_T = 0,
    LK_OPTIM_STATE_BIAS_CORR1 = 1,
    LK_OPTIM_STATE_BIAS_CORR2 = 2,
    LK_OPTIM_STATE_LEN = 3
};

/* Philox4x32-10 stream selection: key = seed, counter = (element / 4, step offset). The offset is
 * read from device memory (two uint32: low, high) so a captured graph draws fresh noise per step. */
typedef struct lk_philox_params {
    uint64_t seed;
} lk_philox_params;

/* Range that log σ² is clamped to before exp, so σ² stays in [9.4e-14, 4.9e8] and never overflows.
 * The gradient passes straight through the clamp (documented in src/ops/latent). */
#define LK_LOGVAR_MIN (-30.0f)
#define LK_LOGVAR_MAX (20.0f)

/* Fused reparameterization + KL. */
typedef struct lk_latent_params {
    uint64_t seed;
    /* 0: z = μ (no noise, for evaluation); 1: z = μ + ε·σ. */
    int32_t sample;
    /* 1: also write the per-element KL terms (kl_elem, [rows, cols]). */
    int32_t write_kl_elem;
} lk_latent_params;

/* The VAE objective's KL weighting (see kernels/latent.cu, vae_objective_f32). The warm-up reads
 * the step count t from the optimizer state: β_t = β · min(1, (t + 1) / warmup_steps). */
typedef struct lk_kl_schedule_params {
    float beta;
    float free_bits;
    float warmup_steps;
    int32_t use_free_bits;
} lk_kl_schedule_params;

/* Statistics written by vae_objective_f32: batch means per example, in nats. */
enum {
    LK_VAE_STAT_RECON = 0,
    LK_VAE_STAT_KL = 1,
    LK_VAE_STAT_LOSS = 2,
    LK_VAE_STAT_LEN = 3
};

/* ==== metric learning: pairwise distance, triplet mining, k-NN (kernels/distance.cu, mining.cu) ==== */

/* The distance κ between two embeddings q, r (see src/ops/distance):
 *   SQEUCLIDEAN: max(‖q‖² + ‖r‖² − 2 q·r, 0)      EUCLIDEAN: √ of that
 *   COSINE:      1 − q·r / (max(‖q‖, LK_COSINE_NORM_FLOOR) · max(‖r‖, LK_COSINE_NORM_FLOOR)) */
typedef enum lk_metric {
    LK_METRIC_SQEUCLIDEAN = 0,
    LK_METRIC_EUCLIDEAN = 1,
    LK_METRIC_COSINE = 2
} lk_metric;

/* Floor of each norm in the cosine distance: a zero vector has cosine 0 (distance 1), not NaN. */
#define LK_COSINE_NORM_FLOOR 1e-12f

/* "No index" in the u32 index outputs (no valid positive / negative). */
#define LK_INDEX_NONE 0xffffffffu

/* Pairwise distance forward (x = q [n, d], y = r [m, d]) and backward (dx [n, d] from y [m, d] and
 * g, with g(a, b) = trans_g ? g[b·ldg + a] : g[a·ldg + b]). */
typedef struct lk_distance_params {
    int64_t n;
    int64_t m;
    int64_t d;
    int64_t ldg;
    int32_t metric;
    int32_t trans_g;
} lk_distance_params;

/* Triplet miners (src/ops/mining). */
typedef enum lk_miner {
    LK_MINER_BATCH_HARD = 0,
    LK_MINER_SEMIHARD_FACENET = 1,
    LK_MINER_SEMIHARD_TFA = 2,
    LK_MINER_SEMIHARD_CFTP = 3,
    LK_MINER_BATCH_ALL = 4
} lk_miner;

/* One fused triplet launch. Anchors are the rows of q [n, d] (labels ql [n]), references the rows of
 * r [m, d] (labels rl [m]). metric is the metric of κ after folding `squared` (Euclidean + squared
 * runs as SQEUCLIDEAN); the loss works on ℓ = square_kappa ? κ² : κ; the statistics report
 * δ = sqrt_stats ? √κ : κ. Row kernels handle the anchors [row0, row0 + rows). scale multiplies the
 * gradient (backward). */
typedef struct lk_triplet_params {
    int64_t n;
    int64_t m;
    int64_t d;
    int64_t row0;
    int64_t rows;
    float margin;
    float collapse_eps;
    float scale;
    int32_t metric;
    int32_t square_kappa;
    int32_t sqrt_stats;
    int32_t miner;
    int32_t same_set;
    int32_t tfa_compat;
    int32_t _pad;
} lk_triplet_params;

/* Per-anchor outputs of the triplet forward, as planes of [LEN, n] buffers: u32 ... */
enum {
    LK_ANCHOR_POS_IDX = 0,    /* chosen positive (one-triplet miners), LK_INDEX_NONE otherwise */
    LK_ANCHOR_NEG_IDX = 1,    /* chosen negative (one-triplet miners), LK_INDEX_NONE otherwise */
    LK_ANCHOR_TRIPLETS = 2,   /* triplets of this anchor that enter the loss */
    LK_ANCHOR_ACTIVE = 3,     /* of those, with a loss > 0 */
    LK_ANCHOR_N_POS = 4,      /* valid anchor–positive pairs */
    LK_ANCHOR_N_NEG = 5,      /* anchor–negative pairs */
    LK_ANCHOR_N_COLLAPSE = 6, /* of those pairs, with δ < collapse_eps */
    LK_ANCHOR_U32_LEN = 7
};
/* ... and f32. */
enum {
    LK_ANCHOR_LOSS = 0,       /* Σ of this anchor's triplet losses */
    LK_ANCHOR_KAPPA_POS = 1,  /* κ of the chosen positive pair (one-triplet miners) */
    LK_ANCHOR_KAPPA_NEG = 2,  /* κ of the chosen negative pair (one-triplet miners) */
    LK_ANCHOR_SUM_D_POS = 3,  /* Σ δ over the anchor–positive pairs */
    LK_ANCHOR_SUM_D_NEG = 4,  /* Σ δ over the anchor–negative pairs */
    LK_ANCHOR_F32_LEN = 5
};

/* The batch statistics (u32 words; f32 fields hold the float's bits, 64-bit counts two words). */
enum {
    LK_TRIPLET_STAT_LOSS = 0,
    LK_TRIPLET_STAT_ACTIVE_FRACTION = 1,
    LK_TRIPLET_STAT_MEAN_D_AP = 2,
    LK_TRIPLET_STAT_MEAN_D_AN = 3,
    LK_TRIPLET_STAT_COLLAPSE_FRACTION = 4,
    LK_TRIPLET_STAT_GRAD_WEIGHT = 5, /* f32: 1 / (the loss's divisor), 0 when it is 0 */
    LK_TRIPLET_STAT_VALID_ANCHORS = 6,
    LK_TRIPLET_STAT_SKIPPED_ANCHORS = 7,
    LK_TRIPLET_STAT_TRIPLETS_LO = 8,
    LK_TRIPLET_STAT_TRIPLETS_HI = 9,
    LK_TRIPLET_STAT_ACTIVE_LO = 10,
    LK_TRIPLET_STAT_ACTIVE_HI = 11,
    LK_TRIPLET_STAT_LEN = 12
};

/* Tiled triplet kernels (kernels/mining.cu): a block of LK_MINE_TILE_THREADS threads computes
 * LK_MINE_TILE anchors × LK_MINE_TILE references per tile; triplet_hard_partial_f32 splits the
 * references of each anchor tile into `splits` contiguous ranges of whole tiles and writes one
 * partial per (split, anchor) into planes [LK_HARD_PART_LEN, splits, n] of u32 words (f32 fields
 * hold the float's bits, the f64 sums two words). */
#define LK_MINE_TILE 64
#define LK_MINE_TILE_THREADS 256
enum {
    LK_HARD_PART_BP_I = 0, /* hardest positive: index, κ */
    LK_HARD_PART_BP_K = 1,
    LK_HARD_PART_BN_I = 2, /* hardest (pass 1) / closest farther (pass 2) negative: index, κ */
    LK_HARD_PART_BN_K = 3,
    LK_HARD_PART_MN_I = 4, /* row minimum / maximum of ℓ (tfa_compat fallbacks): index, κ */
    LK_HARD_PART_MN_K = 5,
    LK_HARD_PART_MX_I = 6,
    LK_HARD_PART_MX_K = 7,
    LK_HARD_PART_N_POS = 8,
    LK_HARD_PART_N_NEG = 9,
    LK_HARD_PART_N_COLLAPSE = 10,
    LK_HARD_PART_SUM_D_POS_LO = 11, /* f64 Σ δ over positives: low, high word */
    LK_HARD_PART_SUM_D_POS_HI = 12,
    LK_HARD_PART_SUM_D_NEG_LO = 13,
    LK_HARD_PART_SUM_D_NEG_HI = 14,
    LK_HARD_PART_LEN = 15
};
/* Largest bucket (entries of one reference) the index-based backward sorts in shared memory;
 * larger buckets are gathered by a scan over all anchors. */
#define LK_BUCKET_SORT_CAP 2048

/* Exact k nearest references of each query (kernels/mining.cu). */
#define LK_KNN_MAX_K 64
typedef struct lk_knn_params {
    int64_t n;
    int64_t m;
    int64_t d;
    int64_t k;
    int32_t metric;
    int32_t same_set;
} lk_knn_params;

/* Contrastive loss (kernels/metric_loss.cu): rows n, dimension d, margin, and the weight of each
 * pair's gradient (batch form: scale / (n(n − 1)/2)). */
typedef struct lk_contrastive_params {
    int64_t n;
    int64_t d;
    float margin;
    float weight;
} lk_contrastive_params;

#endif /* LATENTKIT_ABI_H */
