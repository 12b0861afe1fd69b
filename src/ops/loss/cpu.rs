//! CPU reference for `kernels/loss.cu`: row sums accumulate in f64.

use crate::ops::elementwise::cpu::{sigmoid, softplus};

pub fn mse_fwd(pred: &[f32], target: &[f32], row_loss: &mut [f32], cols: usize) {
    for ((out, p), t) in row_loss.iter_mut().zip(pred.chunks_exact(cols)).zip(target.chunks_exact(cols)) {
        *out = p.iter().zip(t).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum::<f64>() as f32;
    }
}

pub fn mse_bwd(pred: &[f32], target: &[f32], scale: f32, grad: &mut [f32]) {
    for ((g, &p), &t) in grad.iter_mut().zip(pred).zip(target) {
        *g = scale * 2.0 * (p - t);
    }
}

pub fn bce_logits_fwd(logits: &[f32], target: &[f32], row_loss: &mut [f32], cols: usize) {
    for ((out, l), t) in row_loss.iter_mut().zip(logits.chunks_exact(cols)).zip(target.chunks_exact(cols)) {
        *out = l.iter().zip(t).map(|(&l, &t)| f64::from(softplus(l)) - f64::from(l) * f64::from(t)).sum::<f64>() as f32;
    }
}

pub fn bce_logits_bwd(logits: &[f32], target: &[f32], scale: f32, grad: &mut [f32]) {
    for ((g, &l), &t) in grad.iter_mut().zip(logits).zip(target) {
        *g = scale * (sigmoid(l) - t);
    }
}
