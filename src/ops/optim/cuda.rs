//! Typed launchers for `kernels/optim.cu`.
//!
//! # Safety
//! Every function here is `unsafe`: the caller guarantees each buffer holds at least the elements
//! the sizes imply, and `state` its 3 (checked once, in `ops::optim`).

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::{AdamConfig, SgdConfig};
use crate::backend::cuda::{abi, grid_1d, launch, CudaBackend};
use crate::error::Result;

/// `optim_tick_f32(float* state, float beta1, float beta2)`: a single thread.
pub(crate) unsafe fn tick(be: &CudaBackend, state: &mut CudaSlice<f32>, beta1: f32, beta2: f32) -> Result<()> {
    let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1, 1, 1), shared_mem_bytes: 0 };
    launch!(be, "optim_tick_f32", cfg, [state, &beta1, &beta2])
}

/// `adam_step_f32(float* p, const float* grad, float* m, float* v, const float* state, lk_adam_params hp, int64 n)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn adam(
    be: &CudaBackend,
    p: &mut CudaSlice<f32>,
    g: &CudaSlice<f32>,
    m: &mut CudaSlice<f32>,
    v: &mut CudaSlice<f32>,
    state: &CudaSlice<f32>,
    cfg: &AdamConfig,
    n: usize,
) -> Result<()> {
    let hp = abi::lk_adam_params {
        lr: cfg.lr,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        weight_decay: cfg.weight_decay,
        decoupled_weight_decay: i32::from(cfg.decoupled_weight_decay),
    };
    launch!(be, "adam_step_f32", grid_1d(n), [p, g, m, v, state, &hp, &(n as i64)])
}

/// `sgd_momentum_step_f32(float* p, const float* grad, float* buf, const float* state, lk_sgd_params hp, int64 n)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgd(
    be: &CudaBackend,
    p: &mut CudaSlice<f32>,
    g: &CudaSlice<f32>,
    buf: &mut CudaSlice<f32>,
    state: &CudaSlice<f32>,
    cfg: &SgdConfig,
    n: usize,
) -> Result<()> {
    let hp = abi::lk_sgd_params {
        lr: cfg.lr,
        momentum: cfg.momentum,
        dampening: cfg.dampening,
        weight_decay: cfg.weight_decay,
        nesterov: i32::from(cfg.nesterov),
        _pad: 0,
    };
    launch!(be, "sgd_momentum_step_f32", grid_1d(n), [p, g, buf, state, &hp, &(n as i64)])
}
