//! Typed launchers for `kernels/loss.cu`.
//!
//! # Safety
//! Every function here is `unsafe`: the caller guarantees each buffer holds at least the elements
//! the sizes imply (checked once, in `ops::loss`).

use cudarc::driver::CudaSlice;

use crate::backend::cuda::{grid_1d, grid_rows, launch, CudaBackend};
use crate::error::Result;

/// Which per-row loss.
#[derive(Clone, Copy)]
pub(crate) enum RowLoss {
    Mse,
    BceLogits,
}

/// Threads per row in the forward kernels: a multiple of 32 (lk::block_sum), enough for 784.
const ROW_THREADS: u32 = 256;

/// `{mse,bce_logits}_fwd_f32(const float* x, const float* target, float* row_loss, int64 rows, int64 cols)`
pub(crate) unsafe fn row_loss(
    be: &CudaBackend,
    kind: RowLoss,
    x: &CudaSlice<f32>,
    target: &CudaSlice<f32>,
    out: &mut CudaSlice<f32>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let cfg = grid_rows(rows, ROW_THREADS);
    let (r, c) = (rows as i64, cols as i64);
    match kind {
        RowLoss::Mse => launch!(be, "mse_fwd_f32", cfg, [x, target, out, &r, &c]),
        RowLoss::BceLogits => launch!(be, "bce_logits_fwd_f32", cfg, [x, target, out, &r, &c]),
    }
}

/// `{mse,bce_logits}_bwd_f32(const float* x, const float* target, float scale, float* grad, int64 n)`
pub(crate) unsafe fn grad(
    be: &CudaBackend,
    kind: RowLoss,
    x: &CudaSlice<f32>,
    target: &CudaSlice<f32>,
    scale: f32,
    grad: &mut CudaSlice<f32>,
    n: usize,
) -> Result<()> {
    let cfg = grid_1d(n);
    let n = n as i64;
    match kind {
        RowLoss::Mse => launch!(be, "mse_bwd_f32", cfg, [x, target, &scale, grad, &n]),
        RowLoss::BceLogits => launch!(be, "bce_logits_bwd_f32", cfg, [x, target, &scale, grad, &n]),
    }
}
