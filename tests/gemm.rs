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
