//! A multi-layer perceptron: Linear layers each followed by an activation, with every
//! intermediate buffer allocated once per batch size.

use super::{Linear, Param};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::ops::{elementwise, Activation};
use crate::rng::LkRng;
use crate::tensor::Tensor;

/// Sizes and activations of an [`Mlp`]: `sizes = [in, h1, ..., out]`, `activations[i]` after
/// layer i (one per layer).
#[derive(Clone, Debug, PartialEq)]
pub struct MlpSpec {
    pub sizes: Vec<usize>,
    pub activations: Vec<Activation>,
    /// Layer names (for checkpoints); `None` names them `{prefix}{i}`.
    pub names: Option<Vec<String>>,
}

impl MlpSpec {
    /// Hidden layers with `hidden_act`, the last layer with `out_act`.
    pub fn new(sizes: &[usize], hidden_act: Activation, out_act: Activation) -> Self {
        let layers = sizes.len().saturating_sub(1);
        let activations = (0..layers).map(|i| if i + 1 == layers { out_act } else { hidden_act }).collect();
        Self { sizes: sizes.to_vec(), activations, names: None }
    }

    pub fn with_names(mut self, names: &[&str]) -> Self {
        self.names = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }
}

/// Per-batch-size buffers: each layer's output (after its activation) and the gradient with
/// respect to its pre-activation.
struct Buffers<B: Backend> {
    batch: usize,
    out: Vec<Tensor<B>>,
    d_pre: Vec<Tensor<B>>,
}

pub struct Mlp<B: Backend> {
    layers: Vec<Linear<B>>,
    acts: Vec<Activation>,
    bufs: Option<Buffers<B>>,
}

impl<B: Backend> Mlp<B> {
    pub fn new(b: &B, spec: &MlpSpec, prefix: &str, rng: &mut LkRng) -> Result<Self> {
        let layers = spec.sizes.len().saturating_sub(1);
        if layers == 0 || spec.activations.len() != layers {
            return Err(Error::invalid(
                "Mlp::new",
                format!("{} sizes need {} activations, got {}", spec.sizes.len(), layers, spec.activations.len()),
            ));
        }
        if let Some(names) = &spec.names {
            if names.len() != layers {
                return Err(Error::invalid(
                    "Mlp::new",
                    format!("{layers} layers need {layers} names, got {}", names.len()),
                ));
            }
        }
        let layers = (0..layers)
            .map(|i| {
                let name = spec.names.as_ref().map_or_else(|| format!("{prefix}{i}"), |n| n[i].clone());
                Linear::new(b, &name, spec.sizes[i], spec.sizes[i + 1], rng)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers, acts: spec.activations.clone(), bufs: None })
    }

    pub fn in_features(&self) -> usize {
        self.layers[0].in_features()
    }

    pub fn out_features(&self) -> usize {
        self.layers[self.layers.len() - 1].out_features()
    }

    pub fn layers(&self) -> &[Linear<B>] {
        &self.layers
    }

    fn alloc_buffers(&self, b: &B, batch: usize) -> Result<Buffers<B>> {
        let mut bufs = Buffers { batch, out: Vec::new(), d_pre: Vec::new() };
        for layer in &self.layers {
            let shape = [batch, layer.out_features()];
            bufs.out.push(Tensor::zeros(b, &shape)?);
            bufs.d_pre.push(Tensor::zeros(b, &shape)?);
        }
        Ok(bufs)
    }

    /// Runs the network on x: [B, in]; the output ([B, out]) is then [`Mlp::output`]. Buffers are
    /// allocated on the first call and again only when the batch size changes. Each layer is one
    /// GEMM with its bias and activation fused into the epilogue.
    pub fn forward(&mut self, b: &B, x: &Tensor<B>) -> Result<()> {
        let (batch, cols) = x.dims2("Mlp::forward")?;
        if cols != self.in_features() {
            return Err(Error::shape(
                "Mlp::forward",
                format!("input has {cols} features, the network takes {}", self.in_features()),
            ));
        }
        let mut bufs = match self.bufs.take() {
            Some(s) if s.batch == batch => s,
            _ => self.alloc_buffers(b, batch)?,
        };
        let res = self.forward_into(b, x, &mut bufs);
        self.bufs = Some(bufs);
        res
    }

    fn forward_into(&self, b: &B, x: &Tensor<B>, bufs: &mut Buffers<B>) -> Result<()> {
        for (i, layer) in self.layers.iter().enumerate() {
            let (before, rest) = bufs.out.split_at_mut(i);
            let input = if i == 0 { x } else { &before[i - 1] };
            layer.forward_act(b, input, &mut rest[0], self.acts[i])?;
        }
        Ok(())
    }

    /// The output of the last [`Mlp::forward`].
    pub fn output(&self) -> Result<&Tensor<B>> {
        let bufs = self.bufs.as_ref().ok_or_else(|| Error::invalid("Mlp::output", "forward has not run"))?;
        bufs.out.last().ok_or_else(|| Error::invalid("Mlp::output", "no layers"))
    }

    /// Backward from `d_out` (gradient of the loss w.r.t. the output, [B, out]) for the same x as
    /// the last forward. Fills every parameter's gradient, and `dx` when given. The gradient into
    /// each lower layer's pre-activation comes out of one GEMM with act' in the epilogue.
    pub fn backward(&mut self, b: &B, x: &Tensor<B>, d_out: &Tensor<B>, mut dx: Option<&mut Tensor<B>>) -> Result<()> {
        let bufs = self.bufs.as_mut().ok_or_else(|| Error::invalid("Mlp::backward", "forward has not run"))?;
        let last = self.layers.len() - 1;
        if d_out.shape() != bufs.out[last].shape() {
            return Err(Error::shape(
                "Mlp::backward",
                format!("d_out should be {:?}, got {:?}", bufs.out[last].shape(), d_out.shape()),
            ));
        }
        // The top layer's own activation, if any, is a separate pointwise kernel.
        if self.acts[last] != Activation::None {
            elementwise::activation_bwd(b, self.acts[last], &bufs.out[last], d_out, &mut bufs.d_pre[last])?;
        }
        for i in (0..self.layers.len()).rev() {
            let (lower, upper) = bufs.d_pre.split_at_mut(i);
            let d_pre: &Tensor<B> = if i == last && self.acts[last] == Activation::None { d_out } else { &upper[0] };
            let input = if i == 0 { x } else { &bufs.out[i - 1] };
            self.layers[i].backward_params(b, input, d_pre)?;
            if i > 0 {
                let below = i - 1;
                self.layers[i].backward_input_act(
                    b,
                    d_pre,
                    &mut lower[below],
                    0.0,
                    self.acts[below],
                    &bufs.out[below],
                )?;
            } else if let Some(dx) = dx.as_deref_mut() {
                self.layers[0].backward_input(b, d_pre, dx, 0.0)?;
            }
        }
        Ok(())
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        self.layers.iter_mut().flat_map(|l| l.params_mut()).collect()
    }

    pub fn params(&self) -> Vec<&Param<B>> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }
}
