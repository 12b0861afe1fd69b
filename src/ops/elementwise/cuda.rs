//! Typed launchers for `kernels/elementwise.cu`.
//!
//! # Safety
//! Every function here is `unsafe`: the caller guarantees each buffer holds at least the elements
//! the sizes imply (checked once, in `ops::elementwise`).

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::Activation;
use crate::backend::cuda::{abi, grid_1d, launch, CudaBackend};
use crate::error::Result;

pub(crate) fn abi_activation(act: Activation) -> abi::lk_activation {
    match act {
        Activation::None => abi::LK_ACT_NONE,
        Activation::Relu => abi::LK_ACT_RELU,
        Activation::Sigmoid => abi::LK_ACT_SIGMOID,
        Activation::Tanh => abi::LK_ACT_TANH,
    }
}

/// `fill_f32(float* x, float value, int64 n)`
pub(crate) unsafe fn fill(be: &CudaBackend, x: &mut CudaSlice<f32>, value: f32, n: usize) -> Result<()> {
    launch!(be, "fill_f32", grid_1d(n), [x, &value, &(n as i64)])
}

/// `bias_add_fwd_f32(float* y, const float* bias, int64 rows, int64 cols)`
pub(crate) unsafe fn bias_add(
    be: &CudaBackend,
    y: &mut CudaSlice<f32>,
    bias: &CudaSlice<f32>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    launch!(be, "bias_add_fwd_f32", grid_1d(rows * cols), [y, bias, &(rows as i64), &(cols as i64)])
}

/// `activation_fwd_f32(lk_activation act, const float* x, float* y, int64 n)`
pub(crate) unsafe fn activation_fwd(
    be: &CudaBackend,
    act: Activation,
    x: &CudaSlice<f32>,
    y: &mut CudaSlice<f32>,
    n: usize,
) -> Result<()> {
    launch!(be, "activation_fwd_f32", grid_1d(n), [&abi_activation(act), x, y, &(n as i64)])
}

/// `activation_bwd_f32(lk_activation act, const float* y, const float* dy, float* dx, int64 n)`
pub(crate) unsafe fn activation_bwd(
    be: &CudaBackend,
    act: Activation,
    y: &CudaSlice<f32>,
    dy: &CudaSlice<f32>,
    dx: &mut CudaSlice<f32>,
    n: usize,
) -> Result<()> {
    launch!(be, "activation_bwd_f32", grid_1d(n), [&abi_activation(act), y, dy, dx, &(n as i64)])
}

/// `col_sum_f32`'s launch: blocks of 32 columns × G row groups, G the power of two that gives each
/// thread about 16 rows (at most 32 groups: 1024 threads), one block per 32 columns (grid-stride
/// past 65,535). G depends on `rows` alone, which fixes the summation order.
fn col_sum_launch(rows: usize, cols: usize) -> LaunchConfig {
    let groups = rows.div_ceil(16).next_power_of_two().clamp(1, 32) as u32;
    LaunchConfig {
        grid_dim: (cols.div_ceil(32).clamp(1, 65_535) as u32, 1, 1),
        block_dim: (32, groups, 1),
        shared_mem_bytes: 0,
    }
}

/// `col_sum_f32(const float* x, int64 rows, int64 cols, float beta, float* out)`
pub(crate) unsafe fn col_sum(
    be: &CudaBackend,
    x: &CudaSlice<f32>,
    rows: usize,
    cols: usize,
    beta: f32,
    out: &mut CudaSlice<f32>,
) -> Result<()> {
    launch!(be, "col_sum_f32", col_sum_launch(rows, cols), [x, &(rows as i64), &(cols as i64), &beta, out])
}

/// `sum_f32(const float* x, int64 n, float* out)`: one block of 1024 threads, fixed order.
pub(crate) unsafe fn sum(be: &CudaBackend, x: &CudaSlice<f32>, n: usize, out: &mut CudaSlice<f32>) -> Result<()> {
    let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1024, 1, 1), shared_mem_bytes: 0 };
    launch!(be, "sum_f32", cfg, [x, &(n as i64), out])
}
