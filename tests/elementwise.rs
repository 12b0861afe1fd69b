//! Elementwise kernels against formulas evaluated in f64, on CPU and (when present) CUDA.

mod common;

use common::*;
use latentkit::ops::{elementwise as ew, Activation};

const ACTS: [Activation; 4] = [Activation::None, Activation::Relu, Activation::Sigmoid, Activation::Tanh];

fn act_f64(act: Activation, x: f64) -> f64 {
    match act {
        Activation::None => x,
        Activation::Relu => x.max(0.0),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Tanh => x.tanh(),
    }
}

fn grad_from_output_f64(act: Activation, y: f64) -> f64 {
    match act {
        Activation::None => 1.0,
        Activation::Relu => f64::from(u8::from(y > 0.0)),
        Activation::Sigmoid => y * (1.0 - y),
        Activation::Tanh => 1.0 - y * y,
    }
}

parity_test!(fill_writes_every_element, |b| {
    let mut outs = Vec::new();
    for &n in SIZES {
        let mut x = poisoned(b, &[n]);
        ew::fill(b, &mut x, 0.625).unwrap();
        let got = host(b, &x);
        assert_close(&format!("fill n={n}"), &got, &vec![0.625; n], 0.0, 0.0);
        outs.push(Out::new(format!("fill n={n}"), got));
    }
    outs
});

parity_test!(bias_add_matches_formula, |b| {
    let mut r = rng(11);
    let mut outs = Vec::new();
    for &(rows, cols) in &[(1, 1), (7, 33), (33, 7), (129, 1000), (1000, 17)] {
        let y0 = rand_vec(&mut r, rows * cols, -2.0, 2.0);
        let bias = rand_vec(&mut r, cols, -1.0, 1.0);
        let mut y = tensor(b, &[rows, cols], &y0);
        ew::bias_add(b, &mut y, &tensor(b, &[cols], &bias)).unwrap();
        let want: Vec<f32> = y0.iter().enumerate().map(|(i, v)| v + bias[i % cols]).collect();
        let got = host(b, &y);
        // One f32 addition: exact up to a single rounding.
        assert_close(&format!("bias_add {rows}x{cols}"), &got, &want, 0.0, 1e-7);
        outs.push(Out::new(format!("bias_add {rows}x{cols}"), got));
    }
    outs
});

parity_test!(activations_forward_and_backward_match_formulas, |b| {
    let mut r = rng(12);
    let mut outs = Vec::new();
    for act in ACTS {
        for &n in SIZES {
            // Wide range, including saturated tails where a naive sigmoid would overflow.
            let mut x0 = rand_vec(&mut r, n, -6.0, 6.0);
            if n > 2 {
                x0[0] = 90.0;
                x0[1] = -90.0;
            }
            let dy0 = rand_vec(&mut r, n, -1.0, 1.0);
            let x = tensor(b, &[n], &x0);
            let mut y = poisoned(b, &[n]);
            ew::activation_fwd(b, act, &x, &mut y).unwrap();
            let y_host = host(b, &y);
            let want: Vec<f32> = x0.iter().map(|&v| act_f64(act, f64::from(v)) as f32).collect();
            // expf/tanhf are within a few ulps of the f64 result.
            assert_close(&format!("{act:?} fwd n={n}"), &y_host, &want, 1e-7, 4e-7);

            // The backward pass reads y from the f64 formula, not this backend's own y: the
            // backends' y differ by an ulp, and y·(1 − y) near y = 1 turns that ulp into a relative
            // 1e−5 (seen on an H100), which would fail the CPU-vs-CUDA comparison for no fault of
            // the backward kernel.
            let mut dx = poisoned(b, &[n]);
            ew::activation_bwd(b, act, &tensor(b, &[n], &want), &tensor(b, &[n], &dy0), &mut dx).unwrap();
            let got = host(b, &dx);
            let want: Vec<f32> = want
                .iter()
                .zip(&dy0)
                .map(|(&yv, &g)| (f64::from(g) * grad_from_output_f64(act, f64::from(yv))) as f32)
                .collect();
            assert_close(&format!("{act:?} bwd n={n}"), &got, &want, 1e-7, 1e-6);
            outs.push(Out::new(format!("{act:?} fwd n={n}"), y_host).tol(1e-7, 4e-7));
            outs.push(Out::new(format!("{act:?} bwd n={n}"), got).tol(1e-7, 1e-6));
        }
    }
    outs
});

parity_test!(activation_backward_matches_finite_differences, |b| {
    let mut r = rng(13);
    let n = 257;
    let h = 1e-3f32;
    let mut outs = Vec::new();
    for act in ACTS {
        // Keep ReLU inputs away from its kink, where the difference quotient straddles it.
        let x0: Vec<f32> =
            rand_vec(&mut r, n, -3.0, 3.0).into_iter().map(|v| if v.abs() < 0.01 { 0.5 } else { v }).collect();
        let eval = |xs: &[f32]| {
            let mut y = poisoned(b, &[n]);
            ew::activation_fwd(b, act, &tensor(b, &[n], xs), &mut y).unwrap();
            y
        };
        let y = eval(&x0);
        let mut dx = poisoned(b, &[n]);
        ew::activation_bwd(b, act, &y, &tensor(b, &[n], &vec![1.0; n]), &mut dx).unwrap();
        let plus: Vec<f32> = x0.iter().map(|v| v + h).collect();
        let minus: Vec<f32> = x0.iter().map(|v| v - h).collect();
        let yp = eval(&plus);
        let ym = eval(&minus);
        let fd: Vec<f32> = host(b, &yp).iter().zip(host(b, &ym)).map(|(p, m)| (p - m) / (2.0 * h)).collect();
        // Central difference: O(h²) truncation plus f32 rounding ε·|f|/h ≈ 1e-4.
        let got = host(b, &dx);
        assert_close(&format!("{act:?} bwd vs finite differences"), &got, &fd, 1e-3, 1e-3);
        outs.push(Out::new(format!("{act:?} grad"), got).tol(1e-6, 1e-5));
    }
    outs
});

parity_test!(col_sum_matches_f64_sum, |b| {
    let mut r = rng(14);
    let mut outs = Vec::new();
    for &(rows, cols) in &[(1, 1), (7, 33), (1000, 7), (129, 1000)] {
        let x0 = rand_vec(&mut r, rows * cols, -1.0, 1.0);
        let prev = rand_vec(&mut r, cols, -1.0, 1.0);
        for beta in [0.0f32, 0.5] {
            let mut out = if beta == 0.0 { poisoned(b, &[cols]) } else { tensor(b, &[cols], &prev) };
            ew::col_sum(b, &tensor(b, &[rows, cols], &x0), beta, &mut out).unwrap();
            let want: Vec<f32> = (0..cols)
                .map(|c| {
                    let s: f64 = (0..rows).map(|r| f64::from(x0[r * cols + c])).sum();
                    (s + f64::from(beta) * f64::from(prev[c])) as f32
                })
                .collect();
            // A sum of `rows` f32 terms of magnitude ≤ 1 rounds by ≲ √rows·ε per term on average;
            // 1e-6·rows bounds it with a wide margin at these sizes.
            let got = host(b, &out);
            let atol = 1e-6 * rows as f32;
            assert_close(&format!("col_sum {rows}x{cols} beta={beta}"), &got, &want, atol, 1e-6);
            outs.push(Out::new(format!("col_sum {rows}x{cols} beta={beta}"), got).tol(atol, 1e-6));
        }
    }
    outs
});

parity_test!(sum_matches_f64_and_is_reproducible, |b| {
    let mut r = rng(15);
    let mut outs = Vec::new();
    for &n in SIZES {
        let x0 = rand_vec(&mut r, n, -1.0, 1.0);
        let x = tensor(b, &[n], &x0);
        let mut out = poisoned(b, &[1]);
        ew::sum(b, &x, &mut out).unwrap();
        let first = host(b, &out);
        ew::sum(b, &x, &mut out).unwrap();
        let second = host(b, &out);
        assert_eq!(first[0].to_bits(), second[0].to_bits(), "sum n={n} differs between two runs");
        let want = x0.iter().map(|&v| f64::from(v)).sum::<f64>() as f32;
        let atol = 1e-6 * (n as f32).sqrt().max(1.0);
        assert_close(&format!("sum n={n}"), &first, &[want], atol, 1e-6);
        outs.push(Out::new(format!("sum n={n}"), first).tol(atol, 1e-6));
    }
    outs
});

parity_test!(grid_stride_covers_more_elements_than_the_grid, |b| {
    // More elements than 65,536 blocks × 256 threads: each thread must loop.
    let n = (1 << 24) + 333;
    let x0: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { 1.5 } else { -0.5 }).collect();
    let mut y = poisoned(b, &[n]);
    ew::activation_fwd(b, Activation::Relu, &tensor(b, &[n], &x0), &mut y).unwrap();
    let got = host(b, &y);
    let want: Vec<f32> = x0.iter().map(|v| v.max(0.0)).collect();
    assert_close("relu 2^24+333", &got, &want, 0.0, 0.0);
    vec![Out::new("relu 2^24+333 tail", got[n - 1000..].to_vec())]
});

parity_test!(activations_propagate_nan, |b| {
    // A NaN must reach the loss and its non-finite check; a max(x, 0) ReLU would hide it.
    let x = tensor(b, &[3], &[f32::NAN, 1.5, -2.0]);
    let mut outs = Vec::new();
    for act in ACTS {
        // Finite prefill: a NaN read back must come from the kernel, not from poisoning.
        let mut y = tensor(b, &[3], &[7.0; 3]);
        ew::activation_fwd(b, act, &x, &mut y).unwrap();
        let got = host(b, &y);
        assert!(got[0].is_nan(), "{act:?}(NaN) = {}", got[0]);
        assert!(got[1..].iter().all(|v| v.is_finite()));
        outs.push(Out::new(format!("{act:?} finite part"), got[1..].to_vec()).tol(1e-7, 4e-7));
    }
    outs
});
