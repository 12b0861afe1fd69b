//! The VAE training loop: epochs over a dataset in shuffled batches, evaluation on a test split,
//! and checkpoints that resume exactly (`trainer.safetensors`: weights, optimizer moments, step
//! counters, noise offset and seeds, the training settings, written atomically;
//! `model.safetensors`: the weights under PyTorch's names, for export).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::{meta_field, parse_adam, record_adam, Adam, Meta, MODEL_FILE, TRAINER_FILE, WEIGHTS_PREFIX};
use crate::backend::cpu::host_vec;
use crate::backend::{Backend, ReplayGraph};
use crate::data::MnistSplit;
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint, save_checkpoint, NamedTensor};
use crate::nn::{checkpoint_sizes, sizes_label, KlSchedule, Likelihood, StepStats, Vae, VaeConfig};
use crate::ops::AdamConfig;
use crate::rng::{permutation, seeded};
use crate::tensor::Tensor;

/// An empty split has no mean: an error rather than a 0 that reads as a result.
fn non_empty(op: &'static str, split: &MnistSplit) -> Result<()> {
    if split.is_empty() {
        return Err(Error::invalid(op, "the split holds no images"));
    }
    Ok(())
}

/// A likelihood as the checkpoints record it.
fn likelihood_label(l: Likelihood) -> &'static str {
    match l {
        Likelihood::Bernoulli => "bernoulli",
        Likelihood::Gaussian => "gaussian",
    }
}

/// Optimisation settings. `adam` builds the optimizer; from then on Adam's settings are the
/// optimizer's (`opt.cfg`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VaeTrainConfig {
    pub batch: usize,
    pub adam: AdamConfig,
    pub kl: KlSchedule,
    /// Seed of the initialisation and of the per-epoch shuffles.
    pub seed: u64,
}

impl Default for VaeTrainConfig {
    fn default() -> Self {
        Self { batch: 128, adam: AdamConfig::default(), kl: KlSchedule::default(), seed: 1 }
    }
}

/// One epoch's record, per-example means in nats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    pub step: u64,
    pub train: StepStats,
    pub test: StepStats,
    pub seconds: f64,
}

/// How an epoch runs its steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StepMode {
    /// Batches copied from the host; the loss is read back every step and checked before the
    /// update, so a non-finite loss stops training with the parameters untouched.
    #[default]
    Checked,
    /// The dataset stays on the device, batches are gathered there, and the whole step (gather,
    /// forward, objective, backward, Adam, noise and cursor advance) is captured once as a CUDA
    /// graph and replayed; backends without graphs run the same queued step directly. The loss
    /// sums are read at the end of the epoch, where a non-finite value stops training (before the
    /// epoch's checkpoint is written, so the last good one stays).
    Resident,
}

/// The training images on the device, an epoch's order and the batch cursor.
struct Resident<B: Backend> {
    images: Tensor<B>,
    index: Tensor<B, u32>,
    cursor: Tensor<B, u32>,
}

pub struct VaeTrainer<B: Backend> {
    /// Declared first so it is dropped before the buffers its kernels point into.
    graph: Option<Box<dyn ReplayGraph>>,
    resident: Option<Resident<B>>,
    vae: Vae<B>,
    opt: Adam<B>,
    cfg: VaeTrainConfig,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimisation steps taken.
    pub step: u64,
    x: Tensor<B>,
    host_batch: Vec<f32>,
}

impl<B: Backend> VaeTrainer<B> {
    pub fn new(b: &B, model: VaeConfig, cfg: VaeTrainConfig) -> Result<Self> {
        if cfg.batch == 0 {
            return Err(Error::invalid("VaeTrainer", "batch must be ≥ 1"));
        }
        // (Checked by every step too; here a bad schedule fails before the first epoch.)
        cfg.kl.validate()?;
        let input = model.input;
        let mut vae = Vae::new(b, model, &mut seeded(cfg.seed))?;
        let opt = Adam::new(b, &vae.params_mut(), cfg.adam)?;
        Ok(Self {
            graph: None,
            resident: None,
            vae,
            opt,
            cfg,
            epoch: 0,
            step: 0,
            // Sized by the first epoch, once the batch is known to fit the data: a batch read from
            // a checkpoint allocates nothing before that.
            x: Tensor::zeros(b, &[0, input])?,
            host_batch: Vec::new(),
        })
    }

    /// The model (read-only: the captured graph stays valid).
    pub fn vae(&self) -> &Vae<B> {
        &self.vae
    }

    /// The model, mutable. A captured step graph points at the model's buffers and bakes in its
    /// settings, so it is dropped here and captured again by the next resident epoch.
    pub fn vae_mut(&mut self) -> &mut Vae<B> {
        self.graph = None;
        &mut self.vae
    }

    pub fn opt(&self) -> &Adam<B> {
        &self.opt
    }

    /// The optimizer, mutable (e.g. to change the learning rate); drops the captured graph.
    pub fn opt_mut(&mut self) -> &mut Adam<B> {
        self.graph = None;
        &mut self.opt
    }

    pub fn cfg(&self) -> &VaeTrainConfig {
        &self.cfg
    }

    /// The training settings, mutable; drops the captured graph. The batch, the KL schedule and
    /// the seed apply from the next epoch; `adam` only built the optimizer: Adam's settings change
    /// through [`VaeTrainer::opt_mut`].
    pub fn cfg_mut(&mut self) -> &mut VaeTrainConfig {
        self.graph = None;
        &mut self.cfg
    }

    /// Trains one epoch over `train` (shuffled, the last partial batch dropped) and evaluates on
    /// `test`. `on_step(i, steps, stats)` is called after every step (progress reporting); the
    /// step's stats are there in [`StepMode::Checked`] only.
    pub fn run_epoch(
        &mut self,
        b: &B,
        train: &MnistSplit,
        test: &MnistSplit,
        mode: StepMode,
        mut on_step: impl FnMut(usize, usize, Option<&StepStats>),
    ) -> Result<EpochRecord> {
        train.validate()?;
        test.validate()?;
        let dim = self.vae.config().input;
        if train.dim() != dim || test.dim() != dim {
            return Err(Error::shape(
                "VaeTrainer::run_epoch",
                format!("images have {} pixels, the model takes {dim}", train.dim()),
            ));
        }
        // (Checked here too: found empty only after the epoch's steps, it would cost the epoch.)
        non_empty("VaeTrainer::run_epoch", test)?;
        let batch = self.cfg.batch;
        if batch == 0 {
            return Err(Error::invalid("VaeTrainer::run_epoch", "batch must be ≥ 1"));
        }
        let steps = train.len() / batch;
        if steps == 0 {
            return Err(Error::invalid(
                "VaeTrainer::run_epoch",
                format!("batch {batch} exceeds the {} training images", train.len()),
            ));
        }
        if self.x.shape() != [batch, dim] || self.host_batch.len() != batch * dim {
            // The first epoch, or the batch size (cfg_mut) or model (vae_mut) changed, both of
            // which dropped the graph: new batch buffers, both allocated before either is
            // replaced, so a failed allocation leaves the old pair.
            self.graph = None;
            let x = Tensor::zeros(b, &[batch, dim])?;
            self.host_batch = host_vec("VaeTrainer::run_epoch", batch * dim, 0.0)?;
            self.x = x;
        }
        let t0 = Instant::now();
        // Seeded by epoch, so a resumed run sees the same order as an uninterrupted one.
        let order = permutation(
            &mut seeded(self.cfg.seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul((self.epoch as u64).wrapping_add(1)))),
            train.len(),
        );
        // The running sums on the device restart each epoch.
        self.vae.take_running_stats(b)?;
        match mode {
            StepMode::Checked => {
                for s in 0..steps {
                    for (row, &i) in order[s * batch..(s + 1) * batch].iter().enumerate() {
                        self.host_batch[row * dim..(row + 1) * dim]
                            .copy_from_slice(&train.images[i * dim..(i + 1) * dim]);
                    }
                    self.x.copy_from_slice(b, &self.host_batch)?;
                    let st = self.vae.train_step(b, &self.x, &mut self.opt, &self.cfg.kl, self.step)?;
                    self.step = self.step.saturating_add(1);
                    on_step(s, steps, Some(&st));
                }
            }
            StepMode::Resident => {
                self.load_resident(b, train, &order)?;
                for s in 0..steps {
                    self.resident_step(b)?;
                    self.step = self.step.saturating_add(1);
                    on_step(s, steps, None);
                }
            }
        }
        let sums = self.vae.take_running_stats(b)?;
        let n = steps as f32;
        let train_stats = StepStats { loss: sums.loss / n, recon: sums.recon / n, kl: sums.kl / n };
        if let Some(bad) = train_stats.first_non_finite() {
            return Err(Error::NonFiniteLoss { step: self.step, value: bad });
        }
        // The epoch's last update, on the weights and (below) on the test loss.
        super::check_params_finite(b, self.vae.params(), self.step)?;
        let test_stats = self.evaluate(b, test)?;
        if let Some(bad) = test_stats.first_non_finite() {
            return Err(Error::NonFiniteLoss { step: self.step, value: bad });
        }
        self.epoch = self.epoch.saturating_add(1);
        Ok(EpochRecord {
            epoch: self.epoch,
            step: self.step,
            train: train_stats,
            test: test_stats,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Puts the training images, this epoch's order and a rewound cursor on the device. The
    /// images are copied every epoch into the same buffers (so the graph's pointers stay valid and
    /// a different split of the same size is never mistaken for the old one); new buffers, and a
    /// new capture, only when the size changes.
    fn load_resident(&mut self, b: &B, train: &MnistSplit, order: &[usize]) -> Result<()> {
        let dim = train.dim();
        let shape = [train.len(), dim];
        match self.resident.as_mut() {
            Some(r) if r.images.shape() == shape => r.images.copy_from_slice(b, &train.images)?,
            _ => {
                // The graph points into the old buffers: drop it before they go.
                self.graph = None;
                self.resident = Some(Resident {
                    images: Tensor::from_slice(b, &shape, &train.images)?,
                    index: Tensor::zeros(b, &[train.len()])?,
                    cursor: Tensor::zeros(b, &[1])?,
                });
            }
        }
        let r = self.resident.as_mut().ok_or_else(|| Error::invalid("VaeTrainer", "resident data missing"))?;
        let order: Vec<u32> = order.iter().map(|&i| i as u32).collect();
        r.index.copy_from_slice(b, &order)?;
        r.cursor.copy_from_slice(b, &[0])
    }

    /// One device-resident step: a graph replay where the backend has graphs (captured on first
    /// use), the same queued launches otherwise.
    fn resident_step(&mut self, b: &B) -> Result<()> {
        if let Some(g) = &self.graph {
            return g.replay();
        }
        self.vae.prepare(b, self.cfg.batch)?;
        let Self { resident, vae, opt, x, cfg, graph, .. } = self;
        let r = resident.as_mut().ok_or_else(|| Error::invalid("VaeTrainer", "resident data missing"))?;
        if b.measures_kernel_choices() {
            // Measure on this step's batch now: the capture below can't.
            crate::ops::batch::gather_rows(b, &r.images, &r.index, &r.cursor, x)?;
            vae.prime(b, x, &cfg.kl, opt.step_state())?;
        }
        let mut step = || -> Result<()> {
            crate::ops::batch::gather_rows(b, &r.images, &r.index, &r.cursor, x)?;
            vae.train_step_queued(b, x, opt, &cfg.kl)?;
            crate::ops::batch::counter_add(b, &mut r.cursor, 1)
        };
        // SAFETY: the step only queues kernels (buffers were prepared above, nothing is read back);
        // every buffer it touches belongs to this trainer (model, buffer sets that are never freed,
        // optimizer state, resident data, batch tensor), which hands out mutable access to them
        // only through vae_mut / opt_mut / cfg_mut, and those drop the graph; run_epoch drops it
        // before replacing the batch tensor, load_resident before replacing the resident data;
        // and field order drops it before the buffers.
        match unsafe { b.capture_graph(&mut step)? } {
            Some(g) => {
                g.replay()?;
                *graph = Some(g);
                Ok(())
            }
            None => step(),
        }
    }

    /// One-sample −ELBO terms averaged over a split (batches of up to 500; the last may be
    /// smaller).
    pub fn evaluate(&mut self, b: &B, split: &MnistSplit) -> Result<StepStats> {
        non_empty("VaeTrainer::evaluate", split)?;
        let (mut recon, mut kl) = (0.0f64, 0.0f64);
        for (n, pixels) in split.image_chunks(500) {
            let x = Tensor::from_slice(b, &[n, split.dim()], pixels)?;
            let st = self.vae.evaluate(b, &x)?;
            recon += f64::from(st.recon) * n as f64;
            kl += f64::from(st.kl) * n as f64;
        }
        let n = split.len() as f64;
        let (recon, kl) = ((recon / n) as f32, (kl / n) as f32);
        Ok(StepStats { loss: recon + kl, recon, kl })
    }

    /// Mean importance-weighted bound on log p(x) over a split (nats per example; negate for the
    /// bound on −log p(x)).
    pub fn iwae(&mut self, b: &B, split: &MnistSplit, k: usize) -> Result<f64> {
        non_empty("VaeTrainer::iwae", split)?;
        let mut total = 0.0f64;
        for (n, pixels) in split.image_chunks(500) {
            let x = Tensor::from_slice(b, &[n, split.dim()], pixels)?;
            total += self.vae.iwae_bound(b, &x, k)?.iter().sum::<f64>();
        }
        Ok(total / split.len() as f64)
    }

    /// Writes `trainer.safetensors` (everything needed to resume: the weights under `model.`,
    /// the optimizer moments, counters, noise offset, sizes and the settings the trainer runs:
    /// batch, Adam's (the optimizer's own), the KL schedule and the seed) and then `model.safetensors`
    /// (the weights only, PyTorch names and layout, loadable by the classic PyTorch VAE) into
    /// `dir`, each atomically. [`VaeTrainer::resume`] reads the trainer file alone, so a crash at
    /// any point leaves a consistent checkpoint to resume from: the previous one, or the new one
    /// with `model.safetensors` one save behind.
    pub fn save(&self, b: &B, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), offset: 0, source: e })?;
        let c = self.vae.config();
        let mut meta = BTreeMap::new();
        meta.insert("format".into(), "latentkit-vae".into());
        meta.insert("input".into(), c.input.to_string());
        // "400" for the classic model, "512,256" for two hidden layers.
        meta.insert("hidden".into(), c.hidden_label());
        meta.insert("latent".into(), c.latent.to_string());
        meta.insert("likelihood".into(), likelihood_label(c.likelihood).into());
        meta.insert("epoch".into(), self.epoch.to_string());
        meta.insert("step".into(), self.step.to_string());
        let weights = self.vae.state_dict(b)?;
        let mut state: Vec<NamedTensor> =
            weights.iter().map(|t| NamedTensor { name: format!("{WEIGHTS_PREFIX}{}", t.name), ..t.clone() }).collect();
        state.extend(self.opt.state_dict(b, &self.vae.params())?);
        let mut trainer_meta = meta.clone();
        trainer_meta.insert("noise_offset".into(), self.vae.noise_offset(b)?.to_string());
        trainer_meta.insert("noise_seed".into(), c.noise_seed.to_string());
        record_settings(&self.running_config(), &mut trainer_meta);
        save_checkpoint(&dir.join(TRAINER_FILE), &state, &trainer_meta)?;
        save_checkpoint(&dir.join(MODEL_FILE), &weights, &meta)
    }

    /// The settings this trainer runs: `cfg` with the optimizer's own (changed through
    /// [`VaeTrainer::opt_mut`], say) in place of `cfg.adam`.
    fn running_config(&self) -> VaeTrainConfig {
        VaeTrainConfig { adam: self.opt.cfg, ..self.cfg }
    }

    /// Restores a trainer saved by [`VaeTrainer::save`] from `trainer.safetensors`, so that the
    /// next epochs are those an uninterrupted run would have trained (bit for bit on the CPU; on
    /// CUDA as far as the GEMM kernels chosen are the same, see
    /// [`crate::ops::gemm::GemmKernel::Auto`]). Everything comes from the checkpoint: the model's
    /// sizes (the hidden layers included), likelihood and noise seed, and the training settings
    /// (batch, Adam's settings, the KL schedule, the shuffle seed); change them afterwards through
    /// [`VaeTrainer::cfg_mut`] (Adam's through [`VaeTrainer::opt_mut`]) to train on differently.
    /// The recorded sizes must be those of the saved weights (checked before anything is
    /// allocated). Checkpoints saved before the settings were recorded are refused with a
    /// format error: [`VaeTrainer::resume_with_settings`] resumes them.
    pub fn resume(b: &B, dir: &Path) -> Result<Self> {
        Self::restore(b, dir, None)
    }

    /// [`VaeTrainer::resume`] with the batch, Adam's settings and the KL schedule taken from
    /// `cfg` rather than the checkpoint (the shuffle seed still comes from the checkpoint, which
    /// an exact continuation needs). It resumes checkpoints saved before the settings were
    /// recorded, including those whose weights are only in `model.safetensors`, which must then
    /// record the trainer file's epoch (and its step, where it records one).
    pub fn resume_with_settings(b: &B, dir: &Path, cfg: VaeTrainConfig) -> Result<Self> {
        Self::restore(b, dir, Some(cfg))
    }

    fn restore(b: &B, dir: &Path, settings: Option<VaeTrainConfig>) -> Result<Self> {
        let trainer_path = dir.join(TRAINER_FILE);
        let (state, meta) = load_checkpoint(&trainer_path)?;
        let format = |path: &Path, msg: String| Error::Format { path: path.to_path_buf(), offset: 0, msg };
        let get = |key: &str| -> Result<u64> { meta_field(&meta, key).map_err(|m| format(&trainer_path, m)) };
        let (weights, state): (Vec<NamedTensor>, Vec<NamedTensor>) =
            state.into_iter().partition(|t| t.name.starts_with(WEIGHTS_PREFIX));
        let weights = if weights.is_empty() {
            let model_path = dir.join(MODEL_FILE);
            let (weights, model_meta) = load_checkpoint(&model_path)?;
            // Older saves recorded the epoch in both files and the step in the trainer file only.
            for key in ["epoch", "step"] {
                let (m, t) = (model_meta.get(key), meta.get(key));
                if (key == "epoch" || m.is_some()) && m != t {
                    return Err(format(
                        &model_path,
                        format!(
                            "{key} {} here but {} in {TRAINER_FILE}: the two files come from different saves",
                            m.map_or("?", String::as_str),
                            t.map_or("?", String::as_str)
                        ),
                    ));
                }
            }
            weights
        } else {
            weights.into_iter().map(|t| NamedTensor { name: t.name[WEIGHTS_PREFIX.len()..].to_string(), ..t }).collect()
        };
        let likelihood = match meta.get("likelihood").map(String::as_str) {
            Some(l) if l == likelihood_label(Likelihood::Bernoulli) => Likelihood::Bernoulli,
            Some(l) if l == likelihood_label(Likelihood::Gaussian) => Likelihood::Gaussian,
            other => {
                return Err(format(
                    &trainer_path,
                    format!("metadata field \"likelihood\" is {other:?}; expected \"bernoulli\" or \"gaussian\""),
                ))
            }
        };
        let hidden =
            meta.get("hidden").ok_or_else(|| format(&trainer_path, "metadata field \"hidden\" missing".into()))?;
        let hidden = VaeConfig::parse_hidden(hidden)
            .map_err(|e| format(&trainer_path, format!("metadata field \"hidden\": {e}")))?;
        let model = VaeConfig {
            input: get("input")? as usize,
            hidden,
            latent: get("latent")? as usize,
            likelihood,
            noise_seed: get("noise_seed")?,
        };
        // The recorded sizes allocate the model: they must be those of weights the file holds.
        let saved = checkpoint_sizes(&weights).map_or_else(|| "no VAE".to_string(), |s| sizes_label(&s));
        if saved != model.sizes_label() {
            return Err(Error::shape(
                "VaeTrainer::resume",
                format!("the checkpoint records a {} VAE but its weights are {saved}", model.sizes_label()),
            ));
        }
        let seed = get("seed")?;
        let cfg = match settings {
            Some(cfg) => VaeTrainConfig { seed, ..cfg },
            None => parse_settings(&meta).map_err(|msg| {
                let older = !meta.contains_key("batch");
                let hint = " (saved before checkpoints recorded the training settings: \
                            VaeTrainer::resume_with_settings takes them from the caller)";
                format(&trainer_path, format!("{msg}{}", if older { hint } else { "" }))
            })?,
        };
        let mut t = Self::new(b, model, cfg)?;
        t.vae.load_state_dict(b, &weights)?;
        t.opt.load_state_dict(b, &t.vae.params(), &state)?;
        t.vae.set_noise_offset(b, get("noise_offset")?)?;
        t.epoch = get("epoch")? as usize;
        t.step = get("step")?;
        Ok(t)
    }
}

/// Records the settings the trainer runs: the batch, Adam's settings, the KL schedule and the
/// shuffle seed.
fn record_settings(cfg: &VaeTrainConfig, meta: &mut Meta) {
    meta.insert("batch".into(), cfg.batch.to_string());
    meta.insert("seed".into(), cfg.seed.to_string());
    meta.insert("kl_beta".into(), cfg.kl.beta.to_string());
    meta.insert("kl_warmup_steps".into(), cfg.kl.warmup_steps.to_string());
    meta.insert("kl_free_bits".into(), cfg.kl.free_bits.to_string());
    record_adam(&cfg.adam, meta);
}

/// The inverse of [`record_settings`]; the message says which field is missing or malformed.
fn parse_settings(meta: &Meta) -> std::result::Result<VaeTrainConfig, String> {
    Ok(VaeTrainConfig {
        batch: meta_field(meta, "batch")?,
        adam: parse_adam(meta)?,
        kl: KlSchedule {
            beta: meta_field(meta, "kl_beta")?,
            warmup_steps: meta_field(meta, "kl_warmup_steps")?,
            free_bits: meta_field(meta, "kl_free_bits")?,
        },
        seed: meta_field(meta, "seed")?,
    })
}
