//! Trains the MLP VAE of the classic PyTorch example (784-400-20, Bernoulli pixels, Adam 1e-3,
//! batch 128), or a deeper one (`--hidden 512,256`: 784-512-256-20), and writes its artefacts.
//!
//!     cargo run --release --example train_vae                           # CPU, committed subset
//!     scripts/fetch-mnist.sh && cargo run --release --example train_vae -- --data data/mnist-full
//!     cargo run --release --features cuda --example train_vae -- --device cuda
//!
//! Options: --data DIR  --device cpu|cuda[:N]  --epochs N (10)  --batch N (128)  --lr X (1e-3)
//!          --beta X (1)  --warmup-steps N (0)  --free-bits X (0)  --likelihood bernoulli|gaussian
//!          --latent N (20)  --hidden N[,N...] (400; the encoder's hidden sizes, input side first,
//!          mirrored by the decoder)  --seed N (1)  --iwae-k K (50; 0 skips it)
//!          --out DIR (runs/vae)  --resume (continue from the checkpoint in --out with its settings;
//!          --batch, --lr, --beta, --warmup-steps and --free-bits, when given, replace them; a
//!          checkpoint saved before the settings were recorded takes the command line's)
//!          --mode checked|resident (default: checked on the CPU, resident on CUDA: the dataset on
//!          the GPU and each step one CUDA-graph replay; the loss is then checked once per epoch)
//!          --gemm-tuning heuristic|measure|measure-all (CUDA: how GemmKernel::Auto picks each layer's GEMM
//!          kernel; measure times the candidates once per shape, see latentkit::ops::gemm::tune)
//!          --gemm-tuning-file FILE (CUDA: measure (unless measure-all), loading FILE's choices
//!          first when it exists and saving every choice to it before every checkpoint and at the
//!          end, so that later runs (--resume too) use the same kernels; tuning/README.md)
//!          --gemm-exclude VERSION,... (CUDA: GEMM versions that measuring leaves out, e.g. those
//!          whose tests failed on this machine)
//!
//! Writes into --out: metrics.csv, loss_curve.png, reconstructions.png (test digits over their
//! reconstructions), prior_samples.png (decoded z ~ N(0, I)), model.safetensors (PyTorch names and
//! [out, in] layout: `model.load_state_dict(safetensors.torch.load_file(...))` works on the classic
//! example's `VAE`; with several hidden layers the names are encoder.{i}, fc21, fc22, decoder.{i},
//! fc4, see src/nn/vae.rs) and trainer.safetensors (to resume: the weights again, the optimizer
//! state, the sizes and the training settings). Checkpoints and metrics.csv are written
//! atomically after every epoch; a non-finite loss or weight stops training and leaves the last
//! good checkpoint as it was.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use latentkit::data::Mnist;
use latentkit::io::{save_image_grid, save_line_plot, write_file_atomic, Series};
use latentkit::nn::{Likelihood, VaeConfig};
use latentkit::ops::gemm::GemmTuning;
use latentkit::ops::AdamConfig;
use latentkit::train::{EpochRecord, StepMode, VaeTrainConfig, VaeTrainer, TRAINER_FILE};
use latentkit::{Backend, CpuBackend, CudaBackend, Device, Error, Tensor};

struct Args {
    data: Option<PathBuf>,
    device: Device,
    epochs: usize,
    model: VaeConfig,
    train: VaeTrainConfig,
    iwae_k: usize,
    out: PathBuf,
    resume: bool,
    mode: Option<StepMode>,
    /// How the CUDA GEMMs' kernels are picked (`--gemm-tuning`; default: Measure with a tuning
    /// file, else Heuristic).
    gemm_tuning: Option<GemmTuning>,
    /// `--gemm-tuning-file`: measured choices loaded before training, saved before every
    /// checkpoint and at the end.
    gemm_tuning_file: Option<PathBuf>,
    /// `--gemm-exclude`: versions that measuring leaves out.
    gemm_exclude: Vec<latentkit::ops::gemm::GemmKernel>,
    /// The flags given, in order (with `--resume`, the training settings among them replace the
    /// checkpoint's and the model's are ignored; see `apply_given_settings`).
    given: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: None,
        device: Device::Cpu,
        epochs: 10,
        model: VaeConfig::default(),
        train: VaeTrainConfig::default(),
        iwae_k: 50,
        out: PathBuf::from("runs/vae"),
        resume: false,
        mode: None,
        gemm_tuning: None,
        gemm_tuning_file: None,
        gemm_exclude: Vec::new(),
        given: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--resume" {
            a.resume = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            println!("see the header of examples/train_vae.rs for the options");
            std::process::exit(0);
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        a.given.push(flag.clone());
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v:?}: {e}");
        let int = || v.parse::<usize>().map_err(|e| bad(&e));
        let float = || v.parse::<f32>().map_err(|e| bad(&e));
        match flag.as_str() {
            "--data" => a.data = Some(PathBuf::from(&v)),
            "--device" => a.device = v.parse().map_err(|e: Error| bad(&e))?,
            "--gemm-tuning" => a.gemm_tuning = Some(v.parse().map_err(|e: Error| bad(&e))?),
            "--gemm-tuning-file" => a.gemm_tuning_file = Some(PathBuf::from(&v)),
            "--gemm-exclude" => a.gemm_exclude = latentkit::ops::gemm::parse_kernel_list(&v).map_err(|e| bad(&e))?,
            "--epochs" => a.epochs = int()?,
            "--batch" => a.train.batch = int().and_then(|n| if n > 0 { Ok(n) } else { Err(bad(&"must be ≥ 1")) })?,
            "--lr" => a.train.adam = AdamConfig { lr: float()?, ..AdamConfig::default() },
            "--beta" => a.train.kl.beta = float()?,
            "--warmup-steps" => a.train.kl.warmup_steps = int()? as u64,
            "--free-bits" => a.train.kl.free_bits = float()?,
            "--latent" => a.model.latent = int()?,
            "--hidden" => a.model.hidden = VaeConfig::parse_hidden(&v).map_err(|e| bad(&e))?,
            "--seed" => a.train.seed = int()? as u64,
            "--iwae-k" => a.iwae_k = int()?,
            "--out" => a.out = PathBuf::from(&v),
            "--mode" => {
                a.mode = Some(match v.as_str() {
                    "checked" => StepMode::Checked,
                    "resident" => StepMode::Resident,
                    _ => return Err(bad(&"expected checked or resident")),
                })
            }
            "--likelihood" => {
                a.model.likelihood = match v.as_str() {
                    "bernoulli" => Likelihood::Bernoulli,
                    "gaussian" => Likelihood::Gaussian,
                    _ => return Err(bad(&"expected bernoulli or gaussian")),
                }
            }
            _ => return Err(format!("unknown option {flag:?} (try --help)")),
        }
    }
    a.model.noise_seed = a.train.seed;
    Ok(a)
}

fn io_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io { path: path.to_path_buf(), offset: 0, source: e }
}

fn write_metrics(path: &std::path::Path, history: &[EpochRecord]) -> latentkit::Result<()> {
    let mut text =
        String::from("epoch,step,train_loss,train_recon,train_kl,test_neg_elbo,test_recon,test_kl,seconds\n");
    for r in history {
        text += &format!(
            "{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.3}\n",
            r.epoch,
            r.step,
            r.train.loss,
            r.train.recon,
            r.train.kl,
            r.test.neg_elbo(),
            r.test.recon,
            r.test.kl,
            r.seconds
        );
    }
    write_file_atomic(path, text.as_bytes())
}

/// Earlier epochs' records, when resuming.
fn read_metrics(path: &std::path::Path) -> Vec<EpochRecord> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<f64> = l.split(',').map(|x| x.parse().ok()).collect::<Option<_>>()?;
            if f.len() != 9 {
                return None;
            }
            let st =
                |a: usize| latentkit::nn::StepStats { loss: f[a] as f32, recon: f[a + 1] as f32, kl: f[a + 2] as f32 };
            let test = latentkit::nn::StepStats { loss: f[5] as f32, recon: f[6] as f32, kl: f[7] as f32 };
            Some(EpochRecord { epoch: f[0] as usize, step: f[1] as u64, train: st(2), test, seconds: f[8] })
        })
        .collect()
}

/// On resume, the checkpoint's training settings hold except those given on the command line;
/// the model's flags and the seed are the checkpoint's (a note says so when they differ).
fn apply_given_settings<B: Backend>(t: &mut VaeTrainer<B>, args: &Args) {
    use std::mem::replace;
    let (new, model) = (&args.train, t.vae().config().clone());
    for flag in &args.given {
        let replaced = |old: String, now: String| (old, now, true);
        let kept = |old: String, now: String| (old, now, false);
        let (old, now, applies) = match flag.as_str() {
            "--batch" => replaced(replace(&mut t.cfg_mut().batch, new.batch).to_string(), new.batch.to_string()),
            "--lr" => replaced(replace(&mut t.opt_mut().cfg.lr, new.adam.lr).to_string(), new.adam.lr.to_string()),
            "--beta" => replaced(replace(&mut t.cfg_mut().kl.beta, new.kl.beta).to_string(), new.kl.beta.to_string()),
            "--warmup-steps" => replaced(
                replace(&mut t.cfg_mut().kl.warmup_steps, new.kl.warmup_steps).to_string(),
                new.kl.warmup_steps.to_string(),
            ),
            "--free-bits" => replaced(
                replace(&mut t.cfg_mut().kl.free_bits, new.kl.free_bits).to_string(),
                new.kl.free_bits.to_string(),
            ),
            "--latent" => kept(model.latent.to_string(), args.model.latent.to_string()),
            "--hidden" => kept(model.hidden_label(), args.model.hidden_label()),
            "--likelihood" => {
                kept(likelihood_flag(model.likelihood).into(), likelihood_flag(args.model.likelihood).into())
            }
            "--seed" => kept(t.cfg().seed.to_string(), new.seed.to_string()),
            _ => continue,
        };
        match (old != now, applies) {
            (true, true) => println!("note: {flag} {now} replaces the checkpoint's {old}"),
            (true, false) => println!("note: {flag} {now} is ignored with --resume: the checkpoint's {old} continues"),
            _ => {}
        }
    }
}

/// The `--likelihood` spelling of a likelihood.
fn likelihood_flag(l: Likelihood) -> &'static str {
    match l {
        Likelihood::Bernoulli => "bernoulli",
        Likelihood::Gaussian => "gaussian",
    }
}

/// Resumes the run in `args.out`: with the checkpoint's settings and the flags given, or, for a
/// checkpoint saved before they were recorded, with the command line's.
fn resume<B: Backend>(b: &B, args: &Args) -> latentkit::Result<VaeTrainer<B>> {
    let path = args.out.join(TRAINER_FILE);
    // Read whole just for its metadata (a few MB; resuming reads it again).
    let (_, meta) = latentkit::io::checkpoint::load_checkpoint(&path)?;
    let t = if meta.contains_key("batch") {
        let mut t = VaeTrainer::resume(b, &args.out)?;
        println!("resumed from {} at epoch {}, step {}", path.display(), t.epoch, t.step);
        apply_given_settings(&mut t, args);
        t
    } else {
        let t = VaeTrainer::resume_with_settings(b, &args.out, args.train)?;
        println!(
            "resumed from {} at epoch {}, step {}; it records no training settings (an older save): \
             the command line's apply (the model and the seed are the checkpoint's)",
            path.display(),
            t.epoch,
            t.step
        );
        t
    };
    Ok(t)
}

/// `before_checkpoint` runs before every checkpoint is written (CUDA: saves the GEMM choices, so
/// that a run killed later resumes with the kernels that trained it).
fn run<B: Backend>(b: &B, args: &Args, before_checkpoint: &dyn Fn() -> latentkit::Result<()>) -> latentkit::Result<()> {
    let data = match &args.data {
        Some(dir) => Mnist::load(dir)?,
        None => Mnist::committed_subset()?,
    };
    std::fs::create_dir_all(&args.out).map_err(io_err(&args.out))?;
    let metrics_path = args.out.join("metrics.csv");
    let (mut trainer, mut history) = if args.resume {
        let t = resume(b, args)?;
        let h: Vec<_> = read_metrics(&metrics_path).into_iter().filter(|r| r.epoch <= t.epoch).collect();
        (t, h)
    } else {
        (VaeTrainer::new(b, args.model.clone(), args.train)?, Vec::new())
    };
    let m = trainer.vae().config();
    println!(
        "VAE {} ({:?}) on {}: {} train / {} test images, batch {}, Adam lr {}, β {}",
        m.sizes_label(),
        m.likelihood,
        b.device(),
        data.train.len(),
        data.test.len(),
        trainer.cfg().batch,
        trainer.opt().cfg.lr,
        trainer.cfg().kl.beta
    );
    let style =
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]")
            .map_err(|e| Error::InvalidArgument { op: "progress bar", msg: e.to_string() })?;
    while trainer.epoch < args.epochs {
        let steps = data.train.len().checked_div(trainer.cfg().batch).unwrap_or(0);
        let bar = ProgressBar::new(steps as u64).with_style(style.clone());
        bar.set_prefix(format!("{}/{}", trainer.epoch + 1, args.epochs));
        let mut running = 0.0f64;
        let mode = args.mode.unwrap_or(if b.device() == Device::Cpu { StepMode::Checked } else { StepMode::Resident });
        let record = trainer.run_epoch(b, &data.train, &data.test, mode, |s, _, st| {
            bar.set_position(s as u64 + 1);
            if let Some(st) = st {
                running += f64::from(st.loss);
                if s % 20 == 0 {
                    bar.set_message(format!("loss {:.2}", running / (s + 1) as f64));
                }
            }
        });
        bar.finish_and_clear();
        // On error (a non-finite loss included) nothing below runs: the last checkpoint stays.
        let record = record?;
        println!(
            "epoch {:>3}: train loss {:.3} | test −ELBO {:.3} nats (recon {:.3}, KL {:.3}) | {:.1} s",
            record.epoch,
            record.train.loss,
            record.test.neg_elbo(),
            record.test.recon,
            record.test.kl,
            record.seconds
        );
        history.push(record);
        // Metrics first: a crash between the two leaves a row past the checkpoint, which a resumed
        // run drops, rather than a checkpoint without its row.
        write_metrics(&metrics_path, &history)?;
        // The GEMM choices first: a checkpoint is never on disk without the kernels that made it.
        before_checkpoint()?;
        trainer.save(b, &args.out)?;
        let train_pts: Vec<(f64, f64)> = history.iter().map(|r| (r.epoch as f64, f64::from(r.train.loss))).collect();
        let test_pts: Vec<(f64, f64)> =
            history.iter().map(|r| (r.epoch as f64, f64::from(r.test.neg_elbo()))).collect();
        save_line_plot(
            &args.out.join("loss_curve.png"),
            "VAE loss per image",
            "epoch",
            "nats",
            &[Series { name: "train loss", points: &train_pts }, Series { name: "test -ELBO", points: &test_pts }],
            720,
            480,
        )?;
    }

    // Reconstructions of the first 32 test digits (rows of 8: originals, then reconstructions).
    let dim = data.test.dim();
    let (side_h, side_w) = (data.test.rows, data.test.cols);
    let n = 32.min(data.test.len());
    let x = Tensor::from_slice(b, &[n, dim], &data.test.images[..n * dim])?;
    let rec = trainer.vae_mut().reconstruct(b, &x)?;
    let mut grid = Vec::with_capacity(2 * n * dim);
    for row in 0..n.div_ceil(8) {
        let (lo, hi) = (row * 8, ((row + 1) * 8).min(n));
        grid.extend_from_slice(&data.test.images[lo * dim..hi * dim]);
        grid.extend_from_slice(&rec[lo * dim..hi * dim]);
    }
    save_image_grid(&args.out.join("reconstructions.png"), &grid, grid.len() / dim, side_h, side_w, 8, 3)?;
    let samples = trainer.vae_mut().sample_prior(b, 64, 2026)?;
    save_image_grid(&args.out.join("prior_samples.png"), &samples, 64, side_h, side_w, 8, 3)?;

    if args.iwae_k > 0 {
        let t = std::time::Instant::now();
        let bound = trainer.iwae(b, &data.test, args.iwae_k)?;
        let elbo = trainer.evaluate(b, &data.test)?;
        println!(
            "test set: −ELBO {:.3} nats (1 sample), IWAE bound −log p(x) ≤ {:.3} nats (k = {}, {:.1} s)",
            elbo.neg_elbo(),
            -bound,
            args.iwae_k,
            t.elapsed().as_secs_f64()
        );
        let line =
            format!("k={} test_neg_elbo={:.4} iwae_neg_log_px_bound={:.4}\n", args.iwae_k, elbo.neg_elbo(), -bound);
        write_file_atomic(&args.out.join("iwae.txt"), line.as_bytes())?;
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let res = match args.device {
        Device::Cpu => {
            if args.gemm_tuning.is_some() || args.gemm_tuning_file.is_some() || !args.gemm_exclude.is_empty() {
                eprintln!(
                    "note: --gemm-tuning, --gemm-tuning-file and --gemm-exclude choose CUDA kernels; ignored on the CPU"
                );
            }
            run(&CpuBackend, &args, &|| Ok(()))
        }
        Device::Cuda(i) => CudaBackend::new(i).and_then(|b| {
            let file = args.gemm_tuning_file.as_deref();
            let loaded = b.begin_gemm_tuning(args.gemm_tuning, file, &args.gemm_exclude)?;
            if let Some(f) = file {
                println!("GEMM choices: {loaded} loaded from {}", f.display());
            }
            let save_choices = || file.map_or(Ok(()), |f| b.save_gemm_tuning(f));
            let res = run(&b, &args, &save_choices);
            // Saved even when training stopped with an error (a non-finite loss, say).
            res.and(save_choices())
        }),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
