//! Retrieval metrics as defined by Musgrave et al., "A Metric Learning Reality Check" (2020), and
//! computed the same way by pytorch-metric-learning's AccuracyCalculator: for each query, R is the
//! number of references sharing its label (the query itself excluded when queries and references
//! are the same set); the neighbours are ranked by distance, ties by lower reference index.
//! - precision@1: whether the nearest neighbour shares the label;
//! - R-precision: the fraction of the R nearest that share it;
//! - MAP@R: (1/R) Σ_{i ≤ R} P(i)·[neighbour i relevant], P(i) the precision among the first i.
//!
//! Queries with R = 0 are skipped (and counted). Exact (no approximate index): distances come from
//! f32 GEMMs over query chunks (‖q‖² + ‖r‖² − 2·q·r, or 1 − q̂·r̂ for cosine), so memory stays
//! O(chunk · references).

use crate::error::{Error, Result};
use crate::ops::gemm::{cpu::gemm_fast, GemmSpec, Transpose};

/// How neighbours are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistanceKind {
    Euclidean,
    /// 1 − cosine similarity (zero vectors are treated as having norm 1e-12).
    Cosine,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetrievalMetrics {
    pub precision_at_1: f64,
    pub r_precision: f64,
    pub map_at_r: f64,
    /// Queries evaluated (R ≥ 1).
    pub queries: usize,
    /// Queries skipped because no reference shares their label.
    pub skipped: usize,
}

/// Rows scaled to unit norm (norms floored at 1e-12) for cosine, or left as they are.
fn prepared(x: &[f32], dim: usize, kind: DistanceKind) -> Vec<f32> {
    match kind {
        DistanceKind::Euclidean => x.to_vec(),
        DistanceKind::Cosine => x
            .chunks_exact(dim)
            .flat_map(|row| {
                let n = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt().max(1e-12);
                row.iter().map(move |&v| (f64::from(v) / n) as f32)
            })
            .collect(),
    }
}

fn sq_norms(x: &[f32], dim: usize) -> Vec<f32> {
    x.chunks_exact(dim).map(|r| r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() as f32).collect()
}

const QUERY_CHUNK: usize = 256;

/// Exact retrieval metrics of `queries` ([nq, dim]) against `references` ([nr, dim]).
pub fn retrieval_metrics(
    queries: &[f32],
    query_labels: &[u32],
    references: &[f32],
    reference_labels: &[u32],
    dim: usize,
    kind: DistanceKind,
    same_set: bool,
) -> Result<RetrievalMetrics> {
    const OP: &str = "retrieval_metrics";
    let fits = |x: &[f32], labels: &[u32]| labels.len().checked_mul(dim) == Some(x.len());
    if dim == 0 || !fits(queries, query_labels) || !fits(references, reference_labels) {
        return Err(Error::shape(OP, format!("embeddings do not match labels × dimension {dim}")));
    }
    // A NaN or infinite embedding has no place in a ranking: an error, not quietly wrong metrics.
    if let Some(i) = queries.iter().chain(references).position(|v| !v.is_finite()) {
        let (which, at) = if i < queries.len() { ("query", i) } else { ("reference", i - queries.len()) };
        return Err(Error::invalid(OP, format!("{which} {} holds a non-finite value", at / dim)));
    }
    if same_set && query_labels.len() != reference_labels.len() {
        return Err(Error::shape(OP, "same_set needs as many queries as references"));
    }
    if query_labels.is_empty() || reference_labels.is_empty() {
        let skipped = query_labels.len();
        return Ok(RetrievalMetrics { precision_at_1: 0.0, r_precision: 0.0, map_at_r: 0.0, queries: 0, skipped });
    }
    let (q, r) = (prepared(queries, dim, kind), prepared(references, dim, kind));
    let (qn, rn) = (sq_norms(&q, dim), sq_norms(&r, dim));
    // Squared norms past f32 (|x| ≳ 1.8e19) would make the distances ∞ − ∞.
    if qn.iter().chain(&rn).any(|v| !v.is_finite()) {
        return Err(Error::invalid(OP, "an embedding's squared norm overflows f32"));
    }
    let mut per_label = std::collections::HashMap::<u32, usize>::new();
    for &l in reference_labels {
        *per_label.entry(l).or_default() += 1;
    }
    let nr = reference_labels.len();
    let (mut p1, mut rp, mut map, mut queries_done, mut skipped) = (0.0f64, 0.0f64, 0.0f64, 0usize, 0usize);
    let mut order: Vec<(f32, usize)> = Vec::with_capacity(nr);
    let mut dots = vec![0.0f32; QUERY_CHUNK * nr];
    for start in (0..query_labels.len()).step_by(QUERY_CHUNK) {
        let rows = QUERY_CHUNK.min(query_labels.len() - start);
        let spec = GemmSpec::contiguous(Transpose::No, Transpose::Yes, rows, nr, dim, 1.0, 0.0);
        gemm_fast(&spec, &q[start * dim..(start + rows) * dim], &r, &mut dots[..rows * nr])?;
        for c in 0..rows {
            let qi = start + c;
            let ql = query_labels[qi];
            let r_count = per_label.get(&ql).copied().unwrap_or(0).saturating_sub(usize::from(same_set));
            if r_count == 0 {
                skipped += 1;
                continue;
            }
            order.clear();
            for (j, &dot) in dots[c * nr..(c + 1) * nr].iter().enumerate() {
                if same_set && j == qi {
                    continue;
                }
                let d = match kind {
                    DistanceKind::Euclidean => qn[qi] + rn[j] - 2.0 * dot,
                    DistanceKind::Cosine => 1.0 - dot,
                };
                order.push((d, j));
            }
            let cmp = |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
            // Only the R nearest matter: partition, then sort those.
            if r_count < order.len() {
                order.select_nth_unstable_by(r_count - 1, cmp);
                order.truncate(r_count);
            }
            order.sort_unstable_by(cmp);
            let mut hits = 0usize;
            let mut ap = 0.0f64;
            for (i, &(_, j)) in order.iter().enumerate() {
                if reference_labels[j] == ql {
                    hits += 1;
                    ap += hits as f64 / (i + 1) as f64;
                }
            }
            p1 += f64::from(u8::from(reference_labels[order[0].1] == ql));
            rp += hits as f64 / r_count as f64;
            map += ap / r_count as f64;
            queries_done += 1;
        }
    }
    let n = queries_done.max(1) as f64;
    Ok(RetrievalMetrics {
        precision_at_1: p1 / n,
        r_precision: rp / n,
        map_at_r: map / n,
        queries: queries_done,
        skipped,
    })
}
