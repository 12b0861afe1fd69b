//! Loss kernels against f64 formulas and finite differences, on CPU and (when present) CUDA.

mod common;

use common::*;
use latentkit::ops::loss;

fn softplus_f64(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

const SHAPES: &[(usize, usize)] = &[(1, 1), (7, 33), (33, 7), (128, 784), (3, 1000)];

parity_test!(mse_matches_formula, |b| {
    let mut r = rng(21);
    let mut outs = Vec::new();
    for &(rows, cols) in SHAPES {
        let p0 = rand_vec(&mut r, rows * cols, -2.0, 2.0);
        let t0 = rand_vec(&mut r, rows * cols, -2.0, 2.0);
        let (p, t) = (tensor(b, &[rows, cols], &p0), tensor(b, &[rows, cols], &t0));
        let mut rl = poisoned(b, &[rows]);
        loss::mse_fwd(b, &p, &t, &mut rl).unwrap();
        let want: Vec<f32> = (0..rows)
            .map(|i| {
                (0..cols).map(|c| (f64::from(p0[i * cols + c]) - f64::from(t0[i * cols + c])).powi(2)).sum::<f64>()
                    as f32
            })
            .collect();
        // f32 sums of `cols` positive terms: relative error ≲ √cols·ε.
        let got = host(b, &rl);
        assert_close(&format!("mse fwd {rows}x{cols}"), &got, &want, 1e-6, 1e-5);
        let scale = 1.0 / rows as f32;
        let mut g = poisoned(b, &[rows, cols]);
        loss::mse_bwd(b, &p, &t, scale, &mut g).unwrap();
        let want_g: Vec<f32> = p0
            .iter()
            .zip(&t0)
            .map(|(&a, &c)| (f64::from(scale) * 2.0 * (f64::from(a) - f64::from(c))) as f32)
            .collect();
        let got_g = host(b, &g);
        assert_close(&format!("mse bwd {rows}x{cols}"), &got_g, &want_g, 1e-7, 1e-6);
        outs.push(Out::new(format!("mse fwd {rows}x{cols}"), got).tol(1e-6, 1e-5));
        outs.push(Out::new(format!("mse bwd {rows}x{cols}"), got_g));
    }
    outs
});

parity_test!(bce_with_logits_matches_formula_and_stays_finite, |b| {
    let mut r = rng(22);
    let mut outs = Vec::new();
    for &(rows, cols) in SHAPES {
        let mut l0 = rand_vec(&mut r, rows * cols, -8.0, 8.0);
        if l0.len() > 2 {
            // Saturated logits: log(σ(l)) computed naively would give −inf here.
            l0[0] = 120.0;
            l0[1] = -120.0;
        }
        let t0 = rand_vec(&mut r, rows * cols, 0.0, 1.0);
        let (l, t) = (tensor(b, &[rows, cols], &l0), tensor(b, &[rows, cols], &t0));
        let mut rl = poisoned(b, &[rows]);
        loss::bce_logits_fwd(b, &l, &t, &mut rl).unwrap();
        let want: Vec<f32> = (0..rows)
            .map(|i| {
                (0..cols)
                    .map(|c| {
                        let (lv, tv) = (f64::from(l0[i * cols + c]), f64::from(t0[i * cols + c]));
                        softplus_f64(lv) - lv * tv
                    })
                    .sum::<f64>() as f32
            })
            .collect();
        let got = host(b, &rl);
        assert!(got.iter().all(|v| v.is_finite()), "bce fwd produced a non-finite value");
        // Per-term error of softplus in f32 is a few ulps of the term; the row sum adds √cols·ε.
        assert_close(&format!("bce fwd {rows}x{cols}"), &got, &want, 1e-5, 1e-5);
        let scale = 0.25;
        let mut g = poisoned(b, &[rows, cols]);
        loss::bce_logits_bwd(b, &l, &t, scale, &mut g).unwrap();
        let want_g: Vec<f32> = l0
            .iter()
            .zip(&t0)
            .map(|(&lv, &tv)| (0.25 * (1.0 / (1.0 + (-f64::from(lv)).exp()) - f64::from(tv))) as f32)
            .collect();
        let got_g = host(b, &g);
        assert_close(&format!("bce bwd {rows}x{cols}"), &got_g, &want_g, 1e-7, 1e-6);
        outs.push(Out::new(format!("bce fwd {rows}x{cols}"), got).tol(1e-5, 1e-5));
        outs.push(Out::new(format!("bce bwd {rows}x{cols}"), got_g).tol(1e-7, 1e-6));
    }
    outs
});

/// d(Σ_r row_loss)/dx by central differences, one element at a time.
fn finite_diff<B: latentkit::Backend>(
    b: &B,
    fwd: impl Fn(&B, &latentkit::Tensor<B>, &latentkit::Tensor<B>, &mut latentkit::Tensor<B>),
    x0: &[f32],
    t0: &[f32],
    rows: usize,
    cols: usize,
    h: f32,
) -> Vec<f32> {
    let total = |xs: &[f32]| -> f64 {
        let mut rl = poisoned(b, &[rows]);
        fwd(b, &tensor(b, &[rows, cols], xs), &tensor(b, &[rows, cols], t0), &mut rl);
        host(b, &rl).iter().map(|&v| f64::from(v)).sum()
    };
    (0..x0.len())
        .map(|i| {
            let mut xp = x0.to_vec();
            let mut xm = x0.to_vec();
            xp[i] += h;
            xm[i] -= h;
            ((total(&xp) - total(&xm)) / (2.0 * f64::from(h))) as f32
        })
        .collect()
}

parity_test!(loss_gradients_match_finite_differences, |b| {
    let mut r = rng(23);
    let (rows, cols) = (3, 7);
    let x0 = rand_vec(&mut r, rows * cols, -2.0, 2.0);
    let t_real = rand_vec(&mut r, rows * cols, -1.0, 1.0);
    let t_prob = rand_vec(&mut r, rows * cols, 0.0, 1.0);
    let x = tensor(b, &[rows, cols], &x0);
    let h = 1e-2;

    let mut g = poisoned(b, &[rows, cols]);
    loss::mse_bwd(b, &x, &tensor(b, &[rows, cols], &t_real), 1.0, &mut g).unwrap();
    let fd = finite_diff(b, |b, x, t, o| loss::mse_fwd(b, x, t, o).unwrap(), &x0, &t_real, rows, cols, h);
    // MSE is quadratic: the central difference is exact up to f32 rounding of the row sums / h.
    let mse_g = host(b, &g);
    assert_close("mse grad vs finite differences", &mse_g, &fd, 2e-3, 1e-3);

    let mut g = poisoned(b, &[rows, cols]);
    loss::bce_logits_bwd(b, &x, &tensor(b, &[rows, cols], &t_prob), 1.0, &mut g).unwrap();
    let fd = finite_diff(b, |b, x, t, o| loss::bce_logits_fwd(b, x, t, o).unwrap(), &x0, &t_prob, rows, cols, h);
    // O(h²·|softplus'''|) ≤ 1e-5 truncation plus rounding as above.
    let bce_g = host(b, &g);
    assert_close("bce grad vs finite differences", &bce_g, &fd, 2e-3, 1e-3);
    vec![Out::new("mse grad", mse_g), Out::new("bce grad", bce_g)]
});
