//! The MLP variational autoencoder of the classic PyTorch example, configurable by layer sizes
//! (784-400-20 by default), with explicit forward and backward over buffers allocated once per
//! batch size.
//!
//! `VaeConfig::hidden` lists the encoder's hidden sizes from the input side; the decoder mirrors
//! them: `input → hidden[0] → … → hidden[n−1] → (μ, log σ²) ∈ ℝ^latent`, then
//! `z → hidden[n−1] → … → hidden[0] → input`, with a ReLU after every hidden layer. Weights are
//! stored `[out, in]` under PyTorch's names:
//!
//! - one hidden layer (the classic example, the default): `fc1`, `fc21` (μ), `fc22` (log σ²),
//!   `fc3`, `fc4`, exactly the example's `VAE`, which loads the checkpoint unchanged;
//! - several hidden layers: `encoder.0` … `encoder.{n−1}`, `fc21`, `fc22`, `decoder.0` …
//!   `decoder.{n−1}` (latent side first), `fc4`: the names of a PyTorch module with
//!   `encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip([input, *hidden], hidden))`,
//!   `decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip([latent, *hidden[::-1]], hidden[::-1]))`,
//!   `fc21`/`fc22 = nn.Linear(hidden[-1], latent)` and `fc4 = nn.Linear(hidden[0], input)`, whose
//!   `encode` applies ReLU after each encoder layer and `decode` after each decoder layer
//!   (the README shows the whole class).
//!
//! Per example, in nats: `−ELBO = recon(x̂, x) + KL(q(z|x) ‖ N(0, I))`, recon summed over pixels
//! (Bernoulli: BCE with logits; Gaussian: squared error). Training minimises the batch mean of
//! `recon + β_t · KL`, with β_t warmed up linearly over `warmup_steps` and, optionally, free bits:
//! each latent dimension's batch-mean KL counts as at least `free_bits` nats (Kingma et al. 2016),
//! so dimensions under the floor get no KL gradient.

use super::{sizes_label, weight_chain, weight_shape, Likelihood, Linear, Param};
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
#[derive(Clone, Debug, PartialEq)]
pub struct VaeConfig {
    pub input: usize,
    /// The encoder's hidden layer sizes, input side first (at least one, each ≥ 1); the decoder
    /// mirrors them. `vec![400]` is the classic example.
    pub hidden: Vec<usize>,
    pub latent: usize,
    pub likelihood: Likelihood,
    /// Seed of the reparameterization noise (Philox key).
    pub noise_seed: u64,
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self { input: 784, hidden: vec![400], latent: 20, likelihood: Likelihood::Bernoulli, noise_seed: 0 }
    }
}

impl VaeConfig {
    /// Checks the sizes: input, latent and every hidden size ≥ 1, at least one hidden layer.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "VaeConfig";
        if self.input == 0 || self.latent == 0 {
            return Err(Error::invalid(
                OP,
                format!("input and latent sizes must be ≥ 1, got input {} and latent {}", self.input, self.latent),
            ));
        }
        if self.hidden.is_empty() {
            return Err(Error::invalid(OP, "at least one hidden layer is needed (hidden sizes are empty)"));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::invalid(OP, format!("hidden layer {i} has size 0 (hidden sizes {:?})", self.hidden)));
        }
        Ok(())
    }

    /// `[input, hidden…, latent]`, the encoder's widths.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = Vec::with_capacity(self.hidden.len() + 2);
        s.push(self.input);
        s.extend_from_slice(&self.hidden);
        s.push(self.latent);
        s
    }

    /// The sizes as `784-400-20`.
    pub fn sizes_label(&self) -> String {
        sizes_label(&self.sizes())
    }

    /// The hidden sizes as `512,256` (what [`VaeConfig::parse_hidden`] reads back).
    pub fn hidden_label(&self) -> String {
        self.hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",")
    }

    /// Reads hidden sizes written as `400` or `512,256` (commas, optional spaces); every size must
    /// be ≥ 1 and at least one must be given.
    pub fn parse_hidden(text: &str) -> Result<Vec<usize>> {
        const OP: &str = "VaeConfig::parse_hidden";
        let sizes = text
            .split(',')
            .map(|part| {
                let part = part.trim();
                match part.parse::<usize>() {
                    Ok(0) => Err(Error::invalid(OP, format!("{text:?}: hidden sizes must be ≥ 1"))),
                    Ok(h) => Ok(h),
                    Err(e) => Err(Error::invalid(
                        OP,
                        format!("{text:?}: {part:?} is not a size ({e}); expected e.g. 400 or 512,256"),
                    )),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(sizes)
    }

    /// The checkpoint names of the encoder's hidden layers (`fc1` for one hidden layer,
    /// `encoder.{i}` for several).
    pub fn encoder_names(&self) -> Vec<String> {
        layer_names(self.hidden.len(), "fc1", "encoder")
    }

    /// The checkpoint names of the decoder's hidden layers, latent side first (`fc3` for one
    /// hidden layer, `decoder.{i}` for several).
    pub fn decoder_names(&self) -> Vec<String> {
        layer_names(self.hidden.len(), "fc3", "decoder")
    }
}

fn layer_names(depth: usize, classic: &str, list: &str) -> Vec<String> {
    if depth == 1 {
        vec![classic.to_string()]
    } else {
        (0..depth).map(|i| format!("{list}.{i}")).collect()
    }
}

/// The encoder widths `[input, hidden…, latent]` a checkpoint's weights describe, under either
/// naming scheme; `None` when they do not form a VAE of this layout: a missing layer, or a chain
/// that [`weight_chain`] refuses (fc21 included). Building the VAE these sizes describe then
/// allocates no more than a few times the file's data.
pub(crate) fn checkpoint_sizes(tensors: &[NamedTensor]) -> Option<Vec<usize>> {
    let layers: Vec<&[usize]> = match weight_shape(tensors, "fc1.weight") {
        Some(w) => vec![w],
        None => (0..).map_while(|i| weight_shape(tensors, &format!("encoder.{i}.weight"))).collect(),
    };
    let fc21 = weight_shape(tensors, "fc21.weight")?;
    if layers.is_empty() {
        return None;
    }
    weight_chain(layers.into_iter().chain([fc21]))
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
    /// Each encoder hidden layer's output (after ReLU), input side first.
    enc: Vec<Tensor<B>>,
    /// The gradient with respect to each encoder hidden layer's pre-activation.
    d_enc_pre: Vec<Tensor<B>>,
    mu: Tensor<B>,
    logvar: Tensor<B>,
    z: Tensor<B>,
    kl_row: Tensor<B>,
    kl_elem: Tensor<B>,
    /// Each decoder hidden layer's output (after ReLU), latent side first.
    dec: Vec<Tensor<B>>,
    /// The gradient with respect to each decoder hidden layer's pre-activation.
    d_dec_pre: Vec<Tensor<B>>,
    logits: Tensor<B>,
    mean: Tensor<B>,
    recon_row: Tensor<B>,
    d_mean: Tensor<B>,
    d_logits: Tensor<B>,
    dz: Tensor<B>,
    dmu: Tensor<B>,
    dlogvar: Tensor<B>,
    kl_dim: Tensor<B>,
    kl_weight: Tensor<B>,
    recon_total: Tensor<B>,
    kl_total: Tensor<B>,
}

/// The last of a layer stack's buffers (the stacks are never empty: [`VaeConfig::validate`]).
fn top<T>(v: &[T]) -> Result<&T> {
    v.last().ok_or_else(|| Error::invalid("Vae", "no hidden layers"))
}

fn top_mut<T>(v: &mut [T]) -> Result<&mut T> {
    v.last_mut().ok_or_else(|| Error::invalid("Vae", "no hidden layers"))
}

pub struct Vae<B: Backend> {
    /// The encoder's hidden layers, input side first (`fc1` alone in the classic model).
    encoder: Vec<Linear<B>>,
    /// The μ head.
    fc21: Linear<B>,
    /// The log σ² head.
    fc22: Linear<B>,
    /// The decoder's hidden layers, latent side first (`fc3` alone in the classic model).
    decoder: Vec<Linear<B>>,
    /// The output layer (logits, or the Gaussian mean before its sigmoid).
    fc4: Linear<B>,
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
    /// A VAE with PyTorch's default initialisation of every layer, drawn in the order encoder,
    /// fc21, fc22, decoder, fc4 (the classic example's fc1, fc21, fc22, fc3, fc4). Invalid sizes
    /// are an error ([`VaeConfig::validate`]).
    pub fn new(b: &B, cfg: VaeConfig, rng: &mut LkRng) -> Result<Self> {
        cfg.validate()?;
        let enc_sizes = cfg.sizes();
        let encoder = cfg
            .encoder_names()
            .iter()
            .enumerate()
            .map(|(i, name)| Linear::new(b, name, enc_sizes[i], enc_sizes[i + 1], rng))
            .collect::<Result<Vec<_>>>()?;
        let h_top = *top(&cfg.hidden)?;
        let fc21 = Linear::new(b, "fc21", h_top, cfg.latent, rng)?;
        let fc22 = Linear::new(b, "fc22", h_top, cfg.latent, rng)?;
        // The decoder's widths: latent, then the hidden sizes in reverse.
        let dec_sizes: Vec<usize> = enc_sizes[1..].iter().rev().copied().collect();
        let decoder = cfg
            .decoder_names()
            .iter()
            .enumerate()
            .map(|(j, name)| Linear::new(b, name, dec_sizes[j], dec_sizes[j + 1], rng))
            .collect::<Result<Vec<_>>>()?;
        let fc4 = Linear::new(b, "fc4", cfg.hidden[0], cfg.input, rng)?;
        Ok(Self {
            encoder,
            fc21,
            fc22,
            decoder,
            fc4,
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
        let (d, l) = (self.cfg.input, self.cfg.latent);
        let t = |shape: &[usize]| Tensor::zeros(b, shape);
        let stack = |layers: &[Linear<B>]| -> Result<Vec<Tensor<B>>> {
            layers.iter().map(|layer| t(&[batch, layer.out_features()])).collect()
        };
        Ok(Buffers {
            batch,
            enc: stack(&self.encoder)?,
            d_enc_pre: stack(&self.encoder)?,
            mu: t(&[batch, l])?,
            logvar: t(&[batch, l])?,
            z: t(&[batch, l])?,
            kl_row: t(&[batch])?,
            kl_elem: t(&[batch, l])?,
            dec: stack(&self.decoder)?,
            d_dec_pre: stack(&self.decoder)?,
            logits: t(&[batch, d])?,
            mean: t(&[batch, d])?,
            recon_row: t(&[batch])?,
            d_mean: t(&[batch, d])?,
            d_logits: t(&[batch, d])?,
            dz: t(&[batch, l])?,
            dmu: t(&[batch, l])?,
            dlogvar: t(&[batch, l])?,
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

    /// The decoder's hidden layers (each one GEMM with bias and ReLU fused) and fc4 (+ sigmoid for
    /// the Gaussian mean, fused too).
    fn decode_into(&self, b: &B, s: &mut Buffers<B>) -> Result<()> {
        for (j, layer) in self.decoder.iter().enumerate() {
            let (done, rest) = s.dec.split_at_mut(j);
            let input = if j == 0 { &s.z } else { &done[j - 1] };
            layer.forward_act(b, input, &mut rest[0], Activation::Relu)?;
        }
        let h = top(&s.dec)?;
        match self.cfg.likelihood {
            Likelihood::Bernoulli => self.fc4.forward(b, h, &mut s.logits),
            Likelihood::Gaussian => self.fc4.forward_act(b, h, &mut s.mean, Activation::Sigmoid),
        }
    }

    /// Encoder, reparameterization (noise at the current offset), decoder and per-row losses.
    fn forward(&self, b: &B, x: &Tensor<B>, s: &mut Buffers<B>, sample: bool, kl_elem: bool) -> Result<()> {
        for (i, layer) in self.encoder.iter().enumerate() {
            let (done, rest) = s.enc.split_at_mut(i);
            let input = if i == 0 { x } else { &done[i - 1] };
            layer.forward_act(b, input, &mut rest[0], Activation::Relu)?;
        }
        let h = top(&s.enc)?;
        self.fc21.forward(b, h, &mut s.mu)?;
        self.fc22.forward(b, h, &mut s.logvar)?;
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

    /// Backward from the objective through every layer, filling the parameters' gradients. The
    /// gradient into each hidden layer's pre-activation is one GEMM with relu' in its epilogue.
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
        let h_dec = top(&s.dec)?;
        self.fc4.backward_params(b, h_dec, &s.d_logits)?;
        // Into the top decoder layer's pre-activation: (d_logits·W4) ⊙ relu'(h), one GEMM.
        self.fc4.backward_input_act(b, &s.d_logits, top_mut(&mut s.d_dec_pre)?, 0.0, Activation::Relu, h_dec)?;
        for j in (0..self.decoder.len()).rev() {
            let (below, here) = s.d_dec_pre.split_at_mut(j);
            let d_pre = &here[0];
            let input = if j == 0 { &s.z } else { &s.dec[j - 1] };
            self.decoder[j].backward_params(b, input, d_pre)?;
            if j == 0 {
                self.decoder[0].backward_input(b, d_pre, &mut s.dz, 0.0)?;
            } else {
                self.decoder[j].backward_input_act(b, d_pre, &mut below[j - 1], 0.0, Activation::Relu, input)?;
            }
        }
        let lc = LatentConfig { seed: self.cfg.noise_seed, sample: true };
        reparam_kl_bwd(b, &lc, &self.offset, &s.mu, &s.logvar, &s.dz, &s.kl_weight, &mut s.dmu, &mut s.dlogvar)?;
        let h_enc = top(&s.enc)?;
        self.fc21.backward_params(b, h_enc, &s.dmu)?;
        self.fc22.backward_params(b, h_enc, &s.dlogvar)?;
        // Into the top encoder layer's pre-activation: (dμ·W21 + dlogσ²·W22) ⊙ relu'(h); the second
        // GEMM adds to the first (β = 1) and applies relu' in its epilogue.
        let d_top = top_mut(&mut s.d_enc_pre)?;
        self.fc21.backward_input(b, &s.dmu, d_top, 0.0)?;
        self.fc22.backward_input_act(b, &s.dlogvar, d_top, 1.0, Activation::Relu, h_enc)?;
        for i in (0..self.encoder.len()).rev() {
            let (below, here) = s.d_enc_pre.split_at_mut(i);
            let d_pre = &here[0];
            let input = if i == 0 { x } else { &s.enc[i - 1] };
            self.encoder[i].backward_params(b, input, d_pre)?;
            if i > 0 {
                self.encoder[i].backward_input_act(b, d_pre, &mut below[i - 1], 0.0, Activation::Relu, input)?;
            }
        }
        Ok(())
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

    /// Runs the forward and backward kernels of a training step once on x, eagerly (not the
    /// optimizer step), changing nothing that training reads (parameters, optimizer, noise
    /// offset, running sums; the gradients and the last step's stats are overwritten by the next
    /// step): before a graph capture on a backend that measures kernel choices on first use
    /// ([`Backend::measures_kernel_choices`]), so that every layer's GEMM shape is measured.
    pub fn prime(&mut self, b: &B, x: &Tensor<B>, sched: &KlSchedule, optim_state: &Tensor<B>) -> Result<()> {
        let mut saved = Tensor::zeros(b, self.acc.shape())?;
        saved.copy_from(b, &self.acc)?;
        self.gradients(b, x, sched, optim_state)?;
        self.acc.copy_from(b, &saved)
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
            // (Grown as drawn: a huge k fails on memory as it goes, not on one reservation.)
            let mut log_w = vec![Vec::with_capacity(k.min(4096)); batch];
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
        // The probe checks n's sizes before the host noise is allocated.
        let probe = Tensor::zeros(b, &[n, self.cfg.input])?;
        let len = n.checked_mul(self.cfg.latent).ok_or_else(|| {
            Error::shape("Vae::sample_prior", format!("{n} samples of {} latents overflow usize", self.cfg.latent))
        })?;
        let mut z = crate::backend::cpu::host_vec("Vae::sample_prior", len, 0.0f32)?;
        crate::ops::rng::cpu::normal_fill(seed, 0, &mut z);
        self.with_buffers(b, &probe, |vae, s| {
            s.z.copy_from_slice(b, &z)?;
            vae.decode_into(b, s)?;
            vae.decoder_mean(b, s)
        })
    }

    /// Every layer in parameter order: encoder, fc21, fc22, decoder, fc4.
    fn layers(&self) -> impl Iterator<Item = &Linear<B>> {
        self.encoder.iter().chain([&self.fc21, &self.fc22]).chain(&self.decoder).chain([&self.fc4])
    }

    /// The parameters in a fixed order (each layer's weight, then its bias; layers as in
    /// [`Vae::new`]): `fc1.weight`, `fc1.bias`, `fc21.weight`, … for the classic model.
    pub fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        self.encoder
            .iter_mut()
            .chain([&mut self.fc21, &mut self.fc22])
            .chain(&mut self.decoder)
            .chain([&mut self.fc4])
            .flat_map(|l| l.params_mut())
            .collect()
    }

    pub fn params(&self) -> Vec<&Param<B>> {
        self.layers().flat_map(|l| l.params()).collect()
    }

    /// The weights under PyTorch's names (`fc1.weight` [400, 784], `fc1.bias`, ... for the
    /// classic model; `encoder.0.weight`, ... with several hidden layers: see the module docs).
    pub fn state_dict(&self, b: &B) -> Result<Vec<NamedTensor>> {
        self.params().into_iter().map(|p| p.to_named(b)).collect()
    }

    /// Loads weights by name, strictly (as PyTorch's `strict=True`): every parameter must be
    /// present with its exact shape, and the file may hold nothing else. A checkpoint of another
    /// depth or other sizes is an [`Error::Shape`] naming both layer-size chains; nothing is
    /// loaded then.
    pub fn load_state_dict(&mut self, b: &B, tensors: &[NamedTensor]) -> Result<()> {
        const OP: &str = "Vae::load_state_dict";
        let model = self.cfg.sizes_label();
        if let Some(file) = checkpoint_sizes(tensors) {
            let file = sizes_label(&file);
            if file != model {
                return Err(Error::shape(
                    OP,
                    format!(
                        "the checkpoint holds a {file} VAE, the model is {model} (sizes input-hidden…-latent): \
                         build the model with the checkpoint's sizes"
                    ),
                ));
            }
        }
        let names: Vec<&str> = self.params().iter().map(|p| p.name.as_str()).collect();
        let missing: Vec<&str> = names.iter().copied().filter(|n| !tensors.iter().any(|t| t.name == *n)).collect();
        let extra: Vec<&str> =
            tensors.iter().map(|t| t.name.as_str()).filter(|n| !names.contains(n)).collect::<Vec<_>>();
        if !missing.is_empty() || !extra.is_empty() {
            return Err(Error::invalid(
                OP,
                format!(
                    "the checkpoint does not match the {model} VAE's layers: missing [{}], unexpected [{}]",
                    missing.join(", "),
                    extra.join(", ")
                ),
            ));
        }
        // Shapes are checked for every tensor before anything is copied.
        for p in self.params() {
            if let Some(t) = tensors.iter().find(|t| t.name == p.name) {
                if t.shape != p.value.shape() {
                    return Err(Error::shape(
                        OP,
                        format!("{}: checkpoint has {:?}, model ({model}) has {:?}", p.name, t.shape, p.value.shape()),
                    ));
                }
            }
        }
        load_params(b, &mut self.params_mut(), tensors, OP)
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
