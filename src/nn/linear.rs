//! Fully connected layer y = x·Wᵀ + b with PyTorch's layout (W: [out, in]) and initialisation.

use super::Param;
use crate::backend::cpu::host_vec;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::ops::gemm::{matmul, matmul_with, TensorEpilogue};
use crate::ops::{elementwise, Activation, Transpose};
use crate::rng::{uniform_fill, LkRng};
use crate::tensor::Tensor;

/// `y[B, out] = x[B, in] · Wᵀ + b`. Backward: `dW = dyᵀ·x`, `db = Σ_rows dy`, `dx = dy·W`.
pub struct Linear<B: Backend> {
    pub weight: Param<B>,
    pub bias: Param<B>,
    in_features: usize,
    out_features: usize,
}

impl<B: Backend> Linear<B> {
    /// PyTorch's default initialisation (`nn.Linear.reset_parameters`): W and b uniform in
    /// ±1/√in.
    pub fn new(b: &B, name: &str, in_features: usize, out_features: usize, rng: &mut LkRng) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(Error::invalid(
                "Linear::new",
                format!("{name}: sizes must be ≥ 1, got {in_features}→{out_features}"),
            ));
        }
        let numel = in_features.checked_mul(out_features).ok_or_else(|| {
            Error::invalid("Linear::new", format!("{name}: {in_features}×{out_features} weights overflow usize"))
        })?;
        let bound = 1.0 / (in_features as f32).sqrt();
        let mut w = host_vec("Linear::new", numel, 0.0f32)?;
        uniform_fill(rng, &mut w, -bound, bound);
        let mut bias = host_vec("Linear::new", out_features, 0.0f32)?;
        uniform_fill(rng, &mut bias, -bound, bound);
        let param = |suffix: &str, shape: &[usize], data: &[f32]| -> Result<Param<B>> {
            Ok(Param {
                name: format!("{name}.{suffix}"),
                value: Tensor::from_slice(b, shape, data)?,
                grad: Tensor::zeros(b, shape)?,
            })
        };
        Ok(Self {
            weight: param("weight", &[out_features, in_features], &w)?,
            bias: param("bias", &[out_features], &bias)?,
            in_features,
            out_features,
        })
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }

    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// y = x·Wᵀ + b; x: [B, in], y: [B, out]. One fused GEMM.
    pub fn forward(&self, b: &B, x: &Tensor<B>, y: &mut Tensor<B>) -> Result<()> {
        self.forward_act(b, x, y, Activation::None)
    }

    /// y = act(x·Wᵀ + b): the layer and its activation in one GEMM (bias and activation in the
    /// epilogue).
    pub fn forward_act(&self, b: &B, x: &Tensor<B>, y: &mut Tensor<B>, act: Activation) -> Result<()> {
        let epilogue = TensorEpilogue::BiasAct { bias: Some(&self.bias.value), act };
        matmul_with(b, Transpose::No, Transpose::Yes, 1.0, x, &self.weight.value, 0.0, y, epilogue)
    }

    /// Stores dW = dyᵀ·x and db = Σ dy in the parameters' gradients (overwriting them), and
    /// dx = dy·W when `dx` is given.
    pub fn backward(&mut self, b: &B, x: &Tensor<B>, dy: &Tensor<B>, dx: Option<&mut Tensor<B>>) -> Result<()> {
        self.backward_params(b, x, dy)?;
        if let Some(dx) = dx {
            self.backward_input(b, dy, dx, 0.0)?;
        }
        Ok(())
    }

    /// dW = dyᵀ·x and db = Σ_rows dy, overwriting the gradients.
    pub fn backward_params(&mut self, b: &B, x: &Tensor<B>, dy: &Tensor<B>) -> Result<()> {
        matmul(b, Transpose::Yes, Transpose::No, 1.0, dy, x, 0.0, &mut self.weight.grad)?;
        elementwise::col_sum(b, dy, 0.0, &mut self.bias.grad)
    }

    /// dx = dy·W + beta·dx (beta = 1 accumulates a second branch's gradient).
    pub fn backward_input(&self, b: &B, dy: &Tensor<B>, dx: &mut Tensor<B>, beta: f32) -> Result<()> {
        matmul(b, Transpose::No, Transpose::No, 1.0, dy, &self.weight.value, beta, dx)
    }

    /// dx = (dy·W + beta·dx) · act'(x_out): the gradient with respect to the pre-activation of the
    /// layer below, whose activation `act` produced this layer's input `x_out`. One fused GEMM.
    pub fn backward_input_act(
        &self,
        b: &B,
        dy: &Tensor<B>,
        dx: &mut Tensor<B>,
        beta: f32,
        act: Activation,
        x_out: &Tensor<B>,
    ) -> Result<()> {
        let epilogue = TensorEpilogue::ActGrad { act, y: x_out };
        matmul_with(b, Transpose::No, Transpose::No, 1.0, dy, &self.weight.value, beta, dx, epilogue)
    }

    pub fn params_mut(&mut self) -> [&mut Param<B>; 2] {
        [&mut self.weight, &mut self.bias]
    }

    pub fn params(&self) -> [&Param<B>; 2] {
        [&self.weight, &self.bias]
    }
}
