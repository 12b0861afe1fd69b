//! CPU reference for `knn_fwd_f32`: one κ row per query (the values `pairwise_distance` writes),
//! sorted by the miners' candidate order (value ascending, NaN last, ties to the lower index).

use std::cmp::Ordering;

use crate::ops::distance::cpu::{dot, kappa_from_dot_f64, sqnorm};
use crate::ops::distance::Metric;
use crate::ops::mining::cpu::better;

/// out_idx, out_dist [n, k] for q [n, d], r [m, d].
#[allow(clippy::too_many_arguments)]
pub fn knn(
    metric: Metric,
    q: &[f32],
    r: &[f32],
    d: usize,
    k: usize,
    same_set: bool,
    out_idx: &mut [u32],
    out_dist: &mut [f32],
) {
    let r_norms: Vec<f64> = r.chunks_exact(d).map(sqnorm).collect();
    let mut cand: Vec<(f32, u32)> = Vec::with_capacity(r_norms.len());
    for (i, qi) in q.chunks_exact(d).enumerate() {
        let nq = sqnorm(qi);
        cand.clear();
        for (j, rj) in r.chunks_exact(d).enumerate() {
            if !(same_set && j == i) {
                cand.push((kappa_from_dot_f64(metric, dot(qi, rj), nq, r_norms[j]) as f32, j as u32));
            }
        }
        let order = |a: &(f32, u32), b: &(f32, u32)| {
            if better(false, a.0, a.1, b.0, b.1) {
                Ordering::Less
            } else if better(false, b.0, b.1, a.0, a.1) {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        };
        if k < cand.len() {
            cand.select_nth_unstable_by(k, order);
            cand.truncate(k);
        }
        cand.sort_by(order);
        for (t, &(v, j)) in cand.iter().take(k).enumerate() {
            out_idx[i * k + t] = j;
            out_dist[i * k + t] = v;
        }
    }
}
