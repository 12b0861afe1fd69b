//! Typed launchers for `kernels/latent.cu`.
//!
//! # Safety
//! `unsafe`: the caller guarantees every buffer covers [rows, cols] (kl_row: rows, kl_weight:
//! cols, offset: 2), checked in `ops::latent`.

use cudarc::driver::CudaSlice;

use super::{KlSchedule, LatentConfig};
use cudarc::driver::LaunchConfig;

use crate::backend::cuda::{abi, grid_1d, grid_rows, launch, CudaBackend};
use crate::error::Result;

fn params(cfg: &LatentConfig, write_kl_elem: bool) -> abi::lk_latent_params {
    abi::lk_latent_params { seed: cfg.seed, sample: i32::from(cfg.sample), write_kl_elem: i32::from(write_kl_elem) }
}

/// Threads per row: the latent width is small (20 for the default VAE), one warp covers it.
const LATENT_ROW_THREADS: u32 = 32;

/// `reparam_kl_fwd_f32(lk_latent_params p, const uint32_t* offset, const float* mu, const float* logvar,
///                     float* z, float* kl_row, float* kl_elem, int64 rows, int64 cols)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn fwd(
    be: &CudaBackend,
    cfg: &LatentConfig,
    offset: &CudaSlice<u32>,
    mu: &CudaSlice<f32>,
    logvar: &CudaSlice<f32>,
    z: &mut CudaSlice<f32>,
    kl_row: &mut CudaSlice<f32>,
    kl_elem: Option<&mut CudaSlice<f32>>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let threads = if cols > 64 { 256 } else { LATENT_ROW_THREADS };
    let cfg_launch = grid_rows(rows, threads);
    let (r, c) = (rows as i64, cols as i64);
    match kl_elem {
        Some(ke) => launch!(
            be,
            "reparam_kl_fwd_f32",
            cfg_launch,
            [&params(cfg, true), offset, mu, logvar, z, kl_row, ke, &r, &c]
        ),
        // The kernel never touches kl_elem when write_kl_elem = 0; a 1-element placeholder fills the slot.
        None => launch!(
            be,
            "reparam_kl_fwd_f32",
            cfg_launch,
            [&params(cfg, false), offset, mu, logvar, z, kl_row, be.placeholder(), &r, &c]
        ),
    }
}

/// `reparam_kl_bwd_f32(lk_latent_params p, const uint32_t* offset, const float* mu, const float* logvar,
///                     const float* dz, const float* kl_weight, float* dmu, float* dlogvar, int64 rows, int64 cols)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn bwd(
    be: &CudaBackend,
    cfg: &LatentConfig,
    offset: &CudaSlice<u32>,
    mu: &CudaSlice<f32>,
    logvar: &CudaSlice<f32>,
    dz: &CudaSlice<f32>,
    kl_weight: &CudaSlice<f32>,
    dmu: &mut CudaSlice<f32>,
    dlogvar: &mut CudaSlice<f32>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let p = params(cfg, false);
    launch!(
        be,
        "reparam_kl_bwd_f32",
        grid_1d(rows * cols),
        [&p, offset, mu, logvar, dz, kl_weight, dmu, dlogvar, &(rows as i64), &(cols as i64)]
    )
}

/// `vae_objective_f32(lk_kl_schedule_params p, const float* optim_state, const float* recon_row,
///                    const float* kl_row, const float* kl_dim, float* kl_weight, float* stats,
///                    float* acc, int64 rows, int64 cols)`: one block.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn objective(
    be: &CudaBackend,
    sched: &KlSchedule,
    optim_state: &CudaSlice<f32>,
    recon_row: &CudaSlice<f32>,
    kl_row: &CudaSlice<f32>,
    kl_dim: Option<&CudaSlice<f32>>,
    kl_weight: &mut CudaSlice<f32>,
    stats: &mut CudaSlice<f32>,
    acc: &mut CudaSlice<f32>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let use_free_bits = kl_dim.is_some() && sched.free_bits > 0.0;
    let p = abi::lk_kl_schedule_params {
        beta: sched.beta,
        free_bits: sched.free_bits,
        warmup_steps: sched.warmup_steps as f32,
        use_free_bits: i32::from(use_free_bits),
    };
    // The kernel reads kl_dim only with use_free_bits set.
    let kl_dim = kl_dim.unwrap_or(be.placeholder());
    let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
    launch!(
        be,
        "vae_objective_f32",
        cfg,
        [&p, optim_state, recon_row, kl_row, kl_dim, kl_weight, stats, acc, &(rows as i64), &(cols as i64)]
    )
}
