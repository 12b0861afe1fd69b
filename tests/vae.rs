//! The VAE end to end: model gradients against finite differences (KL warm-up and free bits
//! included) and an f64 recomputation of the objective, the device-side objective kernel, batch
//! gathering, training on the committed MNIST subset, checked vs resident steps, exact resume, the
//! non-finite-loss stop, the checkpoint layout, the IWAE bound, and bad input.

mod common;

use common::*;
use latentkit::data::Mnist;
use latentkit::io::checkpoint::load_checkpoint;
use latentkit::nn::{KlSchedule, Likelihood, Vae, VaeConfig};
use latentkit::ops::batch::{counter_add, gather_rows};
use latentkit::ops::latent::{vae_objective, LOGVAR_MAX, LOGVAR_MIN, VAE_STAT_LEN};
use latentkit::ops::optim::OPTIM_STATE_LEN;
use latentkit::ops::rng::cpu::philox_normal;
use latentkit::ops::AdamConfig;
use latentkit::rng::seeded;
use latentkit::train::{Adam, EpochRecord, StepMode, VaeTrainConfig, VaeTrainer, MODEL_FILE, TRAINER_FILE};
use latentkit::{Backend, CpuBackend, Error, Tensor};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// The tiny model of the gradient tests: sizes that match no tile, a fixed noise stream.
const TINY: VaeConfig =
    VaeConfig { input: 12, hidden: 7, latent: 3, likelihood: Likelihood::Bernoulli, noise_seed: 77 };
const TINY_ROWS: usize = 5;
/// PyTorch's parameter names, in the order `Vae::params` lists them.
const NAMES: [&str; 10] = [
    "fc1.weight",
    "fc1.bias",
    "fc21.weight",
    "fc21.bias",
    "fc22.weight",
    "fc22.bias",
    "fc3.weight",
    "fc3.bias",
    "fc4.weight",
    "fc4.bias",
];

/// A directory under the system temp dir named after the test and this process, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("latentkit-vae-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn no_progress(_: usize, _: usize, _: Option<&latentkit::nn::StepStats>) {}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn param_values<B: Backend>(b: &B, vae: &Vae<B>) -> Vec<Vec<f32>> {
    vae.params().iter().map(|p| host(b, &p.value)).collect()
}

fn param_bits<B: Backend>(b: &B, vae: &Vae<B>) -> Vec<Vec<u32>> {
    param_values(b, vae).iter().map(|v| bits(v)).collect()
}

/// The committed subset cut to `train` and `test` images.
fn subset(train: usize, test: usize) -> Mnist {
    let mut data = Mnist::committed_subset().unwrap();
    data.train.truncate(train);
    data.test.truncate(test);
    data
}

fn stats_bits(r: &EpochRecord) -> [u32; 6] {
    [r.train.loss, r.train.recon, r.train.kl, r.test.loss, r.test.recon, r.test.kl].map(f32::to_bits)
}

// ---------------------------------------------------------------------------------------------
// An f64 reference of the objective

/// The objective and its parts recomputed in f64 on the host.
struct HostEval {
    loss: f64,
    recon: f64,
    kl: f64,
    /// Batch-mean KL of each latent dimension.
    kl_dim: Vec<f64>,
    /// Which side of its kink each max() of the objective is on: every ReLU pre-activation > 0,
    /// and with free bits every dimension's KL ≥ the floor. Finite differences are valid while a
    /// perturbation leaves this unchanged.
    pattern: Vec<bool>,
}

/// y = x·Wᵀ + b in f64 (W: [out, in]).
fn linear_f64(x: &[f64], rows: usize, w: &[f32], bias: &[f32]) -> Vec<f64> {
    let (out, inp) = (bias.len(), w.len() / bias.len());
    let mut y = vec![0.0; rows * out];
    for r in 0..rows {
        for o in 0..out {
            y[r * out + o] =
                f64::from(bias[o]) + (0..inp).map(|i| x[r * inp + i] * f64::from(w[o * inp + i])).sum::<f64>();
        }
    }
    y
}

fn relu(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&a| a.max(0.0)).collect()
}

/// β at optimizer step t (the step state's first element): β·min((t + 1)/warmup, 1).
fn beta_f64(sched: &KlSchedule, t: f32) -> f64 {
    let beta = f64::from(sched.beta);
    if sched.warmup_steps == 0 {
        beta
    } else {
        beta * ((f64::from(t) + 1.0) / sched.warmup_steps as f64).min(1.0)
    }
}

/// The VAE's objective on x with noise ε at `offset`: batch means of recon (BCE with logits, or
/// squared error of the sigmoid mean) and KL, and recon + β_t·Σ_c max(KL_c, free_bits).
fn host_eval(cfg: &VaeConfig, p: &[Vec<f32>], x: &[f32], sched: &KlSchedule, t: f32, offset: u64) -> HostEval {
    let rows = x.len() / cfg.input;
    let l = cfg.latent;
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let h1_pre = linear_f64(&x64, rows, &p[0], &p[1]);
    let h1 = relu(&h1_pre);
    let mu = linear_f64(&h1, rows, &p[2], &p[3]);
    let lv = linear_f64(&h1, rows, &p[4], &p[5]);
    let mut z = vec![0.0; rows * l];
    let mut kl_dim = vec![0.0; l];
    for i in 0..rows * l {
        let lvc = lv[i].clamp(f64::from(LOGVAR_MIN), f64::from(LOGVAR_MAX));
        let eps = f64::from(philox_normal(cfg.noise_seed, offset, i as u64));
        z[i] = mu[i] + eps * (0.5 * lvc).exp();
        kl_dim[i % l] += 0.5 * (mu[i] * mu[i] + lvc.exp() - lvc - 1.0) / rows as f64;
    }
    let h3_pre = linear_f64(&z, rows, &p[6], &p[7]);
    let logits = linear_f64(&relu(&h3_pre), rows, &p[8], &p[9]);
    let recon = logits
        .iter()
        .zip(&x64)
        .map(|(&a, &t)| match cfg.likelihood {
            // softplus(a) − a·t, written stably.
            Likelihood::Bernoulli => a.max(0.0) + (-a.abs()).exp().ln_1p() - a * t,
            Likelihood::Gaussian => (1.0 / (1.0 + (-a).exp()) - t).powi(2),
        })
        .sum::<f64>()
        / rows as f64;
    let kl: f64 = kl_dim.iter().sum();
    let fb = f64::from(sched.free_bits);
    let kl_objective = if fb > 0.0 { kl_dim.iter().map(|&k| k.max(fb)).sum() } else { kl };
    let mut pattern: Vec<bool> = h1_pre.iter().chain(&h3_pre).map(|&v| v > 0.0).collect();
    if fb > 0.0 {
        pattern.extend(kl_dim.iter().map(|&k| k >= fb));
    }
    HostEval { loss: recon + beta_f64(sched, t) * kl_objective, recon, kl, kl_dim, pattern }
}

// ---------------------------------------------------------------------------------------------
// Gradients

/// Finite-difference step. The loss comes back as f32 (≈ 8.6 nats for Bernoulli, ulp ≈ 1e-6), so
/// a central difference carries ≈ ulp/(2h) of rounding per ulp of error in the loss: 5e-5 at
/// h = 1e-2 against 1.6e-4 at 3e-3, and the O(h²) truncation stays below that (measured worst
/// |analytic − FD| on the CPU: 9.4e-5 at h = 1e-2, 3.5e-4 at h = 3e-3). The larger step could
/// cross a ReLU kink or the free-bits floor; every perturbation is checked not to
/// (`HostEval::pattern`).
const FD_H: f32 = 1e-2;

/// The tiny model built from `seed`, its parameters' host values and a batch x ∈ (0, 1).
fn tiny_case<B: Backend>(b: &B, cfg: VaeConfig, seed: u64) -> (Vae<B>, Vec<f32>) {
    let vae = Vae::new(b, cfg, &mut seeded(seed)).unwrap();
    let names: Vec<&str> = vae.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, NAMES);
    let x = rand_vec(&mut rng(seed ^ 0xA5), TINY_ROWS * cfg.input, 0.02, 0.98);
    (vae, x)
}

/// The analytic gradients of the objective (every gradient poisoned first, so each must be
/// written) and the returned stats, checked against the f64 objective.
fn analytic<B: Backend>(
    b: &B,
    what: &str,
    vae: &mut Vae<B>,
    x: &[f32],
    sched: &KlSchedule,
    t: f32,
) -> (Vec<Vec<f32>>, HostEval) {
    let cfg = *vae.config();
    let xt = tensor(b, &[TINY_ROWS, cfg.input], x);
    let state = tensor(b, &[OPTIM_STATE_LEN], &[t, 0.1, 0.01]);
    for p in vae.params_mut() {
        poison(b, &mut p.grad);
    }
    let st = vae.gradients(b, &xt, sched, &state).unwrap();
    let want = host_eval(&cfg, &param_values(b, vae), x, sched, t, 0);
    // f32 forward pass against f64: a few ulps of each sum, relative to values of 1–10.
    assert_close(&format!("{what}: recon"), &[st.recon], &[want.recon as f32], 1e-5, 1e-5);
    assert_close(&format!("{what}: kl"), &[st.kl], &[want.kl as f32], 1e-5, 1e-5);
    assert_close(&format!("{what}: objective"), &[st.loss], &[want.loss as f32], 1e-5, 1e-5);
    let grads = vae.params().iter().map(|p| host(b, &p.grad)).collect();
    (grads, want)
}

/// Central differences of `gradients()`'s loss over every element of every parameter, compared
/// with the backward pass; returns the analytic gradients as outputs.
fn check_gradients<B: Backend>(b: &B, what: &str, vae: &mut Vae<B>, x: &[f32], sched: &KlSchedule, t: f32) -> Vec<Out> {
    let (grads, want) = analytic(b, what, vae, x, sched, t);
    let cfg = *vae.config();
    let xt = tensor(b, &[TINY_ROWS, cfg.input], x);
    let state = tensor(b, &[OPTIM_STATE_LEN], &[t, 0.1, 0.01]);
    let values = param_values(b, vae);
    let mut outs = Vec::new();
    for (pi, value0) in values.iter().enumerate() {
        let fd: Vec<f32> = (0..value0.len())
            .map(|i| {
                let mut eval = |d: f32| {
                    let mut p = values.clone();
                    p[pi][i] += d;
                    let moved = host_eval(&cfg, &p, x, sched, t, 0);
                    assert!(
                        moved.pattern == want.pattern,
                        "{what}: moving {}[{i}] by {d} crosses a ReLU kink or the free-bits floor; pick another seed",
                        NAMES[pi]
                    );
                    vae.params_mut()[pi].value.copy_from_slice(b, &p[pi]).unwrap();
                    f64::from(vae.gradients(b, &xt, sched, &state).unwrap().loss)
                };
                let (lp, lm) = (eval(FD_H), eval(-FD_H));
                ((lp - lm) / (2.0 * f64::from(FD_H))) as f32
            })
            .collect();
        vae.params_mut()[pi].value.copy_from_slice(b, value0).unwrap();
        // Measured worst 9.4e-5 (see FD_H); 1e-3 leaves room for a loss rounded differently on
        // the GPU (10 ulps ≈ 5e-4). Gradients here are 0 (dead units) to 0.35.
        assert_close(&format!("{what}: {} grad vs finite differences", NAMES[pi]), &grads[pi], &fd, 1e-3, 1e-2);
        // CPU and GPU sum the GEMMs in different orders: a few ulps of each gradient.
        outs.push(Out::new(format!("{what}: {} grad", NAMES[pi]), grads[pi].clone()).tol(1e-5, 1e-4));
    }
    // gradients() leaves the noise offset alone, so every evaluation above saw the same ε.
    assert_eq!(vae.noise_offset(b).unwrap(), 0, "{what}: gradients() advanced the noise offset");
    outs
}

parity_test!(vae_gradients_match_finite_differences, |b| {
    let plain = KlSchedule { beta: 0.7, warmup_steps: 0, free_bits: 0.0 };
    let warm = KlSchedule { beta: 0.7, warmup_steps: 4, free_bits: 0.0 };
    // Golden: at step t = 1 of a 4-step warm-up, β_t = 0.7 · 2/4.
    assert_eq!(warm.beta_at(1), 0.7 * 2.0 / 4.0);
    assert_eq!(beta_f64(&warm, 1.0), f64::from(0.7f32) * 0.5);
    let mut outs = Vec::new();
    for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian] {
        let cfg = VaeConfig { likelihood, ..TINY };
        for (name, sched, t) in [("plain", plain, 7.0), ("warm-up", warm, 1.0)] {
            let (mut vae, x) = tiny_case(b, cfg, 11);
            outs.extend(check_gradients(b, &format!("{likelihood:?} {name}"), &mut vae, &x, &sched, t));
        }
    }
    outs
});

parity_test!(vae_free_bits_gradients_match_finite_differences, |b| {
    let (mut vae, x) = tiny_case(b, TINY, 11);
    let base = KlSchedule { beta: 0.9, warmup_steps: 0, free_bits: 0.0 };
    let (_, probe) = analytic(b, "probe", &mut vae, &x, &base, 0.0);
    // A floor in the middle of the widest gap between the dimensions' batch-mean KLs, so some
    // dimensions sit above it and some below.
    let mut kl = probe.kl_dim.clone();
    kl.sort_by(f64::total_cmp);
    // (check_gradients verifies that no perturbation moves a dimension across it.)
    let i = (0..kl.len() - 1).max_by(|&i, &j| (kl[i + 1] - kl[i]).total_cmp(&(kl[j + 1] - kl[j]))).unwrap();
    let floor = (0.5 * (kl[i] + kl[i + 1])) as f32;
    let fb = KlSchedule { free_bits: floor, ..base };
    let mut outs = check_gradients(b, "free bits", &mut vae, &x, &fb, 0.0);
    let (g_fb, _) = analytic(b, "free bits", &mut vae, &x, &fb, 0.0);

    // A floor over every dimension removes the KL's gradient entirely: the gradients are those of
    // β = 0 (bit for bit: the KL weights are exactly 0 either way), while with no floor they differ.
    let above = KlSchedule { free_bits: (kl[kl.len() - 1] + 0.5) as f32, ..base };
    let (g_above, _) = analytic(b, "floor above all", &mut vae, &x, &above, 0.0);
    let (g_zero, _) = analytic(b, "beta 0", &mut vae, &x, &KlSchedule { beta: 0.0, ..base }, 0.0);
    let (g_plain, _) = analytic(b, "no floor", &mut vae, &x, &base, 0.0);
    for (pi, name) in NAMES.iter().enumerate() {
        assert_eq!(
            bits(&g_above[pi]),
            bits(&g_zero[pi]),
            "{name}: a floor over every dimension should zero the KL's gradient"
        );
    }
    for pi in 2..6 {
        assert_ne!(g_plain[pi], g_zero[pi], "{}: the KL should reach the encoder's heads", NAMES[pi]);
    }
    // Per dimension c (row c of fc21/fc22.weight, element c of the biases): under the floor the
    // gradient is that of β = 0, above it that of no floor, bit for bit (the same KL weight).
    let h = TINY.hidden;
    for (c, &k) in probe.kl_dim.iter().enumerate() {
        let (same_as, other) = if k < f64::from(floor) { (&g_zero, "β = 0") } else { (&g_plain, "no floor") };
        for (pi, range) in [(2, c * h..(c + 1) * h), (3, c..c + 1), (4, c * h..(c + 1) * h), (5, c..c + 1)] {
            assert_eq!(
                bits(&g_fb[pi][range.clone()]),
                bits(&same_as[pi][range]),
                "{} dimension {c} (KL {k:.4}, floor {floor:.4}): the gradient should equal {other}'s",
                NAMES[pi]
            );
        }
    }
    outs.push(Out::new("floor above all: fc21.weight grad", g_above[2].clone()).tol(1e-5, 1e-4));
    outs
});

// ---------------------------------------------------------------------------------------------
// The objective kernel

parity_test!(vae_objective_matches_formula, |b| {
    let (rows, cols) = (33, 7);
    let mut r = rng(81);
    let recon = rand_vec(&mut r, rows, 50.0, 200.0);
    let kl_row = rand_vec(&mut r, rows, 1.0, 30.0);
    // Column sums whose batch means (÷33) span 0.015–1.8 nats, around the 0.5-nat floor below.
    let kl_dim = rand_vec(&mut r, cols, 0.5, 60.0);
    let acc0 = rand_vec(&mut r, VAE_STAT_LEN, 1.0, 10.0);
    let (recon_t, kl_row_t, kl_dim_t) =
        (tensor(b, &[rows], &recon), tensor(b, &[rows], &kl_row), tensor(b, &[cols], &kl_dim));
    let mut acc = tensor(b, &[VAE_STAT_LEN], &acc0);
    let mut want_acc: Vec<f64> = acc0.iter().map(|&v| f64::from(v)).collect();
    let n = rows as f64;
    let means: Vec<f64> = kl_dim.iter().map(|&k| f64::from(k) / n).collect();
    let floor = 0.5;
    assert!(means.iter().any(|&m| m < floor) && means.iter().any(|&m| m > floor), "{means:?}");
    // f32 division may round a mean across the floor only within ~1e-7 of it.
    assert!(means.iter().all(|&m| (m - floor).abs() > 1e-4), "{means:?}");
    let cases = [
        (KlSchedule { beta: 0.7, warmup_steps: 0, free_bits: 0.0 }, 5.0f32),
        (KlSchedule { beta: 0.7, warmup_steps: 10, free_bits: 0.0 }, 3.0),
        (KlSchedule { beta: 0.9, warmup_steps: 8, free_bits: 0.0 }, 20.0),
        (KlSchedule { beta: 1.3, warmup_steps: 0, free_bits: floor as f32 }, 0.0),
        (KlSchedule { beta: 0.9, warmup_steps: 8, free_bits: floor as f32 }, 2.0),
    ];
    let mut outs = Vec::new();
    for (ci, (sched, t)) in cases.iter().enumerate() {
        let state = tensor(b, &[OPTIM_STATE_LEN], &[*t, 0.2, 0.02]);
        let run = |kl_dim: Option<&Tensor<B>>, acc: &mut Tensor<B>| {
            let (mut w, mut stats) = (poisoned(b, &[cols]), poisoned(b, &[VAE_STAT_LEN]));
            vae_objective(b, sched, &state, &recon_t, &kl_row_t, kl_dim, &mut w, &mut stats, acc).unwrap();
            (host(b, &w), host(b, &stats))
        };
        let (w, stats) = run(Some(&kl_dim_t), &mut acc);
        let beta = beta_f64(sched, *t);
        let recon_m = recon.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let kl_m = kl_row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let fb = f64::from(sched.free_bits);
        let (want_w, kl_obj): (Vec<f64>, f64) = if fb > 0.0 {
            (
                means.iter().map(|&m| if m < fb { 0.0 } else { beta / n }).collect(),
                means.iter().map(|&m| m.max(fb)).sum(),
            )
        } else {
            (vec![beta / n; cols], kl_m)
        };
        let want_stats = [recon_m, kl_m, recon_m + beta * kl_obj];
        for (a, s) in want_acc.iter_mut().zip(&want_stats) {
            *a += s;
        }
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        assert_close(&format!("case {ci}: kl_weight"), &w, &f32s(&want_w), 0.0, 1e-6);
        assert_close(&format!("case {ci}: stats"), &stats, &f32s(&want_stats), ATOL, RTOL);
        assert_close(&format!("case {ci}: acc"), &host(b, &acc), &f32s(&want_acc), ATOL, RTOL);
        if sched.free_bits == 0.0 {
            // Without a floor the per-dimension sums are ignored: passing none changes nothing.
            let mut acc_none = tensor(b, &[VAE_STAT_LEN], &acc0);
            let mut acc_some = tensor(b, &[VAE_STAT_LEN], &acc0);
            assert_eq!(run(None, &mut acc_none), run(Some(&kl_dim_t), &mut acc_some), "case {ci}");
        }
        outs.push(Out::new(format!("case {ci}: kl_weight"), w).tol(0.0, 1e-6));
        outs.push(Out::new(format!("case {ci}: stats"), stats));
    }
    // Free bits without the per-dimension sums is an error, not a silent no-op.
    let state = tensor(b, &[OPTIM_STATE_LEN], &[0.0, 0.2, 0.02]);
    let (mut w, mut stats) = (poisoned(b, &[cols]), poisoned(b, &[VAE_STAT_LEN]));
    let e = vae_objective(b, &cases[3].0, &state, &recon_t, &kl_row_t, None, &mut w, &mut stats, &mut acc);
    assert!(matches!(e, Err(Error::InvalidArgument { .. })), "{e:?}");
    outs.push(Out::new("acc", host(b, &acc)));
    outs
});

// ---------------------------------------------------------------------------------------------
// Batch gathering

/// `out[r] = src[index[cursor·rows + r]]`, NaN where the position or the index is out of range.
fn host_gather(src: &[f32], cols: usize, index: &[u32], cursor: usize, rows: usize) -> Vec<f32> {
    let src_rows = src.len() / cols;
    (0..rows)
        .flat_map(|r| match index.get(cursor * rows + r).map(|&i| i as usize).filter(|&i| i < src_rows) {
            Some(i) => src[i * cols..(i + 1) * cols].to_vec(),
            None => vec![f32::NAN; cols],
        })
        .collect()
}

/// Compares a gather with its host reference, NaN rows included (NaN must match NaN).
#[track_caller]
fn assert_gather(what: &str, got: &[f32], want: &[f32]) {
    let nan_got: Vec<bool> = got.iter().map(|v| v.is_nan()).collect();
    let nan_want: Vec<bool> = want.iter().map(|v| v.is_nan()).collect();
    assert_eq!(nan_got, nan_want, "{what}: NaN positions");
    // Copies: exact.
    assert_eq!(bits(got), bits(want), "{what}");
}

parity_test!(gather_rows_and_cursor, |b| {
    let (src_rows, cols, rows) = (50, 13, 7);
    let mut r = rng(91);
    let src = rand_vec(&mut r, src_rows * cols, -3.0, 3.0);
    let perm: Vec<u32> = latentkit::rng::permutation(&mut rng(92), src_rows).into_iter().map(|i| i as u32).collect();
    let src_t = tensor(b, &[src_rows, cols], &src);
    let mut index = Tensor::<B, u32>::from_slice(b, &[src_rows], &perm).unwrap();
    let mut cursor = Tensor::<B, u32>::from_slice(b, &[1], &[0]).unwrap();
    let gather = |index: &Tensor<B, u32>, cursor: &Tensor<B, u32>| {
        let mut out = poisoned(b, &[rows, cols]);
        gather_rows(b, &src_t, index, cursor, &mut out).unwrap();
        host(b, &out)
    };
    let mut outs = Vec::new();
    // Cursor 0, then advanced on the device by counter_add to 2: rows from positions 14..21.
    let first = gather(&index, &cursor);
    assert_gather("cursor 0", &first, &host_gather(&src, cols, &perm, 0, rows));
    counter_add(b, &mut cursor, 2).unwrap();
    assert_eq!(cursor.to_vec(b).unwrap(), [2]);
    let third = gather(&index, &cursor);
    assert_gather("cursor 2", &third, &host_gather(&src, cols, &perm, 2, rows));
    // Cursor 7: position 49 is the last of the index; the six rows after it are NaN.
    counter_add(b, &mut cursor, 5).unwrap();
    let partial = gather(&index, &cursor);
    assert_gather("cursor 7", &partial, &host_gather(&src, cols, &perm, 7, rows));
    assert!(partial[..cols].iter().all(|v| v.is_finite()) && partial[cols..].iter().all(|v| v.is_nan()));
    // Cursor 8: entirely past the end.
    counter_add(b, &mut cursor, 1).unwrap();
    assert!(gather(&index, &cursor).iter().all(|v| v.is_nan()), "cursor 8 should give NaN rows");
    // Index values past the source rows (50 and u32::MAX) give NaN rows, the others are copied.
    let mut bad = perm.clone();
    bad[15] = src_rows as u32;
    bad[17] = u32::MAX;
    index.copy_from_slice(b, &bad).unwrap();
    cursor.copy_from_slice(b, &[2]).unwrap();
    let with_bad = gather(&index, &cursor);
    assert_gather("bad indices", &with_bad, &host_gather(&src, cols, &bad, 2, rows));
    assert!(with_bad[cols..2 * cols].iter().chain(&with_bad[3 * cols..4 * cols]).all(|v| v.is_nan()));
    // The counter wraps.
    cursor.copy_from_slice(b, &[u32::MAX]).unwrap();
    counter_add(b, &mut cursor, 3).unwrap();
    assert_eq!(cursor.to_vec(b).unwrap(), [2]);
    outs.push(Out::new("cursor 0", first).tol(0.0, 0.0));
    outs.push(Out::new("cursor 2", third).tol(0.0, 0.0));
    // NaN never compares equal: the parity check takes the finite rows only (NaN rows are checked
    // against the host reference above).
    outs.push(Out::new("cursor 7 first row", partial[..cols].to_vec()).tol(0.0, 0.0));
    outs
});

// ---------------------------------------------------------------------------------------------
// Training

/// 6 epochs of 46 steps: 276 steps.
const EPOCHS: usize = 6;

parity_test!(vae_trains_on_the_mnist_subset, |b| {
    let data = Mnist::committed_subset().unwrap();
    let mut t = VaeTrainer::new(b, VaeConfig::default(), VaeTrainConfig::default()).unwrap();
    let mut records = Vec::new();
    let mut first_steps = Vec::new();
    for _ in 0..EPOCHS {
        let rec = t
            .run_epoch(b, &data.train, &data.test, StepMode::Checked, |_, _, st| {
                if first_steps.len() < 3 {
                    first_steps.push(st.unwrap().loss);
                }
            })
            .unwrap();
        records.push(rec);
    }
    assert_eq!(t.step, (EPOCHS * (6000 / 128)) as u64);
    let first = first_steps[0];
    // A fresh decoder predicts p ≈ 0.5 for every pixel: ≈ 784·ln 2 ≈ 543 nats of recon.
    assert!((450.0..650.0).contains(&first), "first loss {first}");
    for w in records.windows(2) {
        assert!(w[1].train.loss < w[0].train.loss, "epoch losses should fall: {:?} then {:?}", w[0].train, w[1].train);
    }
    let last = records.last().unwrap();
    // Measured 141.1 on the CPU after 6 epochs (146.4 after 5); the bound leaves room for other
    // rounding paths. The best input-independent model scores ≈ 200 nats on this subset.
    assert!(last.test.neg_elbo() < 150.0, "test −ELBO {} after {EPOCHS} epochs", last.test.neg_elbo());
    assert!(records.iter().all(|r| r.test.recon.is_finite() && r.test.kl > 0.0));
    // CPU and GPU round differently and the difference grows with every Adam step: compare the
    // first steps closely and only the first epoch's mean train loss (46 steps) loosely.
    vec![
        Out::new("first step losses", first_steps).tol(1e-3, 1e-4),
        Out::new("epoch 1 train loss", vec![records[0].train.loss]).tol(0.0, 1e-2),
    ]
});

/// Two trainers with the default settings on the same data, one epoch each.
#[test]
fn checked_and_resident_modes_agree_on_cpu() {
    let b = CpuBackend;
    let data = subset(1280, 200);
    let mut runs = Vec::new();
    for mode in [StepMode::Checked, StepMode::Resident] {
        let mut t = VaeTrainer::new(&b, VaeConfig::default(), VaeTrainConfig::default()).unwrap();
        let mut calls = 0;
        let rec = t
            .run_epoch(&b, &data.train, &data.test, mode, |s, steps, st| {
                assert_eq!((s, steps, st.is_some()), (calls, 10, mode == StepMode::Checked));
                calls += 1;
            })
            .unwrap();
        assert_eq!((calls, t.step, t.opt().steps(&b).unwrap()), (10, 10, 10));
        runs.push((rec, param_bits(&b, t.vae()), t.vae().noise_offset(&b).unwrap()));
    }
    let ((checked, p_checked, o_checked), (resident, p_resident, o_resident)) = (&runs[0], &runs[1]);
    // The same kernels on the same batches in the same order (gathered on the device instead of
    // copied from the host): bit for bit on the CPU.
    assert_eq!(stats_bits(checked), stats_bits(resident), "{checked:?} vs {resident:?}");
    for (i, name) in NAMES.iter().enumerate() {
        assert!(p_checked[i] == p_resident[i], "{name} differs between checked and resident steps");
    }
    assert_eq!(o_checked, o_resident);
}

fn train_epochs(b: &CpuBackend, t: &mut VaeTrainer<CpuBackend>, data: &Mnist, epochs: usize) -> Vec<EpochRecord> {
    (0..epochs).map(|_| t.run_epoch(b, &data.train, &data.test, StepMode::Checked, no_progress).unwrap()).collect()
}

#[test]
fn resume_continues_exactly() {
    let b = CpuBackend;
    let data = subset(1280, 200);
    let dir = TempDir::new("resume");
    let cfg = VaeTrainConfig::default();
    let mut whole = VaeTrainer::new(&b, VaeConfig::default(), cfg).unwrap();
    let straight = train_epochs(&b, &mut whole, &data, 3);

    let mut first = VaeTrainer::new(&b, VaeConfig::default(), cfg).unwrap();
    let before = train_epochs(&b, &mut first, &data, 2);
    first.save(&b, dir.path()).unwrap();
    drop(first);
    let mut resumed = VaeTrainer::resume(&b, dir.path(), cfg).unwrap();
    assert_eq!((resumed.epoch, resumed.step), (2, 20));
    let after = train_epochs(&b, &mut resumed, &data, 1);

    for (i, (a, r)) in straight.iter().zip(before.iter().chain(&after)).enumerate() {
        assert_eq!((a.epoch, a.step), (r.epoch, r.step));
        assert_eq!(stats_bits(a), stats_bits(r), "epoch {}: {a:?} vs {r:?}", i + 1);
    }
    let (pw, pr) = (param_bits(&b, whole.vae()), param_bits(&b, resumed.vae()));
    for (i, name) in NAMES.iter().enumerate() {
        assert!(pw[i] == pr[i], "{name} differs after resuming");
    }
    let moments = |t: &VaeTrainer<CpuBackend>| t.opt().state_dict(&b, &t.vae().params()).unwrap();
    assert_eq!(moments(&whole), moments(&resumed), "Adam state differs after resuming");
    assert_eq!(whole.vae().noise_offset(&b).unwrap(), resumed.vae().noise_offset(&b).unwrap());
}

/// Trains one epoch, saves, sets one element of parameter `param` to NaN and checks that both
/// step modes stop with `NonFiniteLoss`, the checked step before changing anything, and that the
/// checkpoint on disk is untouched and still resumes.
fn check_non_finite_stop(test: &str, param: &str, element: usize) {
    let b = CpuBackend;
    let data = subset(1280, 200);
    let dir = TempDir::new(test);
    let mut t = VaeTrainer::new(&b, VaeConfig::default(), VaeTrainConfig::default()).unwrap();
    t.run_epoch(&b, &data.train, &data.test, StepMode::Checked, no_progress).unwrap();
    t.save(&b, dir.path()).unwrap();
    let on_disk =
        || (std::fs::read(dir.path().join(MODEL_FILE)).unwrap(), std::fs::read(dir.path().join(TRAINER_FILE)).unwrap());
    let saved = on_disk();

    {
        let mut params = t.vae_mut().params_mut();
        let p = params.iter_mut().find(|p| p.name == param).unwrap();
        let mut v = host(&b, &p.value);
        v[element] = f32::NAN;
        p.value.copy_from_slice(&b, &v).unwrap();
    }
    let before = param_bits(&b, t.vae());
    let (step, epoch, offset) = (t.step, t.epoch, t.vae().noise_offset(&b).unwrap());

    // Checked: the first step's loss is NaN and the step stops before any update.
    match t.run_epoch(&b, &data.train, &data.test, StepMode::Checked, no_progress) {
        Err(Error::NonFiniteLoss { step: s, value }) => assert!(s == step && value.is_nan(), "step {s}, value {value}"),
        other => panic!("{param}[{element}] = NaN: expected NonFiniteLoss, got {other:?}"),
    }
    let after = param_bits(&b, t.vae());
    for (i, name) in NAMES.iter().enumerate() {
        assert!(before[i] == after[i], "{name} changed in the failed step");
    }
    let state = (t.step, t.epoch, t.opt().steps(&b).unwrap(), t.vae().noise_offset(&b).unwrap());
    assert_eq!(state, (step, epoch, 10, offset), "the failed step advanced the counters");
    assert!(saved == on_disk(), "the checkpoint changed");

    // Resident: the steps run unchecked and the epoch's loss sums report the NaN at the end.
    match t.run_epoch(&b, &data.train, &data.test, StepMode::Resident, no_progress) {
        Err(Error::NonFiniteLoss { value, .. }) => assert!(!value.is_finite(), "{value}"),
        other => panic!("{param}[{element}] = NaN, resident: expected NonFiniteLoss, got {other:?}"),
    }
    assert_eq!(t.epoch, epoch, "a failed epoch must not count");
    assert!(saved == on_disk(), "the checkpoint changed");
    // The last good checkpoint still resumes, with finite weights, and trains.
    let mut back = VaeTrainer::resume(&b, dir.path(), VaeTrainConfig::default()).unwrap();
    assert!(param_values(&b, back.vae()).iter().flatten().all(|v| v.is_finite()));
    back.run_epoch(&b, &data.train, &data.test, StepMode::Checked, no_progress).unwrap();
}

// A NaN in fc1 must cross the ReLU to reach the loss (ReLU propagates NaN, as PyTorch's does);
// a max(x, 0) ReLU once hid it and saved it with the next checkpoint.
#[test]
fn non_finite_loss_stops_training_and_keeps_the_last_checkpoint() {
    check_non_finite_stop("non_finite_fc1", "fc1.weight", 12_345);
}

/// The same stop with the NaN in a parameter that reaches the loss without passing a ReLU.
#[test]
fn non_finite_loss_from_the_encoder_head_stops_training() {
    check_non_finite_stop("non_finite_fc21", "fc21.bias", 7);
}

#[test]
fn checkpoint_uses_pytorch_names_and_layout() {
    let b = CpuBackend;
    let data = subset(1280, 200);
    let dir = TempDir::new("layout");
    let mut t = VaeTrainer::new(&b, VaeConfig::default(), VaeTrainConfig::default()).unwrap();
    t.run_epoch(&b, &data.train, &data.test, StepMode::Checked, no_progress).unwrap();
    t.save(&b, dir.path()).unwrap();
    let (tensors, meta) = load_checkpoint(&dir.path().join(MODEL_FILE)).unwrap();
    let mut want: Vec<(&str, Vec<usize>)> = vec![
        ("fc1.weight", vec![400, 784]),
        ("fc1.bias", vec![400]),
        ("fc21.weight", vec![20, 400]),
        ("fc21.bias", vec![20]),
        ("fc22.weight", vec![20, 400]),
        ("fc22.bias", vec![20]),
        ("fc3.weight", vec![400, 20]),
        ("fc3.bias", vec![400]),
        ("fc4.weight", vec![784, 400]),
        ("fc4.bias", vec![784]),
    ];
    want.sort();
    let got: Vec<(&str, Vec<usize>)> = tensors.iter().map(|t| (t.name.as_str(), t.shape.clone())).collect();
    assert_eq!(got, want);
    for p in t.vae().params() {
        let saved = tensors.iter().find(|t| t.name == p.name).unwrap();
        assert!(bits(&saved.data) == bits(&host(&b, &p.value)), "{}: saved values differ", p.name);
    }
    assert_eq!(meta.get("format").map(String::as_str), Some("latentkit-vae"));
    assert_eq!(meta.get("epoch").map(String::as_str), Some("1"));
}

#[test]
fn iwae_bound_is_at_least_the_elbo() {
    let b = CpuBackend;
    let data = subset(6000, 200);
    let n = data.test.len();
    let mut t = VaeTrainer::new(&b, VaeConfig::default(), VaeTrainConfig::default()).unwrap();
    t.run_epoch(&b, &data.train, &data.test, StepMode::Checked, no_progress).unwrap();
    let x = Tensor::from_slice(&b, &[n, 784], &data.test.images).unwrap();
    let mean_sd = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (m, (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt())
    };
    // The ELBO (one sample, analytic KL) in DRAWS noise draws.
    const DRAWS: usize = 16;
    let elbo: Vec<f64> = (0..DRAWS).map(|_| -f64::from(t.vae_mut().evaluate(&b, &x).unwrap().neg_elbo())).collect();
    let (elbo_m, elbo_sd) = mean_sd(&elbo);
    let k64 = t.vae_mut().iwae_bound(&b, &x, 64).unwrap();
    assert_eq!(k64.len(), n);
    assert!(k64.iter().all(|v| v.is_finite()), "non-finite IWAE bound");
    let k64_m = k64.iter().sum::<f64>() / n as f64;
    // k = 1: the log importance weight of one sample, whose expectation is the ELBO exactly.
    let k1: Vec<f64> =
        (0..DRAWS).map(|_| t.vae_mut().iwae_bound(&b, &x, 1).unwrap().iter().sum::<f64>() / n as f64).collect();
    let (k1_m, k1_sd) = mean_sd(&k1);
    // Standard errors from the spread over draws (the images are the same in every draw, so this
    // is Monte Carlo noise only): measured 0.59/√16 and 0.54/√16 nats on the CPU.
    let se = (elbo_sd.powi(2) / DRAWS as f64).sqrt();
    let se_diff = ((elbo_sd.powi(2) + k1_sd.powi(2)) / DRAWS as f64).sqrt();
    // Measured: ELBO −204.3, IWAE(k = 64) −195.9 (an 8.4-nat gap), IWAE(k = 1) −204.5.
    assert!(k64_m >= elbo_m - 4.0 * se, "IWAE(64) {k64_m} below the ELBO {elbo_m} (se {se})");
    assert!(k64_m > k1_m, "IWAE(64) {k64_m} should beat IWAE(1) {k1_m}");
    assert!(
        (k1_m - elbo_m).abs() < 4.0 * se_diff,
        "IWAE(1) {k1_m} vs ELBO {elbo_m}: more than 4 standard errors ({se_diff}) apart"
    );
}

#[test]
fn bad_input_is_an_error() {
    let b = CpuBackend;
    let mut vae = Vae::new(&b, VaeConfig::default(), &mut seeded(3)).unwrap();
    let mut opt = Adam::new(&b, &vae.params_mut(), AdamConfig::default()).unwrap();
    let x = tensor(&b, &[4, 783], &rand_vec(&mut rng(5), 4 * 783, 0.0, 1.0));
    let e = vae.train_step(&b, &x, &mut opt, &KlSchedule::default(), 0).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("783"), "{e}");

    let empty = TempDir::new("resume_empty");
    match VaeTrainer::<CpuBackend>::resume(&b, empty.path(), VaeTrainConfig::default()) {
        Err(Error::Io { path, .. }) => assert_eq!(path, empty.path().join(MODEL_FILE)),
        Err(e) => panic!("expected an I/O error, got {e}"),
        Ok(_) => panic!("resumed from an empty directory"),
    }

    // A negative β is rejected before any parameter, moment or counter changes.
    let mut tiny = Vae::new(&b, TINY, &mut seeded(4)).unwrap();
    let mut opt = Adam::new(&b, &tiny.params_mut(), AdamConfig::default()).unwrap();
    let x = tensor(&b, &[TINY_ROWS, TINY.input], &rand_vec(&mut rng(6), TINY_ROWS * TINY.input, 0.0, 1.0));
    let before = param_bits(&b, &tiny);
    let bad = KlSchedule { beta: -0.5, ..KlSchedule::default() };
    let e = tiny.train_step(&b, &x, &mut opt, &bad, 0).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    assert!(param_bits(&b, &tiny) == before, "a rejected step changed the parameters");
    assert_eq!((opt.steps(&b).unwrap(), tiny.noise_offset(&b).unwrap()), (0, 0));
    // The same for a negative free-bits floor; a valid schedule then trains.
    let e = tiny.train_step(&b, &x, &mut opt, &KlSchedule { free_bits: -1.0, ..KlSchedule::default() }, 0).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    assert!(tiny.train_step(&b, &x, &mut opt, &KlSchedule::default(), 0).unwrap().loss.is_finite());
}

/// A NaN reaching log σ² must not be clamped away (the clamp passes NaN through).
#[test]
fn non_finite_loss_from_the_log_variance_head_stops_training() {
    check_non_finite_stop("non_finite_fc22", "fc22.bias", 3);
}
