//! Reconstruction losses, summed over each row (one example), so the caller states the reduction:
//! a per-example mean in nats is `Σ_r row_loss[r] / rows`, and its gradient is the backward with
//! `scale = 1 / rows`. Kernels: `kernels/loss.cu`.
//!
//! - Squared error (the Gaussian likelihood up to constants, the plain autoencoder's loss):
//!   `row_loss[r] = Σ_c (pred − target)²`, `grad = scale · 2 (pred − target)`.
//! - Bernoulli (binary cross-entropy on logits, stable for any finite logit):
//!   `row_loss[r] = Σ_c softplus(l) − l·t`, `grad = scale · (σ(l) − t)`.

pub(crate) mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::{expect_shape, on_device, same_shape};
use crate::backend::Backend;
use crate::error::Result;
use crate::tensor::Tensor;

fn check_fwd<B: Backend>(
    op: &'static str,
    b: &B,
    x: &Tensor<B>,
    t: &Tensor<B>,
    row_loss: &Tensor<B>,
) -> Result<(usize, usize)> {
    for v in [x, t, row_loss] {
        on_device(op, b, v)?;
    }
    same_shape(op, x, t)?;
    let (rows, cols) = x.dims2(op)?;
    expect_shape(op, "row_loss", row_loss, &[rows])?;
    Ok((rows, cols))
}

fn check_bwd<B: Backend>(op: &'static str, b: &B, x: &Tensor<B>, t: &Tensor<B>, grad: &Tensor<B>) -> Result<()> {
    for v in [x, t, grad] {
        on_device(op, b, v)?;
    }
    same_shape(op, x, t)?;
    same_shape(op, x, grad)
}

/// row_loss[r] = Σ_c (pred[r, c] − target[r, c])²; pred, target: [rows, cols], row_loss: [rows].
pub fn mse_fwd<B: Backend>(b: &B, pred: &Tensor<B>, target: &Tensor<B>, row_loss: &mut Tensor<B>) -> Result<()> {
    let (rows, cols) = check_fwd("mse_fwd", b, pred, target, row_loss)?;
    // SAFETY: shapes checked; each tensor's buffer holds its numel.
    unsafe { b.mse_fwd_f32(pred.buf(), target.buf(), row_loss.buf_mut(), rows, cols) }
}

/// grad = scale · 2 (pred − target).
pub fn mse_bwd<B: Backend>(
    b: &B,
    pred: &Tensor<B>,
    target: &Tensor<B>,
    scale: f32,
    grad: &mut Tensor<B>,
) -> Result<()> {
    check_bwd("mse_bwd", b, pred, target, grad)?;
    // SAFETY: shapes checked; each tensor's buffer holds its numel.
    unsafe { b.mse_bwd_f32(pred.buf(), target.buf(), scale, grad.buf_mut(), pred.numel()) }
}

/// row_loss[r] = Σ_c softplus(l) − l·t, the Bernoulli negative log-likelihood in nats.
pub fn bce_logits_fwd<B: Backend>(
    b: &B,
    logits: &Tensor<B>,
    target: &Tensor<B>,
    row_loss: &mut Tensor<B>,
) -> Result<()> {
    let (rows, cols) = check_fwd("bce_logits_fwd", b, logits, target, row_loss)?;
    // SAFETY: shapes checked; each tensor's buffer holds its numel.
    unsafe { b.bce_logits_fwd_f32(logits.buf(), target.buf(), row_loss.buf_mut(), rows, cols) }
}

/// grad = scale · (σ(l) − t).
pub fn bce_logits_bwd<B: Backend>(
    b: &B,
    logits: &Tensor<B>,
    target: &Tensor<B>,
    scale: f32,
    grad: &mut Tensor<B>,
) -> Result<()> {
    check_bwd("bce_logits_bwd", b, logits, target, grad)?;
    // SAFETY: shapes checked; each tensor's buffer holds its numel.
    unsafe { b.bce_logits_bwd_f32(logits.buf(), target.buf(), scale, grad.buf_mut(), logits.numel()) }
}
