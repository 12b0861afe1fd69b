//! Pairwise distance forward and backward: f64 brute-force oracles written directly (Σ(q − r)²,
//! not the GEMM form the kernels use), finite differences, zero vectors and identical points.

mod common;

use common::*;
use latentkit::ops::distance::{pairwise_distance, pairwise_distance_bwd, Metric};
use latentkit::{Backend, CpuBackend, Error, Tensor};

const METRICS: [Metric; 3] = [Metric::SquaredEuclidean, Metric::Euclidean, Metric::Cosine];
const F32_EPS: f32 = f32::EPSILON;

/// (n, m, d): sizes that are not multiples of the 16-wide tiles, several tiles, d > one tile.
const SHAPES: &[(usize, usize, usize)] =
    &[(1, 1, 1), (7, 33, 5), (33, 7, 17), (129, 40, 33), (1000, 3, 2), (2, 17, 300)];

fn oracle(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let sq: f64 = a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum();
    match metric {
        Metric::SquaredEuclidean => sq,
        Metric::Euclidean => sq.sqrt(),
        Metric::Cosine => {
            let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
            let na = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt().max(1e-12);
            let nb = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt().max(1e-12);
            1.0 - dot / (na * nb)
        }
    }
}

/// ∂κ(x, y)/∂x from the direct formulas, f64.
fn oracle_grad(metric: Metric, x: &[f32], y: &[f32]) -> Vec<f64> {
    let diff: Vec<f64> = x.iter().zip(y).map(|(&a, &b)| f64::from(a) - f64::from(b)).collect();
    match metric {
        Metric::SquaredEuclidean => diff.iter().map(|v| 2.0 * v).collect(),
        Metric::Euclidean => {
            let n = diff.iter().map(|v| v * v).sum::<f64>().sqrt();
            diff.iter().map(|v| if n > 0.0 { v / n } else { 0.0 }).collect()
        }
        Metric::Cosine => {
            let nx = x.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
            let ny = y.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
            let dot: f64 = x.iter().zip(y).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            let c = dot / (nx * ny);
            x.iter().zip(y).map(|(&a, &b)| -(f64::from(b) / (nx * ny) - c * f64::from(a) / (nx * nx))).collect()
        }
    }
}

fn max_sqnorm(x: &[f32], d: usize) -> f32 {
    x.chunks_exact(d).map(|r| r.iter().map(|v| v * v).sum::<f32>()).fold(0.0, f32::max)
}

/// Absolute tolerance of κ² for the GEMM form in f32: the sum of ‖q‖² + ‖r‖² − 2 q·r carries
/// ≈ (d + 2)·ε·(‖q‖² + ‖r‖²) of rounding (sequential FMAs); ×2 for headroom.
fn sq_atol(q: &[f32], r: &[f32], d: usize) -> f32 {
    2.0 * (d as f32 + 2.0) * F32_EPS * (max_sqnorm(q, d) + max_sqnorm(r, d))
}

parity_test!(pairwise_distance_matches_f64_oracle, |b| {
    let mut outs = Vec::new();
    for (si, &(n, m, d)) in SHAPES.iter().enumerate() {
        let mut rg = rng(100 + si as u64);
        let q0 = rand_vec(&mut rg, n * d, -1.0, 1.0);
        let r0 = rand_vec(&mut rg, m * d, -1.0, 1.0);
        let (q, r) = (tensor(b, &[n, d], &q0), tensor(b, &[m, d], &r0));
        let atol2 = sq_atol(&q0, &r0, d);
        for metric in METRICS {
            let mut out = poisoned(b, &[n, m]);
            pairwise_distance(b, metric, &q, &r, &mut out).unwrap();
            let got = host(b, &out);
            let want: Vec<f32> =
                (0..n * m).map(|ij| oracle(metric, &q0[ij / m * d..][..d], &r0[ij % m * d..][..d]) as f32).collect();
            let what = format!("{metric:?} {n}x{m}x{d}");
            match metric {
                // Compare κ² for Euclidean: its absolute error is what the GEMM form bounds.
                Metric::Euclidean => {
                    let g2: Vec<f32> = got.iter().map(|v| v * v).collect();
                    let w2: Vec<f32> = want.iter().map(|v| v * v).collect();
                    assert_close(&what, &g2, &w2, atol2, 1e-6);
                    assert!(got.iter().all(|v| *v >= 0.0), "{what}: negative distance");
                }
                Metric::SquaredEuclidean => assert_close(&what, &got, &want, atol2, 1e-6),
                // cos = dot / (‖q‖‖r‖): ≈ (d + 4)·ε relative error of a value ≤ 1.
                Metric::Cosine => assert_close(&what, &got, &want, 2.0 * (d as f32 + 4.0) * F32_EPS, 0.0),
            }
            let atol = if metric == Metric::Cosine { 2.0 * (d as f32 + 4.0) * F32_EPS } else { atol2 };
            let atol = if metric == Metric::Euclidean { atol.sqrt() } else { atol };
            outs.push(Out::new(what, got).tol(atol, 1e-5));
        }
    }
    outs
});

parity_test!(pairwise_distance_zero_vectors_and_identical_points, |b| {
    // Rows: a point, the same point again, a zero vector, a tiny vector; r = q (same set).
    let d = 5;
    let mut rg = rng(7);
    let p = rand_vec(&mut rg, d, -2.0, 2.0);
    let mut x = p.clone();
    x.extend_from_slice(&p);
    x.extend(std::iter::repeat_n(0.0, d));
    x.extend(std::iter::repeat_n(1e-30, d));
    let n = 4;
    let t = tensor(b, &[n, d], &x);
    let mut outs = Vec::new();
    for metric in METRICS {
        let mut out = poisoned(b, &[n, n]);
        pairwise_distance(b, metric, &t, &t, &mut out).unwrap();
        let got = host(b, &out);
        assert!(got.iter().all(|v| v.is_finite()), "{metric:?}: {got:?}");
        match metric {
            Metric::Cosine => {
                // Zero vector: cosine 0, distance 1 against everything (itself included).
                for j in 0..n {
                    assert_eq!(got[2 * n + j], 1.0, "cosine row of the zero vector: {got:?}");
                }
                assert!(got[1].abs() < 1e-6, "identical points: {}", got[1]);
            }
            _ => {
                // Identical points give exactly 0 (same sums, exact cancellation).
                for (i, j) in [(0, 0), (0, 1), (1, 0), (2, 2), (3, 3)] {
                    assert_eq!(got[i * n + j], 0.0, "{metric:?} ({i}, {j}): {got:?}");
                }
            }
        }
        // Gradients stay finite (the cosine gradient at the floored zero vector is huge but finite).
        let g0 = vec![1.0f32; n * n];
        let (mut dq, mut dr) = (poisoned(b, &[n, d]), poisoned(b, &[n, d]));
        pairwise_distance_bwd(b, metric, &t, &t, &tensor(b, &[n, n], &g0), &mut dq, &mut dr).unwrap();
        let (gq, gr) = (host(b, &dq), host(b, &dr));
        assert!(gq.iter().chain(&gr).all(|v| v.is_finite()), "{metric:?}: {gq:?} {gr:?}");
        if metric != Metric::Cosine {
            // The pair of identical points (0, 1) has gradient exactly 0 (Euclidean: the stated
            // subgradient at κ = 0; squared: 2(q − r) = 0).
            let mut pairs = vec![0.0f32; n * n];
            pairs[1] = 1.0;
            let (mut dq1, mut dr1) = (poisoned(b, &[n, d]), poisoned(b, &[n, d]));
            pairwise_distance_bwd(b, metric, &t, &t, &tensor(b, &[n, n], &pairs), &mut dq1, &mut dr1).unwrap();
            assert!(host(b, &dq1).iter().chain(&host(b, &dr1)).all(|v| *v == 0.0), "{metric:?}");
        }
        outs.push(Out::new(format!("{metric:?} special"), got).tol(1e-6, 1e-6));
    }
    outs
});

/// Gradient of Σ g_ij κ_ij with respect to q and r, from the direct f64 formulas.
fn oracle_bwd(metric: Metric, q: &[f32], r: &[f32], g: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
    let (n, m) = (q.len() / d, r.len() / d);
    let mut dq = vec![0.0f64; n * d];
    let mut dr = vec![0.0f64; m * d];
    for i in 0..n {
        for j in 0..m {
            let gij = f64::from(g[i * m + j]);
            let (qi, rj) = (&q[i * d..][..d], &r[j * d..][..d]);
            for (k, v) in oracle_grad(metric, qi, rj).into_iter().enumerate() {
                dq[i * d + k] += gij * v;
            }
            for (k, v) in oracle_grad(metric, rj, qi).into_iter().enumerate() {
                dr[j * d + k] += gij * v;
            }
        }
    }
    (dq.into_iter().map(|v| v as f32).collect(), dr.into_iter().map(|v| v as f32).collect())
}

/// Absolute tolerances of dq and dr in f32: each output element sums Σ_j |g_ij|·|∂κ_ij| terms
/// with ≈ (d + 4)·ε relative error each (×8 headroom) plus the f32 rounding of the running sum
/// (√terms·ε of the largest partial sum, ×8); for Euclidean, (q − r)/κ also inherits κ's relative error
/// sq_atol / (2κ²) from the GEMM form, which is largest for the closest pairs.
fn bwd_atol(metric: Metric, q: &[f32], r: &[f32], g: &[f32], d: usize) -> (f32, f32) {
    let (n, m) = (q.len() / d, r.len() / d);
    let sq = f64::from(sq_atol(q, r, d));
    let eps = f64::from(F32_EPS);
    let term = |i: usize, j: usize| -> f64 {
        let (qi, rj) = (&q[i * d..][..d], &r[j * d..][..d]);
        let mag =
            oracle_grad(metric, qi, rj).iter().chain(&oracle_grad(metric, rj, qi)).fold(0.0f64, |a, v| a.max(v.abs()));
        let mut e = 8.0 * (d as f64 + 4.0) * eps * mag;
        if metric == Metric::Euclidean {
            e += mag * sq / (2.0 * oracle(metric, qi, rj).powi(2));
        }
        f64::from(g[i * m + j]).abs() * e + 8.0 * ((n.max(m)) as f64).sqrt() * eps * f64::from(g[i * m + j]).abs() * mag
    };
    let aq = (0..n).map(|i| (0..m).map(|j| term(i, j)).sum::<f64>()).fold(0.0, f64::max);
    let ar = (0..m).map(|j| (0..n).map(|i| term(i, j)).sum::<f64>()).fold(0.0, f64::max);
    ((aq as f32).max(1e-6), (ar as f32).max(1e-6))
}

parity_test!(pairwise_distance_bwd_matches_oracle, |b| {
    let mut outs = Vec::new();
    for (si, &(n, m, d)) in SHAPES.iter().enumerate() {
        let mut rg = rng(200 + si as u64);
        let q0 = rand_vec(&mut rg, n * d, -1.0, 1.0);
        let r0 = rand_vec(&mut rg, m * d, -1.0, 1.0);
        let g0 = rand_vec(&mut rg, n * m, -1.0, 1.0);
        let (q, r, g) = (tensor(b, &[n, d], &q0), tensor(b, &[m, d], &r0), tensor(b, &[n, m], &g0));
        for metric in METRICS {
            let (mut dq, mut dr) = (poisoned(b, &[n, d]), poisoned(b, &[m, d]));
            pairwise_distance_bwd(b, metric, &q, &r, &g, &mut dq, &mut dr).unwrap();
            let (want_q, want_r) = oracle_bwd(metric, &q0, &r0, &g0, d);
            let (atol_q, atol_r) = bwd_atol(metric, &q0, &r0, &g0, d);
            let what = format!("{metric:?} {n}x{m}x{d}");
            let (gq, gr) = (host(b, &dq), host(b, &dr));
            assert_close(&format!("dq {what}"), &gq, &want_q, atol_q, 1e-4);
            assert_close(&format!("dr {what}"), &gr, &want_r, atol_r, 1e-4);
            outs.push(Out::new(format!("dq {what}"), gq).tol(atol_q, 1e-4));
            outs.push(Out::new(format!("dr {what}"), gr).tol(atol_r, 1e-4));
        }
    }
    outs
});

parity_test!(pairwise_distance_bwd_matches_finite_differences, |b| {
    let (n, m, d) = (3, 4, 5);
    let mut rg = rng(300);
    let q0 = rand_vec(&mut rg, n * d, -1.0, 1.0);
    let r0 = rand_vec(&mut rg, m * d, -1.0, 1.0);
    let g0 = rand_vec(&mut rg, n * m, -1.0, 1.0);
    let mut outs = Vec::new();
    for metric in METRICS {
        // L(q, r) = Σ g_ij κ_ij evaluated with the backend's own forward.
        let objective = |qv: &[f32], rv: &[f32]| -> f64 {
            let mut out = poisoned(b, &[n, m]);
            pairwise_distance(b, metric, &tensor(b, &[n, d], qv), &tensor(b, &[m, d], rv), &mut out).unwrap();
            host(b, &out).iter().zip(&g0).map(|(&k, &g)| f64::from(k) * f64::from(g)).sum()
        };
        let (mut dq, mut dr) = (poisoned(b, &[n, d]), poisoned(b, &[m, d]));
        let (q, r) = (tensor(b, &[n, d], &q0), tensor(b, &[m, d], &r0));
        pairwise_distance_bwd(b, metric, &q, &r, &tensor(b, &[n, m], &g0), &mut dq, &mut dr).unwrap();
        let h = 1e-2f32;
        let fd = |side: usize| -> Vec<f32> {
            let len = if side == 0 { n * d } else { m * d };
            (0..len)
                .map(|i| {
                    let eval = |delta: f32| {
                        let (mut qv, mut rv) = (q0.clone(), r0.clone());
                        if side == 0 {
                            qv[i] += delta;
                        } else {
                            rv[i] += delta;
                        }
                        objective(&qv, &rv)
                    };
                    ((eval(h) - eval(-h)) / (2.0 * f64::from(h))) as f32
                })
                .collect()
        };
        // Central differences: O(h²·κ''') truncation (κ'' ≲ 1/κ for Euclidean, κ ≳ 0.3 here) plus
        // f32 rounding of 12 outputs / h ≈ 1e−4.
        let (gq, gr) = (host(b, &dq), host(b, &dr));
        assert_close(&format!("{metric:?} dq vs FD"), &gq, &fd(0), 2e-3, 5e-3);
        assert_close(&format!("{metric:?} dr vs FD"), &gr, &fd(1), 2e-3, 5e-3);
        outs.push(Out::new(format!("{metric:?} dq"), gq).tol(1e-5, 1e-4));
        outs.push(Out::new(format!("{metric:?} dr"), gr).tol(1e-5, 1e-4));
    }
    outs
});

parity_test!(pairwise_distance_handles_empty_sets, |b| {
    let d = 3;
    let q = tensor(b, &[2, d], &[1.0, 2.0, 3.0, -1.0, 0.5, 2.0]);
    let r = Tensor::zeros(b, &[0, d]).unwrap();
    let mut out = Tensor::zeros(b, &[2, 0]).unwrap();
    pairwise_distance(b, Metric::Euclidean, &q, &r, &mut out).unwrap();
    // No references: dq is all zeros (an empty sum), dr is empty.
    let (mut dq, mut dr) = (poisoned(b, &[2, d]), Tensor::zeros(b, &[0, d]).unwrap());
    pairwise_distance_bwd(b, Metric::Euclidean, &q, &r, &Tensor::zeros(b, &[2, 0]).unwrap(), &mut dq, &mut dr).unwrap();
    let gq = host(b, &dq);
    assert_eq!(gq, vec![0.0; 2 * d]);
    vec![Out::new("dq no refs", gq)]
});

#[test]
fn pairwise_distance_rejects_bad_shapes() {
    let b = CpuBackend;
    let q = Tensor::zeros(&b, &[4, 3]).unwrap();
    let r = Tensor::zeros(&b, &[5, 2]).unwrap();
    let mut out = Tensor::zeros(&b, &[4, 5]).unwrap();
    let e = pairwise_distance(&b, Metric::Euclidean, &q, &r, &mut out).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "pairwise_distance", .. }), "{e}");
    let r = Tensor::zeros(&b, &[5, 3]).unwrap();
    let mut bad_out = Tensor::zeros(&b, &[5, 4]).unwrap();
    assert!(matches!(pairwise_distance(&b, Metric::Cosine, &q, &r, &mut bad_out), Err(Error::Shape { .. })));
    let v = Tensor::zeros(&b, &[3]).unwrap();
    assert!(matches!(pairwise_distance(&b, Metric::Cosine, &v, &r, &mut out), Err(Error::Shape { .. })));
    let z = Tensor::zeros(&b, &[4, 0]).unwrap();
    let mut o2 = Tensor::zeros(&b, &[4, 4]).unwrap();
    assert!(matches!(pairwise_distance(&b, Metric::Cosine, &z, &z, &mut o2), Err(Error::Shape { .. })));
    let g = Tensor::zeros(&b, &[4, 5]).unwrap();
    let (mut dq, mut dr) = (Tensor::zeros(&b, &[4, 3]).unwrap(), Tensor::zeros(&b, &[4, 3]).unwrap());
    let e = pairwise_distance_bwd(&b, Metric::Euclidean, &q, &r, &g, &mut dq, &mut dr).unwrap_err();
    assert!(e.to_string().contains("dr"), "{e}");
}

#[test]
fn cpu_distance_is_deterministic() {
    let b = CpuBackend;
    let mut rg = rng(5);
    let (n, d) = (50, 9);
    let x = tensor(&b, &[n, d], &rand_vec(&mut rg, n * d, -1.0, 1.0));
    let run = || {
        let mut out = poisoned(&b, &[n, n]);
        pairwise_distance(&b, Metric::Euclidean, &x, &x, &mut out).unwrap();
        host(&b, &out)
    };
    let (a, c) = (run(), run());
    assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), c.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    // Symmetric with the same set on both sides.
    for i in 0..n {
        for j in 0..n {
            assert_eq!(a[i * n + j], a[j * n + i]);
        }
        assert_eq!(a[i * n + i], 0.0);
    }
    let _ = b.device();
}

parity_test!(nan_embeddings_give_nan_distances, |b| {
    // A NaN embedding must not look like a distance of 0 (the hardest negative of everyone): the
    // clamp at 0 lets NaN through, so the loss and its non-finite check see it.
    let q = tensor(b, &[2, 3], &[f32::NAN, 1.0, 2.0, 0.5, -1.0, 0.25]);
    let r = tensor(b, &[2, 3], &[1.0, 2.0, 3.0, -0.5, 0.5, 1.5]);
    let mut outs = Vec::new();
    for metric in [Metric::SquaredEuclidean, Metric::Euclidean, Metric::Cosine] {
        let mut out = poisoned(b, &[2, 2]);
        pairwise_distance(b, metric, &q, &r, &mut out).unwrap();
        let got = host(b, &out);
        assert!(got[0].is_nan() && got[1].is_nan(), "{metric:?}: {got:?}");
        assert!(got[2].is_finite() && got[3].is_finite(), "{metric:?}: {got:?}");
        outs.push(Out::new(format!("{metric:?} finite row"), got[2..].to_vec()).tol(1e-6, 1e-5));
    }
    outs
});
