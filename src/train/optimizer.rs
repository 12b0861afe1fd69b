//! Optimizers that own their state (moments, velocities and the device-resident step counter)
//! and update a model's parameters from their gradients.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::nn::Param;
use crate::ops::optim::{adam_step, optim_tick, sgd_step, OPTIM_STATE_LEN};
use crate::ops::{AdamConfig, SgdConfig};
use crate::tensor::Tensor;

fn check_params<B: Backend>(op: &'static str, params: &[&mut Param<B>], state: &[Tensor<B>]) -> Result<()> {
    if params.len() != state.len() {
        return Err(Error::invalid(
            op,
            format!("optimizer built for {} parameters, given {}", state.len(), params.len()),
        ));
    }
    Ok(())
}

/// Adam or AdamW over a fixed list of parameters (the order given at construction).
pub struct Adam<B: Backend> {
    pub cfg: AdamConfig,
    m: Vec<Tensor<B>>,
    v: Vec<Tensor<B>>,
    state: Tensor<B>,
}

impl<B: Backend> Adam<B> {
    pub fn new(b: &B, params: &[&mut Param<B>], cfg: AdamConfig) -> Result<Self> {
        cfg.validate()?;
        let zeros = |p: &&mut Param<B>| Tensor::zeros(b, p.value.shape());
        Ok(Self {
            cfg,
            m: params.iter().map(zeros).collect::<Result<_>>()?,
            v: params.iter().map(zeros).collect::<Result<_>>()?,
            state: Tensor::zeros(b, &[OPTIM_STATE_LEN])?,
        })
    }

    /// One step: advances t, then updates every parameter from its gradient.
    pub fn step(&mut self, b: &B, params: &mut [&mut Param<B>]) -> Result<()> {
        check_params("Adam::step", params, &self.m)?;
        optim_tick(b, &mut self.state, self.cfg.beta1, self.cfg.beta2)?;
        for ((p, m), v) in params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            adam_step(b, &mut p.value, &p.grad, m, v, &self.state, &self.cfg)?;
        }
        Ok(())
    }

    /// Steps taken so far (reads the device-resident counter).
    pub fn steps(&self, b: &B) -> Result<u64> {
        Ok(self.state.to_vec(b)?[0] as u64)
    }
}

/// SGD with momentum over a fixed list of parameters.
pub struct Sgd<B: Backend> {
    pub cfg: SgdConfig,
    velocity: Vec<Tensor<B>>,
    state: Tensor<B>,
}

impl<B: Backend> Sgd<B> {
    pub fn new(b: &B, params: &[&mut Param<B>], cfg: SgdConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            velocity: params.iter().map(|p| Tensor::zeros(b, p.value.shape())).collect::<Result<_>>()?,
            state: Tensor::zeros(b, &[OPTIM_STATE_LEN])?,
        })
    }

    pub fn step(&mut self, b: &B, params: &mut [&mut Param<B>]) -> Result<()> {
        check_params("Sgd::step", params, &self.velocity)?;
        optim_tick(b, &mut self.state, 0.0, 0.0)?;
        for (p, vel) in params.iter_mut().zip(&mut self.velocity) {
            sgd_step(b, &mut p.value, &p.grad, vel, &self.state, &self.cfg)?;
        }
        Ok(())
    }
}
