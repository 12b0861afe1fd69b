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
typedef struct lk_gemm_params {
    int64_t m;
    int64_t n;
    int64_t k;
    int64_t lda;
    int64_t ldb;
    int64_t ldc;
    float alpha;
    float beta;
    int32_t trans_a;
    int32_t trans_b;
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

#endif /* LATENTKIT_ABI_H */
