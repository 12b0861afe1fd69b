//! CPU reference for `kernels/elementwise.cu`: plain loops, f64 accumulation in reductions.

use super::Activation;

pub fn fill(x: &mut [f32], value: f32) {
    x.fill(value);
}

/// y: [rows, cols] row-major, bias: [cols].
pub fn bias_add(y: &mut [f32], bias: &[f32], cols: usize) {
    for row in y.chunks_exact_mut(cols) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// 1 / (1 + e^−x), evaluated on the side where the exponential can't overflow.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// log(1 + e^x) = max(x, 0) + log1p(e^−|x|), finite for every finite x.
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

pub fn activation(act: Activation, x: f32) -> f32 {
    match act {
        Activation::None => x,
        // Not max(0): a NaN must reach the loss (and the non-finite check), as in PyTorch.
        Activation::Relu => {
            if x <= 0.0 {
                0.0
            } else {
                x
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
    }
}

/// f'(x) written in terms of y = f(x).
pub fn activation_grad_from_output(act: Activation, y: f32) -> f32 {
    match act {
        Activation::None => 1.0,
        Activation::Relu => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Sigmoid => y * (1.0 - y),
        Activation::Tanh => 1.0 - y * y,
    }
}

pub fn activation_fwd(act: Activation, x: &[f32], y: &mut [f32]) {
    for (o, &i) in y.iter_mut().zip(x) {
        *o = activation(act, i);
    }
}

pub fn activation_bwd(act: Activation, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((g, &yi), &dyi) in dx.iter_mut().zip(y).zip(dy) {
        *g = dyi * activation_grad_from_output(act, yi);
    }
}

/// out[c] = beta·out[c] + Σ_r x[r, c]; beta = 0 does not read out.
pub fn col_sum(x: &[f32], rows: usize, cols: usize, beta: f32, out: &mut [f32]) {
    // Row by row (contiguous reads) into one f64 accumulator per column: each column still adds its
    // rows in order, from −0.0 like `Iterator::sum`, so the sums are those of a per-column loop.
    let mut acc = vec![-0.0f64; cols];
    for row in x.chunks_exact(cols.max(1)).take(rows) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += f64::from(v);
        }
    }
    for (o, s) in out.iter_mut().zip(acc) {
        *o = if beta == 0.0 { s as f32 } else { (f64::from(beta) * f64::from(*o) + s) as f32 };
    }
}

pub fn sum(x: &[f32]) -> f32 {
    x.iter().map(|&v| f64::from(v)).sum::<f64>() as f32
}
