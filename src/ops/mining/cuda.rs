//! Typed launchers for `kernels/mining.cu`.
//!
//! # Safety
//! `unsafe`: the caller guarantees q holds n·d, r m·d, the labels n and m, dq n·d and dr m·d
//! elements, and that the workspace was built for (n, m) (checked in `ops::mining`).

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::{
    plane, stat, Miner, SemiHardPolicy, TripletKernel, TripletProblem, TripletWorkspace, HARD_PART_LEN, HARD_TILE_V2,
    MINE_TILE,
};
use crate::backend::cuda::{abi, grid_1d, grid_rows, launch, CudaBackend};
use crate::error::Result;
use crate::ops::distance::cuda::{abi_metric, row_sqnorm};
use crate::ops::elementwise::cuda::fill;

// The Rust mirrors of the ABI constants must match the header.
const _: () = {
    assert!(abi::LK_ANCHOR_U32_LEN as usize == plane::U32_LEN);
    assert!(abi::LK_ANCHOR_F32_LEN as usize == plane::F32_LEN);
    assert!(abi::LK_ANCHOR_POS_IDX as usize == plane::POS_IDX);
    assert!(abi::LK_ANCHOR_NEG_IDX as usize == plane::NEG_IDX);
    assert!(abi::LK_ANCHOR_TRIPLETS as usize == plane::TRIPLETS);
    assert!(abi::LK_ANCHOR_ACTIVE as usize == plane::ACTIVE);
    assert!(abi::LK_ANCHOR_N_POS as usize == plane::N_POS);
    assert!(abi::LK_ANCHOR_N_NEG as usize == plane::N_NEG);
    assert!(abi::LK_ANCHOR_N_COLLAPSE as usize == plane::N_COLLAPSE);
    assert!(abi::LK_ANCHOR_LOSS as usize == plane::LOSS);
    assert!(abi::LK_ANCHOR_KAPPA_POS as usize == plane::KAPPA_POS);
    assert!(abi::LK_ANCHOR_KAPPA_NEG as usize == plane::KAPPA_NEG);
    assert!(abi::LK_ANCHOR_SUM_D_POS as usize == plane::SUM_D_POS);
    assert!(abi::LK_ANCHOR_SUM_D_NEG as usize == plane::SUM_D_NEG);
    assert!(abi::LK_TRIPLET_STAT_LEN as usize == stat::LEN);
    assert!(abi::LK_TRIPLET_STAT_LOSS as usize == stat::LOSS);
    assert!(abi::LK_TRIPLET_STAT_ACTIVE_FRACTION as usize == stat::ACTIVE_FRACTION);
    assert!(abi::LK_TRIPLET_STAT_MEAN_D_AP as usize == stat::MEAN_D_AP);
    assert!(abi::LK_TRIPLET_STAT_MEAN_D_AN as usize == stat::MEAN_D_AN);
    assert!(abi::LK_TRIPLET_STAT_COLLAPSE_FRACTION as usize == stat::COLLAPSE_FRACTION);
    assert!(abi::LK_TRIPLET_STAT_GRAD_WEIGHT as usize == stat::GRAD_WEIGHT);
    assert!(abi::LK_TRIPLET_STAT_VALID_ANCHORS as usize == stat::VALID_ANCHORS);
    assert!(abi::LK_TRIPLET_STAT_SKIPPED_ANCHORS as usize == stat::SKIPPED_ANCHORS);
    assert!(abi::LK_TRIPLET_STAT_TRIPLETS_LO as usize == stat::TRIPLETS_LO);
    assert!(abi::LK_TRIPLET_STAT_TRIPLETS_HI as usize == stat::TRIPLETS_HI);
    assert!(abi::LK_TRIPLET_STAT_ACTIVE_LO as usize == stat::ACTIVE_LO);
    assert!(abi::LK_TRIPLET_STAT_ACTIVE_HI as usize == stat::ACTIVE_HI);
    assert!(abi::LK_INDEX_NONE == super::INDEX_NONE);
    assert!(abi::LK_MINE_TILE as usize == MINE_TILE);
    assert!(abi::LK_HARD_PART_LEN as usize == HARD_PART_LEN);
    assert!(abi::LK_MINE_TILE_THREADS == TILE_THREADS);
};

/// Threads per block of the tiled kernels (`LK_MINE_TILE_THREADS`: 16 × 16 threads of 4 × 4 pairs).
const TILE_THREADS: u32 = 256;
/// Threads of the one-block bucket scan (`triplet_bucket_scan_u32` holds at most 1024).
const SCAN_THREADS: u32 = 1024;

/// Threads per block of the mining kernels (a multiple of 32: the warp reductions need it).
const MINE_THREADS: u32 = 256;

/// `triplet_rows_f32`'s launch: a block per anchor of the chunk, the list's dynamic shared memory
/// (`list_cap` ≤ [`super::ROWS_LIST_CAP`] entries), and the list capacity argument.
fn rows_launch(rows: usize, m: usize, list_cap: usize) -> (LaunchConfig, i32) {
    let cap = m.min(list_cap);
    let mut cfg = grid_rows(rows, MINE_THREADS);
    cfg.shared_mem_bytes = (cap * 8) as u32;
    (cfg, cap as i32)
}

fn abi_miner(miner: Miner) -> i32 {
    (match miner {
        Miner::BatchHard => abi::LK_MINER_BATCH_HARD,
        Miner::SemiHard(SemiHardPolicy::FaceNet) => abi::LK_MINER_SEMIHARD_FACENET,
        Miner::SemiHard(SemiHardPolicy::TfAddons) => abi::LK_MINER_SEMIHARD_TFA,
        Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive) => abi::LK_MINER_SEMIHARD_CFTP,
        Miner::BatchAll => abi::LK_MINER_BATCH_ALL,
    }) as i32
}

fn params(p: &TripletProblem) -> abi::lk_triplet_params {
    abi::lk_triplet_params {
        n: p.n as i64,
        m: p.m as i64,
        d: p.d as i64,
        row0: 0,
        rows: p.n as i64,
        margin: p.margin,
        collapse_eps: p.collapse_eps,
        scale: p.scale,
        metric: abi_metric(p.kappa_metric),
        square_kappa: i32::from(p.square_kappa),
        sqrt_stats: i32::from(p.sqrt_stats),
        miner: abi_miner(p.miner),
        same_set: i32::from(p.same_set),
        tfa_compat: i32::from(p.tfa_compat),
        _pad: 0,
    }
}

/// Output rows per block of `triplet_rows_bwd_{q,r}_v2_f32` (`RG_G` in `kernels/mining.cu`).
const ROWS_GRAD_ROWS: usize = 8;

/// The launch of `triplet_rows_bwd_{q,r}_v2_f32` over `rows` output rows of D columns: blocks of
/// `ROWS_GRAD_ROWS` rows (grid-stride past 65,535 blocks), a thread per column.
fn rows_grad_launch(rows: usize, d: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.div_ceil(ROWS_GRAD_ROWS).clamp(1, 65_535) as u32, 1, 1),
        block_dim: (column_threads(d), 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Threads per block of the kernels with a thread per embedding column: a multiple of 32 covering
/// D, at most 256.
fn column_threads(d: usize) -> u32 {
    (d.div_ceil(32) * 32).clamp(32, 256) as u32
}

/// A grid-stride launch of `TILE_THREADS` threads over `work` tiles.
fn tile_launch(work: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (work.clamp(1, 65_535) as u32, 1, 1),
        block_dim: (TILE_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn stats_launch() -> LaunchConfig {
    LaunchConfig { grid_dim: (1, 1, 1), block_dim: (MINE_THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// The anchor chunks [row0, row0 + rows) of the row-buffer miners.
fn chunks(n: usize, chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(chunk.max(1)).map(move |row0| (row0, chunk.min(n - row0)))
}

/// The κ rows of the anchor chunk [pa.row0, pa.row0 + pa.rows) into `krows`.
///
/// `triplet_kappa_rows_f32(lk_triplet_params p, const float* q, const float* r, const float* norms_q,
///                         const float* norms_r, float* krows)`
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn launch_kappa_rows(
    be: &CudaBackend,
    pa: &abi::lk_triplet_params,
    q: &CudaSlice<f32>,
    r: &CudaSlice<f32>,
    qn: &CudaSlice<f32>,
    rn: &CudaSlice<f32>,
    krows: &mut CudaSlice<f32>,
) -> Result<()> {
    let tiles = (pa.rows as usize).div_ceil(MINE_TILE) * (pa.m as usize).div_ceil(MINE_TILE);
    if tiles == 0 {
        return Ok(());
    }
    launch!(be, "triplet_kappa_rows_f32", tile_launch(tiles), [pa, q, r, qn, rn, krows])
}

/// Forward: the row norms, then `triplet_hard_partial*_f32` + `triplet_hard_combine_f32` (twice for
/// ClosestFartherThanPositive) or, per anchor chunk, `triplet_kappa_rows_f32` + `triplet_rows_f32`;
/// then `triplet_stats_f32`.
///
/// `triplet_hard_partial{,_compat,_pass2}_f32(lk_triplet_params p, int32 splits, const float* q,
///     const uint32_t* ql, const float* r, const uint32_t* rl, const float* norms_q,
///     const float* norms_r, const uint32_t* au, const float* af, uint32_t* part)`
/// `triplet_hard_combine_f32(lk_triplet_params p, int32 pass, int32 splits, const uint32_t* part,
///     uint32_t* au, float* af)`; with [`TripletKernel::V2`] the partial kernels are
/// `triplet_hard_partial{,_compat,_pass2}_v2_f32` (same arguments, 128-anchor tiles, the
/// workspace's v2 splits)
/// `triplet_rows_f32(lk_triplet_params p, int32 backward, const float* q, const uint32_t* ql,
///                   const float* r, const uint32_t* rl, const float* norms_q, const float* norms_r,
///                   const uint32_t* stats, uint32_t* au, float* af, const float* krows, int32_t* crows,
///                   float* dq, int32 list_cap)`, `8·list_cap` bytes of dynamic shared memory
/// `triplet_stats_f32(lk_triplet_params p, const uint32_t* au, const float* af, uint32_t* stats)`
pub(crate) unsafe fn triplet_fwd(
    be: &CudaBackend,
    p: &TripletProblem,
    q: &CudaSlice<f32>,
    ql: &CudaSlice<u32>,
    r: &CudaSlice<f32>,
    rl: &CudaSlice<u32>,
    ws: &mut TripletWorkspace<CudaBackend>,
) -> Result<()> {
    let mut pa = params(p);
    let (n, m, d) = (p.n, p.m, p.d);
    let TripletWorkspace {
        anchor_u32,
        anchor_f32,
        q_norm,
        r_norm,
        kappa_rows,
        count_rows,
        hard_part,
        stats,
        row_chunk,
        hard_splits,
        hard_splits_v2,
        kernel,
        list_cap,
        ..
    } = ws;
    let v2 = *kernel == TripletKernel::V2;
    let (au, af, st) = (anchor_u32.buf_mut(), anchor_f32.buf_mut(), stats.buf_mut());
    if n > 0 {
        row_sqnorm(be, q, n, d, q_norm.buf_mut())?;
        row_sqnorm(be, r, m, d, r_norm.buf_mut())?;
        let (qn, rn) = (q_norm.buf(), r_norm.buf());
        if p.miner.one_triplet_per_anchor() {
            // v2: 128-anchor tiles with their own splits (the partials' layout is the same).
            let (splits, tile) = if v2 { (*hard_splits_v2, HARD_TILE_V2) } else { (*hard_splits, MINE_TILE) };
            let sp = splits as i32;
            let part = hard_part.buf_mut();
            let work = tile_launch(n.div_ceil(tile) * splits);
            let compat = p.tfa_compat && p.miner == Miner::BatchHard;
            let first = match (compat, v2) {
                (false, false) => "triplet_hard_partial_f32",
                (true, false) => "triplet_hard_partial_compat_f32",
                (false, true) => "triplet_hard_partial_v2_f32",
                (true, true) => "triplet_hard_partial_compat_v2_f32",
            };
            let second = if v2 { "triplet_hard_partial_pass2_v2_f32" } else { "triplet_hard_partial_pass2_f32" };
            launch!(be, first, work, [&pa, &sp, q, ql, r, rl, qn, rn, &*au, &*af, &mut *part])?;
            launch!(be, "triplet_hard_combine_f32", grid_1d(n), [&pa, &1i32, &sp, &*part, &mut *au, &mut *af])?;
            if p.miner == Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive) {
                launch!(be, second, work, [&pa, &sp, q, ql, r, rl, qn, rn, &*au, &*af, &mut *part])?;
                launch!(be, "triplet_hard_combine_f32", grid_1d(n), [&pa, &2i32, &sp, &*part, &mut *au, &mut *af])?;
            }
        } else {
            let backward = 0i32;
            for (row0, rows) in chunks(n, *row_chunk) {
                pa.row0 = row0 as i64;
                pa.rows = rows as i64;
                launch_kappa_rows(be, &pa, q, r, qn, rn, kappa_rows.buf_mut())?;
                // dq is not touched in forward mode: the placeholder fills its slot.
                let (cfg, cap) = rows_launch(rows, m, *list_cap);
                launch!(
                    be,
                    "triplet_rows_f32",
                    cfg,
                    [
                        &pa,
                        &backward,
                        q,
                        ql,
                        r,
                        rl,
                        qn,
                        rn,
                        &*st,
                        &mut *au,
                        &mut *af,
                        kappa_rows.buf(),
                        count_rows.buf_mut(),
                        be.placeholder(),
                        &cap
                    ]
                )?;
            }
            pa.row0 = 0;
            pa.rows = n as i64;
        }
    }
    launch!(be, "triplet_stats_f32", stats_launch(), [&pa, &*au, &*af, st])
}

/// Backward: zero dq (and dr), the row norms, then for the one-triplet miners
/// `triplet_hard_bwd_rows_f32` and the reference side through buckets (`triplet_zero_u32`,
/// `triplet_bucket_count_u32`, `triplet_bucket_scan_u32`, `triplet_bucket_fill_u32`,
/// `triplet_hard_bwd_cols_f32`), for the others per chunk `triplet_kappa_rows_f32` +
/// `triplet_rows_f32` (backward = 1) + `triplet_rows_bwd_cols_f32`. With `dr = None` the reference
/// gradient is accumulated into dq.
///
/// `triplet_hard_bwd_rows_f32(lk_triplet_params p, const float* q, const float* r,
///     const float* norms_q, const float* norms_r, const uint32_t* stats, const uint32_t* au,
///     const float* af, float* dq)`
/// `triplet_zero_u32(uint32_t* x, int64 len)`
/// `triplet_bucket_{count,fill}_u32(lk_triplet_params p, const uint32_t* au, uint32_t* off[, uint32_t* ent])`
/// `triplet_bucket_scan_u32(int64 m, uint32_t* off)`
/// `triplet_hard_bwd_cols_f32(lk_triplet_params p, const float* q, const float* r,
///     const float* norms_q, const float* norms_r, const uint32_t* stats, const uint32_t* au,
///     const float* af, const uint32_t* off, const uint32_t* ent, float* dr)`
/// `triplet_rows_bwd_cols_f32(lk_triplet_params p, const float* q, const float* r, const float* norms_q,
///     const float* norms_r, const uint32_t* stats, const float* krows, const int32_t* crows, float* dr)`
///
/// With [`TripletKernel::V2`] the many-triplet miners run `triplet_rows_f32` with backward = 2 (count
/// rows only), then `triplet_rows_bwd_q_v2_f32` (dq) and `triplet_rows_bwd_r_v2_f32` (dr), both with
/// `triplet_rows_bwd_cols_f32`'s arguments.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn triplet_bwd(
    be: &CudaBackend,
    p: &TripletProblem,
    q: &CudaSlice<f32>,
    ql: &CudaSlice<u32>,
    r: &CudaSlice<f32>,
    rl: &CudaSlice<u32>,
    ws: &mut TripletWorkspace<CudaBackend>,
    dq: &mut CudaSlice<f32>,
    mut dr: Option<&mut CudaSlice<f32>>,
) -> Result<()> {
    let (n, m, d) = (p.n, p.m, p.d);
    fill(be, dq, 0.0, n * d)?;
    if let Some(t) = dr.as_deref_mut() {
        fill(be, t, 0.0, m * d)?;
    }
    let mut pa = params(p);
    let TripletWorkspace {
        anchor_u32,
        anchor_f32,
        q_norm,
        r_norm,
        kappa_rows,
        count_rows,
        bucket_off,
        bucket_ent,
        stats,
        row_chunk,
        kernel,
        list_cap,
        ..
    } = ws;
    row_sqnorm(be, q, n, d, q_norm.buf_mut())?;
    row_sqnorm(be, r, m, d, r_norm.buf_mut())?;
    let (qn, rn, st) = (q_norm.buf(), r_norm.buf(), stats.buf());
    let (au, af) = (anchor_u32.buf(), anchor_f32.buf());
    let cols = column_threads(d);
    if p.miner.one_triplet_per_anchor() {
        if n > 0 {
            launch!(be, "triplet_hard_bwd_rows_f32", grid_rows(n, cols), [&pa, q, r, qn, rn, st, au, af, &mut *dq])?;
        }
        if n > 0 && m > 0 {
            let (off, ent) = (bucket_off.buf_mut(), bucket_ent.buf_mut());
            let m64 = m as i64;
            launch!(be, "triplet_zero_u32", grid_1d(m), [&mut *off, &m64])?;
            launch!(be, "triplet_bucket_count_u32", grid_1d(n), [&pa, au, &mut *off])?;
            let scan = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (SCAN_THREADS, 1, 1), shared_mem_bytes: 0 };
            launch!(be, "triplet_bucket_scan_u32", scan, [&m64, &mut *off])?;
            launch!(be, "triplet_bucket_fill_u32", grid_1d(n), [&pa, au, &mut *off, &mut *ent])?;
            let out: &mut CudaSlice<f32> = match dr {
                Some(t) => t,
                None => dq,
            };
            launch!(
                be,
                "triplet_hard_bwd_cols_f32",
                grid_rows(m, cols),
                [&pa, q, r, qn, rn, st, au, af, &*off, &*ent, out]
            )?;
        }
        return Ok(());
    }
    let v2 = *kernel == TripletKernel::V2;
    // v1: counts and dq in triplet_rows_f32; v2: counts only, dq from the v2 kernel.
    let backward = if v2 { 2i32 } else { 1i32 };
    let mut dr = dr;
    for (row0, rows) in chunks(n, *row_chunk) {
        pa.row0 = row0 as i64;
        pa.rows = rows as i64;
        launch_kappa_rows(be, &pa, q, r, qn, rn, kappa_rows.buf_mut())?;
        // The per-anchor planes are not written in backward mode; the forward's stay intact.
        let (cfg, cap) = rows_launch(rows, m, *list_cap);
        launch!(
            be,
            "triplet_rows_f32",
            cfg,
            [&pa, &backward, q, ql, r, rl, qn, rn, st, au, af, kappa_rows.buf(), count_rows.buf_mut(), &mut *dq, &cap]
        )?;
        let (kr, cr) = (kappa_rows.buf(), count_rows.buf());
        if v2 {
            launch!(
                be,
                "triplet_rows_bwd_q_v2_f32",
                rows_grad_launch(rows, d),
                [&pa, q, r, qn, rn, st, kr, cr, &mut *dq]
            )?;
        }
        if m > 0 {
            let out: &mut CudaSlice<f32> = match dr.as_deref_mut() {
                Some(t) => t,
                None => &mut *dq,
            };
            if v2 {
                launch!(be, "triplet_rows_bwd_r_v2_f32", rows_grad_launch(m, d), [&pa, q, r, qn, rn, st, kr, cr, out])?;
            } else {
                launch!(
                    be,
                    "triplet_rows_bwd_cols_f32",
                    grid_rows(m, MINE_THREADS),
                    [&pa, q, r, qn, rn, st, kr, cr, out]
                )?;
            }
        }
    }
    Ok(())
}
