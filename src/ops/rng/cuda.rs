//! Typed launchers for `kernels/rng.cu`.
//!
//! # Safety
//! `unsafe`: the caller guarantees `offset` holds 2 elements and `out` n (checked in `ops::rng`).

use cudarc::driver::{CudaSlice, LaunchConfig};

use crate::backend::cuda::{abi, grid_1d, launch, CudaBackend};
use crate::error::Result;

/// `rng_normal_f32(lk_philox_params p, const uint32_t* offset, float* out, int64 n)`
pub(crate) unsafe fn normal(
    be: &CudaBackend,
    seed: u64,
    offset: &CudaSlice<u32>,
    out: &mut CudaSlice<f32>,
    n: usize,
) -> Result<()> {
    let p = abi::lk_philox_params { seed };
    launch!(be, "rng_normal_f32", grid_1d(n), [&p, offset, out, &(n as i64)])
}

/// `rng_advance_u32(uint32_t* offset)`: one thread.
pub(crate) unsafe fn advance(be: &CudaBackend, offset: &mut CudaSlice<u32>) -> Result<()> {
    let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1, 1, 1), shared_mem_bytes: 0 };
    launch!(be, "rng_advance_u32", cfg, [offset])
}
