//! The MLP variational autoencoder of the classic PyTorch example (784-400-20 by default, layer
//! names fc1, fc21, fc22, fc3, fc4, weights [out, in]), with explicit forward and backward over
//! buffers allocated once per batch size.
//!
//! Per example, in nats: `−ELBO = recon(x̂, x) + KL(q(z|x) ‖ N(0, I))`, recon summed over pixels
//! (Bernoulli: BCE with logits; Gaussian: squared error). Training minimises the batch mean of
//! `recon + β_t · KL`, with β_t warmed up linearly over `warmup_steps` and, optionally, free bits:
//! each latent dimension's batch-mean KL counts as at least `free_bits` nats (Kingma et al. 2016),
//! so dimensions under the floor get no KL gradient.

use super::{Likelihood, Linear, Param};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::checkpoint::NamedTensor;
use crate::ops::elementwise::{self, cpu::sigmoid};
use crate::ops::latent::{reparam_kl_bwd, reparam_kl_fwd, vae_objective, KlSchedule, LatentConfig, VAE_STAT_LEN};
use crate::ops::rng::{self, cpu::philox_normal};
use crate::ops::{loss, Activation};
use crate::rng::LkRng;
use crate::tensor::Tensor;
use crate::train::Adam;

/// Sizes, likelihood and noise seed of a [`Vae`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VaeConfig {
    pub input: usize,
    pub hidden: usize,
    pub latent: usize,
    pub likelihood: Likelihood,
    /// Seed of the reparameterization noise (Philox key).
    pub noise_seed: u64,
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self { input: 784, hidden: 400, latent: 20, likelihood: Likelihood::Bernoulli, noise_seed: 0 }
    }
}

/// Batch means of one step, per example in nats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The minimised objective: recon + β_t · KL (with free bits).
    pub loss: f32,
    pub recon: f32,
    pub kl: f32,
}

impl StepStats {
    /// The first of loss, recon, KL that is not finite (what the non-finite checks report).
    pub fn first_non_finite(&self) -> Option<f32> {
        [self.loss, self.recon, self.kl].into_iter().find(|v| !v.is_finite())
    }

    /// −ELBO = recon + KL.
    pub fn neg_elbo(&self) -> f32 {
        self.recon + self.kl
    }
}

struct Buffers<B: Backend> {
    batch: usize,
    h1: Tensor<B>,
    mu: Tensor<B>,
    logvar: Tensor<B>,
    z: Tensor<B>,
    kl_row: Tensor<B>,
    kl_elem: Tensor<B>,
    h3: Tensor<B>,
    logits: Tensor<B>,
    mean: Tensor<B>,
    recon_row: Tensor<B>,
    d_mean: Tensor<B>,
    d_logits: Tensor<B>,
    d_h3_pre: Tensor<B>,
    dz: Tensor<B>,
    dmu: Tensor<B>,
    dlogvar: Tensor<B>,
    d_h1_pre: Tensor<B>,
    kl_dim: Tensor<B>,
    kl_weight: Tensor<B>,
    recon_total: Tensor<B>,
    kl_total: Tensor<B>,
}

pub struct Vae<B: Backend> {
    pub fc1: Linear<B>,
    pub fc21: Linear<B>,
    pub fc22: Linear<B>,
    pub fc3: Linear<B>,
    pub fc4: Linear<B>,
    cfg: VaeConfig,
    /// Philox step offset, advanced on the device after every noise draw.
    offset: Tensor<B, u32>,
    /// The last training step's [recon, KL, loss] and their running sums (see
    /// [`Vae::take_running_stats`]).
    stats: Tensor<B>,
    acc: Tensor<B>,
    /// One buffer set per batch size seen. Sets are never freed while the model lives, so a
    /// captured CUDA graph's pointers stay valid when another batch size (evaluation) is used.
    bufs: Vec<Buffers<B>>,
}

impl<B: Backend> Vae<B> {
    /// A VAE with PyTorch's default initialisation of every layer.
    pub fn new(b: &B, cfg: VaeConfig, rng: &mut LkRng) -> Result<Self> {
        Ok(Self {
            fc1: Linear::new(b, "fc1", cfg.input, cfg.hidden, rng)?,
            fc21: Linear::new(b, "fc21", cfg.hidden, cfg.latent, rng)?,
            fc22: Linear::new(b, "fc22", cfg.hidden, cfg.latent, rng)?,
            fc3: Linear::new(b, "fc3", cfg.latent, cfg.hidden, rng)?,
            fc4: Linear::new(b, "fc4", cfg.hidden, cfg.input, rng)?,
            cfg,
            offset: rng::offset_tensor(b, 0)?,
            stats: Tensor::zeros(b, &[VAE_STAT_LEN])?,
            acc: Tensor::zeros(b, &[VAE_STAT_LEN])?,
            bufs: Vec::new(),
        })
    }

    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// The current noise offset (number of noise draws so far).
    pub fn noise_offset(&self, b: &B) -> Result<u64> {
        let o = self.offset.to_vec(b)?;
        Ok(u64::from(o[0]) | (u64::from(o[1]) << 32))
    }

    pub fn set_noise_offset(&mut self, b: &B, offset: u64) -> Result<()> {
        self.offset.copy_from_slice(b, &[offset as u32, (offset >> 32) as u32])
    }

    fn alloc(&self, b: &B, batch: usize) -> Result<Buffers<B>> {
        let (d, h, l) = (self.cfg.input, self.cfg.hidden, self.cfg.latent);
        let t = |shape: &[usize]| Tensor::zeros(b, shape);
        Ok(Buffers {
            batch,
            h1: t(&[batch, h])?,
            mu: t(&[batch, l])?,
            logvar: t(&[batch, l])?,
            z: t(&[batch, l])?,
            kl_row: t(&[batch])?,
            kl_elem: t(&[batch, l])?,
            h3: t(&[batch, h])?,
            logits: t(&[batch, d])?,
            mean: t(&[batch, d])?,
            recon_row: t(&[batch])?,
            d_mean: t(&[batch, d])?,
            d_logits: t(&[batch, d])?,
            d_h3_pre: t(&[batch, h])?,
            dz: t(&[batch, l])?,
            dmu: t(&[batch, l])?,
            dlogvar: t(&[batch, l])?,
            d_h1_pre: t(&[batch, h])?,
            kl_dim: t(&[l])?,
            kl_weight: t(&[l])?,
            recon_total: t(&[1])?,
            kl_total: t(&[1])?,
        })
    }

    /// Allocates the buffers for a batch size ahead of time (e.g. before capturing a graph).
    pub fn prepare(&mut self, b: &B, batch: usize) -> Result<()> {
        if batch == 0 {
            return Err(Error::invalid("Vae::prepare", "batch must be ≥ 1"));
        }
        if !self.bufs.iter().any(|s| s.batch == batch) {
            let set = self.alloc(b, batch)?;
            self.bufs.push(set);
        }
        Ok(())
    }

    /// Runs `f` with this batch size's buffers (taken out of the cache and put back, so `f` can
    /// borrow the model mutably).
    fn with_buffers<T>(
        &mut self,
        b: &B,
        x: &Tensor<B>,
        f: impl FnOnce(&mut Self, &mut Buffers<B>) -> Result<T>,
    ) -> Result<T> {
        let (batch, cols) = x.dims2("Vae")?;
        if cols != self.cfg.input || batch == 0 {
            return Err(Error::shape(
                "Vae",
                format!("input should be [batch ≥ 1, {}], got {:?}", self.cfg.input, x.shape()),
            ));
        }
        self.prepare(b, batch)?;
        let pos = self
            .bufs
            .iter()
            .position(|s| s.batch == batch)
            .ok_or_else(|| Error::invalid("Vae", "buffer set missing"))?;
        let mut set = self.bufs.swap_remove(pos);
        let res = f(self, &mut set);
        self.bufs.push(set);
        res
    }

    /// fc3 + ReLU and fc4 (+ sigmoid for the Gaussian mean), each one fused GEMM.
    fn decode_into(&self, b: &B, s: &mut Buffers<B>) -> Result<()> {
        self.fc3.forward_act(b, &s.z, &mut s.h3, Activation::Relu)?;
        match self.cfg.likelihood {
            Likelihood::Bernoulli => self.fc4.forward(b, &s.h3, &mut s.logits),
            Likelihood::Gaussian => self.fc4.forward_act(b, &s.h3, &mut s.mean, Activation::Sigmoid),
        }
    }

    /// Encoder, reparameterization (noise at the current offset), decoder and per-row losses.
    fn forward(&self, b: &B, x: &Tensor<B>, s: &mut Buffers<B>, sample: bool, kl_elem: bool) -> Result<()> {
        self.fc1.forward_act(b, x, &mut s.h1, Activation::Relu)?;
        self.fc21.forward(b, &s.h1, &mut s.mu)?;
        self.fc22.forward(b, &s.h1, &mut s.logvar)?;
        let lc = LatentConfig { seed: self.cfg.noise_seed, sample };
        let ke = if kl_elem { Some(&mut s.kl_elem) } else { None };
        reparam_kl_fwd(b, &lc, &self.offset, &s.mu, &s.logvar, &mut s.z, &mut s.kl_row, ke)?;
        self.decode_into(b, s)?;
        match self.cfg.likelihood {
            Likelihood::Bernoulli => loss::bce_logits_fwd(b, &s.logits, x, &mut s.recon_row),
            Likelihood::Gaussian => loss::mse_fwd(b, &s.mean, x, &mut s.recon_row),
        }
    }

    /// Forward pass and the objective on the device (stats, running sums and KL weights).
    fn forward_objective(
        &mut self,
        b: &B,
        x: &Tensor<B>,
        s: &mut Buffers<B>,
        sched: &KlSchedule,
        optim_state: &Tensor<B>,
    ) -> Result<()> {
        let free_bits = sched.free_bits > 0.0;
        self.forward(b, x, s, true, free_bits)?;
        if free_bits {
            elementwise::col_sum(b, &s.kl_elem, 0.0, &mut s.kl_dim)?;
        }
        let kl_dim = if free_bits { Some(&s.kl_dim) } else { None };
        vae_objective(
            b,
            sched,
            optim_state,
            &s.recon_row,
            &s.kl_row,
            kl_dim,
            &mut s.kl_weight,
            &mut self.stats,
            &mut self.acc,
        )
    }

    /// Backward from the objective through every layer, filling the parameters' gradients.
    fn backward(&mut self, b: &B, x: &Tensor<B>, s: &mut Buffers<B>) -> Result<()> {
        let n = s.batch as f32;
        // d(batch mean)/d(row loss) = 1/B.
        match self.cfg.likelihood {
            Likelihood::Bernoulli => loss::bce_logits_bwd(b, &s.logits, x, 1.0 / n, &mut s.d_logits)?,
            Likelihood::Gaussian => {
                loss::mse_bwd(b, &s.mean, x, 1.0 / n, &mut s.d_mean)?;
                elementwise::activation_bwd(b, Activation::Sigmoid, &s.mean, &s.d_mean, &mut s.d_logits)?;
            }
        }
        self.fc4.backward_params(b, &s.h3, &s.d_logits)?;
        // Into fc3's pre-activation: (d_logits·W4) ⊙ relu'(h3), one GEMM.
        self.fc4.backward_input_act(b, &s.d_logits, &mut s.d_h3_pre, 0.0, Activation::Relu, &s.h3)?;
        self.fc3.backward_params(b, &s.z, &s.d_h3_pre)?;
        self.fc3.backward_input(b, &s.d_h3_pre, &mut s.dz, 0.0)?;
        let lc = LatentConfig { seed: self.cfg.noise_seed, sample: true };
        reparam_kl_bwd(b, &lc, &self.offset, &s.mu, &s.logvar, &s.dz, &s.kl_weight, &mut s.dmu, &mut s.dlogvar)?;
        self.fc21.backward_params(b, &s.h1, &s.dmu)?;
        self.fc22.backward_params(b, &s.h1, &s.dlogvar)?;
        // Into fc1's pre-activation: (dμ·W21 + dlogσ²·W22) ⊙ relu'(h1); the second GEMM adds to the
        // first (β = 1) and applies relu' in its epilogue.
        self.fc21.backward_input(b, &s.dmu, &mut s.d_h1_pre, 0.0)?;
        self.fc22.backward_input_act(b, &s.dlogvar, &mut s.d_h1_pre, 1.0, Activation::Relu, &s.h1)?;
        self.fc1.backward_params(b, x, &s.d_h1_pre)
    }

    fn read_stats(&self, b: &B) -> Result<StepStats> {
        let v = self.stats.to_vec(b)?;
        Ok(StepStats { recon: v[0], kl: v[1], loss: v[2] })
    }

    /// One optimisation step on x ([batch, input]), checked: the loss is read back after the
    /// forward pass, and a non-finite one returns [`Error::NonFiniteLoss`] (with `step`) before any
    /// parameter changes. The KL warm-up counts the optimizer's steps.
    pub fn train_step(
        &mut self,
        b: &B,
        x: &Tensor<B>,
        opt: &mut Adam<B>,
        sched: &KlSchedule,
        step: u64,
    ) -> Result<StepStats> {
        self.with_buffers(b, x, |vae, s| {
            vae.forward_objective(b, x, s, sched, opt.step_state())?;
            let st = vae.read_stats(b)?;
            if let Some(bad) = st.first_non_finite() {
                return Err(Error::NonFiniteLoss { step, value: bad });
            }
            vae.backward(b, x, s)?;
            opt.step(b, &mut vae.params_mut())?;
            rng::advance(b, &mut vae.offset)?;
            Ok(st)
        })
    }

    /// The same step with no host round trip (nothing is read back, nothing is allocated once the
    /// batch size's buffers exist): what a CUDA graph captures. Check the running sums
    /// ([`Vae::take_running_stats`]) for non-finite values.
    pub fn train_step_queued(&mut self, b: &B, x: &Tensor<B>, opt: &mut Adam<B>, sched: &KlSchedule) -> Result<()> {
        self.with_buffers(b, x, |vae, s| {
            vae.forward_objective(b, x, s, sched, opt.step_state())?;
            vae.backward(b, x, s)?;
            opt.step(b, &mut vae.params_mut())?;
            rng::advance(b, &mut vae.offset)
        })
    }

    /// Gradients of the objective on x without updating anything (the noise offset included);
    /// `optim_state` supplies the step count for the warm-up.
    pub fn gradients(
        &mut self,
        b: &B,
        x: &Tensor<B>,
        sched: &KlSchedule,
        optim_state: &Tensor<B>,
    ) -> Result<StepStats> {
        self.with_buffers(b, x, |vae, s| {
            vae.forward_objective(b, x, s, sched, optim_state)?;
            vae.backward(b, x, s)?;
            vae.read_stats(b)
        })
    }

    /// Sums of [recon, KL, loss] over the steps since the last call (then zeroed).
    pub fn take_running_stats(&mut self, b: &B) -> Result<StepStats> {
        let v = self.acc.to_vec(b)?;
        elementwise::fill(b, &mut self.acc, 0.0)?;
        Ok(StepStats { recon: v[0], kl: v[1], loss: v[2] })
    }

    /// Batch means of the recon and KL rows (one host read).
    fn means(&self, b: &B, s: &mut Buffers<B>) -> Result<(f32, f32)> {
        elementwise::sum(b, &s.recon_row, &mut s.recon_total)?;
        elementwise::sum(b, &s.kl_row, &mut s.kl_total)?;
        let n = s.batch as f32;
        Ok((s.recon_total.to_vec(b)?[0] / n, s.kl_total.to_vec(b)?[0] / n))
    }

    /// One-sample estimate on x, without training: batch means of recon and KL (nats per
    /// example); −ELBO is their sum. Draws fresh noise (advances the offset).
    pub fn evaluate(&mut self, b: &B, x: &Tensor<B>) -> Result<StepStats> {
        self.with_buffers(b, x, |vae, s| {
            vae.forward(b, x, s, true, false)?;
            rng::advance(b, &mut vae.offset)?;
            let (recon, kl) = vae.means(b, s)?;
            Ok(StepStats { loss: recon + kl, recon, kl })
        })
    }

    /// Importance-weighted bound (Burda et al. 2016) on log p(x) per example, in nats, with `k`
    /// samples: log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x), combined with a stable logsumexp.
    /// ε is regenerated on the host from the counter (bit-identical to the device's draw).
    pub fn iwae_bound(&mut self, b: &B, x: &Tensor<B>, k: usize) -> Result<Vec<f64>> {
        if k == 0 {
            return Err(Error::invalid("Vae::iwae_bound", "k must be ≥ 1"));
        }
        self.with_buffers(b, x, |vae, s| {
            let (batch, l) = (s.batch, vae.cfg.latent);
            let mut log_w = vec![Vec::with_capacity(k); batch];
            for _ in 0..k {
                let offset = vae.noise_offset(b)?;
                vae.forward(b, x, s, true, false)?;
                rng::advance(b, &mut vae.offset)?;
                let (recon, z, lv) = (s.recon_row.to_vec(b)?, s.z.to_vec(b)?, s.logvar.to_vec(b)?);
                for (r, lw) in log_w.iter_mut().enumerate() {
                    // log p(z) − log q(z|x) = Σ −½z² + ½(ε² + log σ²)   (the log 2π terms cancel)
                    let mut log_ratio = 0.0f64;
                    for c in 0..l {
                        let i = r * l + c;
                        let eps = f64::from(philox_normal(vae.cfg.noise_seed, offset, i as u64));
                        let lvc =
                            f64::from(lv[i].clamp(crate::ops::latent::LOGVAR_MIN, crate::ops::latent::LOGVAR_MAX));
                        log_ratio += -0.5 * f64::from(z[i]).powi(2) + 0.5 * (eps * eps + lvc);
                    }
                    lw.push(-f64::from(recon[r]) + log_ratio);
                }
            }
            Ok(log_w
                .iter()
                .map(|w| {
                    let m = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    m + (w.iter().map(|v| (v - m).exp()).sum::<f64>() / k as f64).ln()
                })
                .collect())
        })
    }

    /// Reconstructions as the decoder's mean (pixel probabilities for Bernoulli), with z = μ.
    pub fn reconstruct(&mut self, b: &B, x: &Tensor<B>) -> Result<Vec<f32>> {
        self.with_buffers(b, x, |vae, s| {
            vae.forward(b, x, s, false, false)?;
            vae.decoder_mean(b, s)
        })
    }

    fn decoder_mean(&self, b: &B, s: &Buffers<B>) -> Result<Vec<f32>> {
        Ok(match self.cfg.likelihood {
            Likelihood::Bernoulli => s.logits.to_vec(b)?.into_iter().map(sigmoid).collect(),
            Likelihood::Gaussian => s.mean.to_vec(b)?,
        })
    }

    /// Decoder means for `n` draws z ~ N(0, I) from the prior (counter stream `seed`).
    pub fn sample_prior(&mut self, b: &B, n: usize, seed: u64) -> Result<Vec<f32>> {
        let mut z = vec![0.0f32; n * self.cfg.latent];
        crate::ops::rng::cpu::normal_fill(seed, 0, &mut z);
        let probe = Tensor::zeros(b, &[n, self.cfg.input])?;
        self.with_buffers(b, &probe, |vae, s| {
            s.z.copy_from_slice(b, &z)?;
            vae.decode_into(b, s)?;
            vae.decoder_mean(b, s)
        })
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        [&mut self.fc1, &mut self.fc21, &mut self.fc22, &mut self.fc3, &mut self.fc4]
            .into_iter()
            .flat_map(|l| l.params_mut())
            .collect()
    }

    pub fn params(&self) -> Vec<&Param<B>> {
        [&self.fc1, &self.fc21, &self.fc22, &self.fc3, &self.fc4].into_iter().flat_map(|l| l.params()).collect()
    }

    /// The weights under PyTorch's names (`fc1.weight` [400, 784], `fc1.bias`, ...).
    pub fn state_dict(&self, b: &B) -> Result<Vec<NamedTensor>> {
        self.params().into_iter().map(|p| p.to_named(b)).collect()
    }

    /// Loads weights by name; every parameter must be present with its exact shape.
    pub fn load_state_dict(&mut self, b: &B, tensors: &[NamedTensor]) -> Result<()> {
        load_params(b, &mut self.params_mut(), tensors, "Vae::load_state_dict")
    }
}

/// Copies named tensors into parameters, checking names and shapes.
pub(crate) fn load_params<B: Backend>(
    b: &B,
    params: &mut [&mut Param<B>],
    tensors: &[NamedTensor],
    op: &'static str,
) -> Result<()> {
    for p in params.iter_mut() {
        let t = tensors
            .iter()
            .find(|t| t.name == p.name)
            .ok_or_else(|| Error::invalid(op, format!("tensor {} missing", p.name)))?;
        if t.shape != p.value.shape() {
            return Err(Error::shape(
                op,
                format!("{}: checkpoint has {:?}, model has {:?}", p.name, t.shape, p.value.shape()),
            ));
        }
        p.value.copy_from_slice(b, &t.data)?;
    }
    Ok(())
}
