//! Fused triplet mining + loss: brute-force oracles that enumerate every (a, p, n) of small batches,
//! TensorFlow Addons' own matrix algorithm and doc golden values, edge cases (no negatives, one
//! class, empty reference set), ties, the "closest by the CPU distance" property, finite
//! differences and bad input.
//!
//! The oracles take κ from `pairwise_distance` on the same backend: the fused kernels compute κ
//! bit-identically to it, so chosen indices and counts must match exactly (no tolerance), and
//! losses up to summation order.

mod common;

use common::*;
use latentkit::ops::distance::{pairwise_distance, pairwise_distance_bwd, Metric};
use latentkit::ops::mining::{
    plane, triplet_bwd, triplet_fwd, Miner, SemiHardPolicy, TripletConfig, TripletKernel, TripletStats,
    TripletWorkspace, INDEX_NONE, ROWS_LIST_CAP,
};
use latentkit::{Backend, CpuBackend, Error, Tensor};

const MINERS: [Miner; 5] = [
    Miner::BatchHard,
    Miner::SemiHard(SemiHardPolicy::FaceNet),
    Miner::SemiHard(SemiHardPolicy::TfAddons),
    Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive),
    Miner::BatchAll,
];
const METRICS: [Metric; 3] = [Metric::SquaredEuclidean, Metric::Euclidean, Metric::Cosine];

#[derive(Clone)]
struct Case {
    n: usize,
    m: usize,
    d: usize,
    q: Vec<f32>,
    ql: Vec<u32>,
    r: Vec<f32>,
    rl: Vec<u32>,
    same_set: bool,
}

fn labels(rg: &mut latentkit::rng::LkRng, n: usize, classes: u32) -> Vec<u32> {
    use rand::Rng;
    (0..n).map(|_| rg.random_range(0..classes)).collect()
}

/// Random embeddings in [−1, 1]^d; `m = None` is the same-set case (r = q).
fn case(seed: u64, n: usize, m: Option<usize>, d: usize, classes: u32) -> Case {
    let mut rg = rng(seed);
    let q = rand_vec(&mut rg, n * d, -1.0, 1.0);
    let ql = labels(&mut rg, n, classes);
    match m {
        None => Case { n, m: n, d, r: q.clone(), rl: ql.clone(), q, ql, same_set: true },
        Some(m) => {
            let r = rand_vec(&mut rg, m * d, -1.0, 1.0);
            let rl = labels(&mut rg, m, classes);
            Case { n, m, d, q, ql, r, rl, same_set: false }
        }
    }
}

fn cfg(miner: Miner, metric: Metric, squared: bool, tfa_compat: bool) -> TripletConfig {
    TripletConfig { miner, metric, margin: 0.5, squared, collapse_eps: 0.3, tfa_compat }
}

/// The configurations to test: every miner × metric × squared (SquaredEuclidean + squared is an
/// error, tested separately) × tfa_compat where it matters.
fn configs() -> Vec<TripletConfig> {
    let mut v = Vec::new();
    for miner in MINERS {
        for metric in METRICS {
            for squared in [false, true] {
                if squared && metric == Metric::SquaredEuclidean {
                    continue;
                }
                let compats: &[bool] = match miner {
                    Miner::BatchHard | Miner::SemiHard(SemiHardPolicy::TfAddons) => &[false, true],
                    _ => &[false],
                };
                for &c in compats {
                    v.push(cfg(miner, metric, squared, c));
                }
            }
        }
    }
    v
}

/// The metric κ is computed with, whether ℓ = κ², whether δ = √κ (the module docs' folding).
fn fold(c: &TripletConfig) -> (Metric, bool, bool) {
    match (c.metric, c.squared) {
        (Metric::Euclidean, true) => (Metric::SquaredEuclidean, false, true),
        (m, s) => (m, s, false),
    }
}

struct Tensors<B: Backend> {
    q: Tensor<B>,
    ql: Tensor<B, u32>,
    r: Tensor<B>,
    rl: Tensor<B, u32>,
}

fn upload<B: Backend>(b: &B, c: &Case) -> Tensors<B> {
    Tensors {
        q: tensor(b, &[c.n, c.d], &c.q),
        ql: Tensor::from_slice(b, &[c.n], &c.ql).unwrap(),
        r: tensor(b, &[c.m, c.d], &c.r),
        rl: Tensor::from_slice(b, &[c.m], &c.rl).unwrap(),
    }
}

/// κ [n, m] from the backend's pairwise_distance with the folded metric; diagonal 0 in the same set.
fn kappa_matrix<B: Backend>(b: &B, c: &Case, t: &Tensors<B>, metric: Metric) -> Vec<f32> {
    let mut out = poisoned(b, &[c.n, c.m]);
    pairwise_distance(b, metric, &t.q, &t.r, &mut out).unwrap();
    let mut k = host(b, &out);
    if c.same_set {
        for i in 0..c.n {
            k[i * c.m + i] = 0.0;
        }
    }
    k
}

#[derive(Debug, Default)]
struct Oracle {
    loss: f64,
    triplets: u64,
    active: u64,
    valid: u32,
    pos: Vec<u32>,
    neg: Vec<u32>,
    anchor_loss: Vec<f64>,
    /// counts[i·m + j]: +1 per active triplet using j as positive, −1 as negative (not self).
    counts: Vec<i32>,
    mean_d_ap: f64,
    mean_d_an: f64,
    collapse: f64,
}

/// Brute force: enumerates candidates with plain loops (strict comparisons in index order, so the
/// lowest index wins ties) and, for BatchAll and FaceNet, every (a, p, n).
fn oracle(cf: &TripletConfig, c: &Case, kappa: &[f32]) -> Oracle {
    let (_, square, sqrt_stats) = fold(cf);
    let (n, m) = (c.n, c.m);
    let ell = |i: usize, j: usize| {
        let k = kappa[i * m + j];
        if square {
            k * k
        } else {
            k
        }
    };
    let is_self = |i: usize, j: usize| c.same_set && i == j;
    let is_pos = |i: usize, j: usize| !is_self(i, j) && c.rl[j] == c.ql[i];
    let is_neg = |i: usize, j: usize| !is_self(i, j) && c.rl[j] != c.ql[i];
    let value = |lp: f32, ln: f32| (lp - ln) + cf.margin;
    let mut o = Oracle {
        pos: vec![INDEX_NONE; n],
        neg: vec![INDEX_NONE; n],
        anchor_loss: vec![0.0; n],
        counts: vec![0; n * m],
        ..Default::default()
    };
    let (mut sum_ap, mut sum_an, mut n_ap, mut n_an, mut n_col) = (0.0f64, 0.0f64, 0u64, 0u64, 0u64);
    for i in 0..n {
        let add = |o: &mut Oracle, p: usize, ng: usize, lp: f32, ln: f32| {
            let v = value(lp, ln);
            o.triplets += 1;
            o.anchor_loss[i] += f64::from(v.max(0.0));
            if v > 0.0 {
                o.active += 1;
                if !is_self(i, p) {
                    o.counts[i * m + p] += 1;
                }
                if !is_self(i, ng) {
                    o.counts[i * m + ng] -= 1;
                }
            }
        };
        let before = o.triplets;
        for j in 0..m {
            if is_self(i, j) {
                continue;
            }
            let k = kappa[i * m + j];
            let dl = if sqrt_stats { k.sqrt() } else { k };
            if dl < cf.collapse_eps {
                n_col += 1;
            }
            if is_pos(i, j) {
                n_ap += 1;
                sum_ap += f64::from(dl);
            } else {
                n_an += 1;
                sum_an += f64::from(dl);
            }
        }
        let argbest = |want_max: bool, ok: &dyn Fn(usize) -> bool| -> Option<usize> {
            let mut best: Option<usize> = None;
            for j in 0..m {
                if !ok(j) {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some(b) => {
                        if want_max {
                            ell(i, j) > ell(i, b)
                        } else {
                            ell(i, j) < ell(i, b)
                        }
                    }
                };
                if better {
                    best = Some(j);
                }
            }
            best
        };
        let hard_pos = argbest(true, &|j| is_pos(i, j));
        let hard_neg = argbest(false, &|j| is_neg(i, j));
        match cf.miner {
            Miner::BatchHard | Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive) => {
                let (mut p, mut ng) = (hard_pos, hard_neg);
                if cf.miner == Miner::BatchHard && cf.tfa_compat {
                    p = p.or_else(|| argbest(false, &|_| true));
                    ng = ng.or_else(|| argbest(true, &|_| true));
                }
                if cf.miner != Miner::BatchHard {
                    ng = p.and_then(|p| argbest(false, &|j| is_neg(i, j) && ell(i, j) > ell(i, p)));
                }
                if let (Some(p), Some(ng)) = (p, ng) {
                    o.pos[i] = p as u32;
                    o.neg[i] = ng as u32;
                    add(&mut o, p, ng, ell(i, p), ell(i, ng));
                }
            }
            Miner::SemiHard(policy) => {
                let tfa = policy == SemiHardPolicy::TfAddons;
                for p in (0..m).filter(|&p| is_pos(i, p)) {
                    let lp = ell(i, p);
                    let mut ng =
                        argbest(false, &|j| is_neg(i, j) && ell(i, j) > lp && (tfa || ell(i, j) < lp + cf.margin));
                    if ng.is_none() && tfa {
                        ng = hard_neg.and(argbest(true, &|j| is_neg(i, j)));
                        if ng.is_none() && cf.tfa_compat {
                            ng = argbest(false, &|_| true);
                        }
                    }
                    if let Some(ng) = ng {
                        add(&mut o, p, ng, lp, ell(i, ng));
                    }
                }
            }
            Miner::BatchAll => {
                for p in (0..m).filter(|&p| is_pos(i, p)) {
                    for ng in (0..m).filter(|&j| is_neg(i, j)) {
                        add(&mut o, p, ng, ell(i, p), ell(i, ng));
                    }
                }
            }
        }
        if o.triplets > before {
            o.valid += 1;
        }
    }
    // BatchAll: triplets whose value is exactly ≤ 0 still count as triplets; its divisor is active.
    let div = if cf.miner == Miner::BatchAll { o.active } else { o.triplets };
    let total: f64 = o.anchor_loss.iter().sum();
    o.loss = if div > 0 { total / div as f64 } else { 0.0 };
    o.mean_d_ap = if n_ap > 0 { sum_ap / n_ap as f64 } else { 0.0 };
    o.mean_d_an = if n_an > 0 { sum_an / n_an as f64 } else { 0.0 };
    o.collapse = if n_ap + n_an > 0 { n_col as f64 / (n_ap + n_an) as f64 } else { 0.0 };
    o
}

struct Run<B: Backend> {
    stats: TripletStats,
    ws: TripletWorkspace<B>,
}

fn forward<B: Backend>(b: &B, cf: &TripletConfig, c: &Case, t: &Tensors<B>) -> Run<B> {
    forward_chunked(b, cf, c, t, None)
}

/// [`forward`] with the row chunk of the many-triplet miners forced (CUDA: several chunks whose
/// first anchor is not a multiple of the 64-anchor tile).
fn forward_chunked<B: Backend>(b: &B, cf: &TripletConfig, c: &Case, t: &Tensors<B>, chunk: Option<usize>) -> Run<B> {
    forward_with(b, cf, c, t, chunk, None, TripletKernel::default())
}

/// [`forward_chunked`] with a CUDA kernel version and shared-list capacity (the CPU ignores both).
fn forward_with<B: Backend>(
    b: &B,
    cf: &TripletConfig,
    c: &Case,
    t: &Tensors<B>,
    chunk: Option<usize>,
    list_cap: Option<usize>,
    kernel: TripletKernel,
) -> Run<B> {
    let ws = match chunk {
        Some(k) => TripletWorkspace::with_row_chunk(b, c.n, c.m, cf, k).unwrap(),
        None => TripletWorkspace::new(b, c.n, c.m, cf).unwrap(),
    };
    let mut ws = ws.with_kernel(kernel).with_list_cap(list_cap.unwrap_or(ROWS_LIST_CAP));
    // A first run with another margin: anything the real run fails to overwrite would be stale.
    let other = TripletConfig { margin: cf.margin + 0.37, ..*cf };
    triplet_fwd(b, &other, &t.q, &t.ql, &t.r, &t.rl, c.same_set, &mut ws).unwrap();
    let stats = triplet_fwd(b, cf, &t.q, &t.ql, &t.r, &t.rl, c.same_set, &mut ws).unwrap();
    Run { stats, ws }
}

/// Gradient of scale·loss from the oracle's counts, through pairwise_distance_bwd:
/// G_ij = w·c_ij·dℓ/dκ_ij with w = scale·(1/divisor) in f32 (as the kernels compute it).
fn oracle_grad<B: Backend>(
    b: &B,
    cf: &TripletConfig,
    c: &Case,
    t: &Tensors<B>,
    kappa: &[f32],
    o: &Oracle,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let (metric, square, _) = fold(cf);
    let div = if cf.miner == Miner::BatchAll { o.active } else { o.triplets };
    let w = if div > 0 { scale * ((1.0 / div as f64) as f32) } else { 0.0 };
    let g: Vec<f32> =
        o.counts.iter().zip(kappa).map(|(&cnt, &k)| w * cnt as f32 * if square { 2.0 * k } else { 1.0 }).collect();
    let (mut dq, mut dr) = (poisoned(b, &[c.n, c.d]), poisoned(b, &[c.m, c.d]));
    pairwise_distance_bwd(b, metric, &t.q, &t.r, &tensor(b, &[c.n, c.m], &g), &mut dq, &mut dr).unwrap();
    (host(b, &dq), host(b, &dr))
}

fn check_against_oracle<B: Backend>(b: &B, cf: &TripletConfig, c: &Case, outs: &mut Vec<Out>) {
    check_against_oracle_chunked(b, cf, c, None, None, outs);
}

fn check_against_oracle_chunked<B: Backend>(
    b: &B,
    cf: &TripletConfig,
    c: &Case,
    chunk: Option<usize>,
    list_cap: Option<usize>,
    outs: &mut Vec<Out>,
) -> Run<B> {
    let t = upload(b, c);
    let (metric, _, _) = fold(cf);
    let kappa = kappa_matrix(b, c, &t, metric);
    let o = oracle(cf, c, &kappa);
    // Every CUDA kernel version, forward and backward (the CPU ignores the choice); the last run
    // is returned.
    let mut last = None;
    for kernel in TripletKernel::ALL {
        let mut run = forward_with(b, cf, c, &t, chunk, list_cap, kernel);
        let s = run.stats;
        let what = format!("{cf:?} n={} m={} same_set={} {}", c.n, c.m, c.same_set, kernel.name());
        assert_eq!(s.triplets, o.triplets, "{what}: triplets");
        assert_eq!(s.active_triplets, o.active, "{what}: active");
        assert_eq!(s.valid_anchors, o.valid, "{what}: valid anchors");
        assert_eq!(s.skipped_anchors as usize, c.n - o.valid as usize, "{what}: skipped");
        assert!(s.loss.is_finite() && s.mean_d_ap.is_finite() && s.mean_d_an.is_finite(), "{what}: {s:?}");
        // Loss: per-anchor f32 sums (GPU) or f64 (CPU) of ≤ m terms, then an f64 mean.
        assert_close(&format!("{what}: loss"), &[s.loss], &[o.loss as f32], 1e-6, 2e-5);
        assert_close(&format!("{what}: mean_d_ap"), &[s.mean_d_ap], &[o.mean_d_ap as f32], 1e-6, 2e-5);
        assert_close(&format!("{what}: mean_d_an"), &[s.mean_d_an], &[o.mean_d_an as f32], 1e-6, 2e-5);
        assert_close(&format!("{what}: collapse"), &[s.collapse_fraction], &[o.collapse as f32], 0.0, 1e-6);
        let frac = if o.triplets > 0 { o.active as f32 / o.triplets as f32 } else { 0.0 };
        assert_close(&format!("{what}: active fraction"), &[s.active_fraction], &[frac], 0.0, 1e-6);
        let al = run.ws.read_f32_plane(b, plane::LOSS).unwrap();
        let want_al: Vec<f32> = o.anchor_loss.iter().map(|&v| v as f32).collect();
        assert_close(&format!("{what}: per-anchor loss"), &al, &want_al, 1e-6, 2e-5);
        if cf.miner.one_triplet_per_anchor() {
            assert_eq!(run.ws.read_u32_plane(b, plane::POS_IDX).unwrap(), o.pos, "{what}: positives");
            assert_eq!(run.ws.read_u32_plane(b, plane::NEG_IDX).unwrap(), o.neg, "{what}: negatives");
        } else {
            assert!(run.ws.read_u32_plane(b, plane::POS_IDX).unwrap().iter().all(|&v| v == INDEX_NONE));
        }
        // Backward against the oracle's counts pushed through pairwise_distance_bwd.
        let scale = 0.75;
        let (want_q, want_r) = oracle_grad(b, cf, c, &t, &kappa, &o, scale);
        let (mut dq, mut dr) = (poisoned(b, &[c.n, c.d]), poisoned(b, &[c.m, c.d]));
        triplet_bwd(b, cf, &t.q, &t.ql, &t.r, &t.rl, c.same_set, &mut run.ws, scale, &mut dq, Some(&mut dr)).unwrap();
        let (gq, gr) = (host(b, &dq), host(b, &dr));
        // Both sides sum the same terms in different orders and the distance backward rounds its own
        // coefficients (f64 κ on the CPU): |Σ| of ≤ m terms of size ≤ w·|c|·|∂ℓ| ≲ 4.
        let (atol, rtol) = (2e-5, 1e-4);
        assert_close(&format!("{what}: dq"), &gq, &want_q, atol, rtol);
        assert_close(&format!("{what}: dr"), &gr, &want_r, atol, rtol);
        if c.same_set {
            let mut dsum = poisoned(b, &[c.n, c.d]);
            triplet_bwd(b, cf, &t.q, &t.ql, &t.r, &t.rl, true, &mut run.ws, scale, &mut dsum, None).unwrap();
            let want: Vec<f32> = want_q.iter().zip(&want_r).map(|(a, c)| a + c).collect();
            assert_close(&format!("{what}: dq + dr"), &host(b, &dsum), &want, atol, rtol);
        }
        // Near ties between backends can move a triplet's count by one; the loss then moves by ≈ 1/count.
        outs.push(Out::new(format!("{what}: loss"), vec![s.loss]).tol(1e-5, 2e-3));
        outs.push(Out::new(format!("{what}: dq"), gq).tol(1e-4, 2e-3));
        last = Some(run);
    }
    last.expect("TripletKernel::ALL is not empty")
}

parity_test!(triplet_matches_bruteforce_oracle_same_set, |b| {
    let mut outs = Vec::new();
    for (k, &(n, classes)) in [(1usize, 1u32), (7, 3), (33, 4)].iter().enumerate() {
        let c = case(400 + k as u64, n, None, 5, classes);
        for cf in configs() {
            check_against_oracle(b, &cf, &c, &mut outs);
        }
    }
    outs
});

parity_test!(same_set_never_mines_the_anchor_itself, |b| {
    // q and r the same rows but r_labels disagreeing with q_labels on every third row: the self
    // pair is still neither a positive nor a negative, for every miner, forward and backward. 129
    // anchors take the many-triplet miners past one warp of positives; on CUDA through the shared
    // list, then again scanning whole rows (a list of 2 entries).
    let mut outs = Vec::new();
    for (k, &(n, classes)) in [(7usize, 3u32), (33, 4), (129, 6)].iter().enumerate() {
        let mut c = case(450 + k as u64, n, None, 5, classes);
        for i in (0..n).step_by(3) {
            c.rl[i] = (c.ql[i] + 1) % classes;
        }
        for cf in configs() {
            check_against_oracle(b, &cf, &c, &mut outs);
            // CUDA: lists of 2 entries, so the many-triplet kernel scans whole rows instead.
            check_against_oracle_chunked(b, &cf, &c, None, Some(2), &mut outs);
        }
    }
    outs
});

parity_test!(triplet_matches_bruteforce_oracle_query_vs_reference, |b| {
    let mut outs = Vec::new();
    for (k, &(n, m, classes)) in [(7usize, 33usize, 3u32), (33, 7, 4), (5, 1, 2)].iter().enumerate() {
        let c = case(500 + k as u64, n, Some(m), 5, classes);
        for cf in configs() {
            check_against_oracle(b, &cf, &c, &mut outs);
        }
    }
    outs
});

parity_test!(triplet_matches_bruteforce_oracle_129, |b| {
    // Past one 128-thread stripe and over several warps of positives; Euclidean and cosine.
    let mut outs = Vec::new();
    let c = case(600, 129, None, 5, 6);
    for miner in MINERS {
        for metric in [Metric::Euclidean, Metric::Cosine] {
            check_against_oracle(b, &cfg(miner, metric, false, false), &c, &mut outs);
        }
        check_against_oracle(b, &cfg(miner, Metric::Euclidean, true, false), &c, &mut outs);
    }
    outs
});

/// TensorFlow Addons' matrix algorithm (triplet_semihard_loss / triplet_hard_loss), literally, in
/// f64 on a distance matrix with a zero diagonal: masked min/max via the row max/min trick.
fn tfa_literal(pd: &[f64], labels: &[u32], margin: f64, hard: bool) -> f64 {
    let n = labels.len();
    let adj = |i: usize, j: usize| labels[i] == labels[j];
    let row = |i: usize| &pd[i * n..(i + 1) * n];
    let masked_min = |data: &[f64], mask: &dyn Fn(usize) -> bool| {
        let mx = data.iter().cloned().fold(f64::MIN, f64::max);
        data.iter().enumerate().map(|(k, &v)| (v - mx) * if mask(k) { 1.0 } else { 0.0 }).fold(f64::MAX, f64::min) + mx
    };
    let masked_max = |data: &[f64], mask: &dyn Fn(usize) -> bool| {
        let mn = data.iter().cloned().fold(f64::MAX, f64::min);
        data.iter().enumerate().map(|(k, &v)| (v - mn) * if mask(k) { 1.0 } else { 0.0 }).fold(f64::MIN, f64::max) + mn
    };
    if hard {
        let mut total = 0.0;
        for i in 0..n {
            let hn = masked_min(row(i), &|k| !adj(i, k));
            let hp = masked_max(row(i), &|k| adj(i, k) && k != i);
            total += (hp - hn + margin).max(0.0);
        }
        return total / n as f64;
    }
    let (mut total, mut num_pos) = (0.0, 0.0);
    for i in 0..n {
        let inside = masked_max(row(i), &|k| !adj(i, k));
        for t in 0..n {
            if !adj(i, t) || t == i {
                continue;
            }
            num_pos += 1.0;
            let mask = |k: usize| !adj(i, k) && row(i)[k] > row(i)[t];
            let any = (0..n).any(mask);
            let shn = if any { masked_min(row(i), &mask) } else { inside };
            total += (margin + row(i)[t] - shn).max(0.0);
        }
    }
    total / num_pos
}

parity_test!(tfa_compat_reproduces_tensorflow_addons, |b| {
    let mut outs = Vec::new();
    // The TFA docs' example: labels [0, 0], embeddings [[0, 1], [1, 0]], margin 1, L2.
    let c = Case {
        n: 2,
        m: 2,
        d: 2,
        q: vec![0.0, 1.0, 1.0, 0.0],
        ql: vec![0, 0],
        r: vec![0.0, 1.0, 1.0, 0.0],
        rl: vec![0, 0],
        same_set: true,
    };
    let t = upload(b, &c);
    for (miner, want) in [(Miner::SemiHard(SemiHardPolicy::TfAddons), 2.414_213_7f32), (Miner::BatchHard, 1.0)] {
        let cf = TripletConfig {
            miner,
            metric: Metric::Euclidean,
            margin: 1.0,
            squared: false,
            collapse_eps: 0.0,
            tfa_compat: true,
        };
        let s = forward(b, &cf, &c, &t).stats;
        assert_close(&format!("TFA golden {miner:?}"), &[s.loss], &[want], 0.0, 1e-6);
        assert_eq!((s.valid_anchors, s.skipped_anchors), (2, 0));
        outs.push(Out::new(format!("golden {miner:?}"), vec![s.loss]));
        // Without compat the same batch has no negatives: no triplet, loss 0, never NaN.
        let s = forward(b, &TripletConfig { tfa_compat: false, ..cf }, &c, &t).stats;
        assert_eq!((s.loss, s.triplets, s.valid_anchors, s.skipped_anchors), (0.0, 0, 0, 2));
    }
    // Random batches (with classes that have a single member and batches of one class) against
    // TFA's own algorithm, L2 and squared L2.
    for (k, &(n, classes)) in [(7usize, 3u32), (16, 4), (12, 1), (9, 9)].iter().enumerate() {
        let c = case(700 + k as u64, n, None, 4, classes);
        let t = upload(b, &c);
        for squared in [false, true] {
            let metric = if squared { Metric::SquaredEuclidean } else { Metric::Euclidean };
            let pd: Vec<f64> = kappa_matrix(b, &c, &t, metric).iter().map(|&v| f64::from(v)).collect();
            for (miner, hard) in [(Miner::SemiHard(SemiHardPolicy::TfAddons), false), (Miner::BatchHard, true)] {
                let cf = TripletConfig {
                    miner,
                    metric: Metric::Euclidean,
                    margin: 0.7,
                    squared,
                    collapse_eps: 0.0,
                    tfa_compat: true,
                };
                let s = forward(b, &cf, &c, &t).stats;
                let want = tfa_literal(&pd, &c.ql, 0.7, hard);
                if want.is_nan() {
                    // TFA divides by zero positive pairs; latentkit reports 0.
                    assert_eq!((s.loss, s.triplets), (0.0, 0), "n={n} classes={classes}");
                } else {
                    // The masked min/max trick subtracts and re-adds the row extreme: ≈ 1e−7 rounding.
                    assert_close(
                        &format!("TFA literal {miner:?} n={n} sq={squared}"),
                        &[s.loss],
                        &[want as f32],
                        1e-6,
                        1e-5,
                    );
                }
                outs.push(Out::new(format!("tfa {miner:?} {n} {squared}"), vec![s.loss]).tol(1e-6, 1e-4));
            }
        }
    }
    outs
});

parity_test!(degenerate_batches_give_zero_and_counts_never_nan, |b| {
    let mut outs = Vec::new();
    // One class (no negatives), a single anchor, and no references at all.
    let one_class = case(800, 6, None, 3, 1);
    let single = case(801, 1, None, 3, 1);
    let no_refs = Case { m: 0, r: vec![], rl: vec![], same_set: false, ..case(802, 4, None, 3, 2) };
    for c in [&one_class, &single, &no_refs] {
        let t = upload(b, c);
        for cf in configs().into_iter().filter(|c| !c.tfa_compat) {
            let mut run = forward(b, &cf, c, &t);
            let s = run.stats;
            assert_eq!((s.loss, s.triplets, s.active_triplets, s.valid_anchors), (0.0, 0, 0, 0), "{cf:?}");
            assert_eq!(s.skipped_anchors as usize, c.n);
            assert_eq!(s.active_fraction, 0.0);
            assert!(s.mean_d_ap.is_finite() && s.mean_d_an == 0.0, "{s:?}");
            for kernel in TripletKernel::ALL {
                run.ws.set_kernel(kernel);
                let (mut dq, mut dr) = (poisoned(b, &[c.n, c.d]), poisoned(b, &[c.m, c.d]));
                triplet_bwd(b, &cf, &t.q, &t.ql, &t.r, &t.rl, c.same_set, &mut run.ws, 1.0, &mut dq, Some(&mut dr))
                    .unwrap();
                assert!(host(b, &dq).iter().chain(&host(b, &dr)).all(|&v| v == 0.0), "{cf:?} {kernel:?}");
            }
            outs.push(Out::new(format!("{cf:?} degenerate"), vec![s.loss, s.mean_d_ap]));
        }
    }
    // With compat, a one-class batch reproduces TFA: BatchHard uses the row max as the negative.
    let t = upload(b, &single);
    let cf = TripletConfig { tfa_compat: true, ..cfg(Miner::BatchHard, Metric::Euclidean, false, true) };
    let s = forward(b, &cf, &single, &t).stats;
    // A batch of one: positive = negative = the self distance 0, loss = margin (as TFA gives).
    assert_close("batch of one, compat", &[s.loss], &[cf.margin], 0.0, 0.0);
    outs
});

parity_test!(ties_break_to_the_lowest_index, |b| {
    // Anchor 0; references 1 and 2 are identical positives (the hardest), 3 and 5 identical closest
    // negatives, 4 and 6 identical negatives farther than the positives. Duplicated rows have
    // bit-identical distances, so these are exact ties.
    let a = [0.3f32, -0.2, 0.1];
    let p = [0.9f32, 0.4, -0.3]; // κ(a, p)² = 0.88
    let n_close = [0.5f32, -0.1, 0.6]; // κ² = 0.30
    let n_far = [-1.5f32, 1.2, 0.9]; // κ² = 5.84
    let rows = [a, p, p, n_close, n_far, n_close, n_far];
    let x: Vec<f32> = rows.iter().flatten().copied().collect();
    let lab = vec![0u32, 0, 0, 1, 1, 1, 1];
    let c = Case { n: 7, m: 7, d: 3, q: x.clone(), ql: lab.clone(), r: x, rl: lab, same_set: true };
    let t = upload(b, &c);
    let mut outs = Vec::new();
    for (miner, want_neg) in
        [(Miner::BatchHard, 3u32), (Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive), 4)]
    {
        let cf = TripletConfig { margin: 5.0, ..cfg(miner, Metric::Euclidean, false, false) };
        let run = forward(b, &cf, &c, &t);
        let pos = run.ws.read_u32_plane(b, plane::POS_IDX).unwrap();
        let neg = run.ws.read_u32_plane(b, plane::NEG_IDX).unwrap();
        assert_eq!(pos[0], 1, "{miner:?}: equal hardest positives 1 and 2 → 1");
        assert_eq!(neg[0], want_neg, "{miner:?}: equal negatives → the lower index");
        // Anchor 3's positives are 4, 5 (a copy of 3, κ = 0) and 6 (a copy of 4): the hardest is 4.
        if miner == Miner::BatchHard {
            assert_eq!(pos[3], 4, "{miner:?}");
        }
        outs.push(Out::new(format!("{miner:?} pos"), pos.iter().map(|&v| v as f32).collect()).tol(0.0, 0.0));
        outs.push(Out::new(format!("{miner:?} neg"), neg.iter().map(|&v| v as f32).collect()).tol(0.0, 0.0));
    }
    outs
});

parity_test!(chosen_indices_are_the_closest_by_cpu_distance, |b| {
    // Property: with the CPU pairwise distances as the judge (any backend), BatchHard's negative is
    // the closest negative and its positive the farthest positive; ClosestFartherThanPositive's
    // negative is the closest negative farther than its positive. Tolerance 1e−5 for backend rounding.
    let cpu = CpuBackend;
    let mut outs = Vec::new();
    for (k, &(n, m)) in [(33usize, None), (7, Some(33usize)), (129, None)].iter().enumerate() {
        let c = case(900 + k as u64, n, m, 5, 4);
        let t = upload(b, &c);
        let kc = kappa_matrix(&cpu, &c, &upload(&cpu, &c), Metric::Euclidean);
        for miner in [Miner::BatchHard, Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive)] {
            let cf = cfg(miner, Metric::Euclidean, false, false);
            let run = forward(b, &cf, &c, &t);
            let pos = run.ws.read_u32_plane(b, plane::POS_IDX).unwrap();
            let neg = run.ws.read_u32_plane(b, plane::NEG_IDX).unwrap();
            for i in 0..c.n {
                let kr = &kc[i * c.m..(i + 1) * c.m];
                let positives: Vec<usize> =
                    (0..c.m).filter(|&j| c.rl[j] == c.ql[i] && !(c.same_set && j == i)).collect();
                let negatives: Vec<usize> = (0..c.m).filter(|&j| c.rl[j] != c.ql[i]).collect();
                if pos[i] == INDEX_NONE {
                    assert!(positives.is_empty() || negatives.is_empty() || miner != Miner::BatchHard);
                    continue;
                }
                let (p, ng) = (pos[i] as usize, neg[i] as usize);
                assert!(positives.contains(&p) && negatives.contains(&ng), "{miner:?} anchor {i}");
                let far_p = positives.iter().map(|&j| kr[j]).fold(f32::MIN, f32::max);
                assert!(kr[p] >= far_p - 1e-5, "{miner:?} anchor {i}: positive {p} not the farthest");
                let floor = if miner == Miner::BatchHard { f32::MIN } else { kr[p] };
                assert!(kr[ng] > floor - 1e-5, "{miner:?} anchor {i}: negative {ng} not farther than the positive");
                let close_n = negatives.iter().map(|&j| kr[j]).filter(|&v| v > floor + 1e-5).fold(f32::MAX, f32::min);
                assert!(kr[ng] <= close_n + 1e-5, "{miner:?} anchor {i}: negative {ng} not the closest valid one");
            }
            outs.push(Out::new(format!("{miner:?} {n}"), vec![run.stats.loss]).tol(1e-5, 2e-3));
        }
    }
    outs
});

parity_test!(triplet_bwd_matches_finite_differences, |b| {
    // Small batches, h = 1e−3. The loss is piecewise smooth: where a perturbation changes the
    // number of triplets or of active triplets (a FaceNet band edge, a ReLU kink, a BatchAll
    // boundary), the mean jumps and no derivative exists, so those elements are skipped (at most a
    // quarter of them). Elsewhere the central difference must match the analytic gradient.
    let mut outs = Vec::new();
    for (k, same) in [true, false].into_iter().enumerate() {
        let c = case(1000 + k as u64, 8, if same { None } else { Some(9) }, 4, 3);
        for miner in MINERS {
            for (metric, squared) in [(Metric::Euclidean, false), (Metric::Euclidean, true), (Metric::Cosine, true)] {
                let cf = TripletConfig { margin: 0.8, ..cfg(miner, metric, squared, false) };
                let stats_at = |q: &[f32], r: &[f32]| -> TripletStats {
                    let cc = Case { q: q.to_vec(), r: if same { q.to_vec() } else { r.to_vec() }, ..c.clone() };
                    let t = upload(b, &cc);
                    forward(b, &cf, &cc, &t).stats
                };
                let t = upload(b, &c);
                let mut run = forward(b, &cf, &c, &t);
                let base = run.stats;
                let mut dq = poisoned(b, &[c.n, c.d]);
                let mut dr = poisoned(b, &[c.m, c.d]);
                if same {
                    triplet_bwd(b, &cf, &t.q, &t.ql, &t.r, &t.rl, true, &mut run.ws, 1.0, &mut dq, None).unwrap();
                } else {
                    triplet_bwd(b, &cf, &t.q, &t.ql, &t.r, &t.rl, false, &mut run.ws, 1.0, &mut dq, Some(&mut dr))
                        .unwrap();
                }
                let h = 1e-3f32;
                let what = format!("{cf:?} same_set={same}");
                let check = |side: usize, got: &[f32]| {
                    let mut skipped = 0;
                    let fd: Vec<f32> = got
                        .iter()
                        .enumerate()
                        .map(|(e, &g)| {
                            let eval = |delta: f32| {
                                let (mut q, mut r) = (c.q.clone(), c.r.clone());
                                if side == 0 {
                                    q[e] += delta;
                                } else {
                                    r[e] += delta;
                                }
                                stats_at(&q, &r)
                            };
                            let (up, down) = (eval(h), eval(-h));
                            let same_counts = |s: &TripletStats| {
                                (s.triplets, s.active_triplets) == (base.triplets, base.active_triplets)
                            };
                            if !same_counts(&up) || !same_counts(&down) {
                                skipped += 1;
                                return g;
                            }
                            ((f64::from(up.loss) - f64::from(down.loss)) / (2.0 * f64::from(h))) as f32
                        })
                        .collect();
                    assert!(skipped * 4 <= got.len(), "{what}: {skipped} of {} elements at a kink", got.len());
                    // f32 loss (≈ 1e−7 relative) / h ≈ 1e−4 of noise plus O(h²) curvature.
                    assert_close(&format!("{what}: side {side} vs FD"), got, &fd, 1e-3, 1e-2);
                };
                let gq = host(b, &dq);
                check(0, &gq);
                if !same {
                    check(1, &host(b, &dr));
                }
                assert!(gq.iter().any(|&v| v != 0.0) || base.active_triplets == 0, "{what}: zero gradient");
                outs.push(Out::new(what, gq).tol(1e-4, 2e-3));
            }
        }
    }
    outs
});

parity_test!(triplet_forward_is_deterministic, |b| {
    let c = case(1100, 129, None, 7, 5);
    let t = upload(b, &c);
    let mut outs = Vec::new();
    for miner in MINERS {
        let cf = cfg(miner, Metric::Euclidean, false, false);
        let v2 = forward_with(b, &cf, &c, &t, None, None, TripletKernel::V2);
        let again = forward_with(b, &cf, &c, &t, None, None, TripletKernel::V2);
        assert_eq!(v2.stats.loss.to_bits(), again.stats.loss.to_bits(), "{miner:?} v2");
        let mut a = forward(b, &cf, &c, &t);
        let again = forward(b, &cf, &c, &t);
        assert_eq!(a.stats.loss.to_bits(), again.stats.loss.to_bits(), "{miner:?}");
        for kernel in TripletKernel::ALL {
            a.ws.set_kernel(kernel);
            let (mut d1, mut d2) = (poisoned(b, &[c.n, c.d]), poisoned(b, &[c.n, c.d]));
            triplet_bwd(b, &cf, &t.q, &t.ql, &t.r, &t.rl, true, &mut a.ws, 1.0, &mut d1, None).unwrap();
            triplet_bwd(b, &cf, &t.q, &t.ql, &t.r, &t.rl, true, &mut a.ws, 1.0, &mut d2, None).unwrap();
            let (h1, h2) = (host(b, &d1), host(b, &d2));
            assert_eq!(
                h1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                h2.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{miner:?} {kernel:?}"
            );
        }
        outs.push(Out::new(format!("{miner:?} loss"), vec![a.stats.loss]).tol(1e-5, 2e-3));
    }
    outs
});

#[test]
fn collapse_fraction_counts_close_pairs() {
    let b = CpuBackend;
    // Four points: two identical pairs, labels 0 0 1 1 → pairs within a class collapse (δ = 0).
    let x = vec![0.1f32, 0.2, 0.1, 0.2, -0.7, 0.4, -0.7, 0.4];
    let c = Case { n: 4, m: 4, d: 2, q: x.clone(), ql: vec![0, 0, 1, 1], r: x, rl: vec![0, 0, 1, 1], same_set: true };
    let t = upload(&b, &c);
    let s = forward(&b, &TripletConfig { collapse_eps: 1e-3, ..TripletConfig::default() }, &c, &t).stats;
    // 4 positive pairs (all collapsed) and 8 negative pairs: 4 / 12.
    assert_close("collapse", &[s.collapse_fraction], &[4.0 / 12.0], 0.0, 1e-6);
    assert_eq!(s.mean_d_ap, 0.0);
    assert!(s.mean_d_an > 0.5);
}

#[test]
fn triplet_rejects_bad_input() {
    let b = CpuBackend;
    let c = case(1200, 6, None, 3, 2);
    let t = upload(&b, &c);
    let cf = TripletConfig::default();
    let mut ws = TripletWorkspace::new(&b, 6, 6, &cf).unwrap();
    let bad_labels = Tensor::<CpuBackend, u32>::zeros(&b, &[5]).unwrap();
    let e = triplet_fwd(&b, &cf, &t.q, &bad_labels, &t.r, &t.rl, true, &mut ws).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "triplet_fwd", .. }), "{e}");
    let sq4 = TripletConfig { metric: Metric::SquaredEuclidean, squared: true, ..cf };
    assert!(matches!(
        triplet_fwd(&b, &sq4, &t.q, &t.ql, &t.r, &t.rl, true, &mut ws),
        Err(Error::InvalidArgument { .. })
    ));
    let neg_margin = TripletConfig { margin: -1.0, ..cf };
    assert!(triplet_fwd(&b, &neg_margin, &t.q, &t.ql, &t.r, &t.rl, true, &mut ws).is_err());
    let mut dq = Tensor::zeros(&b, &[6, 3]).unwrap();
    // Backward before any forward with this configuration.
    let e = triplet_bwd(&b, &cf, &t.q, &t.ql, &t.r, &t.rl, true, &mut ws, 1.0, &mut dq, None).unwrap_err();
    assert!(e.to_string().contains("triplet_fwd"), "{e}");
    triplet_fwd(&b, &cf, &t.q, &t.ql, &t.r, &t.rl, true, &mut ws).unwrap();
    // dr = None only with same_set; wrong dq shape; non-finite scale.
    assert!(triplet_bwd(&b, &cf, &t.q, &t.ql, &t.r, &t.rl, false, &mut ws, 1.0, &mut dq, None).is_err());
    let mut bad_dq = Tensor::zeros(&b, &[6, 2]).unwrap();
    assert!(triplet_bwd(&b, &cf, &t.q, &t.ql, &t.r, &t.rl, true, &mut ws, 1.0, &mut bad_dq, None).is_err());
    assert!(triplet_bwd(&b, &cf, &t.q, &t.ql, &t.r, &t.rl, true, &mut ws, f32::NAN, &mut dq, None).is_err());
    // same_set with different sizes; a workspace for other sizes.
    let other = case(1201, 4, Some(6), 3, 2);
    let to = upload(&b, &other);
    let mut ws46 = TripletWorkspace::new(&b, 4, 6, &cf).unwrap();
    assert!(triplet_fwd(&b, &cf, &to.q, &to.ql, &to.r, &to.rl, true, &mut ws46).is_err());
    assert!(triplet_fwd(&b, &cf, &to.q, &to.ql, &to.r, &to.rl, false, &mut ws).is_err());
    assert!(triplet_fwd(&b, &cf, &to.q, &to.ql, &to.r, &to.rl, false, &mut ws46).is_ok());
}

// ---- exact k-NN ----

use latentkit::ops::knn::{knn, KNN_MAX_K};

/// Brute force: every candidate's κ from the backend's pairwise_distance, sorted by (κ, index).
fn knn_oracle(kappa: &[f32], n: usize, m: usize, k: usize, same_set: bool) -> (Vec<u32>, Vec<f32>) {
    let (mut idx, mut dist) = (Vec::new(), Vec::new());
    for i in 0..n {
        let mut c: Vec<(f32, u32)> =
            (0..m).filter(|&j| !(same_set && j == i)).map(|j| (kappa[i * m + j], j as u32)).collect();
        c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(v, j) in &c[..k] {
            idx.push(j);
            dist.push(v);
        }
    }
    (idx, dist)
}

parity_test!(knn_matches_brute_force, |b| {
    let mut outs = Vec::new();
    let shapes: &[(usize, Option<usize>, usize)] =
        &[(1, Some(1), 1), (7, None, 5), (33, Some(129), 64), (129, None, 10), (40, Some(1000), 33)];
    for (s, &(n, m, k)) in shapes.iter().enumerate() {
        let c = case(1300 + s as u64, n, m, 6, 3);
        let t = upload(b, &c);
        for metric in METRICS {
            let mut kappa = poisoned(b, &[c.n, c.m]);
            pairwise_distance(b, metric, &t.q, &t.r, &mut kappa).unwrap();
            let (want_i, want_d) = knn_oracle(&host(b, &kappa), c.n, c.m, k, c.same_set);
            let mut idx = Tensor::<B, u32>::from_slice(b, &[c.n, k], &vec![u32::MAX; c.n * k]).unwrap();
            let mut dist = poisoned(b, &[c.n, k]);
            knn(b, metric, &t.q, &t.r, k, c.same_set, &mut idx, &mut dist).unwrap();
            let (got_i, got_d) = (idx.to_vec(b).unwrap(), host(b, &dist));
            let what = format!("knn {metric:?} n={n} m={} k={k}", c.m);
            // Exact: the same κ bits as pairwise_distance on this backend.
            assert_eq!(got_i, want_i, "{what}: indices");
            assert_close(&what, &got_d, &want_d, 0.0, 0.0);
            outs.push(Out::new(format!("{what} dist"), got_d).tol(1e-5, 1e-5));
        }
    }
    outs
});

parity_test!(knn_ties_and_self_exclusion, |b| {
    // Rows 1, 2 and 4 are copies: for query 0 they tie exactly and come out in index order; with
    // same_set the query's own row (distance 0) is never returned.
    let a = [0.2f32, 0.1];
    let p = [1.0f32, -0.5];
    let x: Vec<f32> = [a, p, p, [3.0, 3.0], p, a].iter().flatten().copied().collect();
    let t = tensor(b, &[6, 2], &x);
    let k = 4;
    let mut idx = Tensor::<B, u32>::zeros(b, &[6, k]).unwrap();
    let mut dist = poisoned(b, &[6, k]);
    knn(b, Metric::Euclidean, &t, &t, k, true, &mut idx, &mut dist).unwrap();
    let got = idx.to_vec(b).unwrap();
    assert_eq!(&got[..k], &[5, 1, 2, 4], "query 0: its copy 5 (distance 0), then the tied copies 1, 2, 4");
    assert_eq!(&got[k..2 * k], &[2, 4, 0, 5], "query 1: copies 2, 4 at 0, then 0 and 5 tied");
    for i in 0..6 {
        assert!(!got[i * k..(i + 1) * k].contains(&(i as u32)), "query {i} returned itself");
    }
    vec![Out::new("knn tie dists", host(b, &dist)).tol(1e-6, 1e-6)]
});

#[test]
fn knn_rejects_bad_k_and_shapes() {
    let b = CpuBackend;
    let c = case(1400, 5, None, 3, 2);
    let t = upload(&b, &c);
    let run = |k: usize, same: bool| {
        let mut idx = Tensor::<CpuBackend, u32>::zeros(&b, &[5, k]).unwrap();
        let mut dist = Tensor::zeros(&b, &[5, k]).unwrap();
        knn(&b, Metric::Euclidean, &t.q, &t.r, k, same, &mut idx, &mut dist)
    };
    assert!(run(4, true).is_ok());
    assert!(matches!(run(5, true), Err(Error::InvalidArgument { .. })), "only 4 candidates without self");
    assert!(run(5, false).is_ok());
    assert!(run(0, true).is_ok());
    let big = case(1401, 100, None, 3, 2);
    let tb = upload(&b, &big);
    let mut idx = Tensor::<CpuBackend, u32>::zeros(&b, &[100, KNN_MAX_K + 1]).unwrap();
    let mut dist = Tensor::zeros(&b, &[100, KNN_MAX_K + 1]).unwrap();
    assert!(knn(&b, Metric::Cosine, &tb.q, &tb.r, KNN_MAX_K + 1, true, &mut idx, &mut dist).is_err());
    let mut wrong = Tensor::zeros(&b, &[5, 3]).unwrap();
    let mut idx = Tensor::<CpuBackend, u32>::zeros(&b, &[5, 2]).unwrap();
    assert!(matches!(knn(&b, Metric::Cosine, &t.q, &t.r, 2, true, &mut idx, &mut wrong), Err(Error::Shape { .. })));
}

// ---- pair losses: contrastive (pairs and in-batch), siamese cosine head ----

use latentkit::ops::metric_loss::{
    batch_pairs, contrastive_batch_bwd, contrastive_batch_fwd, contrastive_bwd, contrastive_fwd, pair_labels,
    siamese_cos_bwd, siamese_cos_fwd, PairLabel,
};

fn contrastive_f64(similar: bool, a: &[f32], b: &[f32], m: f64) -> f64 {
    let d = a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>().sqrt();
    if similar {
        0.5 * d * d
    } else {
        0.5 * (m - d).max(0.0).powi(2)
    }
}

/// ∂ℓ/∂a from the direct formula (0 at d = 0 for the dissimilar branch).
fn contrastive_grad_f64(similar: bool, a: &[f32], b: &[f32], m: f64) -> Vec<f64> {
    let diff: Vec<f64> = a.iter().zip(b).map(|(&x, &y)| f64::from(x) - f64::from(y)).collect();
    let d = diff.iter().map(|v| v * v).sum::<f64>().sqrt();
    let c = if similar {
        1.0
    } else if d > 0.0 {
        -(m - d).max(0.0) / d
    } else {
        0.0
    };
    diff.iter().map(|v| c * v).collect()
}

parity_test!(contrastive_pairs_match_formula_and_finite_differences, |b| {
    let mut outs = Vec::new();
    let margin = 1.5f32;
    for (s, &(n, d)) in [(1usize, 1usize), (7, 5), (33, 300), (1000, 3)].iter().enumerate() {
        let mut rg = rng(1500 + s as u64);
        let x1 = rand_vec(&mut rg, n * d, -1.0, 1.0);
        let mut x2 = rand_vec(&mut rg, n * d, -1.0, 1.0);
        let lab: Vec<PairLabel> = (0..n)
            .map(|i| if (x1[i * d] > 0.0) ^ (i % 3 == 0) { PairLabel::Similar } else { PairLabel::Dissimilar })
            .collect();
        if n > 2 {
            // Identical points, one similar and one dissimilar pair: d = 0, never NaN.
            x2[..d].copy_from_slice(&x1[..d]);
            x2[d..2 * d].copy_from_slice(&x1[d..2 * d]);
        }
        let (t1, t2) = (tensor(b, &[n, d], &x1), tensor(b, &[n, d], &x2));
        let y = pair_labels(b, &lab).unwrap();
        let mut loss = poisoned(b, &[n]);
        contrastive_fwd(b, margin, &t1, &t2, &y, &mut loss).unwrap();
        let want: Vec<f32> = (0..n)
            .map(|i| contrastive_f64(lab[i] == PairLabel::Similar, &x1[i * d..][..d], &x2[i * d..][..d], 1.5) as f32)
            .collect();
        let got = host(b, &loss);
        // f32 sums of d squared differences (GPU): ≈ √d·ε relative.
        assert_close(&format!("contrastive fwd {n}x{d}"), &got, &want, 1e-6, 1e-5);
        let g0 = rand_vec(&mut rg, n, -1.0, 1.0);
        let (mut d1, mut d2) = (poisoned(b, &[n, d]), poisoned(b, &[n, d]));
        contrastive_bwd(b, margin, &t1, &t2, &y, &tensor(b, &[n], &g0), &mut d1, &mut d2).unwrap();
        let (g1, g2) = (host(b, &d1), host(b, &d2));
        let mut want1 = Vec::new();
        for i in 0..n {
            let gr = contrastive_grad_f64(lab[i] == PairLabel::Similar, &x1[i * d..][..d], &x2[i * d..][..d], 1.5);
            want1.extend(gr.iter().map(|v| (v * f64::from(g0[i])) as f32));
        }
        let want2: Vec<f32> = want1.iter().map(|v| -v).collect();
        assert_close(&format!("contrastive dx1 {n}x{d}"), &g1, &want1, 1e-6, 1e-4);
        assert_close(&format!("contrastive dx2 {n}x{d}"), &g2, &want2, 1e-6, 1e-4);
        assert!(got.iter().chain(&g1).all(|v| v.is_finite()));
        outs.push(Out::new(format!("contrastive fwd {n}x{d}"), got).tol(1e-6, 1e-5));
        outs.push(Out::new(format!("contrastive dx1 {n}x{d}"), g1).tol(1e-6, 1e-4));
    }
    // Finite differences of Σ g_i ℓ_i on a small case (points well apart from d = 0 and d = m).
    let (n, d) = (4, 3);
    let mut rg = rng(1510);
    let x1 = rand_vec(&mut rg, n * d, -1.0, 1.0);
    let x2 = rand_vec(&mut rg, n * d, -1.0, 1.0);
    let lab = [PairLabel::Similar, PairLabel::Dissimilar, PairLabel::Dissimilar, PairLabel::Similar];
    let g0 = rand_vec(&mut rg, n, 0.2, 1.0);
    let y = pair_labels(b, &lab).unwrap();
    let obj = |a: &[f32], c: &[f32]| -> f64 {
        let mut loss = poisoned(b, &[n]);
        contrastive_fwd(b, 3.0, &tensor(b, &[n, d], a), &tensor(b, &[n, d], c), &y, &mut loss).unwrap();
        host(b, &loss).iter().zip(&g0).map(|(&l, &g)| f64::from(l) * f64::from(g)).sum()
    };
    let (mut d1, mut d2) = (poisoned(b, &[n, d]), poisoned(b, &[n, d]));
    contrastive_bwd(
        b,
        3.0,
        &tensor(b, &[n, d], &x1),
        &tensor(b, &[n, d], &x2),
        &y,
        &tensor(b, &[n], &g0),
        &mut d1,
        &mut d2,
    )
    .unwrap();
    let h = 1e-2f32;
    let fd: Vec<f32> = (0..n * d)
        .map(|e| {
            let (mut up, mut dn) = (x1.clone(), x1.clone());
            up[e] += h;
            dn[e] -= h;
            ((obj(&up, &x2) - obj(&dn, &x2)) / (2.0 * f64::from(h))) as f32
        })
        .collect();
    // Quadratic pieces: central differences are exact up to f32 rounding / h ≈ 1e−5.
    assert_close("contrastive dx1 vs FD", &host(b, &d1), &fd, 5e-4, 1e-3);
    outs
});

parity_test!(contrastive_batch_matches_all_pairs_brute_force, |b| {
    let mut outs = Vec::new();
    let margin = 1.0f32;
    for (s, &(n, d, classes)) in
        [(1usize, 3usize, 1u32), (2, 4, 2), (7, 5, 3), (33, 8, 4), (129, 3, 5)].iter().enumerate()
    {
        let mut rg = rng(1600 + s as u64);
        let x0 = rand_vec(&mut rg, n * d, -1.0, 1.0);
        let l0 = labels(&mut rg, n, classes);
        let x = tensor(b, &[n, d], &x0);
        let lt = Tensor::from_slice(b, &[n], &l0).unwrap();
        let mut rows = poisoned(b, &[n]);
        contrastive_batch_fwd(b, margin, &x, &lt, &mut rows).unwrap();
        let got_rows = host(b, &rows);
        let mut want = 0.0f64;
        let mut want_rows = vec![0.0f64; n];
        for i in 0..n {
            for j in i + 1..n {
                let v = contrastive_f64(l0[i] == l0[j], &x0[i * d..][..d], &x0[j * d..][..d], 1.0);
                want += v;
                want_rows[i] += v;
            }
        }
        let pairs = batch_pairs(n);
        assert_eq!(pairs, n * (n - 1) / 2);
        let mean = if pairs > 0 { got_rows.iter().map(|&v| f64::from(v)).sum::<f64>() / pairs as f64 } else { 0.0 };
        let want_mean = if pairs > 0 { want / pairs as f64 } else { 0.0 };
        let wr: Vec<f32> = want_rows.iter().map(|&v| v as f32).collect();
        assert_close(&format!("batch rows n={n}"), &got_rows, &wr, 1e-6, 1e-5);
        assert_close(&format!("batch mean n={n}"), &[mean as f32], &[want_mean as f32], 1e-7, 1e-5);
        // Backward of scale·mean against the analytic sum over pairs.
        let scale = 2.0f32;
        let mut dx = poisoned(b, &[n, d]);
        contrastive_batch_bwd(b, margin, &x, &lt, scale, &mut dx).unwrap();
        let mut want_dx = vec![0.0f64; n * d];
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let g = contrastive_grad_f64(l0[i] == l0[j], &x0[i * d..][..d], &x0[j * d..][..d], 1.0);
                    for k in 0..d {
                        want_dx[i * d + k] += f64::from(scale) / pairs as f64 * g[k];
                    }
                }
            }
        }
        let wd: Vec<f32> = want_dx.iter().map(|&v| v as f32).collect();
        let gd = host(b, &dx);
        assert_close(&format!("batch dx n={n}"), &gd, &wd, 1e-6, 1e-4);
        outs.push(Out::new(format!("batch rows n={n}"), got_rows).tol(1e-6, 1e-5));
        outs.push(Out::new(format!("batch dx n={n}"), gd).tol(1e-6, 1e-4));
    }
    // Finite differences of the mean on a small batch.
    let (n, d) = (6, 4);
    let mut rg = rng(1620);
    let x0 = rand_vec(&mut rg, n * d, -1.0, 1.0);
    let lt = Tensor::from_slice(b, &[n], &[0u32, 1, 0, 2, 1, 0]).unwrap();
    let mean_at = |xv: &[f32]| -> f64 {
        let mut rows = poisoned(b, &[n]);
        contrastive_batch_fwd(b, 2.0, &tensor(b, &[n, d], xv), &lt, &mut rows).unwrap();
        host(b, &rows).iter().map(|&v| f64::from(v)).sum::<f64>() / batch_pairs(n) as f64
    };
    let mut dx = poisoned(b, &[n, d]);
    contrastive_batch_bwd(b, 2.0, &tensor(b, &[n, d], &x0), &lt, 1.0, &mut dx).unwrap();
    let h = 1e-2f32;
    let fd: Vec<f32> = (0..n * d)
        .map(|e| {
            let (mut up, mut dn) = (x0.clone(), x0.clone());
            up[e] += h;
            dn[e] -= h;
            ((mean_at(&up) - mean_at(&dn)) / (2.0 * f64::from(h))) as f32
        })
        .collect();
    // Margin 2 > every distance here, so each pair is smooth; O(h²) curvature of max(0, m − d)².
    assert_close("batch dx vs FD", &host(b, &dx), &fd, 5e-4, 2e-3);
    outs
});

fn siamese_f64(a: &[f32], c: &[f32], y: f32, scale: f32, bias: f32) -> (f64, f64) {
    let dot: f64 = a.iter().zip(c).map(|(&x, &z)| f64::from(x) * f64::from(z)).sum();
    let na = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt().max(1e-12);
    let nc = c.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt().max(1e-12);
    let s = f64::from(scale) * dot / (na * nc) + f64::from(bias);
    let softplus = s.max(0.0) + (-s.abs()).exp().ln_1p();
    (s, softplus - f64::from(y) * s)
}

parity_test!(siamese_cosine_head_matches_formula_and_finite_differences, |b| {
    let mut outs = Vec::new();
    for (s, &(n, d, scale, bias)) in
        [(1usize, 1usize, 5.0f32, -0.5f32), (7, 5, 10.0, 0.3), (33, 64, 60.0, -2.0), (1000, 3, 2.0, 0.1)]
            .iter()
            .enumerate()
    {
        let mut rg = rng(1700 + s as u64);
        let x1 = rand_vec(&mut rg, n * d, -1.0, 1.0);
        let mut x2 = rand_vec(&mut rg, n * d, -1.0, 1.0);
        if n > 1 {
            x2[..d].fill(0.0); // a zero vector: cosine 0, finite everything
        }
        let y: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
        let (t1, t2, ty) = (tensor(b, &[n, d], &x1), tensor(b, &[n, d], &x2), tensor(b, &[n], &y));
        let (ts, tb) = (tensor(b, &[1], &[scale]), tensor(b, &[1], &[bias]));
        let (mut logits, mut loss) = (poisoned(b, &[n]), poisoned(b, &[n]));
        siamese_cos_fwd(b, &t1, &t2, &ty, &ts, &tb, &mut logits, &mut loss).unwrap();
        let (gl, gs) = (host(b, &logits), host(b, &loss));
        let (mut wl, mut ws) = (Vec::new(), Vec::new());
        for i in 0..n {
            let (lg, ls) = siamese_f64(&x1[i * d..][..d], &x2[i * d..][..d], y[i], scale, bias);
            wl.push(lg as f32);
            ws.push(ls as f32);
        }
        // cos carries ≈ d·ε; the logit scale·cos multiplies the absolute error by |scale| ≤ 60.
        let atol = 4.0 * (d as f32 + 4.0) * f32::EPSILON * scale.abs();
        assert_close(&format!("siamese logits n={n}"), &gl, &wl, atol, 1e-5);
        assert_close(&format!("siamese loss n={n}"), &gs, &ws, atol, 1e-5);
        assert!(gs.iter().all(|v| v.is_finite()));
        outs.push(Out::new(format!("siamese loss n={n}"), gs).tol(atol, 1e-5));
    }
    // Finite differences of Σ g_i loss_i with respect to x1, x2, scale and bias.
    let (n, d) = (5, 4);
    let mut rg = rng(1710);
    let x1 = rand_vec(&mut rg, n * d, -1.0, 1.0);
    let x2 = rand_vec(&mut rg, n * d, -1.0, 1.0);
    let y = vec![1.0f32, 0.0, 1.0, 0.0, 0.5];
    let g0 = rand_vec(&mut rg, n, 0.2, 1.0);
    let ty = tensor(b, &[n], &y);
    let obj = |a: &[f32], c: &[f32], sc: f32, bi: f32| -> f64 {
        let (mut logits, mut loss) = (poisoned(b, &[n]), poisoned(b, &[n]));
        let (ts, tb) = (tensor(b, &[1], &[sc]), tensor(b, &[1], &[bi]));
        siamese_cos_fwd(b, &tensor(b, &[n, d], a), &tensor(b, &[n, d], c), &ty, &ts, &tb, &mut logits, &mut loss)
            .unwrap();
        host(b, &loss).iter().zip(&g0).map(|(&l, &g)| f64::from(l) * f64::from(g)).sum()
    };
    let (scale, bias) = (4.0f32, -0.3f32);
    let (mut d1, mut d2, mut dsc, mut dbi) =
        (poisoned(b, &[n, d]), poisoned(b, &[n, d]), poisoned(b, &[1]), poisoned(b, &[1]));
    siamese_cos_bwd(
        b,
        &tensor(b, &[n, d], &x1),
        &tensor(b, &[n, d], &x2),
        &ty,
        &tensor(b, &[n], &g0),
        &tensor(b, &[1], &[scale]),
        &tensor(b, &[1], &[bias]),
        &mut d1,
        &mut d2,
        &mut dsc,
        &mut dbi,
    )
    .unwrap();
    let h = 1e-3f32;
    let cd = |f: &dyn Fn(f32) -> f64| ((f(h) - f(-h)) / (2.0 * f64::from(h))) as f32;
    let fd1: Vec<f32> = (0..n * d)
        .map(|e| {
            cd(&|dl| {
                let mut a = x1.clone();
                a[e] += dl;
                obj(&a, &x2, scale, bias)
            })
        })
        .collect();
    let fd2: Vec<f32> = (0..n * d)
        .map(|e| {
            cd(&|dl| {
                let mut c = x2.clone();
                c[e] += dl;
                obj(&x1, &c, scale, bias)
            })
        })
        .collect();
    let fds = cd(&|dl| obj(&x1, &x2, scale + dl, bias));
    let fdb = cd(&|dl| obj(&x1, &x2, scale, bias + dl));
    // f32 losses ≈ 1e−7 relative / h plus O(h²): 1e−3.
    assert_close("siamese dx1 vs FD", &host(b, &d1), &fd1, 1e-3, 1e-2);
    assert_close("siamese dx2 vs FD", &host(b, &d2), &fd2, 1e-3, 1e-2);
    assert_close("siamese dscale vs FD", &host(b, &dsc), &[fds], 1e-3, 1e-2);
    assert_close("siamese dbias vs FD", &host(b, &dbi), &[fdb], 1e-3, 1e-2);
    outs.push(Out::new("siamese dx1", host(b, &d1)).tol(1e-6, 1e-4));
    outs.push(Out::new("siamese dscale", host(b, &dsc)).tol(1e-6, 1e-4));
    outs
});

#[test]
fn pair_losses_reject_bad_input() {
    let b = CpuBackend;
    let x = Tensor::zeros(&b, &[4, 3]).unwrap();
    let x_bad = Tensor::zeros(&b, &[4, 2]).unwrap();
    let y = pair_labels(&b, &[PairLabel::Similar; 4]).unwrap();
    let mut loss = Tensor::zeros(&b, &[4]).unwrap();
    assert!(matches!(contrastive_fwd(&b, 1.0, &x, &x_bad, &y, &mut loss), Err(Error::Shape { .. })));
    assert!(matches!(contrastive_fwd(&b, -1.0, &x, &x, &y, &mut loss), Err(Error::InvalidArgument { .. })));
    let y3 = pair_labels(&b, &[PairLabel::Similar; 3]).unwrap();
    assert!(contrastive_fwd(&b, 1.0, &x, &x, &y3, &mut loss).is_err());
    let mut dx = Tensor::zeros(&b, &[4, 3]).unwrap();
    assert!(contrastive_batch_bwd(&b, 1.0, &x, &y, f32::INFINITY, &mut dx).is_err());
    let empty = Tensor::zeros(&b, &[4, 0]).unwrap();
    assert!(contrastive_fwd(&b, 1.0, &empty, &empty, &y, &mut loss).is_err());
    let (ts, tb) = (Tensor::zeros(&b, &[1]).unwrap(), Tensor::zeros(&b, &[2]).unwrap());
    let yf = Tensor::zeros(&b, &[4]).unwrap();
    let mut logits = Tensor::zeros(&b, &[4]).unwrap();
    let e = siamese_cos_fwd(&b, &x, &x, &yf, &ts, &tb, &mut logits, &mut loss).unwrap_err();
    assert!(e.to_string().contains("bias"), "{e}");
}

/// Rounds every input to a multiple of 1/8 in [−1, 1]: every product, norm and dot product is then
/// a multiple of 1/64 below 2²⁴/64, so κ is exact on both backends whatever the summation order,
/// and so is every mining decision (uniform f32 inputs at d = 300 gave κ an ulp apart, and a
/// negative within an ulp of ℓ_ap (or ℓ_ap + margin) flipped between chosen and not: on an H100 that
/// moved 11 gradient rows of FaceNet by a whole triplet's term). Ties become common, which tests
/// the lowest-index rule across tiles, reference splits and chunks.
fn exact_in_kappa(c: &mut Case) {
    for v in c.q.iter_mut().chain(c.r.iter_mut()) {
        *v = (*v * 8.0).round() / 8.0;
    }
}

/// Forward (in `chunk`-anchor chunks when given) and backward with separate dq and dr, then the
/// outputs the CPU and CUDA runs are compared on: the integer counts exactly, loss and gradients
/// to relative 1e-4 (they sum in different orders: f32 per anchor on the GPU, f64 on the CPU).
/// Returns the run for further checks.
fn forward_backward_outputs<B: Backend>(
    b: &B,
    cf: &TripletConfig,
    c: &Case,
    t: &Tensors<B>,
    chunk: Option<usize>,
    name: &str,
    outs: &mut Vec<Out>,
) -> Run<B> {
    // Every CUDA kernel version against the CPU twin (which ignores the choice); the last run is
    // returned.
    let mut last = None;
    for kernel in TripletKernel::ALL {
        let mut run = forward_with(b, cf, c, t, chunk, None, kernel);
        let st = run.stats;
        let name = format!("{name} {}", kernel.name());
        assert!(st.loss.is_finite() && st.triplets > 0, "{name}: {st:?}");
        let mut dq = poisoned(b, &[c.n, c.d]);
        let mut dr = poisoned(b, &[c.m, c.d]);
        triplet_bwd(b, cf, &t.q, &t.ql, &t.r, &t.rl, c.same_set, &mut run.ws, 1.0, &mut dq, Some(&mut dr)).unwrap();
        let (gq, gr) = (host(b, &dq), host(b, &dr));
        assert!(gq.iter().chain(&gr).all(|v| v.is_finite()), "{name}: non-finite gradient");
        let counts = vec![st.triplets as f32, st.active_triplets as f32];
        outs.push(Out::new(format!("{name} counts"), counts).tol(0.0, 0.0));
        outs.push(Out::new(format!("{name} loss"), vec![st.loss]).tol(1e-6, 1e-4));
        outs.push(Out::new(format!("{name} dq"), gq).tol(1e-6, 1e-4));
        outs.push(Out::new(format!("{name} dr"), gr).tol(1e-6, 1e-4));
        last = Some(run);
    }
    last.expect("TripletKernel::ALL is not empty")
}

parity_test!(triplet_large_shapes_cover_every_gpu_path, |b| {
    // Shapes past the CUDA kernels' internal tiles (the review asked for them): several 64 × 64
    // distance tiles with ragged edges (600, 700), d = 300 (19 k-steps of 16, the last partial),
    // several reference splits of the one-triplet pass, and anchor chunks of 250 rows (forced: the
    // default chunk would hold all 600) that start off the tile grid; no brute-force oracle here
    // (too slow at this size), the CPU twin is the reference the CUDA run is compared with.
    // The inputs are exact in κ (exact_in_kappa).
    let mut outs = Vec::new();
    for (same, m) in [(true, None), (false, Some(700))] {
        let mut c = case(97, 600, m, 300, 7);
        exact_in_kappa(&mut c);
        let t = upload(b, &c);
        for miner in MINERS {
            let cf = cfg(miner, Metric::Euclidean, false, false);
            let name = format!("{miner:?} same_set={same} 600x{}x300", c.m);
            let run = forward_backward_outputs(b, &cf, &c, &t, Some(250), &name, &mut outs);
            if run.ws.hard_splits() > 0 {
                assert!(run.ws.hard_splits() > 1, "{miner:?}: 10 anchor tiles should split the references");
            }
            if run.ws.row_chunk() > 0 {
                assert_eq!(run.ws.row_chunk(), 250);
            }
        }
    }
    outs
});

parity_test!(triplet_rows_past_the_shared_list, |b| {
    // The many-triplet miners keep an anchor's negatives (and, in BatchAll's backward pass, its
    // positives) in a shared-memory list of at most 4096 entries on CUDA, and scan the whole row
    // when there are more. 8400 references, 4096 labelled 0 and 4304 labelled 1, interleaved
    // ((37·j mod 8400) < 4304 gives label 1): anchors of label 0 have exactly 4096 positives (the
    // positives' list full) and 4304 negatives (the row scan); label 1 the other way round; label 2
    // (no reference has it) 8400 negatives and no positive. The inputs are exact in κ.
    let mut outs = Vec::new();
    let mut c = case(131, 6, Some(8400), 8, 3);
    exact_in_kappa(&mut c);
    c.rl = (0..c.m).map(|j| u32::from((37 * j) % c.m < 4304)).collect();
    c.ql = vec![0, 1, 2, 0, 1, 2];
    assert_eq!(c.rl.iter().filter(|&&l| l == 0).count(), 4096);
    let t = upload(b, &c);
    for miner in [Miner::SemiHard(SemiHardPolicy::FaceNet), Miner::SemiHard(SemiHardPolicy::TfAddons), Miner::BatchAll]
    {
        let cf = cfg(miner, Metric::Euclidean, false, false);
        forward_backward_outputs(b, &cf, &c, &t, None, &format!("{miner:?} 6x8400x8"), &mut outs);
    }
    outs
});

/// A random direction scaled to radius ≈ `radius` (±10%).
fn at_radius(rg: &mut latentkit::rng::LkRng, d: usize, radius: f32) -> Vec<f32> {
    let v = rand_vec(rg, d, -1.0, 1.0);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let s = radius * rand_vec(rg, 1, 0.9, 1.1)[0] / norm;
    v.iter().map(|x| x * s).collect()
}

/// Anchors near the origin against references built so that many anchors choose the same few
/// references: per class 6 positives at radius ≈ 2 (the class's farthest one is shared by its
/// anchors), a "hub" negative at the origin (label 99: every anchor's closest negative, so its
/// bucket holds every active BatchHard anchor), 40 negatives at radius ≈ 4 (label 98; for
/// ClosestFartherThanPositive the closest of them beyond the positive, again shared), and
/// references chosen by nobody. The hub sits in the middle of the reference set.
fn hub_case(seed: u64, n: usize, d: usize, classes: u32) -> Case {
    let mut rg = rng(seed);
    let q = rand_vec(&mut rg, n * d, -0.1, 0.1);
    let ql = labels(&mut rg, n, classes);
    let (mut r, mut rl) = (Vec::new(), Vec::new());
    for c in 0..classes {
        for _ in 0..6 {
            r.extend(at_radius(&mut rg, d, 2.0));
            rl.push(c);
        }
    }
    for k in 0..40 {
        if k == 3 {
            r.extend(rand_vec(&mut rg, d, -0.01, 0.01));
            rl.push(99);
        }
        r.extend(at_radius(&mut rg, d, 4.0));
        rl.push(98);
    }
    Case { n, m: rl.len(), d, q, ql, r, rl, same_set: false }
}

parity_test!(triplet_hard_backward_with_shared_choices, |b| {
    // The index-based backward buckets the anchors by chosen reference: buckets of one, of
    // hundreds (sorted in shared memory) and of more than LK_BUCKET_SORT_CAP = 2048 entries (the
    // hub at n = 2500: gathered by scanning the anchors), and references nobody chose. Exact
    // indices against the oracle, gradients against the oracle's counts, and a bit-identical rerun.
    let mut outs = Vec::new();
    for (k, &n) in [70usize, 700, 2500].iter().enumerate() {
        let c = hub_case(1400 + k as u64, n, 19, 5);
        let t = upload(b, &c);
        for miner in [Miner::BatchHard, Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive)] {
            for metric in [Metric::Euclidean, Metric::Cosine] {
                // Margin 3 > κ(far negative) − κ(positive) ≈ 2: ClosestFartherThanPositive's
                // triplets are active too, so its shared negatives get buckets.
                let cf = TripletConfig { margin: 3.0, ..cfg(miner, metric, false, false) };
                let mut run = check_against_oracle_chunked(b, &cf, &c, None, None, &mut outs);
                let what = format!("{cf:?} hub n={n}");
                if miner == Miner::BatchHard && metric == Metric::Euclidean {
                    let neg = run.ws.read_u32_plane(b, plane::NEG_IDX).unwrap();
                    let hub = c.rl.iter().position(|&l| l == 99).unwrap() as u32;
                    assert!(neg.iter().all(|&j| j == hub), "{what}: every anchor's closest negative is the hub");
                    assert_eq!(run.stats.active_triplets as usize, n, "{what}: every triplet active");
                }
                let grads = |run: &mut Run<B>| {
                    let (mut dq, mut dr) = (poisoned(b, &[c.n, c.d]), poisoned(b, &[c.m, c.d]));
                    triplet_bwd(b, &cf, &t.q, &t.ql, &t.r, &t.rl, false, &mut run.ws, 1.0, &mut dq, Some(&mut dr))
                        .unwrap();
                    let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    (bits(host(b, &dq)), bits(host(b, &dr)))
                };
                assert_eq!(grads(&mut run), grads(&mut run), "{what}: backward not bit-reproducible");
            }
        }
    }
    outs
});

parity_test!(triplet_hard_splits_many_references, |b| {
    // Few anchors (2 tiles) against many references (24 tiles, the last one ragged), and a same-set
    // batch of 300 (5 tiles): on CUDA the references are split across blocks and the partials
    // merged; d = 37 ends mid k-step.
    let mut outs = Vec::new();
    for (k, same) in [false, true].into_iter().enumerate() {
        let c =
            if same { case(1450 + k as u64, 300, None, 37, 9) } else { case(1450 + k as u64, 70, Some(1500), 37, 5) };
        for (miner, compat) in [
            (Miner::BatchHard, false),
            (Miner::BatchHard, true),
            (Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive), false),
        ] {
            for (metric, squared) in [(Metric::Euclidean, false), (Metric::Euclidean, true), (Metric::Cosine, false)] {
                let cf = cfg(miner, metric, squared, compat);
                let run = check_against_oracle_chunked(b, &cf, &c, None, None, &mut outs);
                if run.ws.hard_splits() > 0 {
                    assert!(run.ws.hard_splits() > 1, "{cf:?}: few anchor tiles should split the reference tiles");
                }
            }
        }
    }
    outs
});

parity_test!(triplet_rows_in_ragged_chunks, |b| {
    // The many-triplet miners with anchor chunks of 37 rows (CUDA): chunk starts off the 64-row
    // tile grid, a last partial chunk, and the κ rows rebuilt per chunk in the backward.
    let mut outs = Vec::new();
    let c = case(1460, 200, None, 9, 6);
    let q = case(1461, 90, Some(130), 9, 4);
    for cc in [&c, &q] {
        for miner in
            [Miner::SemiHard(SemiHardPolicy::FaceNet), Miner::SemiHard(SemiHardPolicy::TfAddons), Miner::BatchAll]
        {
            for (metric, squared) in [(Metric::Euclidean, false), (Metric::Cosine, true)] {
                let cf = cfg(miner, metric, squared, false);
                let run = check_against_oracle_chunked(b, &cf, cc, Some(37), None, &mut outs);
                if run.ws.row_chunk() > 0 {
                    assert_eq!(run.ws.row_chunk(), 37);
                }
            }
        }
    }
    outs
});

#[test]
fn workspace_reports_its_buffers() {
    let b = CpuBackend;
    let ws = TripletWorkspace::new(&b, 10, 12, &TripletConfig::default()).unwrap();
    // CPU: the planes, the norms and the statistics only.
    assert_eq!(
        ws.device_bytes(),
        4 * ((plane::U32_LEN + plane::F32_LEN + 1) * 10 + 12 + latentkit::ops::mining::stat::LEN)
    );
    assert_eq!((ws.row_chunk(), ws.hard_splits()), (0, 0));
}

parity_test!(triplet_rows_v2_gradient_is_v1s_bit_for_bit, |b| {
    // TripletKernel::V2 adds the many-triplet miners' gradient with other kernels, but every
    // output element sums the same terms in the same order with the same rounded operations as
    // v1: the bits must agree for the Euclidean family (on the CPU, which ignores the choice,
    // trivially); cosine up to the compiler's FMA contraction. Same set and
    // query vs reference, the three κ forms, and chunks of 37 anchors (ragged, off the groups of 8).
    let mut outs = Vec::new();
    let same = case(1470, 150, None, 33, 5);
    let cross = case(1471, 70, Some(90), 9, 4);
    for c in [&same, &cross] {
        let t = upload(b, c);
        for miner in
            [Miner::SemiHard(SemiHardPolicy::FaceNet), Miner::SemiHard(SemiHardPolicy::TfAddons), Miner::BatchAll]
        {
            for (metric, squared) in [(Metric::Euclidean, false), (Metric::Euclidean, true), (Metric::Cosine, true)] {
                let cf = cfg(miner, metric, squared, false);
                let mut run = forward_chunked(b, &cf, c, &t, Some(37));
                let mut grads = |kernel: TripletKernel| {
                    run.ws.set_kernel(kernel);
                    let (mut dq, mut dr) = (poisoned(b, &[c.n, c.d]), poisoned(b, &[c.m, c.d]));
                    triplet_bwd(b, &cf, &t.q, &t.ql, &t.r, &t.rl, c.same_set, &mut run.ws, 0.5, &mut dq, Some(&mut dr))
                        .unwrap();
                    let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    (bits(host(b, &dq)), bits(host(b, &dr)))
                };
                let (v1, v2) = (grads(TripletKernel::V1), grads(TripletKernel::V2));
                assert!(v1.0.iter().any(|&x| x != 0), "{cf:?}: zero gradient");
                let what = format!("{cf:?} n={} m={}: v2's gradient vs v1's", c.n, c.m);
                if metric == Metric::Cosine {
                    // The same expression in both, but whether a·x + b·y is contracted into an FMA
                    // is the compiler's choice in each kernel: equal up to rounding.
                    let f = |v: &[u32]| v.iter().map(|&x| f32::from_bits(x)).collect::<Vec<_>>();
                    assert_close(&format!("{what} (dq)"), &f(&v2.0), &f(&v1.0), 1e-9, 1e-5);
                    assert_close(&format!("{what} (dr)"), &f(&v2.1), &f(&v1.1), 1e-9, 1e-5);
                } else {
                    assert_eq!(v1, v2, "{what}");
                }
                outs.push(
                    Out::new(format!("{cf:?} n={} v2 dq", c.n), v2.0.iter().map(|&x| f32::from_bits(x)).collect())
                        .tol(1e-4, 2e-3),
                );
            }
        }
    }
    outs
});
