//! Exact k-nearest-neighbour search between two embedding sets, streaming (no N×M matrix).
//! Kernel: `knn_fwd_f32` in `kernels/mining.cu`.
//!
//! For each query q_i ([N, D]) the k references r_j ([M, D]) with the smallest κ(q_i, r_j) of
//! [`Metric`] (bit-identical to `pairwise_distance` on the same backend), sorted ascending, ties to
//! the lower index (NaN distances last); with `same_set` the query itself (j == i) is excluded.
//! `out_idx` [N, k] holds the indices, `out_dist` [N, k] the distances. 1 ≤ k ≤ [`KNN_MAX_K`] and
//! at least k valid references are required (k = 0 is a no-op). Memory: on CUDA each thread keeps a
//! sorted list of k candidates in local memory (one block per query); the CPU twin one row of M.

pub(crate) mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::distance::{check_sets, Metric};
use super::{expect_shape, on_device};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Largest k (`LK_KNN_MAX_K`): the per-thread candidate lists of the CUDA kernel are this long.
pub const KNN_MAX_K: usize = 64;

/// The k nearest references of every query; see the module docs.
#[allow(clippy::too_many_arguments)]
pub fn knn<B: Backend>(
    b: &B,
    metric: Metric,
    q: &Tensor<B>,
    r: &Tensor<B>,
    k: usize,
    same_set: bool,
    out_idx: &mut Tensor<B, u32>,
    out_dist: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "knn";
    let (n, m, d) = check_sets(OP, b, q, r)?;
    on_device(OP, b, out_idx)?;
    on_device(OP, b, out_dist)?;
    expect_shape(OP, "out_idx", out_idx, &[n, k])?;
    expect_shape(OP, "out_dist", out_dist, &[n, k])?;
    if same_set && n != m {
        return Err(Error::shape(OP, format!("same_set needs q and r to be the same set, got {n} and {m} rows")));
    }
    if k > KNN_MAX_K {
        return Err(Error::invalid(OP, format!("k = {k} exceeds KNN_MAX_K = {KNN_MAX_K}")));
    }
    let valid = m - usize::from(same_set && m > 0);
    if n > 0 && k > valid {
        return Err(Error::invalid(OP, format!("k = {k} but each query has only {valid} candidate references")));
    }
    if m >= u32::MAX as usize {
        return Err(Error::shape(OP, format!("{m} references: indices must fit in u32")));
    }
    if k == 0 || n == 0 {
        return Ok(());
    }
    // SAFETY: q holds n·d, r m·d, out_idx and out_dist n·k elements; 1 ≤ k ≤ KNN_MAX_K and every
    // query has at least k candidates (checked above).
    unsafe { b.knn_f32(metric, q.buf(), r.buf(), out_idx.buf_mut(), out_dist.buf_mut(), n, m, d, k, same_set) }
}
