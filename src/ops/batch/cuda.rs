//! Typed launchers for `kernels/batch.cu`.
//!
//! # Safety
//! `unsafe`: the caller guarantees src holds src_rows·cols, index index_len (terms·rows for the
//! sum), cursor 1 and out rows·cols elements (checked in `ops::batch`).

use cudarc::driver::{CudaSlice, LaunchConfig};

use crate::backend::cuda::{grid_1d, launch, CudaBackend};
use crate::error::Result;

/// `gather_rows_f32(const float* src, const uint32_t* index, const uint32_t* cursor, float* out,
///                  int64 src_rows, int64 index_len, int64 rows, int64 cols)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gather_rows(
    be: &CudaBackend,
    src: &CudaSlice<f32>,
    index: &CudaSlice<u32>,
    cursor: &CudaSlice<u32>,
    out: &mut CudaSlice<f32>,
    src_rows: usize,
    index_len: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let dims = [src_rows as i64, index_len as i64, rows as i64, cols as i64];
    launch!(
        be,
        "gather_rows_f32",
        grid_1d(rows * cols),
        [src, index, cursor, out, &dims[0], &dims[1], &dims[2], &dims[3]]
    )
}

/// `counter_add_u32(uint32_t* counter, uint32_t value)`: one thread.
pub(crate) unsafe fn counter_add(be: &CudaBackend, counter: &mut CudaSlice<u32>, value: u32) -> Result<()> {
    let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1, 1, 1), shared_mem_bytes: 0 };
    launch!(be, "counter_add_u32", cfg, [counter, &value])
}

/// `gather_sum_rows_f32(const float* src, const uint32_t* index, float* out, int64 src_rows,
///                      int64 terms, int64 rows, int64 cols, int32 accumulate)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gather_sum_rows(
    be: &CudaBackend,
    src: &CudaSlice<f32>,
    index: &CudaSlice<u32>,
    out: &mut CudaSlice<f32>,
    src_rows: usize,
    terms: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) -> Result<()> {
    let dims = [src_rows as i64, terms as i64, rows as i64, cols as i64];
    let accumulate = i32::from(accumulate);
    launch!(
        be,
        "gather_sum_rows_f32",
        grid_1d(rows * cols),
        [src, index, out, &dims[0], &dims[1], &dims[2], &dims[3], &accumulate]
    )
}
