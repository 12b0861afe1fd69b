//! GEMM against the f64 CPU reference: every transpose pair, α/β, padded leading dimensions and
//! sizes that are not tile multiples.

mod common;

use common::*;
use latentkit::ops::gemm::{cpu::gemm_ref, gemm, matmul, GemmSpec, Transpose};

const T: [Transpose; 2] = [Transpose::No, Transpose::Yes];

/// Tolerance of an f32 GEMM against the f64 reference: each output is a K-term dot product whose
/// f32 rounding is bounded by K·ε·max|a|·max|b| (|α| ≤ 1 here; β·C adds one more rounding).
fn gemm_atol(k: usize, max_a: f32, max_b: f32) -> f32 {
    k as f32 * f32::EPSILON * max_a * max_b + 1e-6
}

parity_test!(gemm_all_transposes_alpha_beta_and_padding, |b| {
    let mut r = rng(41);
    let mut outs = Vec::new();
    let sizes = [(1, 1, 1), (7, 33, 1), (33, 7, 129), (129, 33, 7), (65, 100, 47)];
    for &(m, n, k) in &sizes {
        for ta in T {
            for tb in T {
                for &(alpha, beta, pad) in &[(1.0f32, 0.0f32, 0usize), (0.5, -1.5, 3)] {
                    let mut spec = GemmSpec::contiguous(ta, tb, m, n, k, alpha, beta);
                    spec.lda += pad;
                    spec.ldb += pad;
                    spec.ldc += pad;
                    let (ar, _) = spec.stored_a();
                    let (br, _) = spec.stored_b();
                    let a0 = rand_vec(&mut r, ar * spec.lda, -1.0, 1.0);
                    let b0 = rand_vec(&mut r, br * spec.ldb, -1.0, 1.0);
                    let c0 = rand_vec(&mut r, m * spec.ldc, -1.0, 1.0);
                    let mut want = c0.clone();
                    gemm_ref(&spec, &a0, &b0, &mut want).unwrap();
                    let at = tensor(b, &[a0.len()], &a0);
                    let bt = tensor(b, &[b0.len()], &b0);
                    // β = 0 must not read C: poison it.
                    let mut ct = if beta == 0.0 { poisoned(b, &[c0.len()]) } else { tensor(b, &[c0.len()], &c0) };
                    gemm(b, &spec, at.buf(), bt.buf(), ct.buf_mut()).unwrap();
                    let mut got = host(b, &ct);
                    if beta == 0.0 {
                        // Padding columns of C are outside the product: compare the m×n part only.
                        for i in 0..m {
                            for j in n..spec.ldc {
                                got[i * spec.ldc + j] = want[i * spec.ldc + j];
                            }
                        }
                    }
                    let name = format!("gemm {m}x{n}x{k} {ta:?}{tb:?} α={alpha} β={beta} pad={pad}");
                    let atol = gemm_atol(k, 1.0, 1.0);
                    assert_close(&name, &got, &want, atol, 1e-5);
                    outs.push(Out::new(name, got).tol(2.0 * atol, 1e-5));
                }
            }
        }
    }
    outs
});

parity_test!(gemm_training_shapes, |b| {
    // The three products of the 784→400 layer at batch 128: Y = X·Wᵀ, dX = dY·W, dW = dYᵀ·X.
    let mut r = rng(42);
    let (batch, fin, fout) = (128, 784, 400);
    let x0 = rand_vec(&mut r, batch * fin, 0.0, 1.0);
    let w0 = rand_vec(&mut r, fout * fin, -0.05, 0.05);
    let dy0 = rand_vec(&mut r, batch * fout, -1.0, 1.0);
    let (x, w, dy) = (tensor(b, &[batch, fin], &x0), tensor(b, &[fout, fin], &w0), tensor(b, &[batch, fout], &dy0));
    let mut outs = Vec::new();
    let cases = [
        ("Y = X·Wᵀ", Transpose::No, Transpose::Yes, &x, &w, [batch, fout], &x0[..], &w0[..], fin, 0.05f32),
        ("dX = dY·W", Transpose::No, Transpose::No, &dy, &w, [batch, fin], &dy0, &w0, fout, 0.05),
        ("dW = dYᵀ·X", Transpose::Yes, Transpose::No, &dy, &x, [fout, fin], &dy0, &x0, batch, 1.0),
    ];
    for (name, ta, tb, a, bm, shape, a0, b0, k, max_b) in cases {
        let mut c = poisoned(b, &shape);
        matmul(b, ta, tb, 1.0, a, bm, 0.0, &mut c).unwrap();
        let spec = GemmSpec::contiguous(ta, tb, shape[0], shape[1], k, 1.0, 0.0);
        let mut want = vec![0.0; shape[0] * shape[1]];
        gemm_ref(&spec, a0, b0, &mut want).unwrap();
        let got = host(b, &c);
        let atol = gemm_atol(k, 1.0, max_b);
        assert_close(name, &got, &want, atol, 1e-5);
        outs.push(Out::new(name, got).tol(2.0 * atol, 1e-5));
    }
    outs
});

parity_test!(gemm_alpha_zero_ignores_a_and_b, |b| {
    // BLAS: with α = 0, A·B does not count (a NaN in A must not leak into C): C = β·C.
    let (m, n, k) = (7, 5, 3);
    let a = tensor(b, &[m, k], &[f32::NAN; 21]);
    let bm = tensor(b, &[k, n], &[1.0; 15]);
    let c0 = rand_vec(&mut rng(43), m * n, -1.0, 1.0);
    let mut c = tensor(b, &[m, n], &c0);
    matmul(b, Transpose::No, Transpose::No, 0.0, &a, &bm, 0.5, &mut c).unwrap();
    let got = host(b, &c);
    let want: Vec<f32> = c0.iter().map(|v| 0.5 * v).collect();
    assert_close("α = 0, β = 0.5", &got, &want, 0.0, 0.0);
    let mut c = poisoned(b, &[m, n]);
    matmul(b, Transpose::No, Transpose::No, 0.0, &a, &bm, 0.0, &mut c).unwrap();
    assert_close("α = 0, β = 0", &host(b, &c), &vec![0.0; m * n], 0.0, 0.0);
    vec![Out::new("α = 0", got)]
});

parity_test!(gemm_epilogues_match_reference, |b| {
    use latentkit::ops::gemm::{matmul_with, TensorEpilogue};
    use latentkit::ops::Activation;
    let mut r = rng(44);
    let mut outs = Vec::new();
    let f = |act: Activation, v: f64| -> f64 {
        match act {
            Activation::None => v,
            Activation::Relu => v.max(0.0),
            Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Activation::Tanh => v.tanh(),
        }
    };
    let df = |act: Activation, y: f64| -> f64 {
        match act {
            Activation::None => 1.0,
            Activation::Relu => f64::from(u8::from(y > 0.0)),
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
        }
    };
    for &(m, n, k) in &[(1, 1, 1), (7, 33, 5), (33, 7, 129), (128, 20, 400)] {
        for act in [Activation::None, Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
            let a0 = rand_vec(&mut r, m * k, -1.0, 1.0);
            let b0 = rand_vec(&mut r, n * k, -1.0, 1.0);
            let bias0 = rand_vec(&mut r, n, -1.0, 1.0);
            let c0 = rand_vec(&mut r, m * n, -1.0, 1.0);
            let y0 = rand_vec(&mut r, m * n, 0.0, 1.0);
            let (a, bm, bias, y) =
                (tensor(b, &[m, k], &a0), tensor(b, &[n, k], &b0), tensor(b, &[n], &bias0), tensor(b, &[m, n], &y0));
            let spec = GemmSpec::contiguous(Transpose::No, Transpose::Yes, m, n, k, 0.5, 0.0);
            let mut prod = vec![0.0; m * n];
            gemm_ref(&spec, &a0, &b0, &mut prod).unwrap();
            // Forward epilogue: act(α·A·Bᵀ + bias).
            let mut c = poisoned(b, &[m, n]);
            matmul_with(
                b,
                Transpose::No,
                Transpose::Yes,
                0.5,
                &a,
                &bm,
                0.0,
                &mut c,
                TensorEpilogue::BiasAct { bias: Some(&bias), act },
            )
            .unwrap();
            let want: Vec<f32> =
                (0..m * n).map(|i| f(act, f64::from(prod[i]) + f64::from(bias0[i % n])) as f32).collect();
            let got = host(b, &c);
            // The product's K·ε bound, passed through activations with slope ≤ 1.
            let atol = gemm_atol(k, 1.0, 1.0);
            assert_close(&format!("bias+{act:?} {m}x{n}x{k}"), &got, &want, atol, 1e-5);
            outs.push(Out::new(format!("bias+{act:?} {m}x{n}x{k}"), got).tol(2.0 * atol, 1e-5));
            // Backward epilogue with β = 1: (α·A·Bᵀ + C) · act'(y).
            let mut c = tensor(b, &[m, n], &c0);
            matmul_with(
                b,
                Transpose::No,
                Transpose::Yes,
                0.5,
                &a,
                &bm,
                1.0,
                &mut c,
                TensorEpilogue::ActGrad { act, y: &y },
            )
            .unwrap();
            let want: Vec<f32> = (0..m * n)
                .map(|i| ((f64::from(prod[i]) + f64::from(c0[i])) * df(act, f64::from(y0[i]))) as f32)
                .collect();
            let got = host(b, &c);
            assert_close(&format!("grad {act:?} {m}x{n}x{k}"), &got, &want, atol, 1e-5);
            outs.push(Out::new(format!("grad {act:?} {m}x{n}x{k}"), got).tol(2.0 * atol, 1e-5));
        }
    }
    // Shape errors for the epilogue operands.
    let (a, bm) = (tensor(b, &[3, 2], &[1.0; 6]), tensor(b, &[4, 2], &[1.0; 8]));
    let mut c = tensor(b, &[3, 4], &[0.0; 12]);
    let short = tensor(b, &[3], &[0.0; 3]);
    assert!(matmul_with(
        b,
        Transpose::No,
        Transpose::Yes,
        1.0,
        &a,
        &bm,
        0.0,
        &mut c,
        TensorEpilogue::BiasAct { bias: Some(&short), act: Activation::Relu }
    )
    .is_err());
    assert!(matmul_with(
        b,
        Transpose::No,
        Transpose::Yes,
        1.0,
        &a,
        &bm,
        0.0,
        &mut c,
        TensorEpilogue::ActGrad { act: Activation::Relu, y: &short }
    )
    .is_err());
    outs
});

parity_test!(every_gemm_kernel_version_matches_reference, |b| {
    use latentkit::ops::gemm::{gemm_with, GemmEpilogue, GemmKernel};
    use latentkit::ops::Activation;
    // Sizes around the v2 kernel's 128×128×8 tiles (and across several blocks).
    let mut r = rng(45);
    let mut outs = Vec::new();
    for kernel in [GemmKernel::Tiled16, GemmKernel::Simt128] {
        for &(m, n, k) in &[(1, 1, 1), (129, 130, 33), (300, 7, 257), (7, 300, 9)] {
            for ta in T {
                for tb in T {
                    let mut spec = GemmSpec::contiguous(ta, tb, m, n, k, 1.0, 0.0);
                    spec.kernel = kernel;
                    let (ar, _) = spec.stored_a();
                    let (br, _) = spec.stored_b();
                    let a0 = rand_vec(&mut r, ar * spec.lda, -1.0, 1.0);
                    let b0 = rand_vec(&mut r, br * spec.ldb, -1.0, 1.0);
                    let bias0 = rand_vec(&mut r, n, -1.0, 1.0);
                    let mut want = vec![0.0; m * n];
                    gemm_ref(&spec, &a0, &b0, &mut want).unwrap();
                    for (i, w) in want.iter_mut().enumerate() {
                        *w = (*w + bias0[i % n]).max(0.0);
                    }
                    let (at, bt, bias) =
                        (tensor(b, &[a0.len()], &a0), tensor(b, &[b0.len()], &b0), tensor(b, &[n], &bias0));
                    let mut c = poisoned(b, &[m * n]);
                    let epi = GemmEpilogue::BiasAct { bias: Some(bias.buf()), act: Activation::Relu };
                    gemm_with(b, &spec, at.buf(), bt.buf(), c.buf_mut(), &epi).unwrap();
                    let got = host(b, &c);
                    let name = format!("{kernel:?} {m}x{n}x{k} {ta:?}{tb:?} bias+relu");
                    let atol = gemm_atol(k, 1.0, 1.0);
                    assert_close(&name, &got, &want, atol, 1e-5);
                    outs.push(Out::new(name, got).tol(2.0 * atol, 1e-5));
                }
            }
        }
    }
    outs
});
