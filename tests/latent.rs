//! The counter-based RNG and the fused reparameterization + KL kernels: known-answer tests,
//! accuracy and statistics, bit-identical noise on CPU and CUDA, formulas, finite differences.

mod common;

use common::*;
use latentkit::ops::latent::{
    kl_term, reparam_kl_bwd_with, reparam_kl_fwd_with, LatentConfig, LatentKernel, QuadGroups, QUAD_MAX_COLS,
};
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

/// The kernel versions that take rows of `cols` columns (the CPU backend runs its one implementation
/// for each, so every test body runs unchanged on both backends).
fn kernels(cols: usize) -> Vec<LatentKernel> {
    let mut k = vec![LatentKernel::RowPerBlock];
    if cols <= QUAD_MAX_COLS {
        k.push(LatentKernel::Quad);
    }
    k
}

/// Runs the forward pass with a kernel version; returns (z, kl_row, kl_elem).
fn forward_with<B: Backend>(
    b: &B,
    kernel: LatentKernel,
    c: &LatentCase,
    cfg: &LatentConfig,
    offset: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let shape = [c.rows, c.cols];
    let off = rng::offset_tensor(b, offset).unwrap();
    let (mu, lv) = (tensor(b, &shape, &c.mu), tensor(b, &shape, &c.logvar));
    let (mut z, mut kl_row, mut kl_elem) = (poisoned(b, &shape), poisoned(b, &[c.rows]), poisoned(b, &shape));
    reparam_kl_fwd_with(b, cfg, kernel, &off, &mu, &lv, &mut z, &mut kl_row, Some(&mut kl_elem)).unwrap();
    (host(b, &z), host(b, &kl_row), host(b, &kl_elem))
}

/// The forward pass with the kernel `LatentKernel::Auto` picks.
fn forward<B: Backend>(b: &B, c: &LatentCase, cfg: &LatentConfig, offset: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    forward_with(b, LatentKernel::Auto, c, cfg, offset)
}

/// Runs the backward pass with a kernel version; returns (dmu, dlogvar).
fn backward_with<B: Backend>(
    b: &B,
    kernel: LatentKernel,
    c: &LatentCase,
    dz: &[f32],
    w: &[f32],
    cfg: &LatentConfig,
    offset: u64,
) -> (Vec<f32>, Vec<f32>) {
    let shape = [c.rows, c.cols];
    let off = rng::offset_tensor(b, offset).unwrap();
    let (mut dmu, mut dlv) = (poisoned(b, &shape), poisoned(b, &shape));
    reparam_kl_bwd_with(
        b,
        cfg,
        kernel,
        &off,
        &tensor(b, &shape, &c.mu),
        &tensor(b, &shape, &c.logvar),
        &tensor(b, &shape, dz),
        &tensor(b, &[c.cols], w),
        &mut dmu,
        &mut dlv,
    )
    .unwrap();
    (host(b, &dmu), host(b, &dlv))
}

#[track_caller]
fn assert_same_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!(
            "{what}: element {i} is {:e} ({:#x}), want {:e} ({:#x})",
            got[i],
            got[i].to_bits(),
            want[i],
            want[i].to_bits()
        );
    }
}

parity_test!(reparam_kl_forward_matches_formulas, |b| {
    let mut outs = Vec::new();
    for &(rows, cols) in &[(1, 1), (7, 20), (33, 7), (128, 20), (3, 1000)] {
        let c = case(61, rows, cols);
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
        for kernel in kernels(cols) {
            let (z, kl_row, kl_elem) = forward_with(b, kernel, &c, &CFG, 5);
            // expf in f32: a few ulps of each term; row sums add √cols·ε relative.
            let what = format!("{rows}x{cols} {kernel:?}");
            assert_close(&format!("z {what}"), &z, &want_z, 1e-6, 2e-6);
            assert_close(&format!("kl_elem {what}"), &kl_elem, &want_k, 1e-6, 2e-6);
            assert_close(&format!("kl_row {what}"), &kl_row, &want_row, 1e-5, 1e-5);
            outs.push(Out::new(format!("z {what}"), z).tol(1e-6, 2e-6));
            outs.push(Out::new(format!("kl_row {what}"), kl_row).tol(1e-5, 1e-5));
        }
    }
    for kernel in kernels(9) {
        // Evaluation mode: z = μ exactly.
        let c = case(62, 5, 9);
        let (z, _, _) = forward_with(b, kernel, &c, &LatentConfig { sample: false, ..CFG }, 5);
        assert_eq!(z, c.mu, "{kernel:?}");
        // Golden KL values: N(0,1) → 0; μ = 1 → ½; σ² = 2 → ½(2 − ln 2 − 1).
        let g = LatentCase { mu: vec![0.0, 1.0, 0.0], logvar: vec![0.0, 0.0, 2f32.ln()], rows: 3, cols: 1 };
        let (_, kl, _) = forward_with(b, kernel, &g, &CFG, 0);
        assert_close(&format!("golden KL {kernel:?}"), &kl, &[0.0, 0.5, 0.5 * (1.0 - 2f32.ln())], 1e-7, 1e-6);
    }
    outs
});

parity_test!(reparam_kl_is_finite_for_extreme_inputs_and_reproducible, |b| {
    let mut outs = Vec::new();
    for kernel in kernels(2) {
        let c = LatentCase {
            mu: vec![1e3, -1e3, 0.5, 3.0],
            logvar: vec![1e4, -1e4, f32::MAX, -f32::MAX],
            rows: 2,
            cols: 2,
        };
        let (z, kl_row, kl_elem) = forward_with(b, kernel, &c, &CFG, 1);
        assert!(
            z.iter().chain(&kl_row).chain(&kl_elem).all(|v| v.is_finite()),
            "{kernel:?}: {z:?} {kl_row:?} {kl_elem:?}"
        );
        // The clamp bounds σ²: kl for log σ² = 1e4 uses e^20.
        assert_close(&format!("clamped KL {kernel:?}"), &kl_elem[..1], &[kl_term(1e3, 20.0)], 0.0, 1e-6);
        let big = case(63, 512, 20);
        let (_, a, _) = forward_with(b, kernel, &big, &CFG, 2);
        let (_, again, _) = forward_with(b, kernel, &big, &CFG, 2);
        assert_same_bits(&format!("kl_row rerun {kernel:?}"), &again, &a);
        outs.push(Out::new(format!("extreme z {kernel:?}"), z).tol(1e-3, 1e-6));
        outs.push(Out::new(format!("extreme kl {kernel:?}"), kl_row).tol(1e-3, 1e-5));
    }
    outs
});

parity_test!(reparam_kl_backward_matches_finite_differences, |b| {
    let (rows, cols) = (3, 5);
    let c = case(64, rows, cols);
    let mut r = rng(65);
    let dz0 = rand_vec(&mut r, rows * cols, -1.0, 1.0);
    let w0 = rand_vec(&mut r, cols, 0.1, 1.0);
    // L = Σ dz·z + Σ_c w_c Σ_r kl_elem[r, c]: its gradient is exactly what the backward computes.
    let objective = |mu: &[f32], lv: &[f32]| -> f64 {
        let cc = LatentCase { mu: mu.to_vec(), logvar: lv.to_vec(), rows, cols };
        let (z, _, ke) = forward(b, &cc, &CFG, 9);
        (0..rows * cols).map(|i| f64::from(dz0[i]) * f64::from(z[i]) + f64::from(w0[i % cols]) * f64::from(ke[i])).sum()
    };
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
    let (fd_mu, fd_lv) = (fd(0), fd(1));
    let mut outs = Vec::new();
    for kernel in kernels(cols) {
        let (g_mu, g_lv) = backward_with(b, kernel, &c, &dz0, &w0, &CFG, 9);
        // Central differences: O(h²) truncation (e^{lv} terms, |lv| ≤ 4) plus f32 rounding / h.
        assert_close(&format!("dmu vs finite differences {kernel:?}"), &g_mu, &fd_mu, 2e-3, 2e-3);
        assert_close(&format!("dlogvar vs finite differences {kernel:?}"), &g_lv, &fd_lv, 2e-3, 5e-3);
        outs.push(Out::new(format!("dmu {kernel:?}"), g_mu));
        outs.push(Out::new(format!("dlogvar {kernel:?}"), g_lv).tol(1e-6, 1e-5));
    }
    outs
});

parity_test!(nan_log_variance_reaches_the_loss, |b| {
    // A NaN log σ² must not be clamped into a finite value: the non-finite check depends on it.
    let c = LatentCase { mu: vec![0.5, -0.5, 1.0], logvar: vec![f32::NAN, 0.1, -0.2], rows: 1, cols: 3 };
    let mut outs = Vec::new();
    for kernel in kernels(3) {
        let (z, kl_row, kl_elem) = forward_with(b, kernel, &c, &CFG, 3);
        assert!(z[0].is_nan() && kl_elem[0].is_nan() && kl_row[0].is_nan(), "{kernel:?}: {z:?} {kl_row:?} {kl_elem:?}");
        assert!(z[1..].iter().chain(&kl_elem[1..]).all(|v| v.is_finite()), "{kernel:?}");
        outs.push(Out::new(format!("finite z {kernel:?}"), z[1..].to_vec()).tol(1e-6, 2e-6));
    }
    outs
});

/// Row widths around the quad kernel's cases (below, at and above a quad; the default VAE's 20 and
/// 16; an odd width whose groups end mid-quad; the first width past QUAD_MAX_COLS, where Auto falls
/// back to v1) and row counts that are not multiples of any group size.
const EDGE_COLS: [usize; 8] = [1, 3, 4, 5, 16, 20, 63, QUAD_MAX_COLS + 1];
const EDGE_ROWS: [usize; 5] = [1, 7, 33, 129, 1000];

// Tensors are always whole allocations (no views with an element offset), so every buffer the
// kernels see starts 16-byte aligned and the quad kernels' scalar fallback for unaligned pointers
// can't be reached from the API; it shares its code with the partial last quad, which these shapes
// do reach (rows·cols not a multiple of 4).
parity_test!(kernel_versions_agree_bit_for_bit_on_edge_shapes, |b| {
    let mut outs = Vec::new();
    // (150_001, 16): 2344 row groups of 64, more than the quad forward's grid (8 blocks per SM) on
    // any GPU with fewer than 293 SMs, so its blocks loop over groups.
    let shapes = EDGE_ROWS.iter().flat_map(|&r| EDGE_COLS.iter().map(move |&c| (r, c))).chain([(150_001, 16)]);
    for (rows, cols) in shapes {
        let c = case(70 + cols as u64, rows, cols);
        let mut r = rng(71 + rows as u64);
        let dz = rand_vec(&mut r, rows * cols, -1.0, 1.0);
        let w = rand_vec(&mut r, cols, 0.1, 1.0);
        let what = format!("{rows}x{cols} (groups of {} rows)", QuadGroups::new(cols).rows);
        // CPU reference (ε bit-identical; z and the KL terms within the f32 exp's few ulps).
        let cpu = latentkit::CpuBackend;
        let (want_z, want_row, want_k) = forward_with(&cpu, LatentKernel::Auto, &c, &CFG, 11);
        let (want_dmu, want_dlv) = backward_with(&cpu, LatentKernel::Auto, &c, &dz, &w, &CFG, 11);
        let mut first: Option<[Vec<f32>; 4]> = None;
        for kernel in kernels(cols) {
            let (z, kl_row, kl_elem) = forward_with(b, kernel, &c, &CFG, 11);
            let (dmu, dlv) = backward_with(b, kernel, &c, &dz, &w, &CFG, 11);
            let k = format!("{what} {kernel:?}");
            // Poisoned outputs: a NaN is an element the kernel did not write.
            assert_close(&format!("z {k}"), &z, &want_z, 1e-6, 2e-6);
            assert_close(&format!("kl_elem {k}"), &kl_elem, &want_k, 1e-6, 2e-6);
            assert_close(&format!("kl_row {k}"), &kl_row, &want_row, 1e-5, 1e-5);
            assert_close(&format!("dmu {k}"), &dmu, &want_dmu, 1e-6, 1e-5);
            // dlog σ² adds two terms that may cancel: a few ulps of expf on each (|terms| ≤ 8) remain.
            assert_close(&format!("dlogvar {k}"), &dlv, &want_dlv, 5e-6, 1e-5);
            // Without kl_elem (another flag, another alignment check): the same z and kl_row.
            let shape = [rows, cols];
            let off = rng::offset_tensor(b, 11).unwrap();
            let (mut z2, mut kl_row2) = (poisoned(b, &shape), poisoned(b, &[rows]));
            let (mu, lv) = (tensor(b, &shape, &c.mu), tensor(b, &shape, &c.logvar));
            reparam_kl_fwd_with(b, &CFG, kernel, &off, &mu, &lv, &mut z2, &mut kl_row2, None).unwrap();
            assert_same_bits(&format!("z without kl_elem {k}"), &host(b, &z2), &z);
            assert_same_bits(&format!("kl_row without kl_elem {k}"), &host(b, &kl_row2), &kl_row);
            // The versions differ only in kl_row's summation order.
            match &first {
                None => first = Some([z.clone(), kl_elem, dmu.clone(), dlv.clone()]),
                Some([z1, k1, dmu1, dlv1]) => {
                    assert_same_bits(&format!("z {k} vs v1"), &z, z1);
                    assert_same_bits(&format!("kl_elem {k} vs v1"), &kl_elem, k1);
                    assert_same_bits(&format!("dmu {k} vs v1"), &dmu, dmu1);
                    assert_same_bits(&format!("dlogvar {k} vs v1"), &dlv, dlv1);
                }
            }
            if rows <= 129 {
                outs.push(Out::new(format!("z {k}"), z).tol(1e-6, 2e-6));
                outs.push(Out::new(format!("kl_row {k}"), kl_row).tol(1e-5, 1e-5));
                outs.push(Out::new(format!("dlogvar {k}"), dlv).tol(5e-6, 1e-5));
            }
        }
    }
    // Evaluation mode through every version: z = μ exactly, ε never drawn.
    for cols in [3, 16, QUAD_MAX_COLS + 1] {
        let c = case(72, 33, cols);
        let w = vec![0.5; cols];
        for kernel in kernels(cols) {
            let eval = LatentConfig { sample: false, ..CFG };
            let (z, _, _) = forward_with(b, kernel, &c, &eval, 4);
            assert_same_bits(&format!("eval z 33x{cols} {kernel:?}"), &z, &c.mu);
            let (dmu, dlv) = backward_with(b, kernel, &c, &c.mu, &w, &eval, 4);
            let (want_dmu, want_dlv) = backward_with(&latentkit::CpuBackend, kernel, &c, &c.mu, &w, &eval, 4);
            assert_close(&format!("eval dmu 33x{cols} {kernel:?}"), &dmu, &want_dmu, 1e-6, 1e-5);
            assert_close(&format!("eval dlogvar 33x{cols} {kernel:?}"), &dlv, &want_dlv, 1e-6, 1e-5);
        }
    }
    outs
});

parity_test!(quad_forward_refuses_rows_wider_than_its_limit, |b| {
    let c = case(73, 2, QUAD_MAX_COLS + 1);
    let shape = [2, QUAD_MAX_COLS + 1];
    let off = rng::offset_tensor(b, 0).unwrap();
    let (mu, lv) = (tensor(b, &shape, &c.mu), tensor(b, &shape, &c.logvar));
    let (mut z, mut kl_row) = (poisoned(b, &shape), poisoned(b, &[2]));
    let err = reparam_kl_fwd_with(b, &CFG, LatentKernel::Quad, &off, &mu, &lv, &mut z, &mut kl_row, None);
    assert!(matches!(err, Err(latentkit::Error::InvalidArgument { .. })), "{err:?}");
    Vec::new()
});
