//! The plain autoencoder x̂ = D(E(x)): an MLP encoder to a code, an MLP decoder back, and a
//! reconstruction likelihood. Losses are summed over dimensions and reported per example (nats for
//! the Bernoulli likelihood).

use super::{Mlp, MlpSpec, Param};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::ops::{elementwise, loss, Activation};
use crate::rng::LkRng;
use crate::tensor::Tensor;
use crate::train::Adam;

/// How a reconstruction is scored against its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Likelihood {
    /// Pixels in [0, 1] as Bernoulli probabilities: the decoder outputs logits, the loss is
    /// binary cross-entropy with logits summed over pixels (nats per example).
    #[default]
    Bernoulli,
    /// Real values: the decoder ends in a sigmoid, the loss is the squared error summed over
    /// dimensions (a unit-variance Gaussian's negative log-likelihood, times 2, up to constants).
    Gaussian,
}

/// Per-batch-size buffers of the loss.
struct LossBuffers<B: Backend> {
    batch: usize,
    d_out: Tensor<B>,
    d_code: Tensor<B>,
    row_loss: Tensor<B>,
    total: Tensor<B>,
}

pub struct Autoencoder<B: Backend> {
    pub encoder: Mlp<B>,
    pub decoder: Mlp<B>,
    pub likelihood: Likelihood,
    bufs: Option<LossBuffers<B>>,
}

impl<B: Backend> Autoencoder<B> {
    /// `sizes = [input, hidden..., code]`; the decoder mirrors them. ReLU between layers.
    pub fn new(b: &B, sizes: &[usize], likelihood: Likelihood, rng: &mut LkRng) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::invalid(
                "Autoencoder::new",
                format!("need at least [input, code] sizes, got {sizes:?}"),
            ));
        }
        let rev: Vec<usize> = sizes.iter().rev().copied().collect();
        let out_act = match likelihood {
            Likelihood::Bernoulli => Activation::None,
            Likelihood::Gaussian => Activation::Sigmoid,
        };
        Ok(Self {
            encoder: Mlp::new(b, &MlpSpec::new(sizes, Activation::Relu, Activation::None), "encoder.", rng)?,
            decoder: Mlp::new(b, &MlpSpec::new(&rev, Activation::Relu, out_act), "decoder.", rng)?,
            likelihood,
            bufs: None,
        })
    }

    fn loss_buffers(&mut self, b: &B, batch: usize) -> Result<LossBuffers<B>> {
        match self.bufs.take() {
            Some(s) if s.batch == batch => Ok(s),
            _ => Ok(LossBuffers {
                batch,
                d_out: Tensor::zeros(b, &[batch, self.decoder.out_features()])?,
                d_code: Tensor::zeros(b, &[batch, self.encoder.out_features()])?,
                row_loss: Tensor::zeros(b, &[batch])?,
                total: Tensor::zeros(b, &[1])?,
            }),
        }
    }

    /// Forward pass and per-example loss on x: [B, input] (no parameter change). Returns the mean
    /// over the batch of the per-example summed loss.
    pub fn loss(&mut self, b: &B, x: &Tensor<B>) -> Result<f32> {
        let (batch, _) = x.dims2("Autoencoder::loss")?;
        let mut bufs = self.loss_buffers(b, batch)?;
        let res = self.forward_loss(b, x, &mut bufs);
        self.bufs = Some(bufs);
        res
    }

    fn forward_loss(&mut self, b: &B, x: &Tensor<B>, bufs: &mut LossBuffers<B>) -> Result<f32> {
        self.encoder.forward(b, x)?;
        self.decoder.forward(b, self.encoder.output()?)?;
        let out = self.decoder.output()?;
        match self.likelihood {
            Likelihood::Bernoulli => loss::bce_logits_fwd(b, out, x, &mut bufs.row_loss)?,
            Likelihood::Gaussian => loss::mse_fwd(b, out, x, &mut bufs.row_loss)?,
        }
        elementwise::sum(b, &bufs.row_loss, &mut bufs.total)?;
        Ok(bufs.total.to_vec(b)?[0] / bufs.batch as f32)
    }

    /// One optimisation step on the batch x; returns the batch's mean loss before the update.
    /// A non-finite loss returns [`Error::NonFiniteLoss`] (step = the optimizer's step count)
    /// before the update: the parameters and the optimizer are left as they were.
    pub fn train_step(&mut self, b: &B, x: &Tensor<B>, opt: &mut Adam<B>) -> Result<f32> {
        let (batch, _) = x.dims2("Autoencoder::train_step")?;
        let mut bufs = self.loss_buffers(b, batch)?;
        let res = self.step_with(b, x, opt, &mut bufs);
        self.bufs = Some(bufs);
        res
    }

    fn step_with(&mut self, b: &B, x: &Tensor<B>, opt: &mut Adam<B>, bufs: &mut LossBuffers<B>) -> Result<f32> {
        let value = self.forward_loss(b, x, bufs)?;
        if !value.is_finite() {
            return Err(Error::NonFiniteLoss { step: opt.steps(b)?, value });
        }
        // d(mean over the batch)/d(output): scale 1/B.
        let scale = 1.0 / bufs.batch as f32;
        let out = self.decoder.output()?;
        match self.likelihood {
            Likelihood::Bernoulli => loss::bce_logits_bwd(b, out, x, scale, &mut bufs.d_out)?,
            Likelihood::Gaussian => loss::mse_bwd(b, out, x, scale, &mut bufs.d_out)?,
        }
        self.decoder.backward(b, self.encoder.output()?, &bufs.d_out, Some(&mut bufs.d_code))?;
        self.encoder.backward(b, x, &bufs.d_code, None)?;
        opt.step(b, &mut self.params_mut())?;
        Ok(value)
    }

    /// Reconstructions of x as the decoder's mean (probabilities for Bernoulli), [B, input].
    pub fn reconstruct(&mut self, b: &B, x: &Tensor<B>) -> Result<Vec<f32>> {
        self.encoder.forward(b, x)?;
        self.decoder.forward(b, self.encoder.output()?)?;
        let out = self.decoder.output()?.to_vec(b)?;
        Ok(match self.likelihood {
            Likelihood::Bernoulli => out.into_iter().map(crate::ops::elementwise::cpu::sigmoid).collect(),
            Likelihood::Gaussian => out,
        })
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        let mut p = self.encoder.params_mut();
        p.extend(self.decoder.params_mut());
        p
    }
}
