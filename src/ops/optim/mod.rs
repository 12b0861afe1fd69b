//! Optimizer steps with PyTorch semantics. The step count t and the bias corrections live in a
//! 3-element device tensor `[t, 1 − β1^t, 1 − β2^t]` advanced by [`optim_tick`], so a captured
//! CUDA graph replays whole training steps without host-side values. Kernels: `kernels/optim.cu`.

pub(crate) mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::{expect_shape, on_device, same_shape};
use crate::backend::{AdamSlot, Backend};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Length of the optimizer step state (`[t, 1 − β1^t, 1 − β2^t]`).
pub const OPTIM_STATE_LEN: usize = 3;

/// Adam / AdamW hyper-parameters. Defaults are PyTorch's `torch.optim.Adam`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// false: Adam (weight decay as an L2 term in the gradient); true: AdamW (decoupled).
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled_weight_decay: false }
    }
}

impl AdamConfig {
    /// AdamW with PyTorch's defaults for the rest (`weight_decay` 1e-2 there).
    pub fn adamw(lr: f32, weight_decay: f32) -> Self {
        Self { lr, weight_decay, decoupled_weight_decay: true, ..Self::default() }
    }

    pub fn validate(&self) -> Result<()> {
        let op = "AdamConfig";
        let unit = |name: &str, v: f32| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid(op, format!("{name} must be in [0, 1), got {v}")))
            }
        };
        non_negative(op, "lr", self.lr)?;
        non_negative(op, "weight_decay", self.weight_decay)?;
        unit("beta1", self.beta1)?;
        unit("beta2", self.beta2)?;
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(Error::invalid(op, format!("eps must be positive, got {}", self.eps)));
        }
        Ok(())
    }
}

/// SGD with momentum, PyTorch semantics (`torch.optim.SGD`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self { lr: 1e-2, momentum: 0.9, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

impl SgdConfig {
    pub fn validate(&self) -> Result<()> {
        let op = "SgdConfig";
        non_negative(op, "lr", self.lr)?;
        non_negative(op, "momentum", self.momentum)?;
        non_negative(op, "weight_decay", self.weight_decay)?;
        if !(0.0..=1.0).contains(&self.dampening) {
            return Err(Error::invalid(op, format!("dampening must be in [0, 1], got {}", self.dampening)));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::invalid(op, "Nesterov momentum needs momentum > 0 and dampening = 0"));
        }
        Ok(())
    }
}

fn non_negative(op: &'static str, name: &str, v: f32) -> Result<()> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(op, format!("{name} must be finite and ≥ 0, got {v}")))
    }
}

/// t += 1 and refreshes the bias corrections in `state` (shape [3]); call once per step, before
/// the parameter updates of that step.
pub fn optim_tick<B: Backend>(b: &B, state: &mut Tensor<B>, beta1: f32, beta2: f32) -> Result<()> {
    on_device("optim_tick", b, state)?;
    expect_shape("optim_tick", "state", state, &[OPTIM_STATE_LEN])?;
    // SAFETY: state holds OPTIM_STATE_LEN elements.
    unsafe { b.optim_tick_f32(state.buf_mut(), beta1, beta2) }
}

/// One Adam/AdamW update of `params` from `grads`, with moments `m`, `v` (all the same shape).
/// [`optim_tick`] must have run at least once on `state` (the bias corrections of t = 0 are 0).
pub fn adam_step<B: Backend>(
    b: &B,
    params: &mut Tensor<B>,
    grads: &Tensor<B>,
    m: &mut Tensor<B>,
    v: &mut Tensor<B>,
    state: &Tensor<B>,
    cfg: &AdamConfig,
) -> Result<()> {
    const OP: &str = "adam_step";
    cfg.validate()?;
    check_adam_tensors(OP, b, params, grads, m, v, state)?;
    let n = params.numel();
    // SAFETY: all four tensors hold n elements, state OPTIM_STATE_LEN.
    unsafe { b.adam_step_f32(params.buf_mut(), grads.buf(), m.buf_mut(), v.buf_mut(), state.buf(), cfg, n) }
}

/// One parameter tensor of [`adam_step_multi`]: `(params, grads, m, v)`, all the same shape.
pub type AdamTensors<'a, B> = (&'a mut Tensor<B>, &'a Tensor<B>, &'a mut Tensor<B>, &'a mut Tensor<B>);

/// [`adam_step`] over several parameter tensors at once, with the same bits on each. On CUDA it
/// is one launch per 16 tensors, so a training step's optimizer is one kernel (one CUDA-graph
/// node) instead of one per tensor.
pub fn adam_step_multi<B: Backend>(
    b: &B,
    tensors: &mut [AdamTensors<'_, B>],
    state: &Tensor<B>,
    cfg: &AdamConfig,
) -> Result<()> {
    const OP: &str = "adam_step_multi";
    cfg.validate()?;
    for (params, grads, m, v) in tensors.iter() {
        check_adam_tensors(OP, b, params, grads, m, v, state)?;
    }
    let mut slots: Vec<AdamSlot<'_, B>> = tensors
        .iter_mut()
        .map(|(params, grads, m, v)| {
            let n = params.numel();
            AdamSlot { params: params.buf_mut(), grads: grads.buf(), m: m.buf_mut(), v: v.buf_mut(), n }
        })
        .collect();
    // SAFETY: each slot's four tensors hold its n elements (checked above), state OPTIM_STATE_LEN.
    unsafe { b.adam_multi_step_f32(&mut slots, state.buf(), cfg) }
}

/// The device and shape checks of one Adam tensor set.
fn check_adam_tensors<B: Backend>(
    op: &'static str,
    b: &B,
    params: &Tensor<B>,
    grads: &Tensor<B>,
    m: &Tensor<B>,
    v: &Tensor<B>,
    state: &Tensor<B>,
) -> Result<()> {
    for t in [params, grads, m, v, state] {
        on_device(op, b, t)?;
    }
    same_shape(op, params, grads)?;
    same_shape(op, params, m)?;
    same_shape(op, params, v)?;
    expect_shape(op, "state", state, &[OPTIM_STATE_LEN])
}

/// One SGD(-momentum) update of `params` from `grads` with velocity buffer `velocity`.
pub fn sgd_step<B: Backend>(
    b: &B,
    params: &mut Tensor<B>,
    grads: &Tensor<B>,
    velocity: &mut Tensor<B>,
    state: &Tensor<B>,
    cfg: &SgdConfig,
) -> Result<()> {
    const OP: &str = "sgd_step";
    cfg.validate()?;
    for t in [&*params, grads, &*velocity, state] {
        on_device(OP, b, t)?;
    }
    same_shape(OP, params, grads)?;
    same_shape(OP, params, velocity)?;
    expect_shape(OP, "state", state, &[OPTIM_STATE_LEN])?;
    let n = params.numel();
    // SAFETY: the three tensors hold n elements, state OPTIM_STATE_LEN.
    unsafe { b.sgd_step_f32(params.buf_mut(), grads.buf(), velocity.buf_mut(), state.buf(), cfg, n) }
}
