//! Metric-learning benchmarks, mirroring the `metric`, `metric_all` and `train_metric` sections of
//! ../shared/bench/torch_baselines.py so that ratios can be formed from one GPU run:
//!
//! - `mining`: fused triplet mining + loss, forward + backward (`triplet_fwd_queued` + `triplet_bwd`,
//!   one embedding set, `dr = None`), D = 128, L2-normalized random embeddings, ~32 samples per
//!   class: batch-hard at N ∈ {1K, 4K, 8K, 16K} (torch: `metric`, PML BatchHardMiner +
//!   TripletMarginLoss and a hand-written cdist + masked max/min); semi-hard and batch-all at
//!   N ∈ {512, 1K, 2K} (torch: `metric_all`). Time per fwd+bwd and the workspace the fused path
//!   allocates, against the N×N f32 distance matrix an unfused approach starts from.
//! - `large`: batch-hard fwd+bwd at N = 262,144 (GPU only): an N×N f32 matrix would be 256 GiB.
//! - `distance`: `pairwise_distance` at 4096² and 16384² × 128, TFLOP/s on 2·N·M·D.
//! - `train`: the triplet training step of `train_metric` (MLP 784-256-128, semi-hard, batch 256,
//!   Adam), eager and replayed as a CUDA graph, with kernels per step.
//!
//! Settings matched to torch_baselines.py: PML's TripletMarginLoss(margin=0.2) measures with its
//! default LpDistance(p=2, power=1, normalize_embeddings=True), i.e. the plain (not squared)
//! Euclidean distance between L2-normalized embeddings: here `Metric::Euclidean`, `squared = false`,
//! margin 0.2, on embeddings normalized on the host (as torch normalizes them before timing). Labels
//! are uniform in [0, N/32) as there.
//!
//!     cargo run --release --features cuda --example bench_metric -- --device cuda
//!     cargo run --release --example bench_metric                       # CPU: --quick sizes
//!
//! Options: --device cpu|cuda[:N]  --samples N (median reported; 20, 5 with --quick)  --quick (CPU-sized runs, the
//!          default on the CPU)  --only mining,large,distance,train (default: all)
//!          --large-budget SECS (100: skip the N = 262,144 run when its projection from an
//!          N = 16,384 run exceeds this)  --n N, --miner batch-hard|semi-hard|batch-all (mining: only
//!          those cases, e.g. to profile one with ncu)  --kernel v1|v2|all (mining: the
//!          `TripletKernel` versions to time; default all: each case with v1, its row marked
//!          "[v1]", then with v2, the default version, its row named plainly)
//!          --baselines FILE (repeatable: ../shared/bench/torch_baselines.py's JSON of the same GPU
//!          call; a side-by-side table with PyTorch's and pytorch-metric-learning's figures and the
//!          ratios closes the output)

use std::any::Any;
use std::cell::RefCell;
use std::time::Instant;

#[path = "common/side_by_side.rs"]
mod side_by_side;
use side_by_side::{fmt_secs, ms, Baselines, SideBySide};

use latentkit::bench::median_secs;
use latentkit::nn::{Mlp, MlpSpec};
use latentkit::ops::batch::{counter_add, gather_rows};
use latentkit::ops::distance::{pairwise_distance, Metric};
use latentkit::ops::mining::{
    triplet_bwd, triplet_fwd_queued, Miner, SemiHardPolicy, TripletConfig, TripletKernel, TripletStats,
    TripletWorkspace,
};
use latentkit::ops::{Activation, AdamConfig};
use latentkit::rng::{normal_vec, seeded, uniform_vec};
use latentkit::train::Adam;
use latentkit::{Backend, CpuBackend, CudaBackend, Device, Result, Tensor};
use rand::Rng;

/// Embedding dimension of every workload (torch_baselines: 128).
const D: usize = 128;
/// Margin of PML's TripletMarginLoss in torch_baselines.py.
const MARGIN: f32 = 0.2;
/// Samples per class of the random labels (torch_baselines: `randint(0, n // 32)`).
const PER_CLASS: usize = 32;
/// The large-N run.
const LARGE_N: usize = 262_144;
/// The N the large run's time is projected from.
const PROBE_N: usize = 16_384;

const SECTIONS: [&str; 4] = ["mining", "large", "distance", "train"];

struct Opts {
    samples: usize,
    quick: bool,
    only: Vec<String>,
    large_budget: f64,
    /// `--n`: only the mining cases of this N (e.g. to profile one with ncu).
    n: Option<usize>,
    /// `--miner`: only the mining cases whose miner's name starts with this (batch-hard,
    /// semi-hard, batch-all).
    miner: Option<String>,
    /// `--kernel`: the mining kernel versions to time (default: all).
    kernels: Vec<TripletKernel>,
    /// `--baselines`: torch_baselines.py's JSON files of this run.
    baselines: Baselines,
    /// The rows of the side-by-side table, filled as the sections run.
    table: RefCell<SideBySide>,
}

impl Opts {
    fn wants(&self, section: &str) -> bool {
        self.only.iter().any(|s| s == section)
    }
}

/// Kernels launched so far (CUDA only).
fn launches<B: Backend>(b: &B) -> Option<u64> {
    (b as &dyn Any).downcast_ref::<CudaBackend>().map(CudaBackend::launches)
}

/// [n, d] rows drawn from N(0, 1) and L2-normalized (torch: `normalize(randn(n, d), dim=1)`).
fn unit_rows<B: Backend>(b: &B, n: usize, d: usize, seed: u64) -> Result<Tensor<B>> {
    let mut x = normal_vec(&mut seeded(seed), n * d, 0.0, 1.0);
    for row in x.chunks_mut(d) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
    Tensor::from_slice(b, &[n, d], &x)
}

/// n labels uniform in [0, max(2, n / 32)): ~32 samples per class.
fn random_labels<B: Backend>(b: &B, n: usize, seed: u64) -> Result<Tensor<B, u32>> {
    let classes = (n / PER_CLASS).max(2) as u32;
    let mut rng = seeded(seed);
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes)).collect();
    Tensor::from_slice(b, &[n], &labels)
}

fn triplet_cfg(miner: Miner, metric: Metric) -> TripletConfig {
    TripletConfig { miner, metric, margin: MARGIN, squared: false, collapse_eps: 1e-3, tfa_compat: false }
}

fn miner_name(miner: Miner) -> &'static str {
    match miner {
        Miner::BatchHard => "batch-hard",
        Miner::SemiHard(SemiHardPolicy::TfAddons) => "semi-hard (TFA)",
        Miner::SemiHard(SemiHardPolicy::FaceNet) => "semi-hard (FaceNet band)",
        Miner::SemiHard(SemiHardPolicy::ClosestFartherThanPositive) => "semi-hard (per anchor)",
        Miner::BatchAll => "batch-all",
    }
}

/// Device bytes of a [`TripletWorkspace`] (every buffer it allocated).
fn workspace_bytes<B: Backend>(ws: &TripletWorkspace<B>) -> usize {
    ws.device_bytes()
}

fn fmt_bytes(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `value` per second with an SI prefix, e.g. "3.2 Gpair/s".
fn fmt_rate(per_sec: f64, unit: &str) -> String {
    let (scale, prefix) = match per_sec {
        v if v >= 1e12 => (1e-12, "T"),
        v if v >= 1e9 => (1e-9, "G"),
        v if v >= 1e6 => (1e-6, "M"),
        _ => (1e-3, "k"),
    };
    format!("{:.2} {prefix}{unit}/s", per_sec * scale)
}

fn row(workload: &str, sizes: &str, secs: f64, memory: &str, napkin: &str) {
    println!("| {workload:<34} | {sizes:<24} | {:>10} | {memory:<36} | {napkin}", fmt_secs(secs));
}

fn header(title: &str, memory: &str) {
    println!();
    println!("## {title}");
    println!("| {:<34} | {:<24} | {:>10} | {memory:<36} | napkin math", "workload", "sizes", "time");
}

/// One fused fwd+bwd problem: N embeddings (one set, same_set), its labels, workspace and dq.
struct Problem<B: Backend> {
    cfg: TripletConfig,
    q: Tensor<B>,
    labels: Tensor<B, u32>,
    ws: TripletWorkspace<B>,
    dq: Tensor<B>,
}

impl<B: Backend> Problem<B> {
    fn new(b: &B, miner: Miner, n: usize, seed: u64) -> Result<Self> {
        let cfg = triplet_cfg(miner, Metric::Euclidean);
        Ok(Self {
            q: unit_rows(b, n, D, seed)?,
            labels: random_labels(b, n, seed + 1)?,
            ws: TripletWorkspace::new(b, n, n, &cfg)?,
            dq: Tensor::zeros(b, &[n, D])?,
            cfg,
        })
    }

    /// Forward (no read-back) + backward of the one embedding tensor.
    fn fwd_bwd(&mut self, b: &B) -> Result<()> {
        let Self { cfg, q, labels, ws, dq } = self;
        triplet_fwd_queued(b, cfg, q, labels, q, labels, true, ws)?;
        triplet_bwd(b, cfg, q, labels, q, labels, true, ws, 1.0, dq, None)
    }

    fn n(&self) -> usize {
        self.ws.sizes().0
    }

    /// Workspace bytes and the N×N f32 matrix bytes, formatted.
    fn memory(&self) -> String {
        let n = self.n() as f64;
        let ws = workspace_bytes(&self.ws) as f64;
        let matrix = 4.0 * n * n;
        format!("{} (N×N: {}, {:.0}×)", fmt_bytes(ws), fmt_bytes(matrix), matrix / ws)
    }
}

fn stats_note(st: &TripletStats, n: usize, secs: f64) -> String {
    format!(
        "{} (N²/t); loss {:.4}, {} triplets, {:.0}% active, {} anchors skipped",
        fmt_rate((n * n) as f64 / secs, "pair"),
        st.loss,
        st.triplets,
        100.0 * st.active_fraction,
        st.skipped_anchors
    )
}

fn mining_bench<B: Backend>(b: &B, o: &Opts) -> Result<()> {
    header(
        "fused triplet mining + loss, fwd+bwd (Euclidean, not squared, margin 0.2, D = 128, unit rows)",
        "workspace (vs an N×N f32 matrix)",
    );
    let (hard_ns, row_ns): (&[usize], &[usize]) =
        if o.quick { (&[256, 1024], &[256, 512]) } else { (&[1024, 4096, 8192, 16384], &[512, 1024, 2048]) };
    let mut cases: Vec<(Miner, usize)> = hard_ns.iter().map(|&n| (Miner::BatchHard, n)).collect();
    // torch `metric_all`: PML's semi-hard TripletMarginMiner keeps every negative in the FaceNet
    // band (ℓ_ap < ℓ_an ≤ ℓ_ap + margin); TFA's rule (closest negative farther than the positive)
    // is the one train_metric-style training uses here; both stream the same rows. Its default
    // all-triplets loss (average over non-zero triplets) is BatchAll.
    for &n in row_ns {
        for miner in
            [Miner::SemiHard(SemiHardPolicy::TfAddons), Miner::SemiHard(SemiHardPolicy::FaceNet), Miner::BatchAll]
        {
            cases.push((miner, n));
        }
    }
    let mut ran = 0;
    for (miner, n) in cases {
        if o.n.is_some_and(|want| want != n)
            || o.miner.as_ref().is_some_and(|m| !miner_name(miner).starts_with(m.as_str()))
        {
            continue;
        }
        ran += 1;
        let mut p = Problem::new(b, miner, n, 10 + n as u64)?;
        for &kernel in &o.kernels {
            // The default version's row keeps the plain name; another version gets a tagged row
            // only where it runs other kernels than v1 (or when it is the only one asked for).
            let tag = match kernel {
                k if k == TripletKernel::default() => String::new(),
                TripletKernel::V1 => " [v1]".to_string(),
                k if k.differs_from_v1(miner) || o.kernels.len() == 1 => format!(" [{}]", k.name()),
                _ => continue,
            };
            p.ws.set_kernel(kernel);
            let t = median_secs(b, o.samples, || p.fwd_bwd(b))?;
            let st = p.ws.read_stats(b)?;
            let workload = format!("{} fwd+bwd{tag}", miner_name(miner));
            row(&workload, &format!("N={n} D={D}"), t, &p.memory(), &stats_note(&st, n, t));
            let base = &o.baselines;
            let peak = |v: Option<f64>| v.map_or(String::new(), |mb| format!(" (peak {mb:.0} MB)"));
            let (group, key) = match miner {
                Miner::BatchHard => ("metric", format!("N{n}_D{D}")),
                _ => ("metric_all", format!("N{n}")),
            };
            let theirs = |label: &str, what: &str| {
                let t = ms(base.num(&[group, &key, &format!("{what}_ms")]));
                (format!("{label}{}", peak(base.num(&[group, &key, &format!("{what}_peak_MB")]))), t)
            };
            let sides: Vec<(String, Option<f64>)> = match miner {
                Miner::BatchHard => vec![theirs("PML", "pml"), theirs("hand-written", "handwritten")],
                Miner::SemiHard(_) => vec![theirs("PML semi-hard miner + loss", "semihard_miner")],
                Miner::BatchAll => vec![theirs("PML all triplets", "all_triplets")],
            };
            let sides: Vec<(&str, Option<f64>)> = sides.iter().map(|(l, t)| (l.as_str(), *t)).collect();
            let note = format!("workspace {}", fmt_bytes(workspace_bytes(&p.ws) as f64));
            o.table.borrow_mut().add(&format!("{workload}, N = {n}, D = {D}"), t, &note, &sides);
        }
    }
    if ran == 0 {
        return Err(latentkit::Error::InvalidArgument {
            op: "bench_metric",
            msg: "no mining case matched --n / --miner".into(),
        });
    }
    Ok(())
}

fn large_bench<B: Backend>(b: &B, o: &Opts) -> Result<()> {
    header("batch-hard fwd+bwd at N = 262,144 (one timed call)", "workspace (vs an N×N f32 matrix)");
    if o.quick {
        println!("skipped with --quick (N×N work: {:.1e} pairs per pass)", (LARGE_N * LARGE_N) as f64);
        return Ok(());
    }
    // A multi-second call: launch latency and clock resolution don't matter, and median_secs's
    // warm-up (3 calls + 1 calibration + samples) would cost minutes. The time is projected from
    // one N = 16,384 call first (the work is quadratic in N; at 262,144 the 128 MiB reference set
    // no longer fits in L2, so the projection is a lower bound).
    let mut probe = Problem::new(b, Miner::BatchHard, PROBE_N, 7)?;
    probe.fwd_bwd(b)?; // warm-up (module load, first launches)
    b.synchronize()?;
    let t0 = Instant::now();
    probe.fwd_bwd(b)?;
    b.synchronize()?;
    let t_probe = t0.elapsed().as_secs_f64();
    let scale = (LARGE_N as f64 / PROBE_N as f64).powi(2);
    let projected = t_probe * scale;
    println!("probe N={PROBE_N}: {}, projected N={LARGE_N}: {}", fmt_secs(t_probe), fmt_secs(projected));
    drop(probe);
    if projected > o.large_budget {
        println!("skipped: projected {} > --large-budget {} s", fmt_secs(projected), o.large_budget);
        return Ok(());
    }
    let mut p = Problem::new(b, Miner::BatchHard, LARGE_N, 8)?;
    b.synchronize()?;
    let t0 = Instant::now();
    p.fwd_bwd(b)?;
    b.synchronize()?;
    let t = t0.elapsed().as_secs_f64();
    let st = p.ws.read_stats(b)?;
    row("batch-hard fwd+bwd", &format!("N={LARGE_N} D={D}"), t, &p.memory(), &stats_note(&st, LARGE_N, t));
    println!(
        "inputs: embeddings {} + dq {}; an N×N f32 distance matrix alone would need {} (more than any single GPU)",
        fmt_bytes(4.0 * (LARGE_N * D) as f64),
        fmt_bytes(4.0 * (LARGE_N * D) as f64),
        fmt_bytes(4.0 * (LARGE_N as f64).powi(2))
    );
    Ok(())
}

fn distance_bench<B: Backend>(b: &B, o: &Opts) -> Result<()> {
    header("pairwise_distance (Euclidean; the miners' 64×64 κ tiles, 4×4 pairs per thread)", "output");
    let ns: &[usize] = if o.quick { &[4096] } else { &[4096, 16384] };
    for &n in ns {
        let q = unit_rows(b, n, D, 20)?;
        let r = unit_rows(b, n, D, 21)?;
        let mut out = Tensor::zeros(b, &[n, n])?;
        let t = median_secs(b, o.samples, || pairwise_distance(b, Metric::Euclidean, &q, &r, &mut out))?;
        let flops = 2.0 * (n * n * D) as f64;
        row(
            "pairwise_distance fwd",
            &format!("{n}×{n}×{D}"),
            t,
            &fmt_bytes(4.0 * (n * n) as f64),
            &format!("{:.3} TFLOP/s on 2·N·M·D; writes {}", flops / t * 1e-12, fmt_rate(4.0 * (n * n) as f64 / t, "B")),
        );
    }
    Ok(())
}

fn train_bench<B: Backend>(b: &B, o: &Opts) -> Result<()> {
    header("triplet training step (train_metric): MLP 784-256-128, semi-hard (TFA), batch 256 = 8×32, Adam", "");
    // The pytorch side's workload: one batch, stepped again and again (the net soon fits it and
    // few triplets stay active), then a fresh batch every step (triplets stay active). Both read
    // the same resident data set: [60000, 784] uniform pixels (1024 rows with --quick).
    let rows = if o.quick { 1024 } else { 60_000 };
    let data = Tensor::from_slice(b, &[rows, 784], &uniform_vec(&mut seeded(30), rows * 784, 0.0, 1.0))?;
    train_step_bench(b, o, &data, false)?;
    train_step_bench(b, o, &data, true)
}

/// One triplet training step, eager and as a CUDA graph. `rotate`: each step reads the next of
/// `ROTATING_BATCHES` random batches (a device-side cursor, advanced inside the step) instead of
/// the same batch every time.
fn train_step_bench<B: Backend>(b: &B, o: &Opts, data: &Tensor<B>, rotate: bool) -> Result<()> {
    // torch: data[idx] from a resident [60000, 784] set (1024 with --quick), the MLP, PML's
    // semi-hard miner + TripletMarginLoss(0.2), Adam(lr 1e-3). PML normalizes the embeddings and
    // takes the Euclidean distance; here the cosine distance does the normalization (κ = 1 − cos =
    // ½‖â − b̂‖²: the same ranking, the loss on another scale; the same work per pair).
    const ROTATING_BATCHES: usize = 8192;
    let (batch, classes) = (256, 8);
    let rows = data.shape()[0];
    let sizes = [784, 256, 128];
    let mut rng = seeded(31);
    let batches = if rotate { ROTATING_BATCHES } else { 1 };
    let idx: Vec<u32> = (0..batches * batch).map(|_| rng.random_range(0..rows as u32)).collect();
    let index = Tensor::from_slice(b, &[batches * batch], &idx)?;
    let mut cursor = Tensor::from_slice(b, &[1], &[0u32])?;
    let labels: Vec<u32> = (0..batch).map(|i| (i / (batch / classes)) as u32).collect();
    let labels = Tensor::from_slice(b, &[batch], &labels)?;
    let mut x = Tensor::zeros(b, &[batch, sizes[0]])?;
    let mut d_emb = Tensor::zeros(b, &[batch, sizes[2]])?;
    let mut net = Mlp::new(b, &MlpSpec::new(&sizes, Activation::Relu, Activation::None), "embed.", &mut seeded(1))?;
    let mut opt = Adam::new(b, &net.params_mut(), AdamConfig::default())?;
    let cfg = triplet_cfg(Miner::SemiHard(SemiHardPolicy::TfAddons), Metric::Cosine);
    let mut ws = TripletWorkspace::new(b, batch, batch, &cfg)?;
    // Everything stays on the device: no read-back (triplet_fwd_queued leaves the statistics in
    // the workspace), no host copy, no allocation after the first call (the MLP's buffers).
    let mut step = |cursor: &mut Tensor<B, u32>| -> Result<()> {
        gather_rows(b, data, &index, cursor, &mut x)?;
        net.forward(b, &x)?;
        let emb = net.output()?;
        triplet_fwd_queued(b, &cfg, emb, &labels, emb, &labels, true, &mut ws)?;
        triplet_bwd(b, &cfg, emb, &labels, emb, &labels, true, &mut ws, 1.0, &mut d_emb, None)?;
        net.backward(b, &x, &d_emb, None)?;
        opt.step(b, &mut net.params_mut())?;
        if rotate {
            counter_add(b, cursor, 1)?;
        }
        Ok(())
    };
    // A phase that ran past the last batch would have gathered NaN rows: say so instead of a time.
    let check_cursor = |cursor: &Tensor<B, u32>| -> Result<()> {
        let used = cursor.to_vec(b)?[0] as usize;
        if rotate && used > batches {
            return Err(latentkit::Error::InvalidArgument {
                op: "bench_metric train",
                msg: format!("{used} steps ran past the {batches} rotating batches; use fewer --samples"),
            });
        }
        Ok(())
    };
    let t_eager = median_secs(b, o.samples, || step(&mut cursor))?;
    check_cursor(&cursor)?;
    let before = launches(b);
    step(&mut cursor)?;
    let per_step = launches(b).zip(before).map(|(a, z)| a - z);
    let kernels = per_step.map_or(String::new(), |k| format!("{k} kernels per step; "));
    // MLP: forward 2·B·Σ(in·out), backward twice that (dW and dx; the first layer's dx is skipped,
    // counted anyway); the 256² mining is negligible.
    let mlp_flops = 6.0 * (batch * (sizes[0] * sizes[1] + sizes[1] * sizes[2])) as f64;
    let sz = format!("B={batch} ({classes}×{})", batch / classes);
    let what = if rotate { "a new batch each step" } else { "one batch" };
    row(
        &format!("triplet step, eager, {what}"),
        &sz,
        t_eager,
        "",
        &format!(
            "{kernels}{:.0} images/s, MLP {} (6·B·weights)",
            batch as f64 / t_eager,
            fmt_rate(mlp_flops / t_eager, "FLOP")
        ),
    );
    let mut graph_cursor = Tensor::from_slice(b, &[1], &[0u32])?;
    // SAFETY: the step only queues kernels on buffers owned by `index`, `graph_cursor`, `labels`,
    // `x`, `d_emb`, `net`, `opt` and `ws` (the MLP's buffers already exist for this batch size),
    // which live until the end of this function, and on the caller's `data`, which outlives it;
    // `graph` is declared after them and so dropped first.
    let graph = unsafe { b.capture_graph(&mut || step(&mut graph_cursor))? };
    match graph {
        Some(g) => {
            let t_graph = median_secs(b, o.samples, || g.replay())?;
            check_cursor(&graph_cursor)?;
            row(
                &format!("triplet step, CUDA graph, {what}"),
                &sz,
                t_graph,
                "",
                &format!("{:.0} images/s, eager/graph {:.2}×", batch as f64 / t_graph, t_eager / t_graph),
            );
            // PyTorch's step gathers a random batch each time: compare the rotating one.
            if rotate {
                let theirs = ms(o.baselines.num(&["train_metric", "b256_semihard_step_ms"]));
                o.table.borrow_mut().add(
                    "triplet step, MLP 784-256-128, semi-hard, batch 256",
                    t_graph,
                    "CUDA graph",
                    &[("PML eager", theirs)],
                );
            }
        }
        None => println!("(no CUDA graphs on this backend)"),
    }
    let st = ws.read_stats(b)?;
    println!(
        "{what}: last step's loss {:.4}, {} triplets, {:.0}% active; epoch of 60k at the eager rate: {:.2} s",
        st.loss,
        st.triplets,
        100.0 * st.active_fraction,
        t_eager * (60_000.0 / batch as f64).ceil()
    );
    Ok(())
}

fn run<B: Backend>(b: &B, o: &Opts) -> Result<()> {
    println!(
        "device: {}  (median of {} samples{})",
        b.device(),
        o.samples,
        if o.quick { ", --quick sizes" } else { "" }
    );
    if o.wants("mining") {
        mining_bench(b, o)?;
    }
    if o.wants("distance") {
        distance_bench(b, o)?;
    }
    if o.wants("train") {
        train_bench(b, o)?;
    }
    if o.wants("large") {
        large_bench(b, o)?;
    }
    o.table.borrow().print(&o.baselines, &b.device().to_string());
    Ok(())
}

fn main() {
    let mut device = Device::Cpu;
    let mut opts = Opts {
        samples: 0,
        quick: false,
        only: SECTIONS.iter().map(|s| s.to_string()).collect(),
        large_budget: 100.0,
        n: None,
        miner: None,
        kernels: Vec::new(),
        baselines: Baselines::default(),
        table: RefCell::new(SideBySide::default()),
    };
    let mut baseline_files: Vec<std::path::PathBuf> = Vec::new();
    let mut samples = None;
    let mut kernels = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--quick" {
            opts.quick = true;
            continue;
        }
        let v = args.next();
        let parsed = match (a.as_str(), v) {
            ("--device", Some(v)) => v.parse().map(|d| device = d).map_err(|e: latentkit::Error| e.to_string()),
            ("--samples", Some(v)) => v.parse().map(|s| samples = Some(s)).map_err(|e| format!("--samples: {e}")),
            ("--n", Some(v)) => v.parse().map(|n| opts.n = Some(n)).map_err(|e| format!("--n: {e}")),
            ("--miner", Some(v)) => {
                if ["batch-hard", "semi-hard", "batch-all"].contains(&v.as_str()) {
                    opts.miner = Some(v);
                    Ok(())
                } else {
                    Err(format!("--miner {v:?}: expected batch-hard, semi-hard or batch-all"))
                }
            }
            ("--kernel", Some(v)) => {
                let pick: Option<Vec<TripletKernel>> = match v.as_str() {
                    "all" => Some(TripletKernel::ALL.to_vec()),
                    _ => TripletKernel::ALL.into_iter().find(|k| k.name() == v).map(|k| vec![k]),
                };
                kernels = pick;
                kernels.as_ref().map(|_| ()).ok_or_else(|| format!("--kernel {v:?}: expected v1, v2 or all"))
            }
            ("--baselines", Some(v)) => {
                baseline_files.push(v.into());
                Ok(())
            }
            ("--large-budget", Some(v)) => {
                v.parse().map(|s| opts.large_budget = s).map_err(|e| format!("--large-budget: {e}"))
            }
            ("--only", Some(v)) => {
                opts.only = v.split(',').map(|s| s.trim().to_string()).collect();
                match opts.only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                    Some(s) => Err(format!("--only: unknown section {s:?}; sections: {}", SECTIONS.join(","))),
                    None => Ok(()),
                }
            }
            (other, _) => Err(format!("unknown or incomplete option {other:?}")),
        };
        if let Err(e) = parsed {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    match Baselines::load(&baseline_files) {
        Ok(base) => opts.baselines = base,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    opts.quick |= device == Device::Cpu;
    // The CPU twin has one implementation: the versions would time the same code.
    opts.kernels = kernels.unwrap_or_else(|| {
        if device == Device::Cpu {
            vec![TripletKernel::default()]
        } else {
            TripletKernel::ALL.to_vec()
        }
    });
    opts.samples = samples.unwrap_or(if opts.quick { 5 } else { 20 });
    let res = match device {
        Device::Cpu => run(&CpuBackend, &opts),
        Device::Cuda(i) => CudaBackend::new(i).and_then(|b| run(&b, &opts)),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
