//! Typed launchers for `kernels/metric_loss.cu`.
//!
//! # Safety
//! `unsafe`: the caller guarantees x, x1, x2, dx, dx1, dx2 hold n·d, the per-pair / per-row
//! buffers n, and scale, bias, dscale, dbias 1 element (checked in `ops::metric_loss`).

use cudarc::driver::{CudaSlice, LaunchConfig};

use crate::backend::cuda::{abi, grid_rows, launch, CudaBackend};
use crate::error::Result;

/// Threads per block (≤ 256: the batch backward's coefficient chunk).
const THREADS: u32 = 256;

fn params(margin: f32, weight: f32, n: usize, d: usize) -> abi::lk_contrastive_params {
    abi::lk_contrastive_params { n: n as i64, d: d as i64, margin, weight }
}

/// `contrastive_pair_fwd_f32(lk_contrastive_params p, const float* x1, const float* x2,
///                           const uint32_t* y, float* loss)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn pair_fwd(
    be: &CudaBackend,
    margin: f32,
    x1: &CudaSlice<f32>,
    x2: &CudaSlice<f32>,
    y: &CudaSlice<u32>,
    loss: &mut CudaSlice<f32>,
    n: usize,
    d: usize,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    launch!(be, "contrastive_pair_fwd_f32", grid_rows(n, THREADS), [&params(margin, 0.0, n, d), x1, x2, y, loss])
}

/// `contrastive_pair_bwd_f32(lk_contrastive_params p, const float* x1, const float* x2,
///                           const uint32_t* y, const float* g, float* dx1, float* dx2)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn pair_bwd(
    be: &CudaBackend,
    margin: f32,
    x1: &CudaSlice<f32>,
    x2: &CudaSlice<f32>,
    y: &CudaSlice<u32>,
    g: &CudaSlice<f32>,
    dx1: &mut CudaSlice<f32>,
    dx2: &mut CudaSlice<f32>,
    n: usize,
    d: usize,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let p = params(margin, 0.0, n, d);
    launch!(be, "contrastive_pair_bwd_f32", grid_rows(n, THREADS), [&p, x1, x2, y, g, dx1, dx2])
}

/// `contrastive_batch_fwd_f32(lk_contrastive_params p, const float* x, const uint32_t* labels,
///                            float* row_loss)`
pub(crate) unsafe fn batch_fwd(
    be: &CudaBackend,
    margin: f32,
    x: &CudaSlice<f32>,
    labels: &CudaSlice<u32>,
    row_loss: &mut CudaSlice<f32>,
    n: usize,
    d: usize,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let p = params(margin, 0.0, n, d);
    launch!(be, "contrastive_batch_fwd_f32", grid_rows(n, THREADS), [&p, x, labels, row_loss])
}

/// `contrastive_batch_bwd_f32(lk_contrastive_params p, const float* x, const uint32_t* labels, float* dx)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn batch_bwd(
    be: &CudaBackend,
    margin: f32,
    weight: f32,
    x: &CudaSlice<f32>,
    labels: &CudaSlice<u32>,
    dx: &mut CudaSlice<f32>,
    n: usize,
    d: usize,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let p = params(margin, weight, n, d);
    launch!(be, "contrastive_batch_bwd_f32", grid_rows(n, THREADS), [&p, x, labels, dx])
}

/// `siamese_cos_fwd_f32(const float* x1, const float* x2, const float* y, const float* scale,
///                      const float* bias, float* logits, float* loss, int64 n, int64 d)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn siamese_fwd(
    be: &CudaBackend,
    x1: &CudaSlice<f32>,
    x2: &CudaSlice<f32>,
    y: &CudaSlice<f32>,
    scale: &CudaSlice<f32>,
    bias: &CudaSlice<f32>,
    logits: &mut CudaSlice<f32>,
    loss: &mut CudaSlice<f32>,
    n: usize,
    d: usize,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let (n64, d64) = (n as i64, d as i64);
    launch!(be, "siamese_cos_fwd_f32", grid_rows(n, THREADS), [x1, x2, y, scale, bias, logits, loss, &n64, &d64])
}

/// `siamese_cos_bwd_f32(x1, x2, y, g, scale, bias, float* dx1, float* dx2, int64 n, int64 d)`, then
/// `siamese_cos_param_bwd_f32(x1, x2, y, g, scale, bias, float* dscale, float* dbias, int64 n, int64 d)`
/// (one block).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn siamese_bwd(
    be: &CudaBackend,
    x1: &CudaSlice<f32>,
    x2: &CudaSlice<f32>,
    y: &CudaSlice<f32>,
    g: &CudaSlice<f32>,
    scale: &CudaSlice<f32>,
    bias: &CudaSlice<f32>,
    dx1: &mut CudaSlice<f32>,
    dx2: &mut CudaSlice<f32>,
    dscale: &mut CudaSlice<f32>,
    dbias: &mut CudaSlice<f32>,
    n: usize,
    d: usize,
) -> Result<()> {
    let (n64, d64) = (n as i64, d as i64);
    if n > 0 {
        launch!(be, "siamese_cos_bwd_f32", grid_rows(n, THREADS), [x1, x2, y, g, scale, bias, dx1, dx2, &n64, &d64])?;
    }
    // With n = 0 the one block writes the empty sums, 0.
    let one = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
    launch!(be, "siamese_cos_param_bwd_f32", one, [x1, x2, y, g, scale, bias, dscale, dbias, &n64, &d64])
}
