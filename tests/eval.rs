//! Retrieval and pair metrics against hand-computed values and a brute-force oracle; the P×K
//! sampler; PCA; .npy and projector exports.

mod common;

use common::*;
use latentkit::data::PkSampler;
use latentkit::eval::{accuracy_at, best_threshold, pca_2d, retrieval_metrics, roc_auc, DistanceKind};
use latentkit::io::{save_npy_f32, save_projector_tsv};

#[test]
fn retrieval_metrics_by_hand() {
    // 1-D references 0, 1, 2, 10 with labels a a b b; query at 0.9, label a (R = 2).
    // Ranking: 1 (a), 0 (a) → p@1 = 1, R-precision = 1, MAP@R = (1/1 + 2/2)/2 = 1.
    let refs = [0.0, 1.0, 2.0, 10.0];
    let rl = [0, 0, 1, 1];
    let m = retrieval_metrics(&[0.9], &[0], &refs, &rl, 1, DistanceKind::Euclidean, false).unwrap();
    assert_eq!((m.precision_at_1, m.r_precision, m.map_at_r), (1.0, 1.0, 1.0));
    // Query at 1.6, label a: ranking 2 (b, d .4), 1 (a, .6) → p@1 = 0, R-precision = 1/2,
    // MAP@R = (0 + 1/2)/2 = 0.25.
    let m = retrieval_metrics(&[1.6], &[0], &refs, &rl, 1, DistanceKind::Euclidean, false).unwrap();
    assert_eq!((m.precision_at_1, m.r_precision, m.map_at_r), (0.0, 0.5, 0.25));
    // Same set: each point queries the others; point 3 (label b, R = 1) has nearest 2 (b).
    let m = retrieval_metrics(&refs, &rl, &refs, &rl, 1, DistanceKind::Euclidean, true).unwrap();
    // 0 → 1 (a) ✓; 1 → 0 or 2 at distance 1: tie → lower index 0 (a) ✓; 2 → 1 (a) ✗; 3 → 2 ✓.
    assert_eq!(m.queries, 4);
    assert_close("p@1", &[m.precision_at_1 as f32], &[0.75], 0.0, 1e-7);
    // A label with no reference is skipped and counted.
    let m = retrieval_metrics(&[0.5], &[7], &refs, &rl, 1, DistanceKind::Euclidean, false).unwrap();
    assert_eq!((m.queries, m.skipped), (0, 1));
}

/// Brute-force MAP@R etc. with f64 distances and a full sort.
fn oracle(q: &[f32], ql: &[u32], r: &[f32], rl: &[u32], dim: usize, cosine: bool) -> (f64, f64, f64) {
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let (mut p1, mut rp, mut map, mut n) = (0.0, 0.0, 0.0, 0.0);
    for (i, &l) in ql.iter().enumerate() {
        let qv = &q[i * dim..(i + 1) * dim];
        let mut d: Vec<(f64, usize)> = (0..rl.len())
            .map(|j| {
                let rv = &r[j * dim..(j + 1) * dim];
                let dot: f64 = qv.iter().zip(rv).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                let dd = if cosine {
                    1.0 - dot / (norm(qv) * norm(rv))
                } else {
                    qv.iter().zip(rv).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum()
                };
                (dd, j)
            })
            .collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let rc = rl.iter().filter(|&&x| x == l).count();
        if rc == 0 {
            continue;
        }
        let (mut hits, mut ap) = (0.0, 0.0);
        for (k, &(_, j)) in d[..rc].iter().enumerate() {
            if rl[j] == l {
                hits += 1.0;
                ap += hits / (k + 1) as f64;
            }
        }
        p1 += f64::from(u8::from(rl[d[0].1] == l));
        rp += hits / rc as f64;
        map += ap / rc as f64;
        n += 1.0;
    }
    (p1 / n, rp / n, map / n)
}

#[test]
fn retrieval_metrics_match_brute_force() {
    let mut r = rng(71);
    let dim = 7;
    let (nq, nr) = (33, 129);
    let ql: Vec<u32> = (0..nq).map(|i| (i * 7 % 5) as u32).collect();
    let rl: Vec<u32> = (0..nr).map(|i| (i * 3 % 5) as u32).collect();
    // Class-dependent means so the metrics are neither 0 nor 1.
    let emb = |labels: &[u32], r: &mut latentkit::rng::LkRng| -> Vec<f32> {
        labels
            .iter()
            .flat_map(|&l| {
                rand_vec(r, dim, -1.0, 1.0)
                    .into_iter()
                    .enumerate()
                    .map(move |(c, v)| v + if c == l as usize { 1.5 } else { 0.0 })
            })
            .collect()
    };
    let (q, refs) = (emb(&ql, &mut r), emb(&rl, &mut r));
    for (kind, cosine) in [(DistanceKind::Euclidean, false), (DistanceKind::Cosine, true)] {
        let m = retrieval_metrics(&q, &ql, &refs, &rl, dim, kind, false).unwrap();
        let (p1, rp, map) = oracle(&q, &ql, &refs, &rl, dim, cosine);
        // f32 GEMM distances vs f64: random inputs have no near ties, so the rankings agree.
        assert_close(
            &format!("{kind:?} metrics"),
            &[m.precision_at_1 as f32, m.r_precision as f32, m.map_at_r as f32],
            &[p1 as f32, rp as f32, map as f32],
            1e-6,
            1e-6,
        );
        assert!(m.map_at_r > 0.1 && m.map_at_r < 0.95, "{m:?}");
    }
}

#[test]
fn roc_auc_and_thresholds() {
    // Perfect separation → 1; reversed → 0; all tied → 0.5.
    let labels = [true, true, false, false];
    assert_eq!(roc_auc(&[0.9, 0.8, 0.1, 0.2], &labels).unwrap(), 1.0);
    assert_eq!(roc_auc(&[0.1, 0.2, 0.9, 0.8], &labels).unwrap(), 0.0);
    assert_eq!(roc_auc(&[0.5; 4], &labels).unwrap(), 0.5);
    // By hand: positives {0.8, 0.4}, negatives {0.6, 0.2}: pairs (0.8>0.6, 0.8>0.2, 0.4<0.6, 0.4>0.2) → 3/4.
    assert_eq!(roc_auc(&[0.8, 0.4, 0.6, 0.2], &labels).unwrap(), 0.75);
    let (t, acc) = best_threshold(&[0.8, 0.4, 0.6, 0.2], &labels).unwrap();
    assert_eq!(acc, 0.75);
    assert_eq!(accuracy_at(&[0.8, 0.4, 0.6, 0.2], &labels, t).unwrap(), 0.75);
    let (t, acc) = best_threshold(&[0.9, 0.8, 0.1, 0.2], &labels).unwrap();
    assert_eq!(acc, 1.0);
    assert!(t > 0.2 && t < 0.8);
    // Where the midpoint rounds onto the upper score, or ±1 is lost in rounding, the threshold
    // still gives the accuracy reported.
    let e = f32::EPSILON;
    for (scores, labels) in [
        (vec![1.0 + e, 1.0 + 2.0 * e], vec![false, true]),
        (vec![1e8, 2e8], vec![true, true]),
        (vec![1e8, 2e8], vec![false, false]),
        (vec![f32::MAX, -f32::MAX, f32::MAX], vec![true, false, true]),
        (vec![f32::NEG_INFINITY, 1.0], vec![false, true]),
    ] {
        let (t, acc) = best_threshold(&scores, &labels).unwrap();
        assert_eq!(acc, 1.0, "{scores:?}");
        assert_eq!(accuracy_at(&scores, &labels, t).unwrap(), acc, "{scores:?}: threshold {t}");
    }
    // A −∞ score can't be called similar: the best is then the other one alone.
    let (t, acc) = best_threshold(&[f32::NEG_INFINITY, 1.0], &[true, true]).unwrap();
    assert_eq!((acc, accuracy_at(&[f32::NEG_INFINITY, 1.0], &[true, true], t).unwrap()), (0.5, 0.5));
    // Outside the scores, one past them where that is representable.
    assert_eq!(best_threshold(&[0.2, 0.8], &[true, true]).unwrap().0, 0.2 - 1.0);
    assert_eq!(best_threshold(&[0.2, 0.8], &[false, false]).unwrap().0, 0.8 + 1.0);
    assert!(roc_auc(&[0.1], &[true, false]).is_err());
    // Non-finite embeddings and sizes that overflow are errors.
    let e =
        retrieval_metrics(&[0.0, f32::NAN, 1.0, 0.0], &[0, 1], &[1.0, 0.0], &[0], 2, DistanceKind::Euclidean, false);
    assert!(matches!(e, Err(latentkit::Error::InvalidArgument { .. })), "{e:?}");
    let e = retrieval_metrics(&[0.0; 2], &[0, 1], &[1.0], &[0], 1usize << 63, DistanceKind::Euclidean, false);
    assert!(matches!(e, Err(latentkit::Error::Shape { .. })), "{e:?}");
    assert!(roc_auc(&[f32::NAN, 0.1], &[true, false]).is_err());
}

#[test]
fn pk_sampler_batches_are_class_balanced_and_seeded() {
    let labels: Vec<u32> = (0..1000).map(|i| (i % 10) as u32).collect();
    let mut s = PkSampler::new(&labels, 8, 4, 5).unwrap();
    let epoch = s.epoch();
    assert_eq!(epoch.len(), 1000 / 32);
    for b in &epoch {
        assert_eq!(b.len(), 32);
        for chunk in b.chunks(4) {
            let l = labels[chunk[0]];
            assert!(chunk.iter().all(|&i| labels[i] == l), "a class block mixes labels");
            let mut u = chunk.to_vec();
            u.sort();
            u.dedup();
            assert_eq!(u.len(), 4, "examples repeat although the class has enough");
        }
        let mut classes: Vec<u32> = b.chunks(4).map(|c| labels[c[0]]).collect();
        classes.sort();
        classes.dedup();
        assert_eq!(classes.len(), 8, "a class appears twice in one batch");
    }
    assert_eq!(PkSampler::new(&labels, 8, 4, 5).unwrap().epoch(), epoch);
    assert!(PkSampler::new(&labels, 11, 4, 5).is_err());
    assert!(PkSampler::new(&labels, 8, 1, 5).is_err());
    // A class smaller than K is sampled with replacement.
    let small: Vec<u32> = vec![0, 0, 1, 1, 1, 1];
    let b = PkSampler::new(&small, 2, 3, 1).unwrap().next_batch();
    assert_eq!(b.len(), 6);
}

#[test]
fn pca_finds_the_dominant_directions() {
    let mut r = rng(72);
    // Points spread along (1, 1, 0) (std 3) and (0, 0, 1) (std 1), little noise elsewhere.
    let n = 500;
    let mut x = Vec::new();
    for _ in 0..n {
        let a = rand_vec(&mut r, 1, -3.0, 3.0)[0] * 1.7;
        let b = rand_vec(&mut r, 1, -1.0, 1.0)[0];
        let e = rand_vec(&mut r, 3, -0.01, 0.01);
        x.extend([a + e[0], a + e[1], b + e[2]]);
    }
    let p = pca_2d(&x, 3).unwrap();
    // The first coordinate recovers a·√2 up to sign, the second b up to sign; the sample
    // covariance of a and b (n = 500) tilts the axes by O(1/√n), hence 0.99 rather than 1.
    // |Pearson correlation| over the points.
    let corr = |f: &dyn Fn(usize) -> (f64, f64)| {
        let pts: Vec<(f64, f64)> = (0..n).map(f).collect();
        let (mu, mv) =
            (pts.iter().map(|p| p.0).sum::<f64>() / n as f64, pts.iter().map(|p| p.1).sum::<f64>() / n as f64);
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (u, v) in pts {
            sxy += (u - mu) * (v - mv);
            sxx += (u - mu) * (u - mu);
            syy += (v - mv) * (v - mv);
        }
        (sxy / (sxx * syy).sqrt()).abs()
    };
    assert!(corr(&|i| (f64::from(p[i].0), f64::from(x[3 * i]))) > 0.99);
    let c2 = corr(&|i| (f64::from(p[i].1), f64::from(x[3 * i + 2])));
    assert!(c2 > 0.99, "second component correlation {c2}");
    assert!(pca_2d(&x[..4], 3).is_err());
    // Points on a line: the second axis adds nothing (it used to be the unnormalised start
    // vector); non-finite points are an error.
    let line: Vec<f32> = (0..4).flat_map(|i| [i as f32, 0.0]).collect();
    let p = pca_2d(&line, 2).unwrap();
    assert!(p.iter().all(|&(_, y)| y == 0.0), "{p:?}");
    assert_eq!(p.iter().map(|&(x, _)| x.abs()).collect::<Vec<_>>(), vec![1.5, 0.5, 0.5, 1.5]);
    assert!(pca_2d(&[0.0, f32::NAN, 1.0, 2.0], 2).is_err());
    // A slanted line (the second axis: rounding noise only) and one orthogonal to the fixed start
    // vector of the first axis, (1, 3): all the spread on x, none on y.
    for dir in [(1.0f32, 2.0f32), (3.0, -1.0)] {
        let pts: Vec<f32> = (0..5).flat_map(|i| [i as f32 * dir.0, i as f32 * dir.1]).collect();
        let p = pca_2d(&pts, 2).unwrap();
        let len = (dir.0 * dir.0 + dir.1 * dir.1).sqrt();
        for (i, &(x, y)) in p.iter().enumerate() {
            assert!(y == 0.0 && (x.abs() - ((i as f32 - 2.0) * len).abs()).abs() < 1e-5, "{dir:?}: {p:?}");
        }
    }
}

#[test]
fn npy_and_projector_files() {
    let dir = std::env::temp_dir().join(format!("latentkit-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
    let path = dir.join("e.npy");
    save_npy_f32(&path, &data, &[4, 3]).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "header padded to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'shape': (4, 3)"), "{header}");
    let back: Vec<f32> =
        bytes[10 + hlen..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(back, data);
    assert!(save_npy_f32(&path, &data, &[5, 3]).is_err());
    save_projector_tsv(&dir.join("v.tsv"), &dir.join("m.tsv"), &data, 3, &[1, 2, 3, 4]).unwrap();
    let v = std::fs::read_to_string(dir.join("v.tsv")).unwrap();
    assert_eq!(v.lines().count(), 4);
    assert_eq!(v.lines().next().unwrap().split('\t').count(), 3);
    assert_eq!(std::fs::read_to_string(dir.join("m.tsv")).unwrap(), "label\n1\n2\n3\n4\n");
    std::fs::remove_dir_all(&dir).unwrap();
}
