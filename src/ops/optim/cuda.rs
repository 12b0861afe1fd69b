//! Typed launchers for `kernels/optim.cu`.
//!
//! # Safety
//! Every function here is `unsafe`: the caller guarantees each buffer holds at least the elements
//! the sizes imply, and `state` its 3 (checked once, in `ops::optim`).

use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut, LaunchConfig};

use super::{AdamConfig, SgdConfig};
use crate::backend::cuda::{abi, grid_1d, launch, CudaBackend};
use crate::backend::AdamSlot;
use crate::error::{Error, Result};

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
    launch!(be, "adam_step_f32", grid_1d(n), [p, g, m, v, state, &adam_params(cfg), &(n as i64)])
}

fn adam_params(cfg: &AdamConfig) -> abi::lk_adam_params {
    abi::lk_adam_params {
        lr: cfg.lr,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        weight_decay: cfg.weight_decay,
        decoupled_weight_decay: i32::from(cfg.decoupled_weight_decay),
    }
}

/// `adam_multi_step_f32(lk_adam_multi_params mp, const float* state)`: the slots in groups of
/// `LK_ADAM_MULTI_MAX`, one launch per group, `LK_ADAM_MULTI_CHUNK` elements of one tensor per block.
pub(crate) unsafe fn adam_multi(
    be: &CudaBackend,
    slots: &mut [AdamSlot<'_, CudaBackend>],
    state: &CudaSlice<f32>,
    cfg: &AdamConfig,
) -> Result<()> {
    let stream = be.stream();
    let chunk = abi::LK_ADAM_MULTI_CHUNK as usize;
    for group in slots.chunks_mut(abi::LK_ADAM_MULTI_MAX as usize) {
        let unused = abi::lk_adam_tensor { p: 0, grad: 0, m: 0, v: 0, n: 0, block0: 0 };
        let mut mp = abi::lk_adam_multi_params {
            hp: adam_params(cfg),
            count: 0,
            _pad: 0,
            t: [unused; abi::LK_ADAM_MULTI_MAX as usize],
        };
        // The guards order later work on these buffers after the launch (with event tracking
        // on); they are dropped once it is queued.
        let mut guards = Vec::with_capacity(4 * group.len());
        let mut blocks = 0usize;
        for s in group.iter_mut().filter(|s| s.n > 0) {
            let (p, gp) = s.params.device_ptr_mut(stream);
            let (grad, gg) = s.grads.device_ptr(stream);
            let (m, gm) = s.m.device_ptr_mut(stream);
            let (v, gv) = s.v.device_ptr_mut(stream);
            mp.t[mp.count as usize] = abi::lk_adam_tensor { p, grad, m, v, n: s.n as i64, block0: blocks as i64 };
            mp.count += 1;
            blocks += s.n.div_ceil(chunk);
            guards.extend([gp, gg, gm, gv]);
        }
        if mp.count == 0 {
            continue;
        }
        let grid =
            u32::try_from(blocks).ok().filter(|&g| g <= i32::MAX as u32).ok_or_else(|| Error::InvalidArgument {
                op: "adam_multi_step",
                msg: format!("{blocks} blocks of {chunk} elements exceed one launch"),
            })?;
        let cfg_launch = LaunchConfig { grid_dim: (grid, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        launch!(be, "adam_multi_step_f32", cfg_launch, [&mp, state])?;
        drop(guards);
    }
    Ok(())
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
