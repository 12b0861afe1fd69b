//! Trains a siamese / metric-learning embedding net (MLP 784-512-256-128 shared by every branch)
//! on MNIST with the fused triplet miners, the in-batch contrastive loss or a cosine BCE head, and
//! writes its artefacts.
//!
//!     cargo run --release --example train_siamese                       # CPU, committed subset
//!     scripts/fetch-mnist.sh && cargo run --release --example train_siamese -- --data data/mnist-full
//!     cargo run --release --features cuda --example train_siamese -- --device cuda
//!
//! Options: --data DIR  --device cpu|cuda[:N]  --epochs N (5)  --loss triplet|contrastive|bce
//!          (triplet: the options below; contrastive: every in-batch pair, Euclidean distance,
//!          --contrastive-margin X (1.0); bce: logit = scale·cos + bias with BCE, each example
//!          paired with 4 positives and 4 negatives of its batch)
//!          --miner semi-hard|semi-hard-anchor|semi-hard-facenet|batch-hard|batch-all (semi-hard:
//!          TensorFlow Addons' rule, every anchor–positive pair with the closest negative farther
//!          than the positive; semi-hard-anchor: one triplet per anchor, the closest negative farther
//!          than its hardest positive)  --metric cosine|euclidean|squared-euclidean (cosine)  --margin X (0.2)
//!          --squared  --lr X (2e-3)  --constant-lr (default: cosine decay to 0 over --epochs)
//!          --p N (8 classes)  --k N (32 per class)  --sizes 784-512-256-128  --seed N (1)
//!          --out DIR (runs/siamese)  --resume (continue the run in --out up to --epochs; every
//!          other setting comes from its checkpoint, and its cosine schedule is stretched over
//!          --epochs when that differs)  --gemm-tuning heuristic|measure|measure-all (CUDA: how
//!          GemmKernel::Auto picks each layer's GEMM kernel; see latentkit::ops::gemm::tune)
//!          --gemm-tuning-file FILE (CUDA: measured choices loaded from FILE when it exists and
//!          saved to it before every checkpoint and at the end, so that --resume runs the same
//!          kernels; tuning/README.md)
//!          --gemm-exclude VERSION,... (CUDA: GEMM versions that measuring leaves out, e.g. those
//!          whose tests failed on this machine)
//!
//! Writes into --out: metrics.csv (per epoch: loss, active fraction, mean d_ap / d_an, collapse
//! fraction, precision@1, R-precision, MAP@R of test queries against train references, pair
//! accuracy and ROC-AUC on 10,000 balanced test pairs with the threshold picked on training pairs),
//! embeddings.png (2-D PCA of test embeddings coloured by class), test_embeddings.npy,
//! vectors.tsv + metadata.tsv (for embedding projectors), model.safetensors (the weights, plus
//! head.scale, head.bias for the BCE head) and trainer.safetensors (to resume: the weights again,
//! the optimizer state, counters and the batch sampler's position), both after every epoch. A
//! non-finite loss stops training with the last epoch's checkpoint intact.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use latentkit::data::Mnist;
use latentkit::eval::pca_2d;
use latentkit::io::{save_npy_f32, save_projector_tsv, save_scatter, write_file_atomic};
use latentkit::ops::gemm::GemmTuning;
use latentkit::ops::mining::TripletConfig;
use latentkit::train::{MetricEpochRecord, MetricTrainConfig, MetricTrainer, TRAINER_FILE};
use latentkit::{Backend, CpuBackend, CudaBackend, Device, Error};

struct Args {
    data: Option<PathBuf>,
    device: Device,
    epochs: usize,
    cfg: MetricTrainConfig,
    out: PathBuf,
    resume: bool,
    /// How the CUDA GEMMs' kernels are picked (`--gemm-tuning`; default: Measure with a tuning
    /// file, else Heuristic).
    gemm_tuning: Option<GemmTuning>,
    /// `--gemm-tuning-file`: measured choices loaded before training, saved before every
    /// checkpoint and at the end.
    gemm_tuning_file: Option<PathBuf>,
    /// `--gemm-exclude`: versions that measuring leaves out.
    gemm_exclude: Vec<latentkit::ops::gemm::GemmKernel>,
}

/// The `--loss` choice before the loss-specific flags are folded in.
enum LossFlag {
    Triplet,
    Contrastive,
    Bce,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: None,
        device: Device::Cpu,
        epochs: 5,
        cfg: MetricTrainConfig::default(),
        out: PathBuf::from("runs/siamese"),
        resume: false,
        gemm_tuning: None,
        gemm_tuning_file: None,
        gemm_exclude: Vec::new(),
    };
    let mut lr_decay = true;
    let mut loss = LossFlag::Triplet;
    let mut triplet: TripletConfig = *a.cfg.loss.triplet().ok_or("the default loss is the triplet loss")?;
    let mut contrastive_margin = MetricTrainConfig::CONTRASTIVE_MARGIN;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--squared" => {
                triplet.squared = true;
                continue;
            }
            "--constant-lr" => {
                lr_decay = false;
                continue;
            }
            "--resume" => {
                a.resume = true;
                continue;
            }
            "-h" | "--help" => {
                println!("see the header of examples/train_siamese.rs for the options");
                std::process::exit(0);
            }
            _ => {}
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
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
            "--margin" => triplet.margin = float()?,
            "--contrastive-margin" => contrastive_margin = float()?,
            "--lr" => a.cfg.adam.lr = float()?,
            "--p" => a.cfg.p = int()?,
            "--k" => a.cfg.k = int()?,
            "--seed" => a.cfg.seed = int()? as u64,
            "--out" => a.out = PathBuf::from(&v),
            "--sizes" => {
                a.cfg.sizes = v.split('-').map(|s| s.parse::<usize>().map_err(|e| bad(&e))).collect::<Result<_, _>>()?
            }
            "--loss" => {
                loss = match v.as_str() {
                    "triplet" => LossFlag::Triplet,
                    "contrastive" => LossFlag::Contrastive,
                    "bce" => LossFlag::Bce,
                    _ => return Err(bad(&"expected triplet, contrastive or bce")),
                }
            }
            "--metric" => triplet.metric = v.parse().map_err(|e: Error| bad(&e))?,
            "--miner" => triplet.miner = v.parse().map_err(|e: Error| bad(&e))?,
            _ => return Err(format!("unknown option {flag:?} (try --help)")),
        }
    }
    a.cfg.loss = match loss {
        LossFlag::Triplet => MetricTrainConfig::triplet(triplet).loss,
        LossFlag::Contrastive => MetricTrainConfig::contrastive(contrastive_margin).loss,
        LossFlag::Bce => MetricTrainConfig::bce_head().loss,
    };
    a.cfg.lr_decay_epochs = if lr_decay { a.epochs } else { 0 };
    Ok(a)
}

const METRICS_HEADER: &str = "epoch,step,loss,active_fraction,mean_d_ap,mean_d_an,collapse_fraction,precision_at_1,r_precision,map_at_r,pair_accuracy,pair_auc,pair_threshold,seconds";

fn metrics_row(r: &MetricEpochRecord) -> String {
    format!(
        "{},{},{:.5},{:.4},{:.4},{:.4},{:.5},{:.4},{:.4},{:.4},{:.4},{:.5},{:.5},{:.2}",
        r.epoch,
        r.step,
        r.loss,
        r.active_fraction,
        r.mean_d_ap,
        r.mean_d_an,
        r.collapse_fraction,
        r.retrieval.precision_at_1,
        r.retrieval.r_precision,
        r.retrieval.map_at_r,
        r.pair_accuracy,
        r.pair_auc,
        r.pair_threshold,
        r.seconds
    )
}

/// The rows of an earlier metrics.csv for epochs up to `epoch` (those the checkpoint holds).
fn earlier_rows(path: &std::path::Path, epoch: usize) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .skip(1)
        .filter(|l| l.split(',').next().and_then(|e| e.parse::<usize>().ok()).is_some_and(|e| e <= epoch))
        .map(String::from)
        .collect()
}

/// `before_checkpoint` runs before every checkpoint is written (CUDA: saves the GEMM choices, so
/// that a run killed later resumes with the kernels that trained it).
fn run<B: Backend>(b: &B, args: &Args, before_checkpoint: &dyn Fn() -> latentkit::Result<()>) -> latentkit::Result<()> {
    let data = match &args.data {
        Some(dir) => Mnist::load(dir)?,
        None => Mnist::committed_subset()?,
    };
    std::fs::create_dir_all(&args.out).map_err(|e| Error::Io { path: args.out.clone(), offset: 0, source: e })?;
    let train_labels: Vec<u32> = data.train.labels.iter().map(|&l| u32::from(l)).collect();
    let metrics_path = args.out.join("metrics.csv");
    let (mut t, mut rows) = if args.resume {
        let mut t = MetricTrainer::resume(b, &args.out, &train_labels)?;
        println!("resumed from {} at epoch {}, step {}", args.out.join(TRAINER_FILE).display(), t.epoch, t.step);
        // Past its epochs the schedule's rate is 0: a longer run stretches it instead.
        if t.cfg.lr_decay_epochs > 0 && t.cfg.lr_decay_epochs != args.epochs {
            println!(
                "note: the cosine learning-rate schedule decayed over {} epochs; it now decays over --epochs {}",
                t.cfg.lr_decay_epochs, args.epochs
            );
            t.cfg.lr_decay_epochs = args.epochs;
        }
        let rows = earlier_rows(&metrics_path, t.epoch);
        (t, rows)
    } else {
        (MetricTrainer::new(b, args.cfg.clone(), &train_labels)?, Vec::new())
    };
    let c = &t.cfg;
    let loss = match (c.loss.triplet(), c.loss.contrastive_margin()) {
        (Some(tr), _) => format!(
            "triplet {} {} margin {}{}",
            tr.miner.label(),
            tr.metric.label(),
            tr.margin,
            if tr.squared { " (squared)" } else { "" }
        ),
        (None, Some(m)) => format!("contrastive over all in-batch pairs, Euclidean, margin {m}"),
        (None, None) => format!(
            "BCE head (logit = scale·cos + bias, init {} / {}), {} positive and {} negative pairs per example",
            MetricTrainConfig::HEAD_INIT_SCALE,
            MetricTrainConfig::HEAD_INIT_BIAS,
            MetricTrainConfig::BCE_PAIRS_PER_EXAMPLE,
            MetricTrainConfig::BCE_PAIRS_PER_EXAMPLE
        ),
    };
    println!(
        "embedding net {:?} on {}: {} train / {} test images, batches {}×{}, {loss}, Adam lr {}",
        c.sizes,
        b.device(),
        data.train.len(),
        data.test.len(),
        c.p,
        c.k,
        c.adam.lr
    );
    let style =
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]")
            .map_err(|e| Error::InvalidArgument { op: "progress bar", msg: e.to_string() })?;
    while t.epoch < args.epochs {
        let bar = ProgressBar::new(0).with_style(style.clone());
        bar.set_prefix(format!("{}/{}", t.epoch + 1, args.epochs));
        let rec = t.run_epoch(b, &data.train, &data.test, |s, steps, st| {
            bar.set_length(steps as u64);
            bar.set_position(s as u64 + 1);
            if s % 10 == 0 {
                bar.set_message(format!("loss {:.4} active {:.2}", st.loss, st.active_fraction));
            }
        });
        bar.finish_and_clear();
        // On error (a non-finite loss included) nothing below runs: the last checkpoint stays.
        let rec = rec?;
        println!(
            "epoch {:>2}: loss {:.4} (active {:.3}, d_ap {:.3}, d_an {:.3}) | test p@1 {:.4}, R-precision {:.4}, MAP@R {:.4} | pairs acc {:.4}, ROC-AUC {:.5} | {:.1} s",
            rec.epoch,
            rec.loss,
            rec.active_fraction,
            rec.mean_d_ap,
            rec.mean_d_an,
            rec.retrieval.precision_at_1,
            rec.retrieval.r_precision,
            rec.retrieval.map_at_r,
            rec.pair_accuracy,
            rec.pair_auc,
            rec.seconds
        );
        // Metrics first: a crash between the two leaves a row past the checkpoint, which a resumed
        // run drops, rather than a checkpoint without its row.
        rows.push(metrics_row(&rec));
        write_file_atomic(&metrics_path, format!("{METRICS_HEADER}\n{}\n", rows.join("\n")).as_bytes())?;
        // The GEMM choices first: a checkpoint is never on disk without the kernels that made it.
        before_checkpoint()?;
        t.save(b, &args.out)?;
    }

    let emb = t.embed(b, &data.test)?;
    let dim = t.net().out_features();
    let labels: Vec<u32> = data.test.labels.iter().map(|&l| u32::from(l)).collect();
    save_npy_f32(&args.out.join("test_embeddings.npy"), &emb, &[data.test.len(), dim])?;
    save_projector_tsv(&args.out.join("vectors.tsv"), &args.out.join("metadata.tsv"), &emb, dim, &labels)?;
    let shown = 3000.min(data.test.len());
    let points = pca_2d(&emb[..shown * dim], dim)?;
    save_scatter(
        &args.out.join("embeddings.png"),
        "TEST EMBEDDINGS (PCA)",
        &points,
        &data.test.labels[..shown],
        720,
        720,
    )?;
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
