//! Typed launchers for `kernels/distance.cu`.
//!
//! # Safety
//! `unsafe`: the caller guarantees q holds n·d, r m·d, out and g n·m, dq n·d and dr m·d elements
//! (checked in `ops::distance`).

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::Metric;
use crate::backend::cuda::{abi, grid_1d, launch, CudaBackend};
use crate::backend::Backend;
use crate::error::Result;

/// Side of the square thread block and output tile (`LK_DT`).
const TILE: usize = 16;
/// Cap on the grid of the tiled kernels (they grid-stride over tiles beyond it).
const MAX_BLOCKS: usize = 1 << 16;

pub(crate) fn abi_metric(metric: Metric) -> i32 {
    (match metric {
        Metric::SquaredEuclidean => abi::LK_METRIC_SQEUCLIDEAN,
        Metric::Euclidean => abi::LK_METRIC_EUCLIDEAN,
        Metric::Cosine => abi::LK_METRIC_COSINE,
    }) as i32
}

fn tiled(tiles: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (tiles.clamp(1, MAX_BLOCKS) as u32, 1, 1),
        block_dim: (TILE as u32, TILE as u32, 1),
        shared_mem_bytes: 0,
    }
}

fn params(metric: Metric, n: usize, m: usize, d: usize, ldg: usize, trans_g: bool) -> abi::lk_distance_params {
    abi::lk_distance_params {
        n: n as i64,
        m: m as i64,
        d: d as i64,
        ldg: ldg as i64,
        metric: abi_metric(metric),
        trans_g: i32::from(trans_g),
    }
}

/// Forward through the miners' tiled κ core (`triplet_kappa_rows_f32` of kernels/mining.cu: 64 × 64
/// tiles, 4 × 4 pairs per thread, one k-ordered FMA chain per pair) on the row norms of
/// `row_sqnorm_f32`: the same bits as one thread per pair (kernels/distance.cuh), so the fused miners
/// and the k-NN kernel see exactly the κ written here. It replaced a 16 × 16 kernel with one pair
/// per thread, which ran at 6.2 TFLOP/s on an H100 (2026-11-26, N = M = 4096, D = 128); this core's
/// own rate there is not measured (batch-hard at N = 16384, which runs it on 2·N²·D = 68.7 GFLOP,
/// took 3.78 ms in all). The two norm vectors (n + m floats) are allocated per call, stream-ordered
/// from the memory pool where the GPU has one (a graph capture then records them as nodes).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn fwd(
    be: &CudaBackend,
    metric: Metric,
    q: &CudaSlice<f32>,
    r: &CudaSlice<f32>,
    out: &mut CudaSlice<f32>,
    n: usize,
    m: usize,
    d: usize,
) -> Result<()> {
    if n == 0 || m == 0 {
        return Ok(());
    }
    let (mut qn, mut rn) = (be.zeros::<f32>(n)?, be.zeros::<f32>(m)?);
    row_sqnorm(be, q, n, d, &mut qn)?;
    row_sqnorm(be, r, m, d, &mut rn)?;
    let p = abi::lk_triplet_params {
        n: n as i64,
        m: m as i64,
        d: d as i64,
        row0: 0,
        rows: n as i64,
        metric: abi_metric(metric),
        ..Default::default()
    };
    crate::ops::mining::cuda::launch_kappa_rows(be, &p, q, r, &qn, &rn, out)
}

/// `pairwise_distance_bwd_f32(lk_distance_params p, const float* x, const float* y, const float* g,
///                            float* dx)`, once for dq (x = q) and once for dr (x = r, g transposed).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn bwd(
    be: &CudaBackend,
    metric: Metric,
    q: &CudaSlice<f32>,
    r: &CudaSlice<f32>,
    g: &CudaSlice<f32>,
    dq: &mut CudaSlice<f32>,
    dr: &mut CudaSlice<f32>,
    n: usize,
    m: usize,
    d: usize,
) -> Result<()> {
    // With m = 0 (n = 0) the kernel still runs over the rows of dq (dr) and writes zeros.
    if n > 0 {
        let p = params(metric, n, m, d, m, false);
        launch!(be, "pairwise_distance_bwd_f32", tiled(n.div_ceil(TILE)), [&p, q, r, g, dq])?;
    }
    if m > 0 {
        let p = params(metric, m, n, d, m, true);
        launch!(be, "pairwise_distance_bwd_f32", tiled(m.div_ceil(TILE)), [&p, r, q, g, dr])?;
    }
    Ok(())
}

/// `row_sqnorm_f32(const float* x, int64 rows, int64 d, float* out)`
pub(crate) unsafe fn row_sqnorm(
    be: &CudaBackend,
    x: &CudaSlice<f32>,
    rows: usize,
    d: usize,
    out: &mut CudaSlice<f32>,
) -> Result<()> {
    if rows == 0 {
        return Ok(());
    }
    launch!(be, "row_sqnorm_f32", grid_1d(rows), [x, &(rows as i64), &(d as i64), out])
}
