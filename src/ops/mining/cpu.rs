//! CPU reference for `kernels/mining.cu`: the specification of every miner, streaming anchor by
//! anchor with one O(M) row of distances.
//!
//! Bit-level choices mirror the kernels so that, given the same κ values, the same triplets are
//! chosen: κ is rounded to f32 (the value `pairwise_distance` writes), ℓ = κ·κ in f32, the band
//! bound `ℓ_ap + margin` and the triplet value `(ℓ_ap − ℓ_an) + margin` in f32, δ = √κ in f32.
//! Loss sums and statistics accumulate in f64.

use super::{plane, stat, Miner, SemiHardPolicy, TripletProblem, INDEX_NONE};
use crate::ops::distance::cpu::{dot, kappa_from_dot_f64, kappa_grad, sqnorm};

/// The candidate order of the miners: ties to the lower index, `INDEX_NONE` is no candidate, NaN
/// ranks worst (so the order is total). `want_max` picks the larger value.
pub fn better(want_max: bool, av: f32, ai: u32, bv: f32, bi: u32) -> bool {
    if ai == INDEX_NONE {
        return false;
    }
    if bi == INDEX_NONE {
        return true;
    }
    let (an, bn) = (av.is_nan(), bv.is_nan());
    if an != bn {
        return bn;
    }
    if !an && av != bv {
        return if want_max { av > bv } else { av < bv };
    }
    ai < bi
}

/// A running best candidate: ℓ, index, κ.
#[derive(Clone, Copy, Debug)]
struct Cand {
    l: f32,
    i: u32,
    k: f32,
}

impl Cand {
    const NONE: Cand = Cand { l: 0.0, i: INDEX_NONE, k: 0.0 };

    fn offer(&mut self, want_max: bool, l: f32, i: usize, k: f32) {
        if better(want_max, l, i as u32, self.l, self.i) {
            *self = Cand { l, i: i as u32, k };
        }
    }

    fn some(&self) -> bool {
        self.i != INDEX_NONE
    }
}

/// ℓ from κ.
pub fn ell(p: &TripletProblem, kappa: f32) -> f32 {
    if p.square_kappa {
        kappa * kappa
    } else {
        kappa
    }
}

/// δ (the metric's distance, for the statistics) from κ.
pub fn delta(p: &TripletProblem, kappa: f32) -> f32 {
    if p.sqrt_stats {
        kappa.sqrt()
    } else {
        kappa
    }
}

/// The per-triplet value `(ℓ_ap − ℓ_an) + margin`, in f32 like the kernels.
pub fn triplet_value(lp: f32, ln: f32, margin: f32) -> f32 {
    (lp - ln) + margin
}

/// Per-anchor results (the planes of the workspace).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnchorResult {
    pub pos: u32,
    pub neg: u32,
    pub triplets: u32,
    pub active: u32,
    pub n_pos: u32,
    pub n_neg: u32,
    pub n_collapse: u32,
    pub loss: f32,
    pub kappa_pos: f32,
    pub kappa_neg: f32,
    pub sum_d_pos: f32,
    pub sum_d_neg: f32,
}

/// `row[j] = κ(q_i, r_j)` rounded to f32; 0 for the anchor itself in the same set.
pub fn kappa_row(p: &TripletProblem, i: usize, qi: &[f32], r: &[f32], r_norms: &[f64], row: &mut [f32]) {
    let nq = sqnorm(qi);
    for (j, (rj, o)) in r.chunks_exact(p.d).zip(row.iter_mut()).enumerate() {
        *o = if p.same_set && j == i {
            0.0
        } else {
            kappa_from_dot_f64(p.kappa_metric, dot(qi, rj), nq, r_norms[j]) as f32
        };
    }
}

/// Mines anchor i from its κ row. With `counts` ([M], zeroed by the caller) also writes the
/// gradient counts: +1 for each active triplet's positive, −1 for its negative (never the anchor
/// itself, whose distance is the constant 0).
pub fn mine_anchor(
    p: &TripletProblem,
    i: usize,
    li: u32,
    row: &[f32],
    rl: &[u32],
    mut counts: Option<&mut [i32]>,
) -> AnchorResult {
    let is_self = |j: usize| p.same_set && j == i;
    let mut res = AnchorResult {
        pos: INDEX_NONE,
        neg: INDEX_NONE,
        triplets: 0,
        active: 0,
        n_pos: 0,
        n_neg: 0,
        n_collapse: 0,
        loss: 0.0,
        kappa_pos: 0.0,
        kappa_neg: 0.0,
        sum_d_pos: 0.0,
        sum_d_neg: 0.0,
    };
    // Pass over the row: pair statistics and the extremes every miner may need.
    let (mut hard_pos, mut hard_neg, mut max_neg) = (Cand::NONE, Cand::NONE, Cand::NONE);
    let (mut row_min, mut row_max) = (Cand::NONE, Cand::NONE);
    let (mut sdp, mut sdn) = (0.0f64, 0.0f64);
    for (j, &k) in row.iter().enumerate() {
        let l = ell(p, k);
        row_min.offer(false, l, j, k);
        row_max.offer(true, l, j, k);
        if is_self(j) {
            continue;
        }
        let dl = delta(p, k);
        if dl < p.collapse_eps {
            res.n_collapse += 1;
        }
        if rl[j] == li {
            res.n_pos += 1;
            sdp += f64::from(dl);
            hard_pos.offer(true, l, j, k);
        } else {
            res.n_neg += 1;
            sdn += f64::from(dl);
            hard_neg.offer(false, l, j, k);
            max_neg.offer(true, l, j, k);
        }
    }
    res.sum_d_pos = sdp as f32;
    res.sum_d_neg = sdn as f32;
    let mut count = |j: u32, c: i32| {
        if let Some(cs) = counts.as_deref_mut() {
            if !is_self(j as usize) {
                cs[j as usize] += c;
            }
        }
    };

    match p.miner {
        Miner::BatchHard | Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive) => {
            let (mut pos, mut neg) = (hard_pos, hard_neg);
            if p.miner == Miner::BatchHard {
                if p.tfa_compat {
                    if !pos.some() {
                        pos = row_min;
                    }
                    if !neg.some() {
                        neg = row_max;
                    }
                }
            } else {
                // The closest negative farther than the hardest positive.
                neg = Cand::NONE;
                if pos.some() {
                    for (j, &k) in row.iter().enumerate() {
                        let l = ell(p, k);
                        if !is_self(j) && rl[j] != li && l > pos.l {
                            neg.offer(false, l, j, k);
                        }
                    }
                }
            }
            if pos.some() && neg.some() {
                let v = triplet_value(pos.l, neg.l, p.margin);
                res.pos = pos.i;
                res.neg = neg.i;
                res.kappa_pos = pos.k;
                res.kappa_neg = neg.k;
                res.triplets = 1;
                res.loss = crate::ops::distance::cpu::relu_keep_nan(v);
                if v > 0.0 {
                    res.active = 1;
                    count(pos.i, 1);
                    count(neg.i, -1);
                }
            }
        }
        Miner::SemiHard(policy) => {
            let tfa = policy == SemiHardPolicy::TfAddons;
            let mut sum = 0.0f64;
            for (pj, &kp) in row.iter().enumerate() {
                if is_self(pj) || rl[pj] != li {
                    continue;
                }
                let lp = ell(p, kp);
                let hi = lp + p.margin;
                let mut best = Cand::NONE;
                for (nj, &kn) in row.iter().enumerate() {
                    if is_self(nj) || rl[nj] == li {
                        continue;
                    }
                    let ln = ell(p, kn);
                    if ln > lp && (tfa || ln < hi) {
                        best.offer(false, ln, nj, kn);
                    }
                }
                if !best.some() && tfa {
                    if max_neg.some() {
                        best = max_neg;
                    } else if p.tfa_compat {
                        best = row_min;
                    }
                }
                if best.some() {
                    let v = triplet_value(lp, best.l, p.margin);
                    sum += f64::from(crate::ops::distance::cpu::relu_keep_nan(v));
                    res.triplets += 1;
                    if v > 0.0 {
                        res.active += 1;
                        count(pj as u32, 1);
                        count(best.i, -1);
                    }
                }
            }
            res.loss = sum as f32;
        }
        Miner::BatchAll => {
            let mut sum = 0.0f64;
            for (pj, &kp) in row.iter().enumerate() {
                if is_self(pj) || rl[pj] != li {
                    continue;
                }
                let lp = ell(p, kp);
                for (nj, &kn) in row.iter().enumerate() {
                    if is_self(nj) || rl[nj] == li {
                        continue;
                    }
                    let v = triplet_value(lp, ell(p, kn), p.margin);
                    if v > 0.0 {
                        sum += f64::from(v);
                        res.active += 1;
                        count(pj as u32, 1);
                        count(nj as u32, -1);
                    }
                }
            }
            res.triplets = res.n_pos * res.n_neg;
            res.loss = sum as f32;
        }
    }
    res
}

/// The statistics words from the per-anchor planes (`triplet_stats_f32`), sums in f64.
pub fn reduce_stats(p: &TripletProblem, au: &[u32], af: &[f32], stats: &mut [u32]) {
    let n = p.n;
    let pl = |k: usize| k * n..(k + 1) * n;
    let sum_u = |k: usize| au[pl(k)].iter().map(|&v| u64::from(v)).sum::<u64>();
    let sum_f = |k: usize| af[pl(k)].iter().map(|&v| f64::from(v)).sum::<f64>();
    let (triplets, active) = (sum_u(plane::TRIPLETS), sum_u(plane::ACTIVE));
    let valid = au[pl(plane::TRIPLETS)].iter().filter(|&&t| t > 0).count() as u32;
    let (n_pos, n_neg, n_col) = (sum_u(plane::N_POS), sum_u(plane::N_NEG), sum_u(plane::N_COLLAPSE));
    let divisor = if p.miner == Miner::BatchAll { active } else { triplets };
    let ratio = |a: f64, b: u64| if b > 0 { (a / b as f64) as f32 } else { 0.0 };
    stats[stat::LOSS] = ratio(sum_f(plane::LOSS), divisor).to_bits();
    stats[stat::GRAD_WEIGHT] = ratio(1.0, divisor).to_bits();
    stats[stat::ACTIVE_FRACTION] = ratio(active as f64, triplets).to_bits();
    stats[stat::MEAN_D_AP] = ratio(sum_f(plane::SUM_D_POS), n_pos).to_bits();
    stats[stat::MEAN_D_AN] = ratio(sum_f(plane::SUM_D_NEG), n_neg).to_bits();
    stats[stat::COLLAPSE_FRACTION] = ratio(n_col as f64, n_pos + n_neg).to_bits();
    stats[stat::VALID_ANCHORS] = valid;
    stats[stat::SKIPPED_ANCHORS] = n as u32 - valid;
    stats[stat::TRIPLETS_LO] = triplets as u32;
    stats[stat::TRIPLETS_HI] = (triplets >> 32) as u32;
    stats[stat::ACTIVE_LO] = active as u32;
    stats[stat::ACTIVE_HI] = (active >> 32) as u32;
}

/// Forward: per-anchor planes (au: [U32_LEN, n], af: [F32_LEN, n]) and the statistics.
#[allow(clippy::too_many_arguments)]
pub fn triplet_fwd(
    p: &TripletProblem,
    q: &[f32],
    ql: &[u32],
    r: &[f32],
    rl: &[u32],
    au: &mut [u32],
    af: &mut [f32],
    stats: &mut [u32],
) {
    let (n, d) = (p.n, p.d);
    let r_norms: Vec<f64> = r.chunks_exact(d).map(sqnorm).collect();
    let mut row = vec![0.0f32; p.m];
    for (i, qi) in q.chunks_exact(d).enumerate() {
        kappa_row(p, i, qi, r, &r_norms, &mut row);
        let a = mine_anchor(p, i, ql[i], &row, rl, None);
        let u = [a.pos, a.neg, a.triplets, a.active, a.n_pos, a.n_neg, a.n_collapse];
        for (k, v) in u.into_iter().enumerate() {
            au[k * n + i] = v;
        }
        let f = [a.loss, a.kappa_pos, a.kappa_neg, a.sum_d_pos, a.sum_d_neg];
        for (k, v) in f.into_iter().enumerate() {
            af[k * n + i] = v;
        }
    }
    reduce_stats(p, au, af, stats);
}

/// Backward: dq [n, d] and dr [m, d] (or, with `dr = None`, dq + dr into dq) of `scale·loss`, with
/// the loss's weight read from the forward's statistics. Accumulates in f64.
#[allow(clippy::too_many_arguments)]
pub fn triplet_bwd(
    p: &TripletProblem,
    q: &[f32],
    ql: &[u32],
    r: &[f32],
    rl: &[u32],
    stats: &[u32],
    dq: &mut [f32],
    dr: Option<&mut [f32]>,
) {
    let (m, d) = (p.m, p.d);
    let w = f64::from(p.scale * f32::from_bits(stats[stat::GRAD_WEIGHT]));
    let r_norms: Vec<f64> = r.chunks_exact(d).map(sqnorm).collect();
    let mut row = vec![0.0f32; m];
    let mut counts = vec![0i32; m];
    let mut acc_r = vec![0.0f64; m * d];
    let mut acc_q = vec![0.0f64; d];
    for (i, (qi, dqi)) in q.chunks_exact(d).zip(dq.chunks_exact_mut(d)).enumerate() {
        kappa_row(p, i, qi, r, &r_norms, &mut row);
        counts.fill(0);
        mine_anchor(p, i, ql[i], &row, rl, Some(&mut counts));
        let nq = sqnorm(qi);
        acc_q.fill(0.0);
        for (j, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let k = row[j];
            let dl = if p.square_kappa { 2.0 * f64::from(k) } else { 1.0 };
            let g = w * f64::from(c) * dl;
            let rj = &r[j * d..(j + 1) * d];
            let (aq, bq) = kappa_grad(p.kappa_metric, f64::from(k), nq, r_norms[j]);
            let (ar, br) = kappa_grad(p.kappa_metric, f64::from(k), r_norms[j], nq);
            for kk in 0..d {
                let (x, y) = (f64::from(qi[kk]), f64::from(rj[kk]));
                acc_q[kk] += g * (aq * x + bq * y);
                acc_r[j * d + kk] += g * (ar * y + br * x);
            }
        }
        for (o, &v) in dqi.iter_mut().zip(&acc_q) {
            *o = v as f32;
        }
    }
    match dr {
        Some(dr) => {
            for (o, &v) in dr.iter_mut().zip(&acc_r) {
                *o = v as f32;
            }
        }
        None => {
            for (o, &v) in dq.iter_mut().zip(&acc_r) {
                *o = (f64::from(*o) + v) as f32;
            }
        }
    }
}
