//! Typed launchers for `kernels/latent.cu`.
//!
//! # Safety
//! `unsafe`: the caller guarantees every buffer covers [rows, cols] (kl_row: rows, kl_weight:
//! cols, offset: 2), checked in `ops::latent`.

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::{KlSchedule, LatentConfig, LatentKernel, QuadGroups};
use crate::backend::cuda::{abi, grid_1d, grid_rows, launch, CudaBackend};
use crate::error::Result;

fn params(cfg: &LatentConfig, write_kl_elem: bool) -> abi::lk_latent_params {
    abi::lk_latent_params { seed: cfg.seed, sample: i32::from(cfg.sample), write_kl_elem: i32::from(write_kl_elem) }
}

/// v1 threads per row: the row's width rounded up to whole warps (`lk::block_sum` needs a multiple
/// of 32), at most 256. Narrow rows (20 for the default VAE) get one warp.
fn row_threads(cols: usize) -> u32 {
    cols.div_ceil(32).clamp(1, 8) as u32 * 32
}

/// Threads per block of `reparam_kl_fwd_quad_f32` (`LK_LATENT_QUAD_THREADS` in latent.cu): 4
/// elements each make a group of [`QuadGroups::ELEMS`].
const QUAD_THREADS: u32 = (QuadGroups::ELEMS / 4) as u32;

/// Blocks of the quad forward: one per row group, at most as many as the GPU holds at once
/// (`per_sm` resident blocks on each of `sms` SMs, from the occupancy calculator: a grid larger than
/// that would run its last blocks as a tail after the others); the kernel loops over the remaining
/// groups.
fn quad_fwd_blocks(groups: usize, sms: usize, per_sm: usize) -> u32 {
    groups.clamp(1, (per_sm.max(1) * sms).clamp(1, 65_535)) as u32
}

/// `reparam_kl_fwd_f32(lk_latent_params p, const uint32_t* offset, const float* mu, const float* logvar,
///                     float* z, float* kl_row, float* kl_elem, int64 rows, int64 cols)` (v1), or
/// `reparam_kl_fwd_quad_f32(..., int64 rows, int64 cols, int32 group_rows, int32 terms_stride)` (v2,
/// with group_rows·terms_stride floats of dynamic shared memory).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn fwd(
    be: &CudaBackend,
    cfg: &LatentConfig,
    kernel: LatentKernel,
    offset: &CudaSlice<u32>,
    mu: &CudaSlice<f32>,
    logvar: &CudaSlice<f32>,
    z: &mut CudaSlice<f32>,
    kl_row: &mut CudaSlice<f32>,
    kl_elem: Option<&mut CudaSlice<f32>>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let (r, c) = (rows as i64, cols as i64);
    let p = params(cfg, kl_elem.is_some());
    // The kernels never touch kl_elem when write_kl_elem = 0; a 1-element placeholder fills the slot.
    if kernel.resolve_fwd(cols)? == LatentKernel::Quad {
        const NAME: &str = "reparam_kl_fwd_quad_f32";
        let g = QuadGroups::new(cols);
        // The occupancy query is a host-side driver call (no stream work, so it may run during
        // graph capture); 4 blocks per SM if it fails.
        let per_sm = be
            .function(NAME)?
            .occupancy_max_active_blocks_per_multiprocessor(QUAD_THREADS, g.smem_bytes(), None)
            .map_or(4, |b| b as usize);
        let launch_cfg = LaunchConfig {
            grid_dim: (quad_fwd_blocks(rows.div_ceil(g.rows), be.sm_count(), per_sm), 1, 1),
            block_dim: (QUAD_THREADS, 1, 1),
            shared_mem_bytes: g.smem_bytes() as u32,
        };
        let (gr, gs) = (g.rows as i32, g.stride as i32);
        return match kl_elem {
            Some(ke) => launch!(be, NAME, launch_cfg, [&p, offset, mu, logvar, z, kl_row, ke, &r, &c, &gr, &gs]),
            None => {
                launch!(be, NAME, launch_cfg, [&p, offset, mu, logvar, z, kl_row, be.placeholder(), &r, &c, &gr, &gs])
            }
        };
    }
    let launch_cfg = grid_rows(rows, row_threads(cols));
    const NAME: &str = "reparam_kl_fwd_f32";
    match kl_elem {
        Some(ke) => launch!(be, NAME, launch_cfg, [&p, offset, mu, logvar, z, kl_row, ke, &r, &c]),
        None => launch!(be, NAME, launch_cfg, [&p, offset, mu, logvar, z, kl_row, be.placeholder(), &r, &c]),
    }
}

/// `reparam_kl_bwd_f32(lk_latent_params p, const uint32_t* offset, const float* mu, const float* logvar,
///                     const float* dz, const float* kl_weight, float* dmu, float* dlogvar, int64 rows, int64 cols)`
/// (v1, a thread per element) or `reparam_kl_bwd_quad_f32` (v2, same arguments, a thread per quad).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn bwd(
    be: &CudaBackend,
    cfg: &LatentConfig,
    kernel: LatentKernel,
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
    let n = rows * cols;
    let (name, launch_cfg) = match kernel.resolve_bwd() {
        LatentKernel::Quad => ("reparam_kl_bwd_quad_f32", grid_1d(n.div_ceil(4))),
        _ => ("reparam_kl_bwd_f32", grid_1d(n)),
    };
    launch!(be, name, launch_cfg, [&p, offset, mu, logvar, dz, kl_weight, dmu, dlogvar, &(rows as i64), &(cols as i64)])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_rounds_the_row_up_to_whole_warps() {
        assert_eq!([1, 20, 32, 33, 64, 65, 256, 257, 10_000].map(row_threads), [32, 32, 32, 64, 64, 96, 256, 256, 256]);
    }

    #[test]
    fn quad_grid_is_one_block_per_group_up_to_the_resident_blocks() {
        assert_eq!(quad_fwd_blocks(0, 132, 6), 1);
        assert_eq!(quad_fwd_blocks(100, 132, 6), 100);
        assert_eq!(quad_fwd_blocks(16_384, 132, 6), 792);
        assert_eq!(quad_fwd_blocks(16_384, 132, 0), 132, "at least one per SM");
        assert_eq!(QUAD_THREADS, 256);
    }
}
