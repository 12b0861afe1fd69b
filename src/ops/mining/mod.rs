//! Fused triplet mining + triplet loss, without an N×M distance matrix. Kernels:
//! `kernels/mining.cu` (distance formulas shared with `kernels/distance.cu`).
//!
//! Anchors are the rows of the query set q: [N, D] with labels `q_labels` ([N], u32); candidates
//! are the rows of the reference set r: [M, D] with `r_labels` ([M]). With `same_set` (q and r are
//! the same tensor, labels too), the pair of an anchor with itself is excluded. For an anchor i:
//! a **positive** is a reference j with the same label, a **negative** one with a different label,
//! and with `same_set` j = i is neither (also when the labels passed for it disagree).
//!
//! # Distances
//! κ is the [`Metric`] distance of [`crate::ops::distance`] (bit-identical to what
//! `pairwise_distance` writes on the same backend). Mining and the loss work on
//! `ℓ = κ²` when [`TripletConfig::squared`] is set and `ℓ = κ` otherwise; with
//! `Metric::Euclidean` and `squared` the kernels use κ² = the squared-Euclidean GEMM form directly
//! (the source notes' `max(d_p² − d_n² + m, 0)`). `Metric::SquaredEuclidean` with `squared` (a
//! fourth power) is rejected. The per-triplet loss is `max(ℓ_ap − ℓ_an + margin, 0)`, evaluated in
//! f32 as `(ℓ_ap − ℓ_an) + margin`; a triplet is **active** when that value is > 0, and only
//! active triplets carry gradient (ReLU's subgradient at 0 is 0).
//!
//! # Miners (every choice breaks ties to the lowest reference index)
//! - [`Miner::BatchHard`]: per anchor the hardest positive (largest ℓ) and the hardest negative
//!   (smallest ℓ): one triplet per anchor. Loss = mean over the anchors that have both.
//! - [`SemiHardPolicy::FaceNet`]: for every anchor–positive pair, the closest negative with
//!   `ℓ_ap < ℓ_an < ℓ_ap + margin` (FaceNet's semi-hard band); pairs without one are skipped. Loss =
//!   mean over the pairs that got a triplet.
//! - [`SemiHardPolicy::TfAddons`]: `tfa.losses.TripletSemiHardLoss`: for every anchor–positive pair,
//!   the closest negative farther than the positive (`ℓ_an > ℓ_ap`), falling back to the anchor's
//!   largest negative. Loss = Σ over positive pairs of `max(margin + ℓ_ap − ℓ_neg, 0)` / (number of
//!   positive pairs).
//! - [`SemiHardPolicy::ClosestFartherThanPositive`]: per anchor, the hardest (farthest) positive and
//!   the closest negative farther than it; the anchor is dropped when there is none. Loss = mean
//!   over the anchors kept.
//! - [`Miner::BatchAll`]: every valid (a, p, n). Loss = Σ of the triplet losses / (number of active
//!   triplets): the "average over non-zero triplets" reduction, computed from per-anchor sums and
//!   counts (no triplet list).
//!
//! Anchors without a valid positive or negative get no triplet: they are counted in
//! [`TripletStats::skipped_anchors`], and a batch without any triplet has loss 0 and count 0, never
//! NaN. [`TripletConfig::tfa_compat`] instead reproduces TensorFlow Addons' masked min/max over an
//! empty mask (BatchHard and TfAddons only): an anchor without positives takes the row minimum of ℓ
//! as its "positive" (with `same_set`, the self distance, 0) and one without negatives the row
//! maximum (BatchHard) or, for TfAddons, the row minimum including the self distance 0 (TFA's
//! masked-maximum quirk). The self pair then carries no gradient (its distance is the constant 0).
//! With it, TFA's doc example (labels [0, 0], embeddings [[0, 1], [1, 0]], margin 1, L2) gives 2.4142137
//! (TfAddons) and 1.0 (BatchHard). TFA's gradient splits ties evenly; here the lowest index takes it.
//!
//! # Statistics
//! [`TripletStats`] also reports, over **all** valid anchor–positive / anchor–negative pairs (not
//! only the mined ones), the mean distance δ (the metric's distance: √κ for Euclidean + squared)
//! and the fraction of pairs with δ < `collapse_eps` (an embedding collapse alarm).
//!
//! # Memory and passes
//! Nothing of size N×M is allocated. The one-triplet miners (BatchHard, ClosestFartherThanPositive)
//! stream the references once (twice for ClosestFartherThanPositive) per anchor with the running
//! choices in registers: O(N·D + M·D) inputs plus O(N) per-anchor outputs. On CUDA the distances
//! come in 64 × 64 (anchor × reference) tiles computed like a register-tiled GEMM (each reference
//! tile is loaded once per 64 anchors, coalesced); when N alone gives too few tiles to fill the GPU
//! the references are split into [`TripletWorkspace::hard_splits`] ranges whose per-anchor
//! partials (O(splits·N) words) are merged in a fixed order. The many-triplet miners (FaceNet,
//! TfAddons, BatchAll) need the anchor's whole row of distances: on CUDA the anchors are processed
//! in chunks of [`TripletWorkspace::row_chunk`] anchors (at least [`ROW_CHUNK`], more while the
//! chunk's rows fit in [`ROW_BUDGET`] words), each anchor of a chunk keeping its row of M distances
//! (and, in the backward pass, M integer gradient counts) in the workspace: a bounded
//! `2·row_chunk·M` words. The CPU twin streams anchor by anchor with one O(M) row.
//!
//! # Backward
//! [`triplet_bwd`] writes the gradient of `scale·loss`. It must follow [`triplet_fwd`] (or
//! [`triplet_fwd_queued`]) with the same configuration, inputs and workspace: it reads the loss's
//! divisor and, for the one-triplet miners, the chosen indices from the workspace. Each reference
//! j of anchor i carries an integer count c_ij (+1 per active triplet using it as the positive, −1
//! per active triplet using it as the negative), and `dq_i = w·Σ_j c_ij ∂ℓ_ij/∂q_i`,
//! `dr_j = w·Σ_i c_ij ∂ℓ_ij/∂r_j`, `w = scale / divisor`. Every output row is owned by one thread
//! block that sums its terms in a fixed order: bit-reproducible, no float atomics (counts are
//! integers). For the one-triplet miners the reference side is O(N·D): the anchors that chose
//! each reference are bucketed (counting sort, O(N + M) words) and each bucket is summed in anchor
//! order. With `same_set` the caller wants one gradient, `dq + dr`: pass `dr = None` and it is
//! accumulated into `dq`.

pub(crate) mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::distance::{check_sets, Metric};
use super::{expect_shape, on_device};
use crate::backend::Backend;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Fewest anchors per chunk of the row-buffer miners on CUDA (see the module docs).
pub const ROW_CHUNK: usize = 512;
/// Words of one row buffer (κ rows, count rows) the chunk grows into past [`ROW_CHUNK`] anchors:
/// 2²⁴ words = 64 MiB each.
pub const ROW_BUDGET: usize = 1 << 24;
/// Most anchors of the one-triplet miners on CUDA (the backward's bucket entries are `2i + kind`
/// in u32).
pub const HARD_MAX_ANCHORS: usize = (1 << 31) - 1;
/// Anchors (and references) per tile of the tiled CUDA kernels (`LK_MINE_TILE`).
pub(crate) const MINE_TILE: usize = 64;
/// u32 planes of one per-anchor partial of the split streaming pass (`LK_HARD_PART_LEN`).
pub(crate) const HARD_PART_LEN: usize = 15;
/// Blocks the split streaming pass aims for (about 8 per SM of a 132-SM H100, 2 resident each).
const HARD_TARGET_BLOCKS: usize = 1056;

/// Reference splits of the streaming pass for N anchors and M references: enough (anchor tile,
/// split) blocks to fill the GPU, every split at least one reference tile and none empty.
pub(crate) fn hard_splits_for(n: usize, m: usize) -> usize {
    let (anchor_tiles, ref_tiles) = (n.div_ceil(MINE_TILE).max(1), m.div_ceil(MINE_TILE));
    if ref_tiles == 0 {
        return 1;
    }
    let want = HARD_TARGET_BLOCKS.div_ceil(anchor_tiles).clamp(1, ref_tiles);
    ref_tiles.div_ceil(ref_tiles.div_ceil(want))
}
/// Anchors per tile of the v2 streaming pass (`triplet_hard_partial*_v2_f32`: 128 × 64 tiles).
pub(crate) const HARD_TILE_V2: usize = 128;

/// [`hard_splits_for`] for the v2 streaming pass's 128-anchor tiles: about `HARD_TARGET_BLOCKS`
/// blocks or fewer (rounded down, so that N = 16,384 gives 128 anchor tiles × 8 splits = 1,024
/// blocks, 3.9 waves of 264 resident blocks on an H100, rather than a 0.4-wave tail).
pub(crate) fn hard_splits_for_v2(n: usize, m: usize) -> usize {
    let (anchor_tiles, ref_tiles) = (n.div_ceil(HARD_TILE_V2).max(1), m.div_ceil(MINE_TILE));
    if ref_tiles == 0 {
        return 1;
    }
    let want = (HARD_TARGET_BLOCKS / anchor_tiles).clamp(1, ref_tiles);
    ref_tiles.div_ceil(ref_tiles.div_ceil(want))
}
/// "No index" in the index outputs.
pub const INDEX_NONE: u32 = u32::MAX;
/// Largest reference set for [`Miner::BatchAll`] (per-anchor triplet counts are u32).
pub const BATCH_ALL_MAX_REFS: usize = 65_536;

/// Which CUDA kernel versions the triplet loss runs (the CPU twin ignores it): the numbered versions
/// stay side by side while tuning, as in llm.c. Every version computes the same counts and choices;
/// the gradients agree within the parity tests' tolerance (see each version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TripletKernel {
    /// v1: the many-triplet miners' backward adds dq in `triplet_rows_f32` (a block per anchor,
    /// a thread per column walking the M references one at a time) and dr in
    /// `triplet_rows_bwd_cols_f32` (a block per reference walking the chunk's anchors).
    V1,
    /// v2: the many-triplet miners' backward builds the count rows in `triplet_rows_f32` and adds
    /// dq and dr with `triplet_rows_bwd_q_v2_f32` / `triplet_rows_bwd_r_v2_f32`: blocks of 8 output
    /// rows, the terms' coefficients staged 32 at a time in shared memory (one `kappa_grad` per
    /// term, not per column), the other rows' values loaded ahead. Each output element sums the same
    /// terms in the same order as v1 (the Euclidean family bit for bit). The one-triplet miners'
    /// streaming pass runs `triplet_hard_partial{,_compat,_pass2}_v2_f32`: 128 × 64 κ tiles with
    /// 8 × 4 pairs per thread, a leaner epilogue, and its own reference splits; κ and every choice
    /// are v1's (the distance sums of the statistics add in another order). The default since the
    /// H100 run of 2026-11-27 (BENCHMARKS.md): 1.28× v1 on batch-hard at N = 16,384, 4.3× on
    /// batch-all and 1.8× on semi-hard at N = 2048.
    #[default]
    V2,
}

impl TripletKernel {
    /// Every version, oldest first (benchmarks, tests).
    pub const ALL: [TripletKernel; 2] = [TripletKernel::V1, TripletKernel::V2];

    /// Whether this version runs other kernels than v1 for `miner` (benchmarks time only those).
    pub fn differs_from_v1(self, _miner: Miner) -> bool {
        // v2 changes every miner's path: the streaming pass or the rows' backward.
        self != TripletKernel::V1
    }

    /// "v1", "v2".
    pub fn name(self) -> &'static str {
        match self {
            TripletKernel::V1 => "v1",
            TripletKernel::V2 => "v2",
        }
    }
}

/// Planes of [`TripletWorkspace::anchor_u32`] (`LK_ANCHOR_*` in `kernels/latentkit_abi.h`).
pub mod plane {
    /// Chosen positive (one-triplet miners; [`super::INDEX_NONE`] when skipped or for the others).
    pub const POS_IDX: usize = 0;
    /// Chosen negative (likewise).
    pub const NEG_IDX: usize = 1;
    /// Triplets of the anchor that enter the loss.
    pub const TRIPLETS: usize = 2;
    /// Of those, triplets with a loss > 0.
    pub const ACTIVE: usize = 3;
    /// Valid anchor–positive pairs.
    pub const N_POS: usize = 4;
    /// Anchor–negative pairs.
    pub const N_NEG: usize = 5;
    /// Pairs (positive or negative) with δ < collapse_eps.
    pub const N_COLLAPSE: usize = 6;
    pub const U32_LEN: usize = 7;
    /// f32 planes: Σ of the anchor's triplet losses.
    pub const LOSS: usize = 0;
    /// κ of the chosen positive / negative pair (one-triplet miners).
    pub const KAPPA_POS: usize = 1;
    pub const KAPPA_NEG: usize = 2;
    /// Σ δ over the anchor–positive / anchor–negative pairs.
    pub const SUM_D_POS: usize = 3;
    pub const SUM_D_NEG: usize = 4;
    pub const F32_LEN: usize = 5;
}

/// Words of the statistics buffer (`LK_TRIPLET_STAT_*`): f32 fields hold the float's bits.
pub mod stat {
    pub const LOSS: usize = 0;
    pub const ACTIVE_FRACTION: usize = 1;
    pub const MEAN_D_AP: usize = 2;
    pub const MEAN_D_AN: usize = 3;
    pub const COLLAPSE_FRACTION: usize = 4;
    /// 1 / (the loss's divisor), 0 when the divisor is 0: the backward's weight.
    pub const GRAD_WEIGHT: usize = 5;
    pub const VALID_ANCHORS: usize = 6;
    pub const SKIPPED_ANCHORS: usize = 7;
    pub const TRIPLETS_LO: usize = 8;
    pub const TRIPLETS_HI: usize = 9;
    pub const ACTIVE_LO: usize = 10;
    pub const ACTIVE_HI: usize = 11;
    pub const LEN: usize = 12;
}

/// How a semi-hard miner picks the negative (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SemiHardPolicy {
    FaceNet,
    TfAddons,
    ClosestFartherThanPositive,
}

/// Which triplets enter the loss (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Miner {
    BatchHard,
    SemiHard(SemiHardPolicy),
    BatchAll,
}

impl Miner {
    /// Every miner, in the order of [`Miner::label`]'s list.
    pub const ALL: [Miner; 5] = [
        Miner::BatchHard,
        Miner::SemiHard(SemiHardPolicy::TfAddons),
        Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive),
        Miner::SemiHard(SemiHardPolicy::FaceNet),
        Miner::BatchAll,
    ];

    /// One triplet per anchor (streamed with register state, index-based backward).
    pub fn one_triplet_per_anchor(self) -> bool {
        matches!(self, Miner::BatchHard | Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive))
    }

    /// The name checkpoints and command lines use: `batch-hard`, `semi-hard` (TensorFlow Addons'
    /// rule), `semi-hard-anchor` (the closest negative farther than the hardest positive),
    /// `semi-hard-facenet`, `batch-all`.
    pub fn label(self) -> &'static str {
        match self {
            Miner::BatchHard => "batch-hard",
            Miner::SemiHard(SemiHardPolicy::TfAddons) => "semi-hard",
            Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive) => "semi-hard-anchor",
            Miner::SemiHard(SemiHardPolicy::FaceNet) => "semi-hard-facenet",
            Miner::BatchAll => "batch-all",
        }
    }
}

impl std::str::FromStr for Miner {
    type Err = Error;

    /// The inverse of [`Miner::label`].
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|m| m.label() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|m| m.label()).collect();
            Error::invalid("Miner", format!("{s:?}: expected one of {}", names.join(", ")))
        })
    }
}

/// Triplet loss configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripletConfig {
    pub miner: Miner,
    pub metric: Metric,
    pub margin: f32,
    /// Work on κ² instead of κ (mining and loss).
    pub squared: bool,
    /// Pairs closer than this (in δ) count as collapsed in [`TripletStats::collapse_fraction`].
    pub collapse_eps: f32,
    /// Reproduce TensorFlow Addons' fallbacks for anchors without positives / negatives.
    pub tfa_compat: bool,
}

impl Default for TripletConfig {
    /// Batch-hard, Euclidean, margin 1 (TFA's default), not squared, collapse_eps 1e−3.
    fn default() -> Self {
        Self {
            miner: Miner::BatchHard,
            metric: Metric::Euclidean,
            margin: 1.0,
            squared: false,
            collapse_eps: 1e-3,
            tfa_compat: false,
        }
    }
}

impl TripletConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            return Err(Error::invalid("TripletConfig", format!("margin must be finite and ≥ 0, got {}", self.margin)));
        }
        if !(self.collapse_eps.is_finite() && self.collapse_eps >= 0.0) {
            return Err(Error::invalid(
                "TripletConfig",
                format!("collapse_eps must be finite and ≥ 0, got {}", self.collapse_eps),
            ));
        }
        if self.squared && self.metric == Metric::SquaredEuclidean {
            return Err(Error::invalid(
                "TripletConfig",
                "squared with Metric::SquaredEuclidean would use ‖q − r‖⁴: use Metric::Euclidean with squared = true",
            ));
        }
        Ok(())
    }

    /// (metric of κ, ℓ = κ², δ = √κ) after folding `squared` into the metric.
    fn kappa_form(&self) -> (Metric, bool, bool) {
        match (self.metric, self.squared) {
            (Metric::Euclidean, true) => (Metric::SquaredEuclidean, false, true),
            (m, sq) => (m, sq, false),
        }
    }
}

/// Sizes and resolved flags of one triplet call, as the backends take them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripletProblem {
    pub n: usize,
    pub m: usize,
    pub d: usize,
    pub miner: Miner,
    /// The metric κ is computed with (Euclidean + squared runs as SquaredEuclidean).
    pub kappa_metric: Metric,
    /// ℓ = κ² (cosine + squared).
    pub square_kappa: bool,
    /// δ = √κ in the statistics (Euclidean + squared).
    pub sqrt_stats: bool,
    pub margin: f32,
    pub collapse_eps: f32,
    pub same_set: bool,
    pub tfa_compat: bool,
    /// Multiplies the gradient (backward only).
    pub scale: f32,
}

/// The statistics of one forward pass (see the module docs for the definitions).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TripletStats {
    /// The reduced loss of the miner.
    pub loss: f32,
    /// Anchors with at least one triplet in the loss.
    pub valid_anchors: u32,
    /// Anchors without (N − valid_anchors).
    pub skipped_anchors: u32,
    /// Triplets in the loss (BatchAll: every valid triplet, active or not).
    pub triplets: u64,
    /// Of those, triplets with a loss > 0 (BatchAll's divisor).
    pub active_triplets: u64,
    /// active_triplets / triplets (0 without triplets).
    pub active_fraction: f32,
    /// Mean δ over all valid anchor–positive pairs (0 if none).
    pub mean_d_ap: f32,
    /// Mean δ over all anchor–negative pairs (0 if none).
    pub mean_d_an: f32,
    /// Fraction of those pairs with δ < collapse_eps.
    pub collapse_fraction: f32,
    /// 1 / (the loss's divisor), 0 when it is 0 (the backward's weight before `scale`).
    pub grad_weight: f32,
}

impl TripletStats {
    /// Decodes the statistics words ([`stat`] layout).
    pub fn from_words(w: &[u32]) -> Result<Self> {
        if w.len() < stat::LEN {
            return Err(Error::shape("TripletStats::from_words", format!("need {} words, got {}", stat::LEN, w.len())));
        }
        let f = |k: usize| f32::from_bits(w[k]);
        let u64_at = |lo: usize, hi: usize| u64::from(w[lo]) | (u64::from(w[hi]) << 32);
        Ok(Self {
            loss: f(stat::LOSS),
            valid_anchors: w[stat::VALID_ANCHORS],
            skipped_anchors: w[stat::SKIPPED_ANCHORS],
            triplets: u64_at(stat::TRIPLETS_LO, stat::TRIPLETS_HI),
            active_triplets: u64_at(stat::ACTIVE_LO, stat::ACTIVE_HI),
            active_fraction: f(stat::ACTIVE_FRACTION),
            mean_d_ap: f(stat::MEAN_D_AP),
            mean_d_an: f(stat::MEAN_D_AN),
            collapse_fraction: f(stat::COLLAPSE_FRACTION),
            grad_weight: f(stat::GRAD_WEIGHT),
        })
    }
}

/// Most (ℓ, index) pairs the CUDA many-triplet kernel keeps in shared memory per anchor (8 bytes
/// each: 32 KiB, inside the default 48 KiB with its static shared memory): an anchor whose
/// negatives (or, in BatchAll's backward pass, positives) number more scans the whole row instead.
pub const ROWS_LIST_CAP: usize = 4096;

/// Device buffers of the triplet loss, allocated once per (N, M, miner family).
pub struct TripletWorkspace<B: Backend> {
    n: usize,
    m: usize,
    row_chunk: usize,
    hard_splits: usize,
    /// The splits of the v2 streaming pass (its tiles hold 128 anchors); `hard_part` fits both.
    hard_splits_v2: usize,
    /// The CUDA kernel versions (the CPU ignores it).
    kernel: TripletKernel,
    /// Capacity of the CUDA rows kernel's shared (ℓ, index) list ([`ROWS_LIST_CAP`]).
    list_cap: usize,
    /// What the last forward ran with: (config, same_set, d); checked by the backward.
    last_forward: Option<(TripletConfig, bool, usize)>,
    pub(crate) anchor_u32: Tensor<B, u32>,
    pub(crate) anchor_f32: Tensor<B>,
    pub(crate) q_norm: Tensor<B>,
    pub(crate) r_norm: Tensor<B>,
    pub(crate) kappa_rows: Tensor<B>,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))] // the CUDA backward's count rows
    pub(crate) count_rows: Tensor<B, u32>,
    /// The split streaming pass's partials [HARD_PART_LEN, hard_splits, N] (one-triplet, CUDA).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) hard_part: Tensor<B, u32>,
    /// Bucket ends [M] and entries [2N] of the index-based backward (one-triplet, CUDA).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) bucket_off: Tensor<B, u32>,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) bucket_ent: Tensor<B, u32>,
    pub(crate) stats: Tensor<B, u32>,
}

impl<B: Backend> TripletWorkspace<B> {
    /// Buffers for N anchors against M references with `cfg.miner`'s family (the row buffers of
    /// the many-triplet miners, and the partials and buckets of the one-triplet miners, are only
    /// allocated for them, and only on CUDA). The row chunk is `min(N, max(ROW_CHUNK, ROW_BUDGET /
    /// M))` anchors.
    pub fn new(b: &B, n: usize, m: usize, cfg: &TripletConfig) -> Result<Self> {
        let chunk = ROW_CHUNK.max(ROW_BUDGET / m.max(1));
        Self::with_row_chunk(b, n, m, cfg, chunk)
    }

    /// [`TripletWorkspace::new`] with the row chunk of the many-triplet miners set to
    /// `min(N, row_chunk)` anchors (at least 1): smaller chunks trade launches for memory.
    pub fn with_row_chunk(b: &B, n: usize, m: usize, cfg: &TripletConfig, row_chunk: usize) -> Result<Self> {
        let gpu = b.device() != Device::Cpu;
        let one = cfg.miner.one_triplet_per_anchor();
        let row_chunk = if one || !gpu { 0 } else { n.min(row_chunk.max(1)) };
        let hard_splits = if one && gpu { hard_splits_for(n, m) } else { 0 };
        let hard_splits_v2 = if one && gpu { hard_splits_for_v2(n, m) } else { 0 };
        let (part_len, off_len, ent_len) =
            if one && gpu { (HARD_PART_LEN * hard_splits.max(hard_splits_v2) * n, m, 2 * n) } else { (0, 0, 0) };
        let rows_len = row_chunk
            .checked_mul(m)
            .ok_or_else(|| Error::shape("TripletWorkspace::new", format!("{row_chunk} × {m} row buffer overflows")))?;
        Ok(Self {
            n,
            m,
            row_chunk,
            hard_splits,
            hard_splits_v2,
            kernel: TripletKernel::V2,
            list_cap: ROWS_LIST_CAP,
            last_forward: None,
            anchor_u32: Tensor::zeros(b, &[plane::U32_LEN, n])?,
            anchor_f32: Tensor::zeros(b, &[plane::F32_LEN, n])?,
            q_norm: Tensor::zeros(b, &[n])?,
            r_norm: Tensor::zeros(b, &[m])?,
            kappa_rows: Tensor::zeros(b, &[rows_len])?,
            count_rows: Tensor::zeros(b, &[rows_len])?,
            hard_part: Tensor::zeros(b, &[part_len])?,
            bucket_off: Tensor::zeros(b, &[off_len])?,
            bucket_ent: Tensor::zeros(b, &[ent_len])?,
            stats: Tensor::zeros(b, &[stat::LEN])?,
        })
    }

    /// Device bytes of every buffer of the workspace.
    pub fn device_bytes(&self) -> usize {
        4 * (self.anchor_u32.numel()
            + self.anchor_f32.numel()
            + self.q_norm.numel()
            + self.r_norm.numel()
            + self.kappa_rows.numel()
            + self.count_rows.numel()
            + self.hard_part.numel()
            + self.bucket_off.numel()
            + self.bucket_ent.numel()
            + self.stats.numel())
    }

    /// Selects the CUDA kernel versions of later calls (default [`TripletKernel::V2`]; the CPU
    /// ignores it). A forward and its backward may run different versions: the backward reads
    /// only the forward's planes and statistics, which every version writes alike.
    pub fn set_kernel(&mut self, kernel: TripletKernel) {
        self.kernel = kernel;
    }

    /// [`TripletWorkspace::set_kernel`] as a builder.
    pub fn with_kernel(mut self, kernel: TripletKernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Caps the shared-memory list of the CUDA many-triplet kernel (FaceNet, TfAddons, BatchAll)
    /// at `cap` entries (1 ≤ cap ≤ [`ROWS_LIST_CAP`], clamped): an anchor with more negatives (or,
    /// in BatchAll's backward pass, positives) scans its whole row instead. Results are the same
    /// either way; tests use it to run the row-scan path at small sizes. The CPU ignores it.
    pub fn with_list_cap(mut self, cap: usize) -> Self {
        self.list_cap = cap.clamp(1, ROWS_LIST_CAP);
        self
    }

    /// The CUDA kernel versions this workspace runs.
    pub fn kernel(&self) -> TripletKernel {
        self.kernel
    }

    /// Reference splits of the one-triplet miners' streaming pass on CUDA with the selected kernel
    /// version (0 otherwise).
    pub fn hard_splits(&self) -> usize {
        match self.kernel {
            TripletKernel::V1 => self.hard_splits,
            TripletKernel::V2 => self.hard_splits_v2,
        }
    }

    /// (N, M) the workspace was built for.
    pub fn sizes(&self) -> (usize, usize) {
        (self.n, self.m)
    }

    /// Anchors per chunk of the row buffers (0 when the workspace has none).
    pub fn row_chunk(&self) -> usize {
        self.row_chunk
    }

    /// Per-anchor u32 outputs, [`plane::U32_LEN`] planes of N: plane p of anchor i at `p·N + i`.
    pub fn anchor_u32(&self) -> &Tensor<B, u32> {
        &self.anchor_u32
    }

    /// Per-anchor f32 outputs, [`plane::F32_LEN`] planes of N.
    pub fn anchor_f32(&self) -> &Tensor<B> {
        &self.anchor_f32
    }

    /// The statistics words on the device ([`stat`] layout), for a graph-friendly step.
    pub fn stats_tensor(&self) -> &Tensor<B, u32> {
        &self.stats
    }

    /// Reads the statistics of the last forward (one small device-to-host copy).
    pub fn read_stats(&self, b: &B) -> Result<TripletStats> {
        TripletStats::from_words(&self.stats.to_vec(b)?)
    }

    /// One u32 plane (e.g. [`plane::POS_IDX`]) copied to the host.
    pub fn read_u32_plane(&self, b: &B, p: usize) -> Result<Vec<u32>> {
        if p >= plane::U32_LEN {
            return Err(Error::invalid("TripletWorkspace::read_u32_plane", format!("no u32 plane {p}")));
        }
        Ok(self.anchor_u32.to_vec(b)?[p * self.n..(p + 1) * self.n].to_vec())
    }

    /// One f32 plane (e.g. [`plane::LOSS`]) copied to the host.
    pub fn read_f32_plane(&self, b: &B, p: usize) -> Result<Vec<f32>> {
        if p >= plane::F32_LEN {
            return Err(Error::invalid("TripletWorkspace::read_f32_plane", format!("no f32 plane {p}")));
        }
        Ok(self.anchor_f32.to_vec(b)?[p * self.n..(p + 1) * self.n].to_vec())
    }
}

#[allow(clippy::too_many_arguments)]
fn check<B: Backend>(
    op: &'static str,
    b: &B,
    cfg: &TripletConfig,
    q: &Tensor<B>,
    q_labels: &Tensor<B, u32>,
    r: &Tensor<B>,
    r_labels: &Tensor<B, u32>,
    same_set: bool,
    ws: &TripletWorkspace<B>,
) -> Result<TripletProblem> {
    cfg.validate()?;
    let (n, m, d) = check_sets(op, b, q, r)?;
    on_device(op, b, q_labels)?;
    on_device(op, b, r_labels)?;
    expect_shape(op, "q_labels", q_labels, &[n])?;
    expect_shape(op, "r_labels", r_labels, &[m])?;
    if same_set && n != m {
        return Err(Error::shape(op, format!("same_set needs q and r to be the same set, got {n} and {m} rows")));
    }
    if n >= INDEX_NONE as usize || m >= INDEX_NONE as usize {
        return Err(Error::shape(op, format!("{n} anchors / {m} references: indices must fit in u32")));
    }
    if cfg.miner == Miner::BatchAll && m > BATCH_ALL_MAX_REFS {
        return Err(Error::shape(op, format!("BatchAll takes at most {BATCH_ALL_MAX_REFS} references, got {m}")));
    }
    if ws.sizes() != (n, m) {
        return Err(Error::shape(op, format!("workspace built for (N, M) = {:?}, called with ({n}, {m})", ws.sizes())));
    }
    if !cfg.miner.one_triplet_per_anchor() && b.device() != Device::Cpu && ws.row_chunk == 0 && n > 0 {
        return Err(Error::invalid(op, "this workspace was built for a one-triplet miner: it has no row buffers"));
    }
    if cfg.miner.one_triplet_per_anchor() && b.device() != Device::Cpu {
        if ws.hard_splits == 0 {
            return Err(Error::invalid(op, "this workspace was built for a many-triplet miner: it has no partials"));
        }
        if n > HARD_MAX_ANCHORS {
            return Err(Error::shape(
                op,
                format!("{n} anchors: the one-triplet miners take at most {HARD_MAX_ANCHORS}"),
            ));
        }
    }
    for t in [&ws.anchor_f32, &ws.q_norm, &ws.r_norm, &ws.kappa_rows] {
        on_device(op, b, t)?;
    }
    let (kappa_metric, square_kappa, sqrt_stats) = cfg.kappa_form();
    Ok(TripletProblem {
        n,
        m,
        d,
        miner: cfg.miner,
        kappa_metric,
        square_kappa,
        sqrt_stats,
        margin: cfg.margin,
        collapse_eps: cfg.collapse_eps,
        same_set,
        tfa_compat: cfg.tfa_compat,
        scale: 1.0,
    })
}

/// Mines and evaluates the triplet loss, and reads back its statistics (one small copy).
#[allow(clippy::too_many_arguments)]
pub fn triplet_fwd<B: Backend>(
    b: &B,
    cfg: &TripletConfig,
    q: &Tensor<B>,
    q_labels: &Tensor<B, u32>,
    r: &Tensor<B>,
    r_labels: &Tensor<B, u32>,
    same_set: bool,
    ws: &mut TripletWorkspace<B>,
) -> Result<TripletStats> {
    triplet_fwd_queued(b, cfg, q, q_labels, r, r_labels, same_set, ws)?;
    ws.read_stats(b)
}

/// [`triplet_fwd`] without the read-back: the per-anchor outputs and the statistics stay in the
/// workspace on the device (no host synchronization, so it can be captured in a CUDA graph).
#[allow(clippy::too_many_arguments)]
pub fn triplet_fwd_queued<B: Backend>(
    b: &B,
    cfg: &TripletConfig,
    q: &Tensor<B>,
    q_labels: &Tensor<B, u32>,
    r: &Tensor<B>,
    r_labels: &Tensor<B, u32>,
    same_set: bool,
    ws: &mut TripletWorkspace<B>,
) -> Result<()> {
    const OP: &str = "triplet_fwd";
    let p = check(OP, b, cfg, q, q_labels, r, r_labels, same_set, ws)?;
    ws.last_forward = None;
    // SAFETY: q, r, the labels and every workspace buffer were checked against (n, m, d) above.
    unsafe { b.triplet_fwd_f32(&p, q.buf(), q_labels.buf(), r.buf(), r_labels.buf(), ws)? };
    ws.last_forward = Some((*cfg, same_set, p.d));
    Ok(())
}

/// Gradient of `scale·loss` of the last [`triplet_fwd`] (same configuration, inputs, workspace):
/// writes dq ([N, D]) and dr ([M, D]); with `dr = None` (only with `same_set`), dq receives
/// `dq + dr`, the gradient of the one embedding tensor.
#[allow(clippy::too_many_arguments)]
pub fn triplet_bwd<B: Backend>(
    b: &B,
    cfg: &TripletConfig,
    q: &Tensor<B>,
    q_labels: &Tensor<B, u32>,
    r: &Tensor<B>,
    r_labels: &Tensor<B, u32>,
    same_set: bool,
    ws: &mut TripletWorkspace<B>,
    scale: f32,
    dq: &mut Tensor<B>,
    dr: Option<&mut Tensor<B>>,
) -> Result<()> {
    const OP: &str = "triplet_bwd";
    let mut p = check(OP, b, cfg, q, q_labels, r, r_labels, same_set, ws)?;
    if ws.last_forward != Some((*cfg, same_set, p.d)) {
        return Err(Error::invalid(OP, "run triplet_fwd with the same configuration and workspace first"));
    }
    if !scale.is_finite() {
        return Err(Error::invalid(OP, format!("scale must be finite, got {scale}")));
    }
    p.scale = scale;
    on_device(OP, b, dq)?;
    expect_shape(OP, "dq", dq, &[p.n, p.d])?;
    match &dr {
        Some(t) => {
            on_device(OP, b, *t)?;
            expect_shape(OP, "dr", t, &[p.m, p.d])?;
        }
        None if !same_set => return Err(Error::invalid(OP, "dr = None (summed into dq) needs same_set")),
        None => {}
    }
    // SAFETY: every buffer was checked against (n, m, d) above; dr, when given, is [m, d].
    unsafe {
        b.triplet_bwd_f32(
            &p,
            q.buf(),
            q_labels.buf(),
            r.buf(),
            r_labels.buf(),
            ws,
            dq.buf_mut(),
            dr.map(|t| t.buf_mut()),
        )
    }
}
