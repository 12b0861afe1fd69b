//! Pair losses of siamese networks: the contrastive loss (for given pairs, and over every in-batch
//! pair without an N×N matrix) and a cosine-similarity head trained with BCE-with-logits.
//! Kernels: `kernels/metric_loss.cu`.
//!
//! # Contrastive loss (Hadsell, Chopra, LeCun 2006)
//! With d = ‖x1 − x2‖ (computed from the difference, so identical points give exactly 0) and
//! y = 1 for [`PairLabel::Similar`], 0 for [`PairLabel::Dissimilar`]:
//! `ℓ = ½·y·d² + ½·(1 − y)·max(0, m − d)²`, and
//! `∂ℓ/∂x1 = c·(x1 − x2) = −∂ℓ/∂x2` with `c = 1` (similar) or `c = −max(0, m − d)/d`
//! (dissimilar), **c = 0 at d = 0** (the dissimilar branch's direction is undefined there; this is
//! the stated subgradient, never NaN).
//! - [`contrastive_fwd`] / [`contrastive_bwd`]: pairs `(x1[i], x2[i], y[i])`; the loss per pair
//!   (`[N]`); the backward takes the upstream gradient per pair (e.g. 1/N for a mean).
//! - [`contrastive_batch_fwd`] / [`contrastive_batch_bwd`]: every unordered pair {i, j} of one
//!   batch x [N, D] with y_ij = [labels equal]. The forward writes `row_loss[i] = Σ_{j>i} ℓ_ij`;
//!   the batch loss is the mean over pairs, `Σ_i row_loss[i] / P` with P = [`batch_pairs`]`(N)` =
//!   N(N − 1)/2 (0 when P = 0). The backward writes the gradient of `scale·loss`. Both stream: one
//!   row per thread block, O(N·D) memory.
//!
//! # Siamese cosine head
//! Per pair: `cos_i = x1·x2 / (max(‖x1‖, ε)·max(‖x2‖, ε))` (ε = 1e−12, as the cosine metric),
//! `s_i = scale·cos_i + bias` (the logit), `loss_i = softplus(s_i) − y_i·s_i` (BCE with logits,
//! stable for any s), y_i ∈ [0, 1]. Backward with the upstream g_i: `ds_i = g_i·(σ(s_i) − y_i)`,
//! dx1, dx2 through the cosine, `dscale = Σ ds_i·cos_i`, `dbias = Σ ds_i` (fixed-order sums).
//! `scale` and `bias` are 1-element tensors so they can be learned on the device.

pub(crate) mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::distance::dims2_strict;
use super::{expect_shape, on_device, same_shape};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The label of a pair for the contrastive loss; on the device a u32 (1 similar, 0 dissimilar;
/// the kernels treat any nonzero value as similar).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PairLabel {
    Similar,
    Dissimilar,
}

impl PairLabel {
    pub fn as_u32(self) -> u32 {
        match self {
            PairLabel::Similar => 1,
            PairLabel::Dissimilar => 0,
        }
    }
}

/// A `[N]` u32 label tensor from pair labels.
pub fn pair_labels<B: Backend>(b: &B, labels: &[PairLabel]) -> Result<Tensor<B, u32>> {
    let v: Vec<u32> = labels.iter().map(|l| l.as_u32()).collect();
    Tensor::from_slice(b, &[v.len()], &v)
}

/// Number of unordered pairs of a batch of n: n(n − 1)/2.
pub fn batch_pairs(n: usize) -> usize {
    n * n.saturating_sub(1) / 2
}

fn nonzero_dim(op: &'static str, d: usize) -> Result<()> {
    if d == 0 {
        return Err(Error::shape(op, "embedding dimension D must be at least 1"));
    }
    Ok(())
}

fn check_margin(op: &'static str, margin: f32) -> Result<()> {
    if !(margin.is_finite() && margin >= 0.0) {
        return Err(Error::invalid(op, format!("margin must be finite and ≥ 0, got {margin}")));
    }
    Ok(())
}

/// (n, d) of two same-shape [N, D] tensors and an [N] label tensor.
fn check_pairs<B: Backend, T: crate::backend::Scalar>(
    op: &'static str,
    b: &B,
    x1: &Tensor<B>,
    x2: &Tensor<B>,
    y: &Tensor<B, T>,
) -> Result<(usize, usize)> {
    on_device(op, b, x1)?;
    on_device(op, b, x2)?;
    on_device(op, b, y)?;
    let (n, d) = dims2_strict(op, "x1", x1)?;
    same_shape(op, x1, x2)?;
    nonzero_dim(op, d)?;
    expect_shape(op, "y", y, &[n])?;
    Ok((n, d))
}

/// `loss[i] = ℓ(x1[i], x2[i], y[i])`; x1, x2: `[N, D]`, y: `[N]` u32, loss: `[N]`.
pub fn contrastive_fwd<B: Backend>(
    b: &B,
    margin: f32,
    x1: &Tensor<B>,
    x2: &Tensor<B>,
    y: &Tensor<B, u32>,
    loss: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "contrastive_fwd";
    check_margin(OP, margin)?;
    let (n, d) = check_pairs(OP, b, x1, x2, y)?;
    on_device(OP, b, loss)?;
    expect_shape(OP, "loss", loss, &[n])?;
    // SAFETY: x1, x2 hold n·d, y and loss n elements (checked above).
    unsafe { b.contrastive_pair_fwd_f32(margin, x1.buf(), x2.buf(), y.buf(), loss.buf_mut(), n, d) }
}

/// dx1, dx2 ([N, D]) of Σ_i d_loss[i]·ℓ_i.
#[allow(clippy::too_many_arguments)]
pub fn contrastive_bwd<B: Backend>(
    b: &B,
    margin: f32,
    x1: &Tensor<B>,
    x2: &Tensor<B>,
    y: &Tensor<B, u32>,
    d_loss: &Tensor<B>,
    dx1: &mut Tensor<B>,
    dx2: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "contrastive_bwd";
    check_margin(OP, margin)?;
    let (n, d) = check_pairs(OP, b, x1, x2, y)?;
    for t in [d_loss, &*dx1, &*dx2] {
        on_device(OP, b, t)?;
    }
    expect_shape(OP, "d_loss", d_loss, &[n])?;
    same_shape(OP, x1, dx1)?;
    same_shape(OP, x1, dx2)?;
    // SAFETY: x1, x2, dx1, dx2 hold n·d, y and d_loss n elements (checked above).
    unsafe {
        b.contrastive_pair_bwd_f32(
            margin,
            x1.buf(),
            x2.buf(),
            y.buf(),
            d_loss.buf(),
            dx1.buf_mut(),
            dx2.buf_mut(),
            n,
            d,
        )
    }
}

fn check_batch<B: Backend>(op: &'static str, b: &B, x: &Tensor<B>, labels: &Tensor<B, u32>) -> Result<(usize, usize)> {
    on_device(op, b, x)?;
    on_device(op, b, labels)?;
    let (n, d) = dims2_strict(op, "x", x)?;
    expect_shape(op, "labels", labels, &[n])?;
    nonzero_dim(op, d)?;
    Ok((n, d))
}

/// row_loss[i] = Σ_{j>i} ℓ(x_i, x_j, [labels_i = labels_j]); the batch loss is
/// Σ row_loss / [`batch_pairs`]`(N)`.
pub fn contrastive_batch_fwd<B: Backend>(
    b: &B,
    margin: f32,
    x: &Tensor<B>,
    labels: &Tensor<B, u32>,
    row_loss: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "contrastive_batch_fwd";
    check_margin(OP, margin)?;
    let (n, d) = check_batch(OP, b, x, labels)?;
    on_device(OP, b, row_loss)?;
    expect_shape(OP, "row_loss", row_loss, &[n])?;
    // SAFETY: x holds n·d, labels and row_loss n elements (checked above).
    unsafe { b.contrastive_batch_fwd_f32(margin, x.buf(), labels.buf(), row_loss.buf_mut(), n, d) }
}

/// dx ([N, D]) of `scale`·(the batch's mean pair loss).
pub fn contrastive_batch_bwd<B: Backend>(
    b: &B,
    margin: f32,
    x: &Tensor<B>,
    labels: &Tensor<B, u32>,
    scale: f32,
    dx: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "contrastive_batch_bwd";
    check_margin(OP, margin)?;
    if !scale.is_finite() {
        return Err(Error::invalid(OP, format!("scale must be finite, got {scale}")));
    }
    let (n, d) = check_batch(OP, b, x, labels)?;
    on_device(OP, b, dx)?;
    same_shape(OP, x, dx)?;
    let pairs = batch_pairs(n);
    let weight = if pairs > 0 { (f64::from(scale) / pairs as f64) as f32 } else { 0.0 };
    // SAFETY: x and dx hold n·d, labels n elements (checked above).
    unsafe { b.contrastive_batch_bwd_f32(margin, weight, x.buf(), labels.buf(), dx.buf_mut(), n, d) }
}

fn check_head<B: Backend>(op: &'static str, b: &B, scale: &Tensor<B>, bias: &Tensor<B>) -> Result<()> {
    on_device(op, b, scale)?;
    on_device(op, b, bias)?;
    expect_shape(op, "scale", scale, &[1])?;
    expect_shape(op, "bias", bias, &[1])
}

/// logits[i] = scale·cos(x1[i], x2[i]) + bias and loss[i] = BCE-with-logits(logits[i], y[i]);
/// x1, x2: [N, D], y, logits, loss: [N], scale, bias: [1].
#[allow(clippy::too_many_arguments)]
pub fn siamese_cos_fwd<B: Backend>(
    b: &B,
    x1: &Tensor<B>,
    x2: &Tensor<B>,
    y: &Tensor<B>,
    scale: &Tensor<B>,
    bias: &Tensor<B>,
    logits: &mut Tensor<B>,
    loss: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "siamese_cos_fwd";
    let (n, d) = check_pairs(OP, b, x1, x2, y)?;
    check_head(OP, b, scale, bias)?;
    on_device(OP, b, logits)?;
    on_device(OP, b, loss)?;
    expect_shape(OP, "logits", logits, &[n])?;
    expect_shape(OP, "loss", loss, &[n])?;
    // SAFETY: x1, x2 hold n·d, y, logits, loss n, scale and bias 1 element (checked above).
    unsafe {
        b.siamese_cos_fwd_f32(
            x1.buf(),
            x2.buf(),
            y.buf(),
            scale.buf(),
            bias.buf(),
            logits.buf_mut(),
            loss.buf_mut(),
            n,
            d,
        )
    }
}

/// dx1, dx2 ([N, D]), dscale, dbias ([1]) of Σ_i d_loss[i]·loss_i.
#[allow(clippy::too_many_arguments)]
pub fn siamese_cos_bwd<B: Backend>(
    b: &B,
    x1: &Tensor<B>,
    x2: &Tensor<B>,
    y: &Tensor<B>,
    d_loss: &Tensor<B>,
    scale: &Tensor<B>,
    bias: &Tensor<B>,
    dx1: &mut Tensor<B>,
    dx2: &mut Tensor<B>,
    dscale: &mut Tensor<B>,
    dbias: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "siamese_cos_bwd";
    let (n, d) = check_pairs(OP, b, x1, x2, y)?;
    check_head(OP, b, scale, bias)?;
    for t in [d_loss, &*dx1, &*dx2, &*dscale, &*dbias] {
        on_device(OP, b, t)?;
    }
    expect_shape(OP, "d_loss", d_loss, &[n])?;
    same_shape(OP, x1, dx1)?;
    same_shape(OP, x1, dx2)?;
    expect_shape(OP, "dscale", dscale, &[1])?;
    expect_shape(OP, "dbias", dbias, &[1])?;
    // SAFETY: x1, x2, dx1, dx2 hold n·d, y and d_loss n, the four scalars 1 element (checked above).
    unsafe {
        b.siamese_cos_bwd_f32(
            x1.buf(),
            x2.buf(),
            y.buf(),
            d_loss.buf(),
            scale.buf(),
            bias.buf(),
            dx1.buf_mut(),
            dx2.buf_mut(),
            dscale.buf_mut(),
            dbias.buf_mut(),
            n,
            d,
        )
    }
}
