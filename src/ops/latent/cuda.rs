//! Typed launchers for `kernels/latent.cu`.
//!
//! # Safety
//! `unsafe`: the caller guarantees every buffer covers [rows, cols] (kl_row: rows, kl_weight:
//! cols, offset: 2), checked in `ops::latent`.

use cudarc::driver::CudaSlice;

use super::LatentConfig;
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
