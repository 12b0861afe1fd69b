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
//!
//! Kernels (`kernels/latent.cu`): [`LatentKernel`] lists the numbered versions, which give the same
//! bits for z, the KL terms, dμ and dlog σ² (only `kl_row`'s summation order differs);
//! [`LatentKernel::Auto`] picks one by the latent width ([`LatentKernel::resolve_fwd`]).

pub(crate) mod cpu;
/// One latent dimension's KL term in f32, as the CPU twin computes it.
pub use cpu::kl_term;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::rng::OFFSET_LEN;
use super::{expect_shape, on_device, same_shape};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Lower clamp of log σ² (see the module docs); `LK_LOGVAR_MIN` in `kernels/latentkit_abi.h`.
pub const LOGVAR_MIN: f32 = -30.0;
/// Upper clamp of log σ²; `LK_LOGVAR_MAX`.
pub const LOGVAR_MAX: f32 = 20.0;

/// The KL term's weighting during training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KlSchedule {
    /// Final weight of the KL term (1 for the ELBO).
    pub beta: f32,
    /// Steps over which the weight rises linearly from 0 to `beta` (0: no warm-up).
    pub warmup_steps: u64,
    /// Per-dimension floor on the batch-mean KL, in nats (0: off).
    pub free_bits: f32,
}

impl Default for KlSchedule {
    fn default() -> Self {
        Self { beta: 1.0, warmup_steps: 0, free_bits: 0.0 }
    }
}

impl KlSchedule {
    /// β at a given (0-based) step.
    pub fn beta_at(&self, step: u64) -> f32 {
        if self.warmup_steps == 0 {
            self.beta
        } else {
            self.beta * (step.saturating_add(1) as f32 / self.warmup_steps as f32).min(1.0)
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.beta >= 0.0 && self.beta.is_finite() && self.free_bits >= 0.0 && self.free_bits.is_finite()) {
            return Err(Error::invalid("KlSchedule", format!("beta and free_bits must be finite and ≥ 0: {self:?}")));
        }
        Ok(())
    }
}

/// Elements of the VAE statistics tensors: [recon, KL, loss] batch means per example.
pub const VAE_STAT_LEN: usize = 3;

/// Noise stream and mode of one reparameterization call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatentConfig {
    pub seed: u64,
    /// true: z = μ + ε·σ; false: z = μ (evaluation).
    pub sample: bool,
}

/// Which CUDA kernel version runs the reparameterization + KL (the CPU path ignores it). The numbered
/// versions stay while tuning, as in llm.c.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LatentKernel {
    /// Forward: [`LatentKernel::Quad`] for rows of at most [`QUAD_MAX_COLS`] columns, else
    /// [`LatentKernel::RowPerBlock`]. Backward: [`LatentKernel::Quad`].
    #[default]
    Auto,
    /// v1: forward one block per row (one Philox block per element, a block reduction per row);
    /// backward one element per thread.
    RowPerBlock,
    /// v2: each thread owns quads of 4 consecutive elements (one Philox block gives their 4
    /// normals), float4 loads and stores; the forward works on groups of rows that start on a quad
    /// and adds each row's KL terms from shared memory. Forward rows up to [`QUAD_MAX_COLS`].
    Quad,
}

/// Widest row the quad forward kernel takes (its row group's KL terms live in shared memory).
pub const QUAD_MAX_COLS: usize = 256;

impl LatentKernel {
    /// The forward kernel for rows of `cols` columns: resolves `Auto`; errors for `Quad` on rows
    /// wider than [`QUAD_MAX_COLS`].
    pub fn resolve_fwd(self, cols: usize) -> Result<LatentKernel> {
        match self {
            LatentKernel::Auto if cols <= QUAD_MAX_COLS => Ok(LatentKernel::Quad),
            LatentKernel::Auto => Ok(LatentKernel::RowPerBlock),
            LatentKernel::Quad if cols > QUAD_MAX_COLS => Err(Error::invalid(
                "reparam_kl_fwd",
                format!("LatentKernel::Quad takes rows of at most {QUAD_MAX_COLS} columns, got {cols}"),
            )),
            k => Ok(k),
        }
    }

    /// The backward kernel: resolves `Auto` (every version takes any shape).
    pub fn resolve_bwd(self) -> LatentKernel {
        match self {
            LatentKernel::Auto => LatentKernel::Quad,
            k => k,
        }
    }
}

/// The row groups of the quad forward kernel for rows of `cols` columns: `rows` per group, a
/// multiple of 4 (so every group starts on a Philox block: `r0·cols` is a multiple of 4), about
/// 1024 elements (4 per thread of a 256-thread block); `stride` is the row stride of the KL terms
/// in shared memory, `cols` rounded up to odd so the per-row sums read distinct banks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuadGroups {
    pub rows: usize,
    pub stride: usize,
}

impl QuadGroups {
    /// Elements of a group: 4 per thread of the kernel's 256-thread block.
    pub const ELEMS: usize = 1024;

    pub fn new(cols: usize) -> Self {
        Self { rows: 4 * (Self::ELEMS / 4 / cols.max(1)).max(1), stride: cols | 1 }
    }

    /// Bytes of shared memory for one group's KL terms.
    pub fn smem_bytes(&self) -> usize {
        self.rows * self.stride * std::mem::size_of::<f32>()
    }
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

/// Forward: writes z ([rows, cols]), kl_row ([rows]) and, when given, kl_elem ([rows, cols]), with
/// the kernel that [`LatentKernel::Auto`] picks.
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
    reparam_kl_fwd_with(b, cfg, LatentKernel::Auto, offset, mu, logvar, z, kl_row, kl_elem)
}

/// [`reparam_kl_fwd`] with a named kernel version (benchmarks, tests).
#[allow(clippy::too_many_arguments)]
pub fn reparam_kl_fwd_with<B: Backend>(
    b: &B,
    cfg: &LatentConfig,
    kernel: LatentKernel,
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
    let kernel = kernel.resolve_fwd(cols)?;
    // SAFETY: every tensor's shape was checked against (rows, cols) above.
    unsafe {
        b.reparam_kl_fwd_f32(
            cfg,
            kernel,
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
/// (`kl_weight`: [cols]), with the kernel that [`LatentKernel::Auto`] picks.
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
    reparam_kl_bwd_with(b, cfg, LatentKernel::Auto, offset, mu, logvar, dz, kl_weight, dmu, dlogvar)
}

/// [`reparam_kl_bwd`] with a named kernel version (benchmarks, tests).
#[allow(clippy::too_many_arguments)]
pub fn reparam_kl_bwd_with<B: Backend>(
    b: &B,
    cfg: &LatentConfig,
    kernel: LatentKernel,
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
            kernel.resolve_bwd(),
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

/// The VAE objective of one batch, on the device: from the per-row recon and KL terms ([rows]),
/// the step count in `optim_state` (for the warm-up) and, with free bits, the per-dimension KL
/// sums `kl_dim` ([cols], a column sum of the KL terms), writes the per-dimension KL weights
/// `kl_weight` ([cols]) for [`reparam_kl_bwd`], `stats = [recon, KL, loss]` (batch means) and
/// adds `stats` to `acc`. See [`KlSchedule`] for the weighting.
#[allow(clippy::too_many_arguments)]
pub fn vae_objective<B: Backend>(
    b: &B,
    sched: &KlSchedule,
    optim_state: &Tensor<B>,
    recon_row: &Tensor<B>,
    kl_row: &Tensor<B>,
    kl_dim: Option<&Tensor<B>>,
    kl_weight: &mut Tensor<B>,
    stats: &mut Tensor<B>,
    acc: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "vae_objective";
    sched.validate()?;
    for t in [optim_state, recon_row, kl_row, &*kl_weight, &*stats, &*acc] {
        on_device(OP, b, t)?;
    }
    expect_shape(OP, "optim_state", optim_state, &[crate::ops::optim::OPTIM_STATE_LEN])?;
    let rows = recon_row.numel();
    expect_shape(OP, "recon_row", recon_row, &[rows])?;
    expect_shape(OP, "kl_row", kl_row, &[rows])?;
    let cols = kl_weight.numel();
    expect_shape(OP, "kl_weight", kl_weight, &[cols])?;
    expect_shape(OP, "stats", stats, &[VAE_STAT_LEN])?;
    expect_shape(OP, "acc", acc, &[VAE_STAT_LEN])?;
    if rows == 0 {
        return Err(Error::shape(OP, "empty batch"));
    }
    match kl_dim {
        Some(k) => {
            on_device(OP, b, k)?;
            expect_shape(OP, "kl_dim", k, &[cols])?;
        }
        None if sched.free_bits > 0.0 => {
            return Err(Error::invalid(OP, "free bits need the per-dimension KL sums (kl_dim)"))
        }
        None => {}
    }
    // SAFETY: every shape checked above.
    unsafe {
        b.vae_objective_f32(
            sched,
            optim_state.buf(),
            recon_row.buf(),
            kl_row.buf(),
            kl_dim.map(|k| k.buf()),
            kl_weight.buf_mut(),
            stats.buf_mut(),
            acc.buf_mut(),
            rows,
            cols,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quad_groups_start_on_a_philox_block_and_fit_one_block() {
        for cols in 0..=QUAD_MAX_COLS {
            let g = QuadGroups::new(cols);
            assert!(g.rows % 4 == 0 && g.rows >= 4, "cols {cols}: {g:?}");
            assert!(g.stride >= cols && g.stride % 2 == 1, "cols {cols}: {g:?}");
            assert!(g.rows * cols <= QuadGroups::ELEMS || g.rows == 4, "cols {cols}: {g:?}");
            assert!(g.smem_bytes() <= 6 * 1024, "cols {cols}: {g:?}");
        }
        assert_eq!(QuadGroups::new(16), QuadGroups { rows: 64, stride: 17 });
        assert_eq!(QuadGroups::new(20), QuadGroups { rows: 48, stride: 21 });
    }

    #[test]
    fn auto_picks_quad_up_to_its_width_and_quad_refuses_wider_rows() {
        assert_eq!(LatentKernel::Auto.resolve_fwd(QUAD_MAX_COLS).unwrap(), LatentKernel::Quad);
        assert_eq!(LatentKernel::Auto.resolve_fwd(QUAD_MAX_COLS + 1).unwrap(), LatentKernel::RowPerBlock);
        assert!(LatentKernel::Quad.resolve_fwd(QUAD_MAX_COLS + 1).is_err());
        assert_eq!(LatentKernel::RowPerBlock.resolve_fwd(10_000).unwrap(), LatentKernel::RowPerBlock);
        assert_eq!(LatentKernel::Auto.resolve_bwd(), LatentKernel::Quad);
    }
}
