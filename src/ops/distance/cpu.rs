//! CPU reference for `kernels/distance.cu`: the same formulas, accumulated in f64 and rounded once.
//! Products of two f32 values are exact in f64, so identical rows give exactly κ = 0 (Euclidean
//! family) here as on the GPU.

use super::{Metric, COSINE_NORM_FLOOR};

/// Σ a_k b_k in f64, in k order.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
}

/// Σ a_k² in f64.
pub fn sqnorm(a: &[f32]) -> f64 {
    dot(a, a)
}

/// κ from the dot product and the squared norms, in f64 (see the module docs).
pub fn kappa_from_dot_f64(metric: Metric, dot: f64, na: f64, nb: f64) -> f64 {
    match metric {
        Metric::Cosine => {
            let floor = f64::from(COSINE_NORM_FLOOR);
            1.0 - dot / (na.sqrt().max(floor) * nb.sqrt().max(floor))
        }
        Metric::SquaredEuclidean => relu_keep_nan(na + nb - 2.0 * dot),
        Metric::Euclidean => relu_keep_nan(na + nb - 2.0 * dot).sqrt(),
    }
}

/// (α, β) with ∂κ(x, y)/∂x = α·x + β·y, from κ and the squared norms (β = −α for the Euclidean
/// family; 0 at κ = 0 for Euclidean; the cosine α only when ‖x‖ > floor).
pub fn kappa_grad(metric: Metric, kappa: f64, nx: f64, ny: f64) -> (f64, f64) {
    match metric {
        Metric::SquaredEuclidean => (2.0, -2.0),
        Metric::Euclidean => {
            let a = if kappa > 0.0 { 1.0 / kappa } else { 0.0 };
            (a, -a)
        }
        Metric::Cosine => {
            let floor = f64::from(COSINE_NORM_FLOOR);
            let sx = nx.sqrt();
            let (big_x, big_y) = (sx.max(floor), ny.sqrt().max(floor));
            let a = if sx > floor { (1.0 - kappa) / (big_x * big_x) } else { 0.0 };
            (a, -1.0 / (big_x * big_y))
        }
    }
}

/// out [n, m] = κ(q_i, r_j); q: [n, d], r: [m, d].
pub fn pairwise_fwd(metric: Metric, q: &[f32], r: &[f32], out: &mut [f32], d: usize) {
    let rn: Vec<f64> = r.chunks_exact(d).map(sqnorm).collect();
    let m = rn.len();
    for (qi, row) in q.chunks_exact(d).zip(out.chunks_exact_mut(m.max(1))) {
        let qn = sqnorm(qi);
        for ((rj, &nr), o) in r.chunks_exact(d).zip(&rn).zip(row.iter_mut()) {
            *o = kappa_from_dot_f64(metric, dot(qi, rj), qn, nr) as f32;
        }
    }
}

/// dx [rows of x, d] = Σ_b g(a, b) ∂κ(x_a, y_b)/∂x_a with g(a, b) = g[a·ldg + b] or, transposed,
/// g[b·ldg + a]; accumulated in f64 over b in order.
#[allow(clippy::too_many_arguments)]
fn grad_side(metric: Metric, x: &[f32], y: &[f32], g: &[f32], ldg: usize, trans_g: bool, dx: &mut [f32], d: usize) {
    let yn: Vec<f64> = y.chunks_exact(d).map(sqnorm).collect();
    let mut acc = vec![0.0f64; d];
    for (a, (xa, dxa)) in x.chunks_exact(d).zip(dx.chunks_exact_mut(d)).enumerate() {
        let xn = sqnorm(xa);
        acc.fill(0.0);
        for (bi, (yb, &ny)) in y.chunks_exact(d).zip(&yn).enumerate() {
            let gab = f64::from(if trans_g { g[bi * ldg + a] } else { g[a * ldg + bi] });
            let k = kappa_from_dot_f64(metric, dot(xa, yb), xn, ny);
            let (al, be) = kappa_grad(metric, k, xn, ny);
            for ((o, &xv), &yv) in acc.iter_mut().zip(xa).zip(yb) {
                *o += gab * (al * f64::from(xv) + be * f64::from(yv));
            }
        }
        for (o, &v) in dxa.iter_mut().zip(&acc) {
            *o = v as f32;
        }
    }
}

/// dq [n, d] and dr [m, d] for the upstream gradient g [n, m].
pub fn pairwise_bwd(metric: Metric, q: &[f32], r: &[f32], g: &[f32], dq: &mut [f32], dr: &mut [f32], d: usize) {
    let m = r.len() / d;
    grad_side(metric, q, r, g, m, false, dq, d);
    grad_side(metric, r, q, g, m, true, dr, d);
}

/// max(x, 0) that lets a NaN through (`f64::max` would turn it into 0 and hide it from the loss).
pub fn relu_keep_nan<T: PartialOrd + Default>(x: T) -> T {
    if x <= T::default() {
        T::default()
    } else {
        x
    }
}
