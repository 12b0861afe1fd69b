//! The VAE's fused reparameterization and Gaussian KL. Kernels: `kernels/latent.cu`.
//!
//! With μ, log σ² of shape [rows, cols] (one row per example), `lv = clamp(log σ², −30, 20)`,
//! σ = e^{lv/2} and ε the counter-based normal of [`crate::ops::rng`] at (seed, offset, index):
//!
//! - forward: `z = μ + ε·σ` (or `z = μ` when `sample` is false), and
//!   `KL(q(z|x) ‖ N(0, I))` per row = `½ Σ_c (μ² + σ² − log σ² − 1)` in nats, summed over the
//!   latent dimensions in a fixed order (bit-reproducible); optionally each term.
//! - backward, with `w_c` the KL's weight in the loss (`β / batch`, 0 for a dimension at its
//!   free-bits floor): `dμ = dz + w_c·μ`, `dlog σ² = dz·ε·σ/2 + w_c·(σ² − 1)/2`, regenerating ε
//!   instead of storing it.
//!
//! The clamp keeps `exp` finite for every finite input (σ² ∈ [9.4e−14, 4.9e8]); its gradient is
//! passed straight through, so a saturated log σ² is still pulled back by the KL term.

pub mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::rng::OFFSET_LEN;
use super::{expect_shape, on_device, same_shape};
use crate::backend::Backend;
use crate::error::Result;
use crate::tensor::Tensor;

/// Lower clamp of log σ² (see the module docs); `LK_LOGVAR_MIN` in `kernels/latentkit_abi.h`.
pub const LOGVAR_MIN: f32 = -30.0;
/// Upper clamp of log σ²; `LK_LOGVAR_MAX`.
pub const LOGVAR_MAX: f32 = 20.0;

/// Noise stream and mode of one reparameterization call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatentConfig {
    pub seed: u64,
    /// true: z = μ + ε·σ; false: z = μ (evaluation).
    pub sample: bool,
}

fn check<B: Backend>(
    op: &'static str,
    b: &B,
    offset: &Tensor<B, u32>,
    mu: &Tensor<B>,
    logvar: &Tensor<B>,
) -> Result<(usize, usize)> {
    on_device(op, b, offset)?;
    on_device(op, b, mu)?;
    on_device(op, b, logvar)?;
    expect_shape(op, "offset", offset, &[OFFSET_LEN])?;
    same_shape(op, mu, logvar)?;
    mu.dims2(op)
}

/// Forward: writes z ([rows, cols]), kl_row ([rows]) and, when given, kl_elem ([rows, cols]).
#[allow(clippy::too_many_arguments)]
pub fn reparam_kl_fwd<B: Backend>(
    b: &B,
    cfg: &LatentConfig,
    offset: &Tensor<B, u32>,
    mu: &Tensor<B>,
    logvar: &Tensor<B>,
    z: &mut Tensor<B>,
    kl_row: &mut Tensor<B>,
    kl_elem: Option<&mut Tensor<B>>,
) -> Result<()> {
    const OP: &str = "reparam_kl_fwd";
    let (rows, cols) = check(OP, b, offset, mu, logvar)?;
    on_device(OP, b, z)?;
    on_device(OP, b, kl_row)?;
    same_shape(OP, mu, z)?;
    expect_shape(OP, "kl_row", kl_row, &[rows])?;
    if let Some(k) = kl_elem.as_deref() {
        on_device(OP, b, k)?;
        same_shape(OP, mu, k)?;
    }
    // SAFETY: every tensor's shape was checked against (rows, cols) above.
    unsafe {
        b.reparam_kl_fwd_f32(
            cfg,
            offset.buf(),
            mu.buf(),
            logvar.buf(),
            z.buf_mut(),
            kl_row.buf_mut(),
            kl_elem.map(|k| k.buf_mut()),
            rows,
            cols,
        )
    }
}

/// Backward: writes dmu and dlogvar ([rows, cols]) from dz and the per-dimension KL weights
/// (`kl_weight`: [cols]).
#[allow(clippy::too_many_arguments)]
pub fn reparam_kl_bwd<B: Backend>(
    b: &B,
    cfg: &LatentConfig,
    offset: &Tensor<B, u32>,
    mu: &Tensor<B>,
    logvar: &Tensor<B>,
    dz: &Tensor<B>,
    kl_weight: &Tensor<B>,
    dmu: &mut Tensor<B>,
    dlogvar: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "reparam_kl_bwd";
    let (rows, cols) = check(OP, b, offset, mu, logvar)?;
    for t in [dz, kl_weight, &*dmu, &*dlogvar] {
        on_device(OP, b, t)?;
    }
    same_shape(OP, mu, dz)?;
    same_shape(OP, mu, dmu)?;
    same_shape(OP, mu, dlogvar)?;
    expect_shape(OP, "kl_weight", kl_weight, &[cols])?;
    // SAFETY: every tensor's shape was checked against (rows, cols) above.
    unsafe {
        b.reparam_kl_bwd_f32(
            cfg,
            offset.buf(),
            mu.buf(),
            logvar.buf(),
            dz.buf(),
            kl_weight.buf(),
            dmu.buf_mut(),
            dlogvar.buf_mut(),
            rows,
            cols,
        )
    }
}
