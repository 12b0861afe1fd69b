//! CPU reference for `kernels/metric_loss.cu`, in f64.

use crate::ops::distance::COSINE_NORM_FLOOR;

fn sqdist(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum()
}

/// ½·y·d² + ½·(1 − y)·max(0, m − d)² from d².
pub fn contrastive_loss(similar: bool, sq: f64, margin: f64) -> f64 {
    if similar {
        0.5 * sq
    } else {
        let h = crate::ops::distance::cpu::relu_keep_nan(margin - sq.sqrt());
        0.5 * h * h
    }
}

/// c with ∂ℓ/∂x1 = c·(x1 − x2): 1 (similar), −max(0, m − d)/d (dissimilar), 0 at d = 0.
pub fn contrastive_coef(similar: bool, sq: f64, margin: f64) -> f64 {
    if similar {
        return 1.0;
    }
    let d = sq.sqrt();
    if d > 0.0 {
        -crate::ops::distance::cpu::relu_keep_nan(margin - d) / d
    } else {
        0.0
    }
}

pub fn contrastive_pair_fwd(margin: f32, x1: &[f32], x2: &[f32], y: &[u32], loss: &mut [f32], d: usize) {
    for (((a, b), &yi), o) in x1.chunks_exact(d).zip(x2.chunks_exact(d)).zip(y).zip(loss.iter_mut()) {
        *o = contrastive_loss(yi != 0, sqdist(a, b), f64::from(margin)) as f32;
    }
}

#[allow(clippy::too_many_arguments)]
pub fn contrastive_pair_bwd(
    margin: f32,
    x1: &[f32],
    x2: &[f32],
    y: &[u32],
    g: &[f32],
    dx1: &mut [f32],
    dx2: &mut [f32],
    d: usize,
) {
    let rows = x1.chunks_exact(d).zip(x2.chunks_exact(d)).zip(dx1.chunks_exact_mut(d).zip(dx2.chunks_exact_mut(d)));
    for (i, ((a, b), (da, db))) in rows.enumerate() {
        let c = f64::from(g[i]) * contrastive_coef(y[i] != 0, sqdist(a, b), f64::from(margin));
        for k in 0..d {
            let v = c * (f64::from(a[k]) - f64::from(b[k]));
            da[k] = v as f32;
            db[k] = (-v) as f32;
        }
    }
}

/// `row_loss[i] = Σ_{j>i} ℓ(x_i, x_j)`.
pub fn contrastive_batch_fwd(margin: f32, x: &[f32], labels: &[u32], row_loss: &mut [f32], d: usize) {
    let rows: Vec<&[f32]> = x.chunks_exact(d).collect();
    for (i, o) in row_loss.iter_mut().enumerate() {
        let s: f64 = (i + 1..rows.len())
            .map(|j| contrastive_loss(labels[i] == labels[j], sqdist(rows[i], rows[j]), f64::from(margin)))
            .sum();
        *o = s as f32;
    }
}

/// dx_i = weight·Σ_{j≠i} c_ij (x_i − x_j).
pub fn contrastive_batch_bwd(margin: f32, weight: f32, x: &[f32], labels: &[u32], dx: &mut [f32], d: usize) {
    let rows: Vec<&[f32]> = x.chunks_exact(d).collect();
    let mut acc = vec![0.0f64; d];
    for (i, dxi) in dx.chunks_exact_mut(d).enumerate() {
        acc.fill(0.0);
        for (j, xj) in rows.iter().enumerate() {
            if j == i {
                continue;
            }
            let c = contrastive_coef(labels[i] == labels[j], sqdist(rows[i], xj), f64::from(margin));
            for k in 0..d {
                acc[k] += c * (f64::from(rows[i][k]) - f64::from(xj[k]));
            }
        }
        for (o, &v) in dxi.iter_mut().zip(&acc) {
            *o = (f64::from(weight) * v) as f32;
        }
    }
}

/// (cos, ‖a‖, ‖b‖, max(‖a‖, ε), max(‖b‖, ε)).
fn cos_parts(a: &[f32], b: &[f32]) -> (f64, f64, f64, f64, f64) {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let n1 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let n2 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let floor = f64::from(COSINE_NORM_FLOOR);
    let (b1, b2) = (n1.max(floor), n2.max(floor));
    (dot / (b1 * b2), n1, n2, b1, b2)
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[allow(clippy::too_many_arguments)]
pub fn siamese_cos_fwd(
    x1: &[f32],
    x2: &[f32],
    y: &[f32],
    scale: f32,
    bias: f32,
    logits: &mut [f32],
    loss: &mut [f32],
    d: usize,
) {
    for (i, (a, b)) in x1.chunks_exact(d).zip(x2.chunks_exact(d)).enumerate() {
        let s = f64::from(scale) * cos_parts(a, b).0 + f64::from(bias);
        logits[i] = s as f32;
        loss[i] = (softplus(s) - f64::from(y[i]) * s) as f32;
    }
}

/// dx1, dx2 and (dscale, dbias).
#[allow(clippy::too_many_arguments)]
pub fn siamese_cos_bwd(
    x1: &[f32],
    x2: &[f32],
    y: &[f32],
    g: &[f32],
    scale: f32,
    bias: f32,
    dx1: &mut [f32],
    dx2: &mut [f32],
    d: usize,
) -> (f32, f32) {
    let floor = f64::from(COSINE_NORM_FLOOR);
    let (mut ds_sum, mut db_sum) = (0.0f64, 0.0f64);
    let rows = x1.chunks_exact(d).zip(x2.chunks_exact(d)).zip(dx1.chunks_exact_mut(d).zip(dx2.chunks_exact_mut(d)));
    for (i, ((a, b), (da, db))) in rows.enumerate() {
        let (c, n1, n2, b1, b2) = cos_parts(a, b);
        let s = f64::from(scale) * c + f64::from(bias);
        let ds = f64::from(g[i]) * (sigmoid(s) - f64::from(y[i]));
        ds_sum += ds * c;
        db_sum += ds;
        let dcos = ds * f64::from(scale);
        let a1 = if n1 > floor { c / (b1 * b1) } else { 0.0 };
        let a2 = if n2 > floor { c / (b2 * b2) } else { 0.0 };
        for k in 0..d {
            let (xa, xb) = (f64::from(a[k]), f64::from(b[k]));
            da[k] = (dcos * (xb / (b1 * b2) - a1 * xa)) as f32;
            db[k] = (dcos * (xa / (b1 * b2) - a2 * xb)) as f32;
        }
    }
    (ds_sum as f32, db_sum as f32)
}
