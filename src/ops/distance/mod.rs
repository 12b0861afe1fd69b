//! Pairwise distances between two sets of embeddings, and their gradient. Kernels:
//! `kernels/distance.cu` (shared formulas in `kernels/distance.cuh`).
//!
//! For queries q: [N, D] and references r: [M, D], `out[i, j] = κ(q_i, r_j)` with
//!
//! - [`Metric::SquaredEuclidean`]: `κ = max(‖q‖² + ‖r‖² − 2 q·r, 0)`: the GEMM form (norms plus a
//!   dot product), clamped at 0 because rounding can make it slightly negative for near-identical
//!   points;
//! - [`Metric::Euclidean`]: `κ = √max(‖q‖² + ‖r‖² − 2 q·r, 0)`, zero-safe: its gradient
//!   `(q − r)/κ` is defined as **0 at κ = 0** (identical points), never NaN;
//! - [`Metric::Cosine`]: the cosine *distance* `κ = 1 − q·r / (max(‖q‖, ε)·max(‖r‖, ε))` with
//!   ε = [`COSINE_NORM_FLOOR`] = 1e−12, so a zero vector has cosine similarity 0 (distance 1)
//!   instead of NaN. This is `1 − normalize(q, eps=1e−12)·normalize(r, eps=1e−12)` of PyTorch. Below
//!   the floor the norm is the constant ε, so the gradient with respect to a (near-)zero vector
//!   is `−r/(ε·max(‖r‖, ε))`: finite but huge. Don't train a cosine loss on zero embeddings.
//!
//! Backward, for an upstream gradient g = ∂L/∂out: `dq_i = Σ_j g_ij ∂κ_ij/∂q_i` and
//! `dr_j = Σ_i g_ij ∂κ_ij/∂r_j`, with `∂κ/∂q = 2(q − r)` (squared Euclidean), `(q − r)/κ`
//! (Euclidean, 0 at κ = 0) and `−r/(N_q N_r) + cos·q/N_q²` (cosine, the second term only when
//! ‖q‖ > ε; N = max(‖·‖, ε), cos = 1 − κ). The squared-Euclidean gradient is that of the exact
//! ‖q − r‖² (the clamp only removes rounding). Each output row is summed over the other set in a
//! fixed order: results are bit-reproducible run to run.
//!
//! Precision: the CUDA kernels accumulate in f32 (sequential FMAs along D); the CPU twin in f64,
//! rounding once. For the Euclidean family the GEMM form loses absolute accuracy ≈ D·ε·(‖q‖² + ‖r‖²)
//! in κ² (so small distances between large vectors are the least accurate), as in every GEMM-based
//! implementation (PyTorch's `cdist` with `use_mm_for_euclid_dist`).

pub(crate) mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::{expect_shape, on_device};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Floor of each norm in the cosine distance (`LK_COSINE_NORM_FLOOR`).
pub const COSINE_NORM_FLOOR: f32 = 1e-12;

/// Distance between two embeddings; see the [module docs](self) for the formulas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Metric {
    /// ‖q − r‖².
    SquaredEuclidean,
    /// ‖q − r‖, with gradient 0 at 0.
    #[default]
    Euclidean,
    /// 1 − cos(q, r), norms floored at [`COSINE_NORM_FLOOR`].
    Cosine,
}

impl Metric {
    /// Every metric, in the order of [`Metric::label`]'s list.
    pub const ALL: [Metric; 3] = [Metric::SquaredEuclidean, Metric::Euclidean, Metric::Cosine];

    /// The name checkpoints and command lines use: `squared-euclidean`, `euclidean`, `cosine`.
    pub fn label(self) -> &'static str {
        match self {
            Metric::SquaredEuclidean => "squared-euclidean",
            Metric::Euclidean => "euclidean",
            Metric::Cosine => "cosine",
        }
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;

    /// The inverse of [`Metric::label`].
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.label() == s)
            .ok_or_else(|| Error::invalid("Metric", format!("{s:?}: expected squared-euclidean, euclidean or cosine")))
    }
}

/// Checks devices and the [N, D] / [M, D] shapes of a query and a reference set; returns (N, M, D).
/// D = 0 is rejected (an embedding needs at least one component).
pub(crate) fn check_sets<B: Backend>(
    op: &'static str,
    b: &B,
    q: &Tensor<B>,
    r: &Tensor<B>,
) -> Result<(usize, usize, usize)> {
    on_device(op, b, q)?;
    on_device(op, b, r)?;
    let (n, d) = dims2_strict(op, "q", q)?;
    let (m, dr) = dims2_strict(op, "r", r)?;
    if dr != d {
        return Err(Error::shape(op, format!("q is [{n}, {d}] but r is [{m}, {dr}]: the dimensions differ")));
    }
    if d == 0 {
        return Err(Error::shape(op, "embedding dimension D must be at least 1"));
    }
    Ok((n, m, d))
}

/// (rows, cols) of a tensor that must be 2-D.
pub(crate) fn dims2_strict<B: Backend, T: crate::backend::Scalar>(
    op: &'static str,
    name: &str,
    t: &Tensor<B, T>,
) -> Result<(usize, usize)> {
    match t.shape() {
        &[r, c] => Ok((r, c)),
        s => Err(Error::shape(op, format!("{name} should be a matrix [rows, dim], got {s:?}"))),
    }
}

/// `out[i, j] = κ(q_i, r_j)`; q: [N, D], r: [M, D], out: [N, M].
pub fn pairwise_distance<B: Backend>(
    b: &B,
    metric: Metric,
    q: &Tensor<B>,
    r: &Tensor<B>,
    out: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "pairwise_distance";
    let (n, m, d) = check_sets(OP, b, q, r)?;
    on_device(OP, b, out)?;
    expect_shape(OP, "out", out, &[n, m])?;
    // SAFETY: q holds n·d, r m·d and out n·m elements (shapes checked above).
    unsafe { b.pairwise_distance_fwd_f32(metric, q.buf(), r.buf(), out.buf_mut(), n, m, d) }
}

/// Gradient of `Σ_ij d_out[i, j]·κ(q_i, r_j)`: writes dq ([N, D]) and dr ([M, D]); the forward's
/// output is not needed (κ is recomputed).
#[allow(clippy::too_many_arguments)]
pub fn pairwise_distance_bwd<B: Backend>(
    b: &B,
    metric: Metric,
    q: &Tensor<B>,
    r: &Tensor<B>,
    d_out: &Tensor<B>,
    dq: &mut Tensor<B>,
    dr: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "pairwise_distance_bwd";
    let (n, m, d) = check_sets(OP, b, q, r)?;
    on_device(OP, b, d_out)?;
    on_device(OP, b, dq)?;
    on_device(OP, b, dr)?;
    expect_shape(OP, "d_out", d_out, &[n, m])?;
    expect_shape(OP, "dq", dq, &[n, d])?;
    expect_shape(OP, "dr", dr, &[m, d])?;
    // SAFETY: q, dq hold n·d, r, dr m·d and d_out n·m elements (shapes checked above).
    unsafe { b.pairwise_distance_bwd_f32(metric, q.buf(), r.buf(), d_out.buf(), dq.buf_mut(), dr.buf_mut(), n, m, d) }
}
