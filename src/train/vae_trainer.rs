//! The VAE training loop: epochs over a dataset in shuffled batches, evaluation on a test split,
//! and checkpoints that resume exactly (model weights under PyTorch's names in `model.safetensors`,
//! optimizer moments, step counters and noise offset in `trainer.safetensors`, each written
//! atomically).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::Adam;
use crate::backend::Backend;
use crate::data::MnistSplit;
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint, save_checkpoint};
use crate::nn::{KlSchedule, Likelihood, StepStats, Vae, VaeConfig};
use crate::ops::AdamConfig;
use crate::rng::{permutation, seeded};
use crate::tensor::Tensor;

pub const MODEL_FILE: &str = "model.safetensors";
pub const TRAINER_FILE: &str = "trainer.safetensors";

/// Optimisation settings.
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

pub struct VaeTrainer<B: Backend> {
    pub vae: Vae<B>,
    pub opt: Adam<B>,
    pub cfg: VaeTrainConfig,
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
        let mut vae = Vae::new(b, model, &mut seeded(cfg.seed))?;
        let opt = Adam::new(b, &vae.params_mut(), cfg.adam)?;
        Ok(Self {
            vae,
            opt,
            cfg,
            epoch: 0,
            step: 0,
            x: Tensor::zeros(b, &[cfg.batch, model.input])?,
            host_batch: vec![0.0; cfg.batch * model.input],
        })
    }

    /// Trains one epoch over `train` (shuffled, the last partial batch dropped) and evaluates on
    /// `test`. `on_step(i, steps, stats)` is called after every step (progress reporting).
    pub fn run_epoch(
        &mut self,
        b: &B,
        train: &MnistSplit,
        test: &MnistSplit,
        mut on_step: impl FnMut(usize, usize, &StepStats),
    ) -> Result<EpochRecord> {
        let dim = self.vae.config().input;
        if train.dim() != dim || test.dim() != dim {
            return Err(Error::shape(
                "VaeTrainer::run_epoch",
                format!("images have {} pixels, the model takes {dim}", train.dim()),
            ));
        }
        let batch = self.cfg.batch;
        let steps = train.len() / batch;
        if steps == 0 {
            return Err(Error::invalid(
                "VaeTrainer::run_epoch",
                format!("batch {batch} exceeds the {} training images", train.len()),
            ));
        }
        let t0 = Instant::now();
        // Seeded by epoch, so a resumed run sees the same order as an uninterrupted one.
        let order = permutation(
            &mut seeded(self.cfg.seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(self.epoch as u64 + 1))),
            train.len(),
        );
        let mut sum = [0.0f64; 3];
        for s in 0..steps {
            for (row, &i) in order[s * batch..(s + 1) * batch].iter().enumerate() {
                self.host_batch[row * dim..(row + 1) * dim].copy_from_slice(&train.images[i * dim..(i + 1) * dim]);
            }
            self.x.copy_from_slice(b, &self.host_batch)?;
            let st = self.vae.train_step(b, &self.x, &mut self.opt, &self.cfg.kl, self.step)?;
            self.step += 1;
            for (acc, v) in sum.iter_mut().zip([st.loss, st.recon, st.kl]) {
                *acc += f64::from(v);
            }
            on_step(s, steps, &st);
        }
        let mean = |i: usize| (sum[i] / steps as f64) as f32;
        let train_stats = StepStats { loss: mean(0), recon: mean(1), kl: mean(2) };
        let test_stats = self.evaluate(b, test)?;
        self.epoch += 1;
        Ok(EpochRecord {
            epoch: self.epoch,
            step: self.step,
            train: train_stats,
            test: test_stats,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// One-sample −ELBO terms averaged over a split (batches of up to 500; the last may be
    /// smaller).
    pub fn evaluate(&mut self, b: &B, split: &MnistSplit) -> Result<StepStats> {
        let dim = split.dim();
        let chunk = 500.min(split.len()).max(1);
        let (mut recon, mut kl) = (0.0f64, 0.0f64);
        for start in (0..split.len()).step_by(chunk) {
            let n = chunk.min(split.len() - start);
            let x = Tensor::from_slice(b, &[n, dim], &split.images[start * dim..(start + n) * dim])?;
            let st = self.vae.evaluate(b, &x)?;
            recon += f64::from(st.recon) * n as f64;
            kl += f64::from(st.kl) * n as f64;
        }
        let n = split.len().max(1) as f64;
        let (recon, kl) = ((recon / n) as f32, (kl / n) as f32);
        Ok(StepStats { loss: recon + kl, recon, kl })
    }

    /// Mean importance-weighted bound on log p(x) over a split (nats per example; negate for the
    /// bound on −log p(x)).
    pub fn iwae(&mut self, b: &B, split: &MnistSplit, k: usize) -> Result<f64> {
        let dim = split.dim();
        let chunk = 500.min(split.len()).max(1);
        let mut total = 0.0f64;
        for start in (0..split.len()).step_by(chunk) {
            let n = chunk.min(split.len() - start);
            let x = Tensor::from_slice(b, &[n, dim], &split.images[start * dim..(start + n) * dim])?;
            total += self.vae.iwae_bound(b, &x, k)?.iter().sum::<f64>();
        }
        Ok(total / split.len().max(1) as f64)
    }

    /// Writes `model.safetensors` (the weights only, PyTorch names and layout, loadable by the
    /// classic PyTorch VAE) and `trainer.safetensors` (everything needed to resume) into `dir`,
    /// each atomically: a crash mid-write leaves the previous checkpoint intact.
    pub fn save(&self, b: &B, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), offset: 0, source: e })?;
        let c = self.vae.config();
        let mut meta = BTreeMap::new();
        meta.insert("format".into(), "latentkit-vae".into());
        meta.insert("input".into(), c.input.to_string());
        meta.insert("hidden".into(), c.hidden.to_string());
        meta.insert("latent".into(), c.latent.to_string());
        meta.insert("likelihood".into(), format!("{:?}", c.likelihood).to_lowercase());
        meta.insert("epoch".into(), self.epoch.to_string());
        save_checkpoint(&dir.join(MODEL_FILE), &self.vae.state_dict(b)?, &meta)?;
        let state = self.opt.state_dict(b, &self.vae.params())?;
        let offset = self.vae.noise_offset(b)?;
        meta.insert("step".into(), self.step.to_string());
        meta.insert("noise_offset".into(), offset.to_string());
        meta.insert("noise_seed".into(), c.noise_seed.to_string());
        meta.insert("seed".into(), self.cfg.seed.to_string());
        save_checkpoint(&dir.join(TRAINER_FILE), &state, &meta)
    }

    /// Restores a trainer saved by [`VaeTrainer::save`]; the model shape, likelihood and noise
    /// seed come from the checkpoint, the optimisation settings from `cfg`.
    pub fn resume(b: &B, dir: &Path, cfg: VaeTrainConfig) -> Result<Self> {
        let (weights, _) = load_checkpoint(&dir.join(MODEL_FILE))?;
        let trainer_path = dir.join(TRAINER_FILE);
        let (state, meta) = load_checkpoint(&trainer_path)?;
        let get = |key: &str| -> Result<u64> {
            meta.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| Error::Format {
                path: trainer_path.clone(),
                offset: 0,
                msg: format!("metadata field {key:?} missing or not a number"),
            })
        };
        let likelihood = match meta.get("likelihood").map(String::as_str) {
            Some("gaussian") => Likelihood::Gaussian,
            _ => Likelihood::Bernoulli,
        };
        let model = VaeConfig {
            input: get("input")? as usize,
            hidden: get("hidden")? as usize,
            latent: get("latent")? as usize,
            likelihood,
            noise_seed: get("noise_seed")?,
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
