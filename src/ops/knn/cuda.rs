//! Typed launcher for `knn_fwd_f32` (`kernels/mining.cu`).
//!
//! # Safety
//! `unsafe`: the caller guarantees q holds n·d, r m·d, out_idx and out_dist n·k elements,
//! 1 ≤ k ≤ KNN_MAX_K and at least k candidates per query (checked in `ops::knn`).

use cudarc::driver::CudaSlice;

use super::KNN_MAX_K;
use crate::backend::cuda::{abi, grid_rows, launch, CudaBackend};
use crate::error::Result;
use crate::ops::distance::cuda::abi_metric;
use crate::ops::distance::Metric;

const _: () = assert!(abi::LK_KNN_MAX_K as usize == KNN_MAX_K);

/// `knn_fwd_f32(lk_knn_params p, const float* q, const float* r, uint32_t* out_idx, float* out_dist)`:
/// one block of 128 threads per query.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn knn(
    be: &CudaBackend,
    metric: Metric,
    q: &CudaSlice<f32>,
    r: &CudaSlice<f32>,
    out_idx: &mut CudaSlice<u32>,
    out_dist: &mut CudaSlice<f32>,
    n: usize,
    m: usize,
    d: usize,
    k: usize,
    same_set: bool,
) -> Result<()> {
    let p = abi::lk_knn_params {
        n: n as i64,
        m: m as i64,
        d: d as i64,
        k: k as i64,
        metric: abi_metric(metric),
        same_set: i32::from(same_set),
    };
    launch!(be, "knn_fwd_f32", grid_rows(n, 128), [&p, q, r, out_idx, out_dist])
}
