//! Optimizers that own their state (moments, velocities and the device-resident step counter)
//! and update a model's parameters from their gradients.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::checkpoint::NamedTensor;
use crate::nn::Param;
use crate::ops::optim::{adam_step_multi, optim_tick, sgd_step, AdamTensors, OPTIM_STATE_LEN};
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
        let mut tensors: Vec<AdamTensors<'_, B>> = params
            .iter_mut()
            .zip(&mut self.m)
            .zip(&mut self.v)
            .map(|((p, m), v)| {
                let Param { value, grad, .. } = &mut **p;
                (value, &*grad, m, v)
            })
            .collect();
        adam_step_multi(b, &mut tensors, &self.state, &self.cfg)
    }

    /// The device-resident step state `[t, 1 − β1^t, 1 − β2^t]`.
    pub fn step_state(&self) -> &Tensor<B> {
        &self.state
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

impl<B: Backend> Adam<B> {
    /// Moments and step state as named tensors (`adam.m.<param>`, `adam.v.<param>`,
    /// `adam.state`), for resuming training. `params` in the order the optimizer was built with.
    pub fn state_dict(&self, b: &B, params: &[&Param<B>]) -> Result<Vec<NamedTensor>> {
        if params.len() != self.m.len() {
            return Err(Error::invalid(
                "Adam::state_dict",
                format!("{} parameters for {} moments", params.len(), self.m.len()),
            ));
        }
        let mut out = Vec::with_capacity(2 * params.len() + 1);
        for ((p, m), v) in params.iter().zip(&self.m).zip(&self.v) {
            let shape = p.value.shape().to_vec();
            out.push(NamedTensor { name: format!("adam.m.{}", p.name), shape: shape.clone(), data: m.to_vec(b)? });
            out.push(NamedTensor { name: format!("adam.v.{}", p.name), shape, data: v.to_vec(b)? });
        }
        out.push(NamedTensor { name: "adam.state".into(), shape: vec![OPTIM_STATE_LEN], data: self.state.to_vec(b)? });
        Ok(out)
    }

    /// Restores what [`Adam::state_dict`] saved; names and shapes must match.
    pub fn load_state_dict(&mut self, b: &B, params: &[&Param<B>], tensors: &[NamedTensor]) -> Result<()> {
        const OP: &str = "Adam::load_state_dict";
        if params.len() != self.m.len() {
            return Err(Error::invalid(OP, format!("{} parameters for {} moments", params.len(), self.m.len())));
        }
        let find = |name: &str, shape: &[usize]| -> Result<&NamedTensor> {
            let t = tensors
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| Error::invalid(OP, format!("tensor {name} missing")))?;
            if t.shape != shape {
                return Err(Error::shape(OP, format!("{name}: saved {:?}, expected {shape:?}", t.shape)));
            }
            Ok(t)
        };
        for ((p, m), v) in params.iter().zip(&mut self.m).zip(&mut self.v) {
            m.copy_from_slice(b, &find(&format!("adam.m.{}", p.name), p.value.shape())?.data)?;
            v.copy_from_slice(b, &find(&format!("adam.v.{}", p.name), p.value.shape())?.data)?;
        }
        self.state.copy_from_slice(b, &find("adam.state", &[OPTIM_STATE_LEN])?.data)
    }
}
