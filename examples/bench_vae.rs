//! VAE benchmarks: the fused reparameterization + KL kernels against the device copy bandwidth,
//! and the whole 784-400-20 training step (Adam) eager, queued and replayed as a CUDA graph, with
//! launches per step, at batch 128 and 4096 (on CUDA also with the GEMM kernels measured per shape,
//! `GemmTuning::Measure`), plus a full epoch with the dataset resident.
//!
//!     cargo run --release --features cuda --example bench_vae -- --device cuda [--data DIR]
//!     cargo run --release --example bench_vae                       # CPU, smaller sizes
//!
//! `--only latent,steps,epoch` runs those sections (default all; e.g. one, to profile it with ncu).
//! `--measure-all`: the measured steps weigh every GEMM version (`GemmTuning::MeasureAll`), not only
//! those checked on a GPU. `--gemm-tuning-file FILE`: their choices are loaded from FILE first (when
//! it exists) and saved to it after (tuning/README.md). `--gemm-exclude VERSION,...`: versions the
//! measured steps leave out (`CudaBackend::exclude_gemm_kernels`: those whose tests failed).
//!
//! PyTorch's figures for the same workloads come from ../shared/bench/torch_baselines.py
//! (`--only latent,vae`), run earlier in the same call on the same machine (see
//! scripts/gpu-run.sh): `--baselines FILE` (its JSON, repeatable) prints them beside ours with the
//! ratios, in a table at the end.

use std::any::Any;
use std::path::PathBuf;
use std::time::Instant;

#[path = "common/side_by_side.rs"]
mod side_by_side;
use side_by_side::{ms, Baselines, SideBySide};

use latentkit::bench::median_secs;
use latentkit::data::Mnist;
use latentkit::nn::{KlSchedule, Vae, VaeConfig};
use latentkit::ops::gemm::GemmTuning;
use latentkit::ops::latent::{reparam_kl_bwd_with, reparam_kl_fwd_with, LatentConfig, LatentKernel};
use latentkit::ops::{rng, AdamConfig};
use latentkit::rng::{seeded, uniform_vec};
use latentkit::train::{Adam, StepMode, VaeTrainConfig, VaeTrainer};
use latentkit::{Backend, CpuBackend, CudaBackend, Device, Result, Tensor};

fn rand_tensor<B: Backend>(b: &B, shape: &[usize], seed: u64, lo: f32, hi: f32) -> Result<Tensor<B>> {
    Tensor::from_slice(b, shape, &uniform_vec(&mut seeded(seed), shape.iter().product(), lo, hi))
}

/// Kernels launched so far (CUDA only).
fn launches<B: Backend>(b: &B) -> Option<u64> {
    (b as &dyn Any).downcast_ref::<CudaBackend>().map(CudaBackend::launches)
}

/// Times both kernel versions; returns the time of v2 (what `LatentKernel::Auto` runs here).
fn latent_bench<B: Backend>(b: &B, samples: usize, n: usize) -> Result<f64> {
    let cols = 16;
    let rows = n / cols;
    let copy_src = rand_tensor(b, &[4 * n], 1, -1.0, 1.0)?;
    let mut copy_dst = Tensor::zeros(b, &[4 * n])?;
    let t_copy = median_secs(b, samples, || copy_dst.copy_from(b, &copy_src))?;
    let copy_bw = 2.0 * 16.0 * n as f64 / t_copy;
    println!(
        "device copy of {} MiB: {:.1} µs, {:.1} GB/s (read + write)",
        (16 * n) >> 20,
        t_copy * 1e6,
        copy_bw * 1e-9
    );

    let (mu, lv, dz) = (
        rand_tensor(b, &[rows, cols], 2, -2.0, 2.0)?,
        rand_tensor(b, &[rows, cols], 3, -3.0, 1.0)?,
        rand_tensor(b, &[rows, cols], 4, -1.0, 1.0)?,
    );
    let w = Tensor::from_slice(b, &[cols], &vec![1.0 / rows as f32; cols])?;
    let (mut z, mut kl_row, mut dmu, mut dlv) = (
        Tensor::zeros(b, &[rows, cols])?,
        Tensor::zeros(b, &[rows])?,
        Tensor::zeros(b, &[rows, cols])?,
        Tensor::zeros(b, &[rows, cols])?,
    );
    let offset = rng::offset_tensor(b, 0)?;
    let cfg = LatentConfig { seed: 7, sample: true };
    // Minimal traffic: forward reads μ, log σ² and writes z (12 B), backward reads μ, log σ², dz
    // and writes dμ, dlog σ² (20 B); ε is regenerated, never stored; kl_row is 1/cols of that.
    let bytes = 32.0 * n as f64 + 4.0 * rows as f64;
    // Both kernel versions (LatentKernel::Auto picks v2 for this width); the CPU runs its one
    // implementation for each.
    let mut t_v2 = f64::NAN;
    for (label, kernel) in [("v1 row per block", LatentKernel::RowPerBlock), ("v2 quad", LatentKernel::Quad)] {
        let t = median_secs(b, samples, || {
            reparam_kl_fwd_with(b, &cfg, kernel, &offset, &mu, &lv, &mut z, &mut kl_row, None)?;
            reparam_kl_bwd_with(b, &cfg, kernel, &offset, &mu, &lv, &dz, &w, &mut dmu, &mut dlv)
        })?;
        let bw = bytes / t;
        println!(
            "reparam+KL fwd+bwd {label}, {n} latent elements: {:.1} µs, {:.1} GB/s = {:.0}% of the copy bandwidth",
            t * 1e6,
            bw * 1e-9,
            100.0 * bw / copy_bw
        );
        t_v2 = t;
    }
    Ok(t_v2)
}

/// Returns the fastest way the step ran: the CUDA graph's replay where there is one, else the
/// queued step.
fn step_bench<B: Backend>(b: &B, samples: usize, batch: usize, label: &str) -> Result<f64> {
    let cfg = VaeConfig::default();
    let mut vae = Vae::new(b, cfg.clone(), &mut seeded(1))?;
    let mut opt = Adam::new(b, &vae.params_mut(), AdamConfig::default())?;
    let x = rand_tensor(b, &[batch, cfg.input], 5, 0.0, 1.0)?;
    let sched = KlSchedule::default();
    vae.prepare(b, batch)?;
    let mut step = 0u64;
    let t_checked = median_secs(b, samples, || {
        step += 1;
        vae.train_step(b, &x, &mut opt, &sched, step).map(|_| ())
    })?;
    let before = launches(b);
    vae.train_step_queued(b, &x, &mut opt, &sched)?;
    let per_step = launches(b).zip(before).map(|(a, z)| a - z);
    let t_queued = median_secs(b, samples, || vae.train_step_queued(b, &x, &mut opt, &sched))?;
    let launches_txt = per_step.map_or(String::new(), |n| format!(", {n} kernels per step"));
    print!(
        "VAE step batch {batch}{label}: checked {:.1} µs, queued {:.1} µs{launches_txt}",
        t_checked * 1e6,
        t_queued * 1e6
    );
    // SAFETY: the step only queues kernels into buffers owned by `vae`, `opt` and `x`, which live
    // until the end of this function; `graph` is declared after them and so dropped first.
    let graph = unsafe { b.capture_graph(&mut || vae.train_step_queued(b, &x, &mut opt, &sched))? };
    match graph {
        Some(g) => {
            let t_graph = median_secs(b, samples, || g.replay())?;
            println!(", CUDA graph {:.1} µs ({:.0} images/s)", t_graph * 1e6, batch as f64 / t_graph);
            Ok(t_graph)
        }
        None => {
            println!(" ({:.0} images/s; no graphs on this backend)", batch as f64 / t_queued);
            Ok(t_queued)
        }
    }
}

/// Returns the epoch's seconds.
fn epoch_bench<B: Backend>(b: &B, data: &Mnist) -> Result<f64> {
    let mut trainer = VaeTrainer::new(b, VaeConfig::default(), VaeTrainConfig::default())?;
    let mode = if b.device() == Device::Cpu { StepMode::Checked } else { StepMode::Resident };
    // The first epoch pays the upload and the graph capture; time the second.
    trainer.run_epoch(b, &data.train, &data.test, mode, |_, _, _| {})?;
    let t0 = Instant::now();
    let rec = trainer.run_epoch(b, &data.train, &data.test, mode, |_, _, _| {})?;
    b.synchronize()?;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "epoch of {} images ({mode:?}, batch 128) + test evaluation: {:.3} s (train loss {:.2}, test −ELBO {:.2})",
        data.train.len(),
        secs,
        rec.train.loss,
        rec.test.neg_elbo()
    );
    Ok(secs)
}

/// The sections, in the order they run.
const SECTIONS: [&str; 3] = ["latent", "steps", "epoch"];

/// Options beyond the device.
struct Opts {
    samples: usize,
    data: Option<String>,
    /// `--only`: the sections to run (latent, steps, epoch; default all).
    only: Vec<String>,
    /// How the measured steps pick their GEMM kernels (`--measure-all`: MeasureAll).
    tuning: GemmTuning,
    /// `--gemm-tuning-file`: choices loaded before the measured steps and saved after them.
    tuning_file: Option<PathBuf>,
    /// `--gemm-exclude`: versions the measured steps leave out.
    exclude: Vec<latentkit::ops::gemm::GemmKernel>,
    /// `--baselines`: torch_baselines.py's JSON files of this run.
    baselines: Baselines,
}

fn run<B: Backend>(b: &B, o: &Opts) -> Result<()> {
    let Opts { samples, tuning, .. } = *o;
    let wants = |section: &str| o.only.iter().any(|s| s == section);
    let big = b.device() != Device::Cpu;
    println!("device: {}  (median of {samples} samples)", b.device());
    let base = &o.baselines;
    let mut table = SideBySide::default();
    if wants("latent") {
        let n = if big { 1 << 24 } else { 1 << 20 };
        let t = latent_bench(b, samples, n)?;
        // PyTorch's figure only where it timed the same number of elements.
        if base.num(&["latent", "elements"]) == Some(n as f64) {
            table.add(
                &format!("reparam + KL fwd + bwd, {n} latent elements"),
                t,
                "v2",
                &[
                    ("eager", ms(base.num(&["latent", "eager_fwd_bwd_ms"]))),
                    ("torch.compile", ms(base.num(&["latent", "compiled_fwd_bwd_ms"]))),
                ],
            );
        }
    }
    if wants("steps") {
        for (batch, t) in steps(b, o, samples, tuning)? {
            let key = |what: &str| ms(base.num(&["vae", &format!("b{batch}_{what}_step_ms")]));
            table.add(
                &format!("VAE step 784-400-20, Adam, batch {batch}"),
                t,
                if b.device() == Device::Cpu { "queued" } else { "CUDA graph" },
                &[("CUDA graph", key("graph")), ("eager", key("eager"))],
            );
        }
    }
    if wants("epoch") {
        let data = match o.data.as_deref() {
            Some(dir) => Mnist::load(dir)?,
            None => Mnist::committed_subset()?,
        };
        let t = epoch_bench(b, &data)?;
        if data.train.len() == 60_000 {
            table.add(
                "epoch of 60,000 images, batch 128",
                t,
                "with the test evaluation",
                &[
                    ("graph step × 469 (not a timed epoch)", base.num(&["vae", "b128_graph_epoch_s_60k"])),
                    ("eager", base.num(&["vae", "b128_eager_epoch_s_60k"])),
                ],
            );
        }
    }
    table.print(base, &b.device().to_string());
    Ok(())
}

/// The training step at batch 128 and 4096, with the default mode's GEMM kernels and, on CUDA,
/// with measured ones (the first checked step measures, the graph captures the choices). Returns
/// each batch's time in the default mode.
fn steps<B: Backend>(b: &B, o: &Opts, samples: usize, tuning: GemmTuning) -> Result<Vec<(usize, f64)>> {
    let mut times = Vec::new();
    for batch in [128, 4096] {
        times.push((batch, step_bench(b, samples, batch, "")?));
    }
    if let Some(cuda) = (b as &dyn Any).downcast_ref::<CudaBackend>() {
        if let Some(f) = &o.tuning_file {
            println!("loaded {} GEMM choices from {}", cuda.load_gemm_tuning_if_present(f)?, f.display());
        }
        cuda.set_gemm_tuning(tuning);
        cuda.exclude_gemm_kernels(&o.exclude);
        for batch in [128, 4096] {
            step_bench(b, samples, batch, &format!(" (GEMM choices: {tuning:?})"))?;
        }
        cuda.set_gemm_tuning(GemmTuning::Heuristic);
        if let Some(f) = &o.tuning_file {
            cuda.save_gemm_tuning(f)?;
        }
        for r in cuda.gemm_tuning_report() {
            let k = r.key;
            println!(
                "  {}: {}×{}×{} ({}, {}): {:?}",
                if r.times.is_empty() { "loaded" } else { "measured" },
                k.m,
                k.n,
                k.k,
                if k.trans_a { "T" } else { "N" },
                if k.trans_b { "T" } else { "N" },
                r.chosen
            );
        }
    }
    Ok(times)
}

fn main() {
    let mut device = Device::Cpu;
    let mut o = Opts {
        samples: 20,
        data: None,
        only: SECTIONS.iter().map(|s| s.to_string()).collect(),
        tuning: GemmTuning::Measure,
        tuning_file: None,
        exclude: Vec::new(),
        baselines: Baselines::default(),
    };
    let mut baseline_files: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--measure-all" => o.tuning = GemmTuning::MeasureAll,
            _ => {
                let v = args.next();
                let parsed = match (a.as_str(), v) {
                    ("--device", Some(v)) => v.parse().map(|d| device = d).map_err(|e: latentkit::Error| e.to_string()),
                    ("--samples", Some(v)) => v.parse().map(|s| o.samples = s).map_err(|e| format!("--samples: {e}")),
                    ("--data", Some(v)) => {
                        o.data = Some(v);
                        Ok(())
                    }
                    ("--only", Some(v)) => {
                        o.only = v.split(',').map(|s| s.trim().to_string()).collect();
                        match o.only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                            Some(s) => Err(format!("--only: unknown section {s:?}; sections: {}", SECTIONS.join(","))),
                            None => Ok(()),
                        }
                    }
                    ("--gemm-tuning-file", Some(v)) => {
                        o.tuning_file = Some(v.into());
                        Ok(())
                    }
                    ("--gemm-exclude", Some(v)) => latentkit::ops::gemm::parse_kernel_list(&v)
                        .map(|l| o.exclude = l)
                        .map_err(|e| format!("--gemm-exclude: {e}")),
                    ("--baselines", Some(v)) => {
                        baseline_files.push(v.into());
                        Ok(())
                    }
                    (other, _) => Err(format!("unknown or incomplete option {other:?}")),
                };
                if let Err(e) = parsed {
                    eprintln!("error: {e}");
                    std::process::exit(2);
                }
            }
        }
    }
    match Baselines::load(&baseline_files) {
        Ok(base) => o.baselines = base,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    let res = match device {
        Device::Cpu => {
            if o.tuning != GemmTuning::Measure || o.tuning_file.is_some() || !o.exclude.is_empty() {
                eprintln!(
                    "note: --measure-all, --gemm-tuning-file and --gemm-exclude choose CUDA kernels; ignored on the CPU"
                );
            }
            run(&CpuBackend, &o)
        }
        Device::Cuda(i) => CudaBackend::new(i).and_then(|b| run(&b, &o)),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
