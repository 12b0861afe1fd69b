//! GEMM against the f64 CPU reference: every transpose pair, α/β, padded leading dimensions and
//! sizes that are not tile multiples.

mod common;

use common::*;
use latentkit::ops::gemm::{cpu::gemm_ref, gemm, matmul, GemmSpec, Transpose};
use latentkit::Tensor;

const T: [Transpose; 2] = [Transpose::No, Transpose::Yes];

/// Tolerance of an f32 GEMM against the f64 reference: each output is a K-term dot product whose
/// f32 rounding is bounded by K·ε·max|a|·max|b| (|α| ≤ 1 here; β·C adds one more rounding).
fn gemm_atol(k: usize, max_a: f32, max_b: f32) -> f32 {
    latentkit::ops::gemm::f32_error_bound(k, max_a, max_b) + 1e-6
}

/// Random A and B for a spec, with NaN in the padding columns past each stored row (a kernel that
/// reads them poisons its output).
fn operands(r: &mut latentkit::rng::LkRng, spec: &GemmSpec) -> (Vec<f32>, Vec<f32>) {
    let mut make = |(rows, cols): (usize, usize), ld: usize| {
        let mut v = rand_vec(r, rows * ld, -1.0, 1.0);
        v.chunks_mut(ld).for_each(|row| row[cols..].fill(f32::NAN));
        v
    };
    (make(spec.stored_a(), spec.lda), make(spec.stored_b(), spec.ldb))
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
                    gemm(b, &spec, at.buf(), bt.buf(), out_buf(&mut ct)).unwrap();
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

        // The same product in TF32 (against the rounded inputs, ×4 for tensor-core accumulation)
        // and in bf16 (against the bf16 values).
        let round = |v: &[f32], f: &dyn Fn(f32) -> f32| v.iter().map(|&x| f(x)).collect::<Vec<f32>>();
        let tf32 = |x: f32| latentkit::ops::gemm::cpu::round_tf32(x);
        let mut tspec = spec;
        tspec.math = latentkit::ops::gemm::GemmMath::Tf32;
        let mut c = poisoned(b, &shape);
        gemm(b, &tspec, a.buf(), bm.buf(), out_buf(&mut c)).unwrap();
        gemm_ref(&spec, &round(a0, &tf32), &round(b0, &tf32), &mut want).unwrap();
        let (got, atol) = (host(b, &c), 4.0 * atol);
        assert_close(&format!("{name} tf32"), &got, &want, atol, 1e-5);
        outs.push(Out::new(format!("{name} tf32"), got).tol(2.0 * atol, 1e-5));
        let to_bf16 = |v: &[f32]| v.iter().map(|&x| half::bf16::from_f32(x)).collect::<Vec<_>>();
        let (ah, bh) = (to_bf16(a0), to_bf16(b0));
        let (at, bt) =
            (Tensor::from_slice(b, &[ah.len()], &ah).unwrap(), Tensor::from_slice(b, &[bh.len()], &bh).unwrap());
        let mut c = poisoned(b, &shape);
        latentkit::ops::gemm::gemm_half(b, &spec, at.buf(), bt.buf(), out_buf(&mut c)).unwrap();
        let widen = |v: &[half::bf16]| v.iter().map(|h| h.to_f32()).collect::<Vec<f32>>();
        gemm_ref(&spec, &widen(&ah), &widen(&bh), &mut want).unwrap();
        let got = host(b, &c);
        assert_close(&format!("{name} bf16"), &got, &want, atol, 1e-5);
        outs.push(Out::new(format!("{name} bf16"), got).tol(2.0 * atol, 1e-5));
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

parity_test!(auto_takes_outputs_taller_than_the_fixed_rules_grid, |b| {
    // A skinny product of 1.1 M rows: the fixed rule's 16-row tiles (Tiled16) would need 68750
    // rows of blocks, past the grid's 65535; Auto must run another kernel, not refuse the call.
    let (m, n, k) = (1_100_000, 3, 2);
    let mut r = rng(44);
    let (av, bv, c0) =
        (rand_vec(&mut r, m * k, -1.0, 1.0), rand_vec(&mut r, k * n, -1.0, 1.0), rand_vec(&mut r, m * n, -1.0, 1.0));
    let (a, bm) = (tensor(b, &[m, k], &av), tensor(b, &[k, n], &bv));
    let mut c = tensor(b, &[m, n], &c0);
    matmul(b, Transpose::No, Transpose::No, 1.5, &a, &bm, 0.5, &mut c).unwrap();
    let want: Vec<f32> = (0..m * n)
        .map(|i| {
            let (row, col) = (i / n, i % n);
            let dot: f64 = (0..k).map(|p| f64::from(av[row * k + p]) * f64::from(bv[p * n + col])).sum();
            (1.5 * dot + 0.5 * f64::from(c0[i])) as f32
        })
        .collect();
    let got = host(b, &c);
    // |α·a·b| ≤ 3 and |β·c| ≤ 0.5 summed in a few roundings: 8 ulps of 4.
    assert_close("1.1 M rows", &got, &want, 8.0 * 4.0 * f32::EPSILON, 0.0);
    vec![Out::new("1.1 M rows", got)]
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
    let mut outs = Vec::new();
    // LATENTKIT_TEST_SIMT=Simt128WarpDb,... runs only those versions (versions_from_env); version i
    // draws its operands from seed 4500 + i, the same whichever versions run.
    let selected = versions_from_env("LATENTKIT_TEST_SIMT");
    for (i, kernel) in GemmKernel::SIMT.into_iter().enumerate() {
        if !selected(kernel) {
            continue;
        }
        let mut r = rng(4500 + i as u64);
        // Second size: several blocks each way and a k that leaves a partial step; third and fourth:
        // skinny both ways; the fifth has odd leading dimensions (no 16-byte rows: scalar loads);
        // the sixth and seventh a long k (split-k: 13 ranges of 80, the last one 40 long, with and
        // without 16-byte rows). Split-k on an H100's 132 SMs: 4 ranges of 80 for 300×7×257, one
        // range for the short k's. The last three have 16-byte rows and m, n, k multiples of 4 in
        // every layout (v16's and v17's whole-chunk loads): 132×260×100 has whole 128-tiles (v17:
        // 2×4 whole 64-tiles) beside edge tiles of 4 rows / columns and a k of 6 whole steps of 16
        // and a partial one; 8×12×4 is one partial step; 68×72×32 a whole 64-tile beside edges of
        // 4 rows and 8 columns, and a k of whole steps only; 68×72×1000 the same tiles with a long
        // k (split-k, v4 / v18: 13 ranges of 80, the last one 40 long, through the whole-chunk loads).
        for &(m, n, k, pad) in &[
            (1, 1, 1, 0),
            (129, 130, 33, 0),
            (300, 7, 257, 0),
            (7, 300, 9, 0),
            (70, 65, 100, 3),
            (65, 70, 1000, 0),
            (65, 70, 1000, 1),
            (132, 260, 100, 0),
            (8, 12, 4, 0),
            (68, 72, 32, 0),
            (68, 72, 1000, 0),
        ] {
            for ta in T {
                for tb in T {
                    let mut spec = GemmSpec::contiguous(ta, tb, m, n, k, 1.0, 0.0);
                    spec.kernel = kernel;
                    spec.lda += pad;
                    spec.ldb += pad;
                    let (a0, b0) = operands(&mut r, &spec);
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
                    gemm_with(b, &spec, at.buf(), bt.buf(), out_buf(&mut c), &epi).unwrap();
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

// The versions built on v16 / v17's loop, against the f64 reference and bit for bit among themselves,
// in every layout and epilogue, β = 1 included: v18, v19 (split-k reduced by each tile's last
// block; run twice in a row, which also checks that a GEMM leaves its tile counters at zero for
// the next) and v21 (v19 fed by cp.async) sum the same k ranges in the same order; v17 and v20
// (cp.async) the whole k; v22 (v16's loop, its own range count) is run twice and must repeat itself
// bit for bit. Sizes: 68×72×1000 (whole-chunk copies; 13 ranges of 80 on the emulator's
// 108 SMs, 15 on an H100's 132, each tile's last one partial), 65×70×1000 with rows padded by 3
// (element-wise copies), 130×200×300 (edge tiles both ways) and 70×65×40 (a k too short to split:
// one range).
parity_test!(db_loop_versions_agree_bitwise, |b| {
    use latentkit::ops::gemm::{gemm_with, GemmKernel};
    use GemmKernel::*;
    let groups: [&[GemmKernel]; 3] = [
        &[Simt64WarpDbSplitK, Simt64WarpDbSplitKFused, Simt64WarpDbSplitKFused, Simt64AsyncSplitKFused],
        &[Simt64WarpDb, Simt64Async],
        &[Simt128WarpDbSplitKFused, Simt128WarpDbSplitKFused],
    ];
    let mut r = rng(47);
    let mut outs = Vec::new();
    let sizes =
        [(68, 72, 1000, Ld::Tight), (65, 70, 1000, Ld::Pad3), (130, 200, 300, Ld::Align8), (70, 65, 40, Ld::Tight)];
    for (si, &(m, n, k, ld)) in sizes.iter().enumerate() {
        for (ti, (ta, tb)) in T.into_iter().flat_map(|ta| T.map(|tb| (ta, tb))).enumerate() {
            let base = with_ld(GemmSpec::contiguous(ta, tb, m, n, k, 0.75, 0.0), ld);
            let epi = EPIS[(si + ti) % 3];
            let (a0, b0) = operands(&mut r, &base);
            let (at, bt) = (tensor(b, &[a0.len()], &a0), tensor(b, &[b0.len()], &b0));
            let atol = gemm_atol(k, 1.0, 1.0);
            for group in groups {
                let mut first: Option<(GemmKernel, Vec<u32>)> = None;
                for &kernel in group.iter().filter(|&&k| version_wanted(k)) {
                    let spec = GemmSpec { kernel, ..base };
                    let name = format!("{kernel:?} {m}x{n}x{k} {ta:?}{tb:?} {ld:?} {epi:?}");
                    // The same C, bias and y draws for every run.
                    let mut rc = rng(2000 + 4 * si as u64 + ti as u64);
                    let run = |s: &GemmSpec, e: &latentkit::ops::gemm::GemmEpilogue<'_, _>, c: &mut Tensor<_>| {
                        gemm_with(b, s, at.buf(), bt.buf(), out_buf(c), e).unwrap()
                    };
                    let got = check_precision_case(b, &name, &spec, epi, &a0, &b0, &mut rc, atol, &run);
                    let got_bits = bits(&got);
                    match &first {
                        None => first = Some((kernel, got_bits)),
                        Some((k0, f)) => assert!(*f == got_bits, "{name}: bits = {k0:?}'s"),
                    }
                    outs.push(Out::new(name, got).tol(2.0 * atol, 1e-5));
                }
            }
        }
    }
    outs
});

// v23 (short k, stores from registers) and v25 (its persistent, cp.async form) in every layout and
// epilogue, β = 1 included, against the f64 reference, and v25 against v23 bit for bit (same k
// order, same epilogue): 300×260×20 with 16-byte C rows (float4 stores; v25: whole-chunk copies of
// the m/n-contiguous operand, edge chunks clamped) and edge tiles both ways, 130×68×33 (two k
// chunks, the second of one element; float4 stores beside a 4-column edge), 129×70×1 (rows of C
// not 16-byte aligned: value by value; m and n not multiples of 4: element-wise copies) and
// 7×129×100 with rows padded by 3 (four chunks, element-wise everything). 2200×900×36 (none of
// the epilogues, NN and TT only) gives v25's blocks several tiles each (270 tiles of 128×64 on
// at most 2 · 132 blocks) and two chunks a tile, so stages alternate across tiles.
parity_test!(shortk_matches_reference_in_every_epilogue, |b| {
    use latentkit::ops::gemm::GemmKernel;
    let mut r = rng(53);
    let mut outs = Vec::new();
    let sizes = [
        (300, 260, 20, Ld::Align8),
        (130, 68, 33, Ld::Tight),
        (129, 70, 1, Ld::Tight),
        (7, 129, 100, Ld::Pad3),
        (2200, 900, 36, Ld::Tight),
    ];
    for &(m, n, k, ld) in &sizes {
        for (ta, tb, epi) in layout_epi_cases(m, n) {
            let kernels = with_reference(GemmKernel::SimtShortK, GemmKernel::SimtShortKPersistent);
            let (runs, atol) = run_version_case(b, &mut r, &kernels, (m, n, k), ld, (ta, tb, epi));
            if let [v23, v25] = &runs[..] {
                assert!(bits(&v23.1) == bits(&v25.1), "v25 differs from v23 at {}", v25.0);
            }
            outs.extend(runs.into_iter().map(|(name, got)| Out::new(name, got).tol(2.0 * atol, 1e-5)));
        }
    }
    outs
});

// v26 (split-k for outputs of few rows) and v27 (its mirror, few columns, on the transposed sizes)
// in every layout and epilogue, β = 1 included, against the f64 reference. v26: 20×400×1024 (the
// dW of a 400→20 layer at a batch of 1024: many ranges of 64, one k chunk each, two where B is
// staged, rows in 5 whole groups),
// 37×130×1000 with rows padded by 3 (two row tiles, the second of 5 rows: a partial group; a
// column tile of 2 columns, whose warps past n skip the multiply; element-wise copies of a staged
// B), 5×9×70 with 16-byte rows (one range of two or three chunks, the last of 6 k padded to 8; a
// 16-byte piece of a staged B cut at k) and 33×300×3000 (ranges of several chunks, so the block's
// chunk loop and its barrier run). v27: 400×20×1024 and so on; its staged operand is A when A is
// stored [m, k] (NN, NT).
parity_test!(small_side_splitk_matches_reference_in_every_epilogue, |b| {
    use latentkit::ops::gemm::GemmKernel;
    let mut r = rng(54);
    let mut outs = Vec::new();
    let sizes =
        [(20, 400, 1024, Ld::Tight), (37, 130, 1000, Ld::Pad3), (5, 9, 70, Ld::Align8), (33, 300, 3000, Ld::Tight)];
    for kernel in
        [GemmKernel::SimtSmallMSplitK, GemmKernel::SimtSmallNSplitK].into_iter().filter(|&k| version_wanted(k))
    {
        for &(m, n, k, ld) in &sizes {
            let (m, n) = if kernel == GemmKernel::SimtSmallNSplitK { (n, m) } else { (m, n) };
            for (ta, tb) in T.into_iter().flat_map(|ta| T.map(|tb| (ta, tb))) {
                for epi in EPIS {
                    let (runs, atol) = run_version_case(b, &mut r, &[kernel], (m, n, k), ld, (ta, tb, epi));
                    outs.extend(runs.into_iter().map(|(name, got)| Out::new(name, got).tol(2.0 * atol, 1e-5)));
                }
            }
        }
    }
    outs
});

// v28 and v29 (stream-K over v16's and v17's loops) in every layout and epilogue, β = 1 included,
// against the f64 reference; each case runs twice and must repeat itself bit for bit (the sum
// order is fixed by the shape and grid; a ticket counter or flag left raised by the first run
// would also show in the second). Blocks on the emulator's 108 SMs (132 on sm_90): v28 one per
// SM, v29 four. 300×260×100 with 16-byte rows: 63 units (v29 175), fewer than blocks, one step a
// block, so every tile is summed from 7 slots. 200×300×528 with rows padded by 3 (element-wise
// loads): 33 steps a tile, 2 units a block, so ranges straddle tile ends. 130×70×1000: a partial
// last step, 63 a tile. 5×9×3: one partial step, whole tiles only. 1800×1800×40 (none of the
// epilogues, NN and TT only): 225 128-tiles (v29 841 64-tiles) of 3 steps, 5–7 units a block on
// the two emulated GPUs: blocks with a whole tile between a parked top and a finished bottom.
parity_test!(streamk_matches_reference_in_every_epilogue, |b| {
    use latentkit::ops::gemm::GemmKernel;
    let mut r = rng(55);
    let mut outs = Vec::new();
    let sizes = [
        (300, 260, 100, Ld::Align8),
        (200, 300, 528, Ld::Pad3),
        (130, 70, 1000, Ld::Tight),
        (5, 9, 3, Ld::Tight),
        (1800, 1800, 40, Ld::Tight),
    ];
    for kernel in
        [GemmKernel::Simt128WarpDbStreamK, GemmKernel::Simt64WarpDbStreamK].into_iter().filter(|&k| version_wanted(k))
    {
        for &(m, n, k, ld) in &sizes {
            for (ta, tb, epi) in layout_epi_cases(m, n) {
                let (runs, atol) = run_version_case(b, &mut r, &[kernel, kernel], (m, n, k), ld, (ta, tb, epi));
                if let [(name, got), (_, again)] = &runs[..] {
                    assert!(bits(got) == bits(again), "{name}: a second run differs from the first");
                    outs.push(Out::new(name.clone(), got.clone()).tol(2.0 * atol, 1e-5));
                }
            }
        }
    }
    outs
});

// v30 (v16's loop on 128×200 tiles, 10 columns a thread), v31 (v30 with one-launch split-k) and
// v32 (v31 on the transposed product) in every layout and epilogue, β = 1 included, against the
// f64 reference; v30 also against v16 bit for bit (the same sums in the same k order).
// v30: 300×430×100 with 16-byte rows: edge tiles of 44 rows and 30 columns, a partial last k
// step; 130×210×37 with rows padded by 3 (element-wise loads), a 10-column edge tile; 260×400×64:
// the two whole 200-column tiles of a 400-wide layer (whole-chunk loads in every layout), k in
// whole steps; 129×401×200: a 1-column edge tile, m and n not multiples of 4; 8×12×4: one partial
// step in one tile.
parity_test!(wide_tile_versions_match_reference_in_every_epilogue, |b| {
    use latentkit::ops::gemm::GemmKernel;
    let mut r = rng(56);
    let mut outs = Vec::new();
    let sizes = [
        (300, 430, 100, Ld::Align8),
        (130, 210, 37, Ld::Pad3),
        (260, 400, 64, Ld::Tight),
        (129, 401, 200, Ld::Tight),
        (8, 12, 4, Ld::Tight),
    ];
    for &(m, n, k, ld) in &sizes {
        for (ta, tb, epi) in layout_epi_cases(m, n) {
            let kernels = with_reference(GemmKernel::Simt128WarpDb, GemmKernel::Simt128x200WarpDb);
            let (runs, atol) = run_version_case(b, &mut r, &kernels, (m, n, k), ld, (ta, tb, epi));
            if let [v16, v30] = &runs[..] {
                assert!(bits(&v16.1) == bits(&v30.1), "v30 differs from v16 at {}", v30.0);
            }
            outs.extend(runs.into_iter().map(|(name, got)| Out::new(name, got).tol(2.0 * atol, 1e-5)));
        }
    }
    // v31 (v30's tiles with one-launch split-k) and v32 (v31 on the transposed product: 200×128
    // tiles of C, on the mirrored sizes) on long k's, run twice: the same bits both times (which
    // also checks that the tile counters are left at zero). On the emulator's 108 SMs (132 on
    // sm_90): 300×430×1000, 9 tiles, 9 ranges of 112 (the last 104: a partial step); 130×210×777
    // with rows padded by 3, 4 tiles, 10 ranges of 80 (the last 57); 129×401×1000, a 1-column (v32:
    // 1-row) edge tile.
    let split = [GemmKernel::Simt128x200WarpDbSplitKFused, GemmKernel::Simt200x128WarpDbSplitKFused];
    let sizes = [(300, 430, 1000, Ld::Align8), (130, 210, 777, Ld::Pad3), (129, 401, 1000, Ld::Tight)];
    let split = split.into_iter().filter(|&k| version_wanted(k));
    for (kernel, &(m, n, k, ld)) in split.flat_map(|kernel| sizes.iter().map(move |s| (kernel, s))) {
        // v32's tiles are v31's transposed: the mirrored sizes give it the same edges.
        let (m, n) = if kernel == GemmKernel::Simt200x128WarpDbSplitKFused { (n, m) } else { (m, n) };
        for (ta, tb, epi) in layout_epi_cases(m, n) {
            let kernels = [kernel; 2];
            let (runs, atol) = run_version_case(b, &mut r, &kernels, (m, n, k), ld, (ta, tb, epi));
            if let [(name, got), (_, again)] = &runs[..] {
                assert!(bits(got) == bits(again), "{name}: a second run differs from the first");
                outs.push(Out::new(name.clone(), got.clone()).tol(2.0 * atol, 1e-5));
            }
        }
    }
    outs
});

/// One case of the version tests: the m×n×k product in layout (ta, tb) with rows `ld` and α = 0.75
/// on fresh operands, run by each of `kernels` in turn with the same C, bias and y draws and
/// epilogue `epi` (β = 1 with [`Epi::SigmoidGradBeta1`]), each checked against the f64 reference
/// (check_precision_case). Returns each run's name and output, and the tolerance.
fn run_version_case<B: latentkit::Backend>(
    b: &B,
    r: &mut latentkit::rng::LkRng,
    kernels: &[latentkit::ops::gemm::GemmKernel],
    (m, n, k): (usize, usize, usize),
    ld: Ld,
    (ta, tb, epi): (Transpose, Transpose, Epi),
) -> (Vec<(String, Vec<f32>)>, f32) {
    use latentkit::ops::gemm::{gemm_with, GemmEpilogue};
    let spec = with_ld(GemmSpec::contiguous(ta, tb, m, n, k, 0.75, 0.0), ld);
    let (a0, b0) = operands(r, &spec);
    let (at, bt) = (tensor(b, &[a0.len()], &a0), tensor(b, &[b0.len()], &b0));
    let atol = gemm_atol(k, 1.0, 1.0);
    let run = |s: &GemmSpec, e: &GemmEpilogue<'_, B>, c: &mut Tensor<B>| {
        gemm_with(b, s, at.buf(), bt.buf(), out_buf(c), e).unwrap()
    };
    let r0 = r.clone();
    let runs = kernels
        .iter()
        .map(|&kernel| {
            *r = r0.clone();
            let name = format!("{kernel:?} {m}x{n}x{k} {ta:?}{tb:?} {ld:?} {epi:?}");
            let got = check_precision_case(b, &name, &GemmSpec { kernel, ..spec }, epi, &a0, &b0, r, atol, &run);
            (name, got)
        })
        .collect();
    (runs, atol)
}

/// The bit patterns of an output, for bit-for-bit comparisons.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Leading-dimension modes of the precision tests: tight rows, rows padded by 3 (never 16-byte
/// aligned: element-wise loads), rows rounded up to 8 elements (16-byte aligned for f32 and 16-bit
/// types: whole-chunk copies, partial chunks at the edges).
#[derive(Clone, Copy, Debug)]
enum Ld {
    Tight,
    Pad3,
    Align8,
}

fn with_ld(mut spec: GemmSpec, ld: Ld) -> GemmSpec {
    let fix = |ld_now: usize| match ld {
        Ld::Tight => ld_now,
        Ld::Pad3 => ld_now + 3,
        Ld::Align8 => ld_now.next_multiple_of(8),
    };
    spec.lda = fix(spec.lda);
    spec.ldb = fix(spec.ldb);
    spec.ldc = fix(spec.ldc);
    spec
}

/// The epilogues the precision tests rotate through, with their f64 reference.
#[derive(Clone, Copy, Debug)]
enum Epi {
    None,
    BiasTanh,
    SigmoidGradBeta1,
}

/// The epilogues the precision tests rotate through.
const EPIS: [Epi; 3] = [Epi::None, Epi::BiasTanh, Epi::SigmoidGradBeta1];

/// The (A transpose, B transpose, epilogue) cases a version test runs at an m×n output: every one,
/// or for outputs over 2^20 elements (slow on the CPU emulator) NN and TT without an epilogue.
fn layout_epi_cases(m: usize, n: usize) -> Vec<(Transpose, Transpose, Epi)> {
    let large = m * n > 1 << 20;
    let layouts = T.into_iter().flat_map(|ta| T.map(|tb| (ta, tb))).filter(|&(ta, tb)| !large || ta == tb);
    let epis =
        move |(ta, tb)| EPIS.into_iter().filter(move |&e| !large || matches!(e, Epi::None)).map(move |e| (ta, tb, e));
    layouts.flat_map(epis).collect()
}

fn reference_epilogue(epi: Epi, v: f32, bias: f32, y: f32) -> f32 {
    let v = f64::from(v);
    match epi {
        Epi::None => v as f32,
        Epi::BiasTanh => (v + f64::from(bias)).tanh() as f32,
        Epi::SigmoidGradBeta1 => (v * f64::from(y) * (1.0 - f64::from(y))) as f32,
    }
}

/// Sizes of the precision tests: 1, 7, 33, 129 and 1000 in each role (never all tile multiples),
/// plus a 16-aligned one whose m and n still leave partial tiles.
const PRECISION_SIZES: [(usize, usize, usize); 6] =
    [(1, 1, 1), (7, 33, 129), (129, 7, 33), (1000, 33, 7), (33, 129, 1000), (136, 200, 72)];

/// Uploads nothing: multiplies the case's operands (captured) into C with the spec and epilogue.
type RunGemm<'a, B> = dyn Fn(&GemmSpec, &latentkit::ops::gemm::GemmEpilogue<'_, B>, &mut Tensor<B>) + 'a;

/// Runs one low-precision GEMM case through `run` (which uploads and multiplies) and checks it
/// against the f64 reference of the values the kernel sees (`a_seen`, `b_seen`) at `atol_seen`.
#[allow(clippy::too_many_arguments)]
fn check_precision_case<B: latentkit::Backend>(
    b: &B,
    name: &str,
    spec: &GemmSpec,
    epi: Epi,
    a_seen: &[f32],
    b_seen: &[f32],
    r: &mut latentkit::rng::LkRng,
    atol_seen: f32,
    run: &RunGemm<'_, B>,
) -> Vec<f32> {
    use latentkit::ops::gemm::GemmEpilogue;
    use latentkit::ops::Activation;
    let (m, n) = (spec.m, spec.n);
    let c0 = rand_vec(r, m * spec.ldc, -1.0, 1.0);
    let bias0 = rand_vec(r, n, -1.0, 1.0);
    let y0 = rand_vec(r, m * spec.ldc, 0.0, 1.0);
    let mut spec = *spec;
    spec.beta = if matches!(epi, Epi::SigmoidGradBeta1) { 1.0 } else { 0.0 };
    let mut want = c0.clone();
    gemm_ref(&spec, a_seen, b_seen, &mut want).unwrap();
    for i in 0..m {
        for (j, &bias_j) in bias0.iter().enumerate() {
            let at = i * spec.ldc + j;
            want[at] = reference_epilogue(epi, want[at], bias_j, y0[at]);
        }
    }
    let (bias, y) = (tensor(b, &[n], &bias0), tensor(b, &[y0.len()], &y0));
    let epilogue = match epi {
        Epi::None => GemmEpilogue::None,
        Epi::BiasTanh => GemmEpilogue::BiasAct { bias: Some(bias.buf()), act: Activation::Tanh },
        Epi::SigmoidGradBeta1 => GemmEpilogue::ActGrad { act: Activation::Sigmoid, y: y.buf(), ldy: spec.ldc },
    };
    let mut c = if spec.beta == 0.0 { poisoned(b, &[c0.len()]) } else { tensor(b, &[c0.len()], &c0) };
    run(&spec, &epilogue, &mut c);
    let mut got = host(b, &c);
    // Padding columns of C are outside the product.
    for i in 0..m {
        for j in n..spec.ldc {
            got[i * spec.ldc + j] = want[i * spec.ldc + j];
        }
    }
    assert_close(name, &got, &want, atol_seen, 1e-5);
    got
}

/// The cases of the TF32 and half-precision tests: tensor-core kernels (and Auto) × sizes × every
/// transpose pair, rotating through the leading-dimension modes and the epilogues; α = 0.75.
fn precision_cases() -> Vec<(GemmSpec, Epi, Ld)> {
    use latentkit::ops::gemm::GemmKernel;
    let mut cases = Vec::new();
    for kernel in std::iter::once(GemmKernel::Auto).chain(GemmKernel::TENSOR_CORE).filter(|&k| version_wanted(k)) {
        for &(m, n, k) in &PRECISION_SIZES {
            for ta in T {
                for tb in T {
                    let i = cases.len();
                    let ld = [Ld::Tight, Ld::Pad3, Ld::Align8][i % 3];
                    let mut spec = with_ld(GemmSpec::contiguous(ta, tb, m, n, k, 0.75, 0.0), ld);
                    spec.kernel = kernel;
                    cases.push((spec, EPIS[(i / 3) % 3], ld));
                }
            }
        }
    }
    cases
}

parity_test!(tf32_matches_reference_at_tf32_bound, |b| {
    use latentkit::ops::gemm::{cpu::round_tf32, gemm_with, tf32_error_bound, GemmMath};
    let mut r = rng(46);
    let mut outs = Vec::new();
    // (Half-only versions have no TF32 form: asking for one is an error, tested below.)
    for (mut spec, epi, ld) in precision_cases().into_iter().filter(|c| !c.0.kernel.half_only()) {
        let GemmSpec { m, n, k, trans_a: ta, trans_b: tb, kernel, .. } = spec;
        spec.math = GemmMath::Tf32;
        let (a0, b0) = operands(&mut r, &spec);
        let (ar, br): (Vec<f32>, Vec<f32>) =
            (a0.iter().map(|&v| round_tf32(v)).collect(), b0.iter().map(|&v| round_tf32(v)).collect());
        let (at, bt) = (tensor(b, &[a0.len()], &a0), tensor(b, &[b0.len()], &b0));
        let name = format!("tf32 {kernel:?} {m}x{n}x{k} {ta:?}{tb:?} {ld:?} {epi:?}");
        // Against the rounded inputs: f32 accumulation, ×4 for the tensor cores'.
        let atol = 4.0 * gemm_atol(k, 1.0, 1.0);
        let got = check_precision_case(b, &name, &spec, epi, &ar, &br, &mut r, atol, &|s, e, c| {
            gemm_with(b, s, at.buf(), bt.buf(), out_buf(c), e).unwrap()
        });
        // Against the exact inputs: TF32's bound (through the same epilogue, slope ≤ 1).
        let mut exact = vec![0.0; got.len()];
        let mut spec0 = spec;
        spec0.beta = 0.0;
        gemm_ref(&spec0, &a0, &b0, &mut exact).unwrap();
        let mut rounded = vec![0.0; got.len()];
        gemm_ref(&spec0, &ar, &br, &mut rounded).unwrap();
        let drift = (0..m)
            .flat_map(|i| (0..n).map(move |j| i * spec.ldc + j))
            .map(|at| (exact[at] - rounded[at]).abs())
            .fold(0.0f32, f32::max);
        assert!(drift <= 0.75 * tf32_error_bound(k, 1.0, 1.0), "{name}: TF32 drift {drift} over its bound");
        outs.push(Out::new(name, got).tol(2.0 * atol, 1e-5));
    }
    outs
});

/// `spec` on the bf16 roundings of `a0` and `b0` (uploaded once), as a function of the kernel that
/// runs it, returning the output's bits: versions that share a k order compare bit for bit.
fn bf16_bits_by_kernel<'a, B: latentkit::Backend>(
    b: &'a B,
    spec: GemmSpec,
    a0: &[f32],
    b0: &[f32],
) -> impl Fn(latentkit::ops::gemm::GemmKernel) -> Vec<u32> + 'a {
    let to_bf16 = |v: &[f32]| v.iter().map(|&x| half::bf16::from_f32(x)).collect::<Vec<_>>();
    let at = Tensor::from_slice(b, &[a0.len()], &to_bf16(a0)).unwrap();
    let bt = Tensor::from_slice(b, &[b0.len()], &to_bf16(b0)).unwrap();
    move |kernel| {
        let mut c = poisoned(b, &[spec.m * spec.ldc]);
        latentkit::ops::gemm::gemm_half(b, &GemmSpec { kernel, ..spec }, at.buf(), bt.buf(), out_buf(&mut c)).unwrap();
        host(b, &c).into_iter().map(f32::to_bits).collect()
    }
}

/// One half-precision case: rounds the f32 operands to `H`, multiplies them with the spec and the
/// epilogue, and checks the output against the f64 reference of the rounded values. The products are
/// exact in f32, so the bound is f32's on the half values (×4 for the tensor cores' accumulation).
fn check_half_case<B: latentkit::Backend, H: latentkit::ops::gemm::HalfFloat>(
    b: &B,
    spec: &GemmSpec,
    epi: Epi,
    (a0, b0): (&[f32], &[f32]),
    r: &mut latentkit::rng::LkRng,
) -> Out {
    use latentkit::ops::gemm::{gemm_half_with, GemmKernel};
    let GemmSpec { m, n, k, trans_a: ta, trans_b: tb, kernel, .. } = *spec;
    let (ah, bh): (Vec<H>, Vec<H>) =
        (a0.iter().map(|&v| H::from_f32(v)).collect(), b0.iter().map(|&v| H::from_f32(v)).collect());
    let seen = |v: &[H]| v.iter().map(|x| x.to_f32()).collect::<Vec<f32>>();
    let at = Tensor::from_slice(b, &[ah.len()], &ah).unwrap();
    let bt = Tensor::from_slice(b, &[bh.len()], &bh).unwrap();
    let name = format!("{:?} {kernel:?} {m}x{n}x{k} {ta:?}{tb:?} lda {} ldb {} {epi:?}", H::DTYPE, spec.lda, spec.ldb);
    let atol = 4.0 * gemm_atol(k, 1.0, 1.0);
    // A GPU without the shared memory a kernel needs refuses it (tested in launch_gemm); Auto then
    // stands in so that the CPU and GPU lists of results still line up.
    let mut spec = *spec;
    if refuses_for_shared_memory(b, kernel) {
        eprintln!("SKIP {name}: this GPU refuses {kernel:?} (shared memory per block); Auto stands in");
        spec.kernel = GemmKernel::Auto;
    }
    let got = check_precision_case(b, &name, &spec, epi, &seen(&ah), &seen(&bh), r, atol, &|s, e, c| {
        gemm_half_with(b, s, at.buf(), bt.buf(), out_buf(c), e).unwrap()
    });
    Out::new(name, got).tol(2.0 * atol, 1e-5)
}

/// Whether `b` refuses `kernel` for want of shared memory per block (v11's 192 KiB: only an H100 /
/// H200 has it; the CPU CUDA emulator models an A100's 163 KiB).
fn refuses_for_shared_memory<B: latentkit::Backend>(b: &B, kernel: latentkit::ops::gemm::GemmKernel) -> bool {
    use latentkit::ops::gemm::gemm_half;
    let spec = GemmSpec { kernel, ..GemmSpec::contiguous(Transpose::No, Transpose::Yes, 8, 8, 8, 1.0, 0.0) };
    let x = Tensor::from_slice(b, &[64], &[half::bf16::ONE; 64]).unwrap();
    let mut c = poisoned(b, &[64]);
    matches!(gemm_half(b, &spec, x.buf(), x.buf(), out_buf(&mut c)), Err(e) if e.to_string().contains("shared memory per block"))
}

/// bf16 and f16 inputs on every tensor-core kernel (and Auto), through [`check_half_case`].
fn half_parity<B: latentkit::Backend, H: latentkit::ops::gemm::HalfFloat>(b: &B, seed: u64) -> Vec<Out> {
    let mut r = rng(seed);
    let mut outs = Vec::new();
    for (spec, epi, _) in precision_cases() {
        let (a0, b0) = operands(&mut r, &spec);
        outs.push(check_half_case::<_, H>(b, &spec, epi, (&a0, &b0), &mut r));
    }
    outs
}

parity_test!(bf16_matches_reference, |b| { half_parity::<_, half::bf16>(b, 47) });

parity_test!(f16_matches_reference, |b| { half_parity::<_, half::f16>(b, 48) });

/// Whether the env variable `var` (a comma-separated list of `GemmKernel` names, e.g.
/// `Wgmma256,Wgmma128PingPong`) selects `kernel`, and [`version_wanted`] too; unset selects every
/// version. The racecheck phases of scripts/gpu-run.sh run a test one version at a time with it,
/// so that a version the tool stops on, or that takes it long, is named.
fn versions_from_env(var: &str) -> impl Fn(latentkit::ops::gemm::GemmKernel) -> bool {
    let only = std::env::var(var).ok();
    move |k| only.as_deref().is_none_or(|l| lists(l, k)) && version_wanted(k)
}

/// Whether `list` (comma-separated `GemmKernel` names) names `kernel`.
fn lists(list: &str, kernel: latentkit::ops::gemm::GemmKernel) -> bool {
    list.split(',').any(|v| v.trim() == format!("{kernel:?}"))
}

/// `reference` and `version` for a bit-for-bit comparison where `version` runs (the reference, a
/// version checked on a GPU, is its yardstick even where LATENTKIT_TEST_VERSIONS leaves it out),
/// else `reference` alone where it runs.
fn with_reference(
    reference: latentkit::ops::gemm::GemmKernel,
    version: latentkit::ops::gemm::GemmKernel,
) -> Vec<latentkit::ops::gemm::GemmKernel> {
    match (version_wanted(reference), version_wanted(version)) {
        (_, true) => vec![reference, version],
        (true, false) => vec![reference],
        (false, false) => vec![],
    }
}

/// Whether the version tests run `kernel`: `LATENTKIT_TEST_VERSIONS` (comma-separated `GemmKernel`
/// names) lists the versions every test of this binary takes (unset: all; `Auto`, the fixed
/// rule's choice, always runs). When the whole binary fails on a GPU, scripts/gpu-run.sh runs it
/// again once for the versions checked on a GPU and once for each one not yet checked, each in its
/// own process (a kernel that faults can't take the others down with it), so that one broken
/// version does not keep the others out of the measured benches.
fn version_wanted(kernel: latentkit::ops::gemm::GemmKernel) -> bool {
    kernel == latentkit::ops::gemm::GemmKernel::Auto
        || std::env::var("LATENTKIT_TEST_VERSIONS").map_or(true, |l| lists(&l, kernel))
}

// v7, v10, v11, v15 (TensorCore128x256Swizzled, TensorCore128x128Swizzled,
// TensorCore128x256Swizzled4Stage, TensorCore128x256SwizzledPersistent) on bf16 and f16 over whole
// tiles and edge tiles, every transpose pair: 16-byte aligned rows (interior blocks copy unchecked,
// the k tail and edge blocks checked), unaligned rows (Pad3: every block checked), k steps of 64
// wrapping the 3- and 4-stage rings (5 steps) or ending inside them (2, 4 steps), a k tail inside an
// interior block (129×257×65). The four sum k in the same order: their bits agree. Then v15 over
// more tiles than an H100 has SMs (154 of 128×256), so that its blocks walk several, interior and
// edge ones. The small sizes run in the bf16 / f16 tests above.
parity_test!(tc2_interior_and_edge_tiles_match_reference, |b| {
    use latentkit::ops::gemm::GemmKernel;
    const NAME: &str = "tc2_interior_and_edge_tiles_match_reference";
    // LATENTKIT_TEST_TC2=TensorCore128x256Swizzled,... runs only those versions (versions_from_env).
    let selected = versions_from_env("LATENTKIT_TEST_TC2");
    let kernels: Vec<GemmKernel> = [
        GemmKernel::TensorCore128x256Swizzled,
        GemmKernel::TensorCore128x128Swizzled,
        GemmKernel::TensorCore128x256Swizzled4Stage,
        GemmKernel::TensorCore128x256SwizzledPersistent,
    ]
    .into_iter()
    .filter(|&k| selected(k))
    .collect();
    let mut r = rng(51);
    let mut outs = Vec::new();
    let sizes = [
        (300, 520, 200, Ld::Align8),
        (256, 512, 320, Ld::Tight),
        (300, 520, 200, Ld::Pad3),
        (129, 257, 65, Ld::Align8),
    ];
    for (si, &(m, n, k, ld)) in sizes.iter().enumerate() {
        for (ti, (ta, tb)) in T.into_iter().flat_map(|ta| T.map(|tb| (ta, tb))).enumerate() {
            let base = with_ld(GemmSpec::contiguous(ta, tb, m, n, k, 0.75, 0.0), ld);
            let epi = EPIS[(si + ti) % 3];
            let (a0, b0) = operands(&mut r, &base);
            let mut first: Option<(Vec<u32>, Vec<u32>)> = None;
            for &kernel in &kernels {
                let spec = GemmSpec { kernel, ..base };
                eprintln!("{NAME}: {kernel:?} {m}×{n}×{k} {ta:?}{tb:?} {ld:?}");
                // The same C and epilogue draws for every kernel.
                let mut rk = rng(1000 + 4 * si as u64 + ti as u64);
                let ob = check_half_case::<_, half::bf16>(b, &spec, epi, (&a0, &b0), &mut rk);
                let oh = check_half_case::<_, half::f16>(b, &spec, epi, (&a0, &b0), &mut rk);
                // (Where Auto stood in for a refused kernel, there is nothing of its own to compare.)
                let ran = !refuses_for_shared_memory(b, kernel);
                match &first {
                    _ if !ran => {}
                    None => first = Some((bits(&ob.data), bits(&oh.data))),
                    Some((fb, fh)) => {
                        assert!(
                            *fb == bits(&ob.data) && *fh == bits(&oh.data),
                            "{kernel:?} {m}x{n}x{k} {ta:?}{tb:?}: bits = v7's"
                        )
                    }
                }
                outs.push(ob);
                outs.push(oh);
            }
        }
    }
    let persistent = GemmKernel::TensorCore128x256SwizzledPersistent;
    if selected(persistent) {
        for (i, (ta, tb)) in [(Transpose::No, Transpose::Yes), (Transpose::Yes, Transpose::No)].into_iter().enumerate()
        {
            eprintln!("{NAME}: {persistent:?} 1700×2600×64 {ta:?}{tb:?}");
            let mut spec = with_ld(GemmSpec::contiguous(ta, tb, 1700, 2600, 64, 0.75, 0.0), Ld::Align8);
            spec.kernel = persistent;
            let (a0, b0) = operands(&mut r, &spec);
            outs.push(check_half_case::<_, half::bf16>(b, &spec, EPIS[i], (&a0, &b0), &mut r));
        }
    }
    outs
});

parity_test!(half_matmul_on_tensors_matches_f32_of_the_same_values, |b| {
    use latentkit::ops::gemm::{matmul_half, TensorEpilogue};
    use latentkit::ops::Activation;
    // The 784→400 layer's forward at batch 128 in bf16: X·Wᵀ + bias, ReLU.
    let mut r = rng(49);
    let (batch, fin, fout) = (128, 784, 400);
    let x0: Vec<half::bf16> = rand_vec(&mut r, batch * fin, 0.0, 1.0).into_iter().map(half::bf16::from_f32).collect();
    let w0: Vec<half::bf16> = rand_vec(&mut r, fout * fin, -0.05, 0.05).into_iter().map(half::bf16::from_f32).collect();
    let bias0 = rand_vec(&mut r, fout, -0.1, 0.1);
    let x = Tensor::from_slice(b, &[batch, fin], &x0).unwrap();
    let w = Tensor::from_slice(b, &[fout, fin], &w0).unwrap();
    let bias = tensor(b, &[fout], &bias0);
    let mut y = poisoned(b, &[batch, fout]);
    let epi = TensorEpilogue::BiasAct { bias: Some(&bias), act: Activation::Relu };
    matmul_half(b, Transpose::No, Transpose::Yes, 1.0, &x, &w, 0.0, &mut y, epi).unwrap();
    let spec = GemmSpec::contiguous(Transpose::No, Transpose::Yes, batch, fout, fin, 1.0, 0.0);
    let widen = |v: &[half::bf16]| v.iter().map(|h| h.to_f32()).collect::<Vec<f32>>();
    let mut want = vec![0.0; batch * fout];
    gemm_ref(&spec, &widen(&x0), &widen(&w0), &mut want).unwrap();
    for (i, v) in want.iter_mut().enumerate() {
        *v = (*v + bias0[i % fout]).max(0.0);
    }
    let atol = 4.0 * gemm_atol(fin, 1.0, 0.05);
    let got = host(b, &y);
    assert_close("bf16 layer forward", &got, &want, atol, 1e-5);
    // Shape errors are errors here too.
    let mut wrong = tensor(b, &[batch, fout + 1], &vec![0.0; batch * (fout + 1)]);
    assert!(matmul_half(b, Transpose::No, Transpose::Yes, 1.0, &x, &w, 0.0, &mut wrong, TensorEpilogue::None).is_err());
    vec![Out::new("bf16 layer forward", got).tol(2.0 * atol, 1e-5)]
});

#[test]
fn kernel_and_math_must_suit_the_input_type() {
    use latentkit::ops::gemm::{gemm_half, GemmKernel, GemmMath};
    use latentkit::{CpuBackend, Error};
    let b = CpuBackend;
    let (a, bm) = (vec![1.0f32; 6], vec![1.0f32; 6]);
    let mut c = vec![0.0f32; 4];
    let base = GemmSpec::contiguous(Transpose::No, Transpose::Yes, 2, 2, 3, 1.0, 0.0);
    let cases = [
        (GemmKernel::TensorCore128, GemmMath::F32, "TF32"),
        (GemmKernel::Simt128Warp, GemmMath::Tf32, "tensor-core"),
        (GemmKernel::TensorCore64, GemmMath::F32, "TF32"),
        (GemmKernel::Wgmma256, GemmMath::F32, "bf16 or f16"),
        (GemmKernel::Wgmma128, GemmMath::Tf32, "bf16 or f16"),
        (GemmKernel::TensorCore128x256Swizzled, GemmMath::Tf32, "bf16 or f16"),
        (GemmKernel::TensorCore128x256Swizzled, GemmMath::F32, "bf16 or f16"),
        (GemmKernel::TensorCore128x128Swizzled, GemmMath::F32, "bf16 or f16"),
        (GemmKernel::TensorCore128x256Swizzled4Stage, GemmMath::Tf32, "bf16 or f16"),
    ];
    for (kernel, math, says) in cases {
        let spec = GemmSpec { kernel, math, ..base };
        let err = gemm(&b, &spec, &a, &bm, &mut c).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }) && err.to_string().contains(says), "{err}");
    }
    let (ah, bh) = (vec![half::bf16::ONE; 6], vec![half::bf16::ONE; 6]);
    for spec in [GemmSpec { kernel: GemmKernel::Tiled16, ..base }, GemmSpec { math: GemmMath::Tf32, ..base }] {
        let err = gemm_half(&b, &spec, &ah, &bh, &mut c).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    }
    // And what is allowed works: bf16 on Auto.
    gemm_half(&b, &base, &ah, &bh, &mut c).unwrap();
    assert_eq!(c, vec![3.0; 4]);
}

/// v6, v8, v9, v12–v14 and v33 (Hopper: wgmma, or v33's mma.sync, with TMA loads) on bf16 and
/// f16: every transpose pair of
/// the precision sizes and a few multi-tile ones (several k steps around the stage ring, partial
/// 128×256 tiles), the epilogues, leading dimensions rounded up to multiples of 8 (TMA needs
/// 16-byte aligned rows); against the f64 reference at the tensor-core bound of the other
/// half-precision tests. Runs on compute capability 9.0 only; elsewhere asking for the kernel must
/// be an error.
#[test]
fn wgmma_matches_reference_on_hopper() {
    use latentkit::ops::gemm::{gemm_half, GemmKernel};
    const NAME: &str = "wgmma_matches_reference_on_hopper";
    let Some(b) = cuda(NAME) else { return };
    let probe = |kernel| {
        let spec = GemmSpec { kernel, ..GemmSpec::contiguous(Transpose::No, Transpose::Yes, 8, 8, 8, 1.0, 0.0) };
        let x = Tensor::from_slice(&b, &[64], &[half::bf16::ONE; 64]).unwrap();
        let mut c = poisoned(&b, &[64]);
        gemm_half(&b, &spec, x.buf(), x.buf(), out_buf(&mut c))
    };
    if !b.supports_wgmma() {
        for kernel in GemmKernel::HOPPER {
            let err = probe(kernel).unwrap_err();
            assert!(err.to_string().contains("compute capability 9.0"), "{err}");
        }
        eprintln!("SKIP {NAME}: {} is not a compute capability 9.0 GPU", b.name().unwrap_or_default());
        return;
    }
    // The last two give the persistent versions several tiles per block on a GPU of up to 132 SMs
    // (v8: 360 and 154 tiles of 128×128; v12 / v13: 180 and 84 of 128×256; v14: 90 and 42 pairs of
    // them, on 66 clusters), with a k ring that wraps inside a tile (1000) and across tiles (72: 2
    // steps a tile). (257, 300, 700) leaves v14's last pair half past m.
    let persistent = [(2500, 2200, 72), (1700, 1300, 200)];
    let sizes = PRECISION_SIZES.iter().copied().chain([(257, 300, 700), (128, 512, 64), (520, 136, 1000)]);
    // LATENTKIT_TEST_WGMMA=Wgmma256,Wgmma128PingPong runs only those versions (the racewgmma phase
    // of scripts/gpu-run.sh checks them one at a time, to tell which one a tool stops on). Each
    // case is named on stderr first, which the test harness shows when the test fails.
    let selected = versions_from_env("LATENTKIT_TEST_WGMMA");
    let mut r = rng(50);
    for (si, (m, n, k)) in sizes.chain(persistent).enumerate() {
        for (ti, (ta, tb)) in T.into_iter().flat_map(|ta| T.map(|tb| (ta, tb))).enumerate() {
            for (ki, kernel) in GemmKernel::HOPPER.into_iter().enumerate() {
                if !selected(kernel) || (persistent.contains(&(m, n, k)) && !kernel.is_persistent()) {
                    continue; // (v6 and v9 run one tile per block: the sizes above cover them)
                }
                eprintln!("{NAME}: {kernel:?} {m}×{n}×{k} {ta:?}{tb:?}");
                let mut spec = with_ld(GemmSpec::contiguous(ta, tb, m, n, k, 0.75, 0.0), Ld::Align8);
                spec.kernel = kernel;
                let epi = EPIS[(si + ti) % 3];
                let (a0, b0) = operands(&mut r, &spec);
                // bf16 and f16 take turns.
                if (si + ti + ki) % 2 == 0 {
                    check_half_case::<_, half::bf16>(&b, &spec, epi, (&a0, &b0), &mut r);
                } else {
                    check_half_case::<_, half::f16>(&b, &spec, epi, (&a0, &b0), &mut r);
                }
            }
        }
    }
    // v8 hands the stage ring from one consumer to the other tile by tile. Over more tiles than a
    // Hopper GPU has SMs (140 of 128×128 on 132), so that blocks take two, and with k steps that
    // wrap the 6-stage ring inside each tile (7), a consumer that started its tile before the other
    // one had waited for its last stage would wait on a phase a round ahead and read unlanded data.
    if selected(GemmKernel::Wgmma128PingPong) {
        let (m, n, k) = (1200, 1700, 390);
        eprintln!("{NAME}: Wgmma128PingPong {m}×{n}×{k} NoYes");
        let mut spec = with_ld(GemmSpec::contiguous(Transpose::No, Transpose::Yes, m, n, k, 0.75, 0.0), Ld::Align8);
        spec.kernel = GemmKernel::Wgmma128PingPong;
        let (a0, b0) = operands(&mut r, &spec);
        check_half_case::<_, half::bf16>(&b, &spec, EPIS[0], (&a0, &b0), &mut r);
    }
    // v8 and v9, v12–v14 sum each output in v6's k order, v33 in v7's (mma.sync): the same bits.
    for (ta, tb) in [(Transpose::No, Transpose::Yes), (Transpose::Yes, Transpose::No)] {
        let spec = with_ld(GemmSpec::contiguous(ta, tb, 300, 260, 500, 1.0, 0.0), Ld::Align8);
        let (a0, b0) = operands(&mut r, &spec);
        let run = bf16_bits_by_kernel(&b, spec, &a0, &b0);
        // Each v6 tile width against the versions that share its k order (v6 itself run once).
        let groups = [
            (GemmKernel::Wgmma128, &[(GemmKernel::Wgmma128PingPong, "v8")][..]),
            (
                GemmKernel::Wgmma256,
                &[
                    (GemmKernel::Wgmma256Multicast, "v9"),
                    (GemmKernel::Wgmma256Persistent, "v12"),
                    (GemmKernel::Wgmma256PersistentEarlyRelease, "v13"),
                    (GemmKernel::Wgmma256PersistentMulticast, "v14"),
                ][..],
            ),
            (GemmKernel::TensorCore128x256Swizzled, &[(GemmKernel::TensorCore128x256TmaPersistent, "v33")][..]),
        ];
        for (base, versions) in groups {
            let mut base_bits = None;
            for &(version, label) in versions.iter().filter(|&&(v, _)| selected(v)) {
                eprintln!("{NAME}: {version:?} bits {ta:?}{tb:?}");
                let base_bits = base_bits.get_or_insert_with(|| run(base));
                assert_eq!(*base_bits, run(version), "{ta:?}{tb:?}: {label} bits = {base:?}'s");
            }
        }
    }
    // Auto's fixed rule on Hopper (auto_kernel, AutoFamily::Wgmma): v12 where the 128-tiles fill
    // the GPU (1536² is 144 of them), v6 128-wide for few tiles and k ≥ 1024, and mma.sync
    // 64-tiles where TMA can't take the rows (ld not a multiple of 8; Auto taking a wgmma kernel
    // there would fail with the error below): Auto's bits are the named kernel's. (The emulator's
    // wgmma and mma.sync sums agree bit for bit on these sizes, so there this shows that Auto runs
    // and falls back, not which kernel it took; auto_kernel_picks_by_shape checks the rule.)
    if selected(GemmKernel::Wgmma256Persistent) && selected(GemmKernel::Wgmma128) {
        let cases = [
            ((1536, 1536, 64), Ld::Align8, GemmKernel::Wgmma256Persistent),
            ((64, 72, 1024), Ld::Align8, GemmKernel::Wgmma128),
            ((64, 72, 1024), Ld::Pad3, GemmKernel::TensorCore64),
        ];
        for ((m, n, k), ld, named) in cases {
            eprintln!("{NAME}: Auto {m}×{n}×{k} {ld:?} = {named:?}");
            let spec = with_ld(GemmSpec::contiguous(Transpose::No, Transpose::Yes, m, n, k, 1.0, 0.0), ld);
            let (a0, b0) = operands(&mut r, &spec);
            let run = bf16_bits_by_kernel(&b, spec, &a0, &b0);
            assert_eq!(run(GemmKernel::Auto), run(named), "Auto {m}×{n}×{k} {ld:?}: {named:?}'s bits");
        }
    }
    // Rows that TMA can't address (ld not a multiple of 8) are an error, not a launch.
    let mut spec = with_ld(GemmSpec::contiguous(Transpose::No, Transpose::No, 7, 33, 129, 1.0, 0.0), Ld::Pad3);
    spec.kernel = GemmKernel::Wgmma256;
    let x = Tensor::from_slice(&b, &[129 * 36], &vec![half::bf16::ONE; 129 * 36]).unwrap();
    let mut c = poisoned(&b, &[7 * 36]);
    let err = gemm_half(&b, &spec, x.buf(), x.buf(), out_buf(&mut c)).unwrap_err();
    assert!(err.to_string().contains("multiples of 8"), "{err}");
    assert!(probe(GemmKernel::Wgmma128).is_ok());
}

#[test]
fn round_tf32_is_nearest_ties_away() {
    use latentkit::ops::gemm::cpu::round_tf32;
    let ulp = 2f32.powi(-10); // TF32 spacing in [1, 2)
    assert_eq!(round_tf32(1.0 + ulp / 2.0), 1.0 + ulp, "a tie rounds away from zero");
    assert_eq!(round_tf32(-(1.0 + ulp / 2.0)), -(1.0 + ulp));
    assert_eq!(round_tf32(1.0 + ulp / 2.0 - f32::EPSILON), 1.0, "just below a tie rounds down");
    assert_eq!(round_tf32(1.0 + ulp + ulp / 4.0), 1.0 + ulp);
    assert_eq!(round_tf32(2.0 - ulp / 2.0), 2.0, "a carry moves to the next binade");
    assert_eq!(round_tf32(f32::MAX), f32::INFINITY);
    assert!(round_tf32(f32::NAN).is_nan());
    assert_eq!(round_tf32(-0.0).to_bits(), (-0.0f32).to_bits());
    let mut r = rng(50);
    for v in rand_vec(&mut r, 10_000, -1e3, 1e3) {
        let t = round_tf32(v);
        assert_eq!(t.to_bits() & 0x1fff, 0, "{v}: low 13 bits cleared");
        assert!((t - v).abs() <= v.abs() * 2f32.powi(-11), "{v} → {t}: within half a TF32 ulp");
    }
}

#[test]
fn auto_kernel_picks_by_shape() {
    use latentkit::ops::gemm::{auto_kernel, AutoFamily::*, GemmKernel::*};
    // The SM count of an H100 SXM. f32: each choice below was the fastest (or within a few percent)
    // on an H100 (2026-11-27, fourth run; BENCHMARKS.md).
    let sms = 132;
    assert_eq!(auto_kernel(4096, 4096, 4096, Simt, sms), Simt128WarpDb);
    assert_eq!(auto_kernel(8192, 8192, 8192, Simt, sms), Simt128WarpDb);
    assert_eq!(auto_kernel(8192, 784, 400, Simt, sms), Simt64WarpDb, "a side under 1024: 64-tiles");
    assert_eq!(auto_kernel(8192, 400, 784, Simt, sms), Simt64WarpDb);
    assert_eq!(auto_kernel(1024, 400, 784, Simt, sms), Simt64WarpDb, "112 64-tiles");
    assert_eq!(auto_kernel(1024, 784, 400, Simt, sms), Simt64WarpDb);
    assert_eq!(auto_kernel(400, 784, 128, Simt, sms), Simt64WarpDb);
    assert_eq!(auto_kernel(8192, 400, 20, Simt, sms), Simt64WarpDb);
    assert_eq!(auto_kernel(1024, 400, 20, Simt, sms), Simt64WarpDb);
    assert_eq!(auto_kernel(128, 400, 784, Simt, sms), Simt64WarpDbSplitK, "14 64-tiles, k = 784 splits");
    assert_eq!(auto_kernel(128, 784, 400, Simt, sms), Simt32SlicedK, "k = 400: sliced, not split");
    assert_eq!(auto_kernel(128, 20, 400, Simt, sms), Simt32SlicedK);
    assert_eq!(auto_kernel(8192, 20, 400, Simt, sms), Simt32SlicedK, "n = 20: skinny, 32-tiles");
    assert_eq!(auto_kernel(20, 400, 128, Simt, sms), Simt32SlicedK);
    assert_eq!(auto_kernel(128, 20, 16, Simt, sms), Tiled16, "too short a k to slice");
    assert_eq!(auto_kernel(128, 400, 20, Simt, sms), Tiled16);
    // A long k below one 128-tile block per SM: split-k (the dW products of a large batch).
    assert_eq!(auto_kernel(20, 400, 8192, Simt, sms), Simt64WarpDbSplitK);
    assert_eq!(auto_kernel(20, 400, 1024, Simt, sms), Simt64WarpDbSplitK);
    assert_eq!(auto_kernel(400, 784, 1024, Simt, sms), Simt64WarpDbSplitK);
    assert_eq!(auto_kernel(400, 784, 8192, Simt, sms), Simt64WarpDbSplitK);
    // Enough tiles for the GPU: no split, however long k.
    assert_eq!(auto_kernel(8192, 520, 8192, Simt, sms), Simt64WarpDb);
    // Tensor cores.
    assert_eq!(auto_kernel(4096, 4096, 4096, MmaSync, sms), TensorCore128);
    assert_eq!(auto_kernel(128, 400, 784, MmaSync, sms), TensorCore64);
    assert_eq!(auto_kernel(4096, 4096, 4096, Wgmma, sms), Wgmma256Persistent);
    assert_eq!(auto_kernel(8192, 400, 784, Wgmma, sms), Wgmma256Persistent);
    assert_eq!(auto_kernel(400, 784, 8192, Wgmma, sms), Wgmma128, "few tiles, long k");
    assert_eq!(auto_kernel(1024, 784, 400, Wgmma, sms), TensorCore64);
    assert_eq!(auto_kernel(128, 400, 20, Wgmma, sms), TensorCore64);
}

#[test]
fn splitk_ranges_fill_the_gpu_within_the_workspace() {
    use latentkit::ops::gemm::{splitk_splits, SPLITK_WORKSPACE_FLOATS};
    let sms = 132;
    // 7 tiles of 64 → about 4 blocks per SM: ⌈528 / 7⌉ = 76 ranges.
    assert_eq!(splitk_splits(20, 400, 8192, sms), 76);
    // 91 tiles → 6 ranges.
    assert_eq!(splitk_splits(400, 784, 8192, sms), 6);
    // At least 4 steps of 16 per range: k = 1000 has 63 steps → at most 15.
    assert_eq!(splitk_splits(65, 70, 1000, sms), 15);
    assert_eq!(splitk_splits(300, 7, 257, sms), 4);
    assert_eq!(splitk_splits(129, 130, 33, sms), 1);
    // The workspace bounds splits·m·n.
    let (m, n) = (2000, 1000);
    assert_eq!(splitk_splits(m, n, 1 << 20, sms), SPLITK_WORKSPACE_FLOATS / (m * n));
    assert_eq!(splitk_splits(5000, 5000, 4096, sms), 1);
}

// v26's range count: about 2 blocks of its 32×128 tiles per SM, each range at least 4 steps of 16,
// within the workspace.
#[test]
fn small_m_splitk_ranges_fill_the_gpu_within_the_workspace() {
    use latentkit::ops::gemm::{splitk_splits_small_m, GemmKernel, SPLITK_WORKSPACE_FLOATS};
    let sms = 132;
    // 4 tiles of 32×128 → ⌈264 / 4⌉ = 66 ranges (launched as 64 ranges of 8 steps).
    assert_eq!(splitk_splits_small_m(20, 400, 8192, sms), 66);
    assert_eq!(GemmKernel::SimtSmallMSplitK.splitk_ranges(20, 400, 8192, sms), 66);
    // v27 counts the transposed output's tiles: 8192×20 is 64 tiles of 128×32 → 5 ranges (k = 400
    // has 25 steps, so at most 6).
    assert_eq!(GemmKernel::SimtSmallNSplitK.splitk_ranges(8192, 20, 400, sms), 5);
    assert_eq!(GemmKernel::SimtSmallNSplitK.splitk_ranges(400, 20, 8192, sms), 66);
    // k = 1024: 64 steps, so at most 16 ranges.
    assert_eq!(splitk_splits_small_m(20, 400, 1024, sms), 16);
    assert_eq!(splitk_splits_small_m(20, 400, 63, sms), 1);
    let (m, n) = (30, 100_000);
    assert_eq!(splitk_splits_small_m(m, n, 1 << 20, sms), SPLITK_WORKSPACE_FLOATS / (m * n));
}

// v28 / v29's grid: one or four blocks per SM, at most one per (tile, 16-k step) unit, within the
// workspace's slots and the flags.
#[test]
fn streamk_blocks_fill_the_gpu_within_the_workspace() {
    use latentkit::ops::gemm::{streamk_blocks, GemmKernel::*, SPLITK_WORKSPACE_FLOATS};
    assert_eq!(streamk_blocks(Simt128WarpDbStreamK, 1024, 400, 784, 132), 132);
    assert_eq!(streamk_blocks(Simt64WarpDbStreamK, 1024, 400, 784, 132), 528);
    // 3×3 tiles of 7 steps; 1 unit.
    assert_eq!(streamk_blocks(Simt128WarpDbStreamK, 300, 260, 100, 108), 63);
    assert_eq!(streamk_blocks(Simt64WarpDbStreamK, 5, 9, 3, 132), 1);
    // A slot of 128² (64²) floats a block.
    assert_eq!(streamk_blocks(Simt128WarpDbStreamK, 8192, 8192, 8192, 1000), SPLITK_WORKSPACE_FLOATS / (128 * 128));
    assert_eq!(streamk_blocks(Simt64WarpDbStreamK, 8192, 8192, 8192, 1000), SPLITK_WORKSPACE_FLOATS / (64 * 64));
    assert_eq!(streamk_blocks(Simt128WarpDb, 1024, 400, 784, 132), 0);
}

// The range count of v22, v31 and v32: the shapes its documentation names, then the bounds on
// random shapes (each range at least 4 steps of 16, the workspace holds every range, at least one
// range) and the model it minimises, recomputed here by brute force.
#[test]
fn splitk_waves_ranges_follow_their_model_within_the_workspace() {
    use latentkit::ops::gemm::{splitk_splits_waves, GemmKernel, SPLITK_WORKSPACE_FLOATS};
    use rand::Rng;
    let sms = 132;
    assert_eq!(splitk_splits_waves(400, 784, 8192, sms, (128, 128)), 9);
    assert_eq!(splitk_splits_waves(400, 784, 1024, sms, (128, 128)), 4);
    assert_eq!(splitk_splits_waves(1024, 400, 784, sms, (128, 128)), 4);
    assert_eq!(splitk_splits_waves(1024, 784, 400, sms, (128, 128)), 2);
    assert_eq!(splitk_splits_waves(8192, 400, 784, sms, (128, 128)), 1);
    assert_eq!(splitk_splits_waves(784, 400, 8192, sms, (128, 200)), 9);
    assert_eq!(splitk_splits_waves(400, 784, 8192, sms, (128, 200)), 8);
    assert_eq!(GemmKernel::Simt128WarpDbSplitKFused.splitk_ranges(400, 784, 8192, sms), 9);
    assert_eq!(GemmKernel::Simt128x200WarpDbSplitKFused.splitk_ranges(784, 400, 8192, sms), 9);
    assert_eq!(GemmKernel::Simt200x128WarpDbSplitKFused.splitk_ranges(400, 784, 8192, sms), 9);
    assert_eq!(GemmKernel::Simt128WarpDb.splitk_ranges(400, 784, 8192, sms), 1);
    let mut r = rng(61);
    for _ in 0..2000 {
        let (m, n, k) = (r.random_range(1..3000usize), r.random_range(1..3000usize), r.random_range(1..20000usize));
        let sms = r.random_range(1..200usize);
        let tile = [(128, 128), (128, 200), (200, 128)][r.random_range(0..3usize)];
        let s = splitk_splits_waves(m, n, k, sms, tile);
        let steps = k.div_ceil(16);
        assert!(s >= 1, "{m}×{n}×{k}");
        if s > 1 {
            assert!(steps / s >= 4 && s * m * n <= SPLITK_WORKSPACE_FLOATS, "{m}×{n}×{k} on {sms} SMs: {s}");
        }
        let tiles = m.div_ceil(tile.0) * n.div_ceil(tile.1);
        let cost = |s: usize| 2 * (tiles * s).div_ceil(sms) * (steps.div_ceil(s) + 4) + s;
        let most = (steps / 4).min(SPLITK_WORKSPACE_FLOATS / (m * n)).max(1);
        assert!((1..=most).all(|t| cost(t) >= cost(s)), "{m}×{n}×{k} on {sms} SMs: {s} is not the model's minimum");
    }
}
