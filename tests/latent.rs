//! The counter-based RNG and the fused reparameterization + KL kernels: known-answer tests,
//! accuracy and statistics, bit-identical noise on CPU and CUDA, formulas, finite differences.

mod common;

use common::*;
use latentkit::ops::latent::{cpu::kl_term, reparam_kl_bwd, reparam_kl_fwd, LatentConfig};
use latentkit::ops::rng::{self, cpu as philox};
use latentkit::Backend;

#[test]
fn philox4x32_10_known_answers() {
    // Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32_10).
    assert_eq!(philox::philox4x32_10([0, 0, 0, 0], 0, 0), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(
        philox::philox4x32_10([u32::MAX; 4], u32::MAX, u32::MAX),
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
    );
    assert_eq!(
        philox::philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], 0xa4093822, 0x299f31d0),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

#[test]
fn own_ln_and_sincos_are_accurate() {
    let mut worst_ln = 0.0f64;
    for k in 1..=(1u32 << 24) {
        if k % 97 != 1 && k > 4096 {
            continue;
        }
        let u = k as f32 * 5.960_464_5e-8;
        let err = (f64::from(philox::ln_exact(u)) - f64::from(u).ln()).abs();
        worst_ln = worst_ln.max(err / f64::from(u).ln().abs().max(1.0));
    }
    assert!(worst_ln < 3e-7, "ln relative error {worst_ln:e}");
    let mut worst_trig = 0.0f64;
    for k in (0..(1u32 << 24)).step_by(101) {
        let v = k as f32 * 5.960_464_5e-8;
        let (s, c) = philox::sincos_2pi_exact(v);
        let t = std::f64::consts::TAU * f64::from(v);
        worst_trig = worst_trig.max((f64::from(s) - t.sin()).abs()).max((f64::from(c) - t.cos()).abs());
    }
    assert!(worst_trig < 3e-7, "sin/cos error {worst_trig:e}");
}

#[test]
fn normals_have_standard_statistics_and_distinct_streams() {
    let n = 1 << 20;
    let mut x = vec![0.0f32; n];
    philox::normal_fill(42, 7, &mut x);
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
    let tail = x.iter().filter(|v| v.abs() > 2.0).count() as f64 / n as f64;
    let kurt = x.iter().map(|&v| (f64::from(v) - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
    // Standard errors at n = 2^20: mean 0.001, variance 0.0014, tail 0.0002, kurtosis ≈ 0.005.
    assert!(mean.abs() < 0.005, "mean {mean}");
    assert!((var - 1.0).abs() < 0.007, "variance {var}");
    assert!((tail - 0.0455).abs() < 0.001, "P(|x| > 2) = {tail}");
    assert!((kurt - 3.0).abs() < 0.03, "kurtosis {kurt}");
    let mut other = vec![0.0f32; 64];
    philox::normal_fill(42, 8, &mut other);
    assert_ne!(&x[..64], &other[..], "a new offset must give a new stream");
    philox::normal_fill(43, 7, &mut other);
    assert_ne!(&x[..64], &other[..], "a new seed must give a new stream");
    let mut again = vec![0.0f32; 64];
    philox::normal_fill(42, 7, &mut again);
    assert_eq!(&x[..64], &again[..]);
}

parity_test!(rng_normal_is_bit_identical_across_backends, |b| {
    let mut outs = Vec::new();
    for &n in &[1usize, 7, 33, 1001, 70_001] {
        let offset = rng::offset_tensor(b, 0x1_0000_0003).unwrap();
        let mut out = poisoned(b, &[n]);
        rng::normal(b, 0xDEAD_BEEF_1234, &offset, &mut out).unwrap();
        let got = host(b, &out);
        let mut want = vec![0.0; n];
        philox::normal_fill(0xDEAD_BEEF_1234, 0x1_0000_0003, &mut want);
        // Exact: CPU and GPU use the same correctly rounded operations.
        assert_close(&format!("normal n={n}"), &got, &want, 0.0, 0.0);
        outs.push(Out::new(format!("normal n={n}"), got).tol(0.0, 0.0));
    }
    let mut offset = rng::offset_tensor(b, 0xffff_ffff).unwrap();
    rng::advance(b, &mut offset).unwrap();
    assert_eq!(offset.to_vec(b).unwrap(), vec![0, 1], "the offset carries into its high word");
    outs
});

struct LatentCase {
    mu: Vec<f32>,
    logvar: Vec<f32>,
    rows: usize,
    cols: usize,
}

fn case(seed: u64, rows: usize, cols: usize) -> LatentCase {
    let mut r = rng(seed);
    LatentCase {
        mu: rand_vec(&mut r, rows * cols, -2.0, 2.0),
        logvar: rand_vec(&mut r, rows * cols, -4.0, 2.0),
        rows,
        cols,
    }
}

const CFG: LatentConfig = LatentConfig { seed: 99, sample: true };

/// Runs the forward pass; returns (z, kl_row, kl_elem).
fn forward<B: Backend>(b: &B, c: &LatentCase, cfg: &LatentConfig, offset: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let shape = [c.rows, c.cols];
    let off = rng::offset_tensor(b, offset).unwrap();
    let (mu, lv) = (tensor(b, &shape, &c.mu), tensor(b, &shape, &c.logvar));
    let (mut z, mut kl_row, mut kl_elem) = (poisoned(b, &shape), poisoned(b, &[c.rows]), poisoned(b, &shape));
    reparam_kl_fwd(b, cfg, &off, &mu, &lv, &mut z, &mut kl_row, Some(&mut kl_elem)).unwrap();
    (host(b, &z), host(b, &kl_row), host(b, &kl_elem))
}

parity_test!(reparam_kl_forward_matches_formulas, |b| {
    let mut outs = Vec::new();
    for &(rows, cols) in &[(1, 1), (7, 20), (33, 7), (128, 20), (3, 1000)] {
        let c = case(61, rows, cols);
        let (z, kl_row, kl_elem) = forward(b, &c, &CFG, 5);
        let mut want_z = Vec::new();
        let mut want_k = Vec::new();
        for i in 0..rows * cols {
            let (m, lv) = (f64::from(c.mu[i]), f64::from(c.logvar[i]));
            let eps = f64::from(philox::philox_normal(CFG.seed, 5, i as u64));
            want_z.push((m + eps * (0.5 * lv).exp()) as f32);
            want_k.push((0.5 * (m * m + lv.exp() - lv - 1.0)) as f32);
        }
        let want_row: Vec<f32> = (0..rows)
            .map(|r| want_k[r * cols..(r + 1) * cols].iter().map(|&v| f64::from(v)).sum::<f64>() as f32)
            .collect();
        // expf in f32: a few ulps of each term; row sums add √cols·ε relative.
        assert_close(&format!("z {rows}x{cols}"), &z, &want_z, 1e-6, 2e-6);
        assert_close(&format!("kl_elem {rows}x{cols}"), &kl_elem, &want_k, 1e-6, 2e-6);
        assert_close(&format!("kl_row {rows}x{cols}"), &kl_row, &want_row, 1e-5, 1e-5);
        outs.push(Out::new(format!("z {rows}x{cols}"), z).tol(1e-6, 2e-6));
        outs.push(Out::new(format!("kl_row {rows}x{cols}"), kl_row).tol(1e-5, 1e-5));
    }
    // Evaluation mode: z = μ exactly.
    let c = case(62, 5, 9);
    let (z, _, _) = forward(b, &c, &LatentConfig { sample: false, ..CFG }, 5);
    assert_eq!(z, c.mu);
    // Golden KL values: N(0,1) → 0; μ = 1 → ½; σ² = 2 → ½(2 − ln 2 − 1).
    let g = LatentCase { mu: vec![0.0, 1.0, 0.0], logvar: vec![0.0, 0.0, 2f32.ln()], rows: 3, cols: 1 };
    let (_, kl, _) = forward(b, &g, &CFG, 0);
    assert_close("golden KL", &kl, &[0.0, 0.5, 0.5 * (1.0 - 2f32.ln())], 1e-7, 1e-6);
    outs
});

parity_test!(reparam_kl_is_finite_for_extreme_inputs_and_reproducible, |b| {
    let c =
        LatentCase { mu: vec![1e3, -1e3, 0.5, 3.0], logvar: vec![1e4, -1e4, f32::MAX, -f32::MAX], rows: 2, cols: 2 };
    let (z, kl_row, kl_elem) = forward(b, &c, &CFG, 1);
    assert!(z.iter().chain(&kl_row).chain(&kl_elem).all(|v| v.is_finite()), "{z:?} {kl_row:?} {kl_elem:?}");
    // The clamp bounds σ²: kl for log σ² = 1e4 uses e^20.
    assert_close("clamped KL", &kl_elem[..1], &[kl_term(1e3, 20.0)], 0.0, 1e-6);
    let big = case(63, 512, 20);
    let (_, a, _) = forward(b, &big, &CFG, 2);
    let (_, again, _) = forward(b, &big, &CFG, 2);
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        again.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    vec![Out::new("extreme z", z).tol(1e-3, 1e-6), Out::new("extreme kl", kl_row).tol(1e-3, 1e-5)]
});

parity_test!(reparam_kl_backward_matches_finite_differences, |b| {
    let (rows, cols) = (3, 5);
    let c = case(64, rows, cols);
    let mut r = rng(65);
    let dz0 = rand_vec(&mut r, rows * cols, -1.0, 1.0);
    let w0 = rand_vec(&mut r, cols, 0.1, 1.0);
    let shape = [rows, cols];
    let off = rng::offset_tensor(b, 9).unwrap();
    // L = Σ dz·z + Σ_c w_c Σ_r kl_elem[r, c]: its gradient is exactly what the backward computes.
    let objective = |mu: &[f32], lv: &[f32]| -> f64 {
        let cc = LatentCase { mu: mu.to_vec(), logvar: lv.to_vec(), rows, cols };
        let (z, _, ke) = forward(b, &cc, &CFG, 9);
        (0..rows * cols).map(|i| f64::from(dz0[i]) * f64::from(z[i]) + f64::from(w0[i % cols]) * f64::from(ke[i])).sum()
    };
    let (mut dmu, mut dlv) = (poisoned(b, &shape), poisoned(b, &shape));
    reparam_kl_bwd(
        b,
        &CFG,
        &off,
        &tensor(b, &shape, &c.mu),
        &tensor(b, &shape, &c.logvar),
        &tensor(b, &shape, &dz0),
        &tensor(b, &[cols], &w0),
        &mut dmu,
        &mut dlv,
    )
    .unwrap();
    let h = 1e-2f32;
    let fd = |which: usize| -> Vec<f32> {
        (0..rows * cols)
            .map(|i| {
                let eval = |d: f32| {
                    let (mut m, mut l) = (c.mu.clone(), c.logvar.clone());
                    if which == 0 {
                        m[i] += d;
                    } else {
                        l[i] += d;
                    }
                    objective(&m, &l)
                };
                ((eval(h) - eval(-h)) / (2.0 * f64::from(h))) as f32
            })
            .collect()
    };
    // Central differences: O(h²) truncation (e^{lv} terms, |lv| ≤ 4) plus f32 rounding / h.
    let (g_mu, g_lv) = (host(b, &dmu), host(b, &dlv));
    assert_close("dmu vs finite differences", &g_mu, &fd(0), 2e-3, 2e-3);
    assert_close("dlogvar vs finite differences", &g_lv, &fd(1), 2e-3, 5e-3);
    vec![Out::new("dmu", g_mu), Out::new("dlogvar", g_lv).tol(1e-6, 1e-5)]
});

parity_test!(nan_log_variance_reaches_the_loss, |b| {
    // A NaN log σ² must not be clamped into a finite value: the non-finite check depends on it.
    let c = LatentCase { mu: vec![0.5, -0.5, 1.0], logvar: vec![f32::NAN, 0.1, -0.2], rows: 1, cols: 3 };
    let (z, kl_row, kl_elem) = forward(b, &c, &CFG, 3);
    assert!(z[0].is_nan() && kl_elem[0].is_nan() && kl_row[0].is_nan(), "{z:?} {kl_row:?} {kl_elem:?}");
    assert!(z[1..].iter().chain(&kl_elem[1..]).all(|v| v.is_finite()));
    vec![Out::new("finite z", z[1..].to_vec()).tol(1e-6, 2e-6)]
});
