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

/// Per-batch-size buffers: pre-activations, post-activations and their gradients.
struct Buffers<B: Backend> {
    batch: usize,
    pre: Vec<Tensor<B>>,
    post: Vec<Option<Tensor<B>>>,
    d_pre: Vec<Tensor<B>>,
    d_post: Vec<Tensor<B>>,
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
        let mut bufs = Buffers { batch, pre: Vec::new(), post: Vec::new(), d_pre: Vec::new(), d_post: Vec::new() };
        for (layer, act) in self.layers.iter().zip(&self.acts) {
            let shape = [batch, layer.out_features()];
            bufs.pre.push(Tensor::zeros(b, &shape)?);
            bufs.post.push(if *act == Activation::None { None } else { Some(Tensor::zeros(b, &shape)?) });
            bufs.d_pre.push(Tensor::zeros(b, &shape)?);
            bufs.d_post.push(Tensor::zeros(b, &shape)?);
        }
        Ok(bufs)
    }

    /// Runs the network on x: [B, in]; the output ([B, out]) is then [`Mlp::output`]. Buffers are
    /// allocated on the first call and again only when the batch size changes.
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
            let (before, rest) = bufs.pre.split_at_mut(i);
            let input = if i == 0 { x } else { bufs.post[i - 1].as_ref().unwrap_or(&before[i - 1]) };
            layer.forward(b, input, &mut rest[0])?;
            if let Some(out) = bufs.post[i].as_mut() {
                elementwise::activation_fwd(b, self.acts[i], &rest[0], out)?;
            }
        }
        Ok(())
    }

    /// The output of the last [`Mlp::forward`].
    pub fn output(&self) -> Result<&Tensor<B>> {
        let bufs = self.bufs.as_ref().ok_or_else(|| Error::invalid("Mlp::output", "forward has not run"))?;
        let last = self.layers.len() - 1;
        Ok(bufs.post[last].as_ref().unwrap_or(&bufs.pre[last]))
    }

    /// Backward from `d_out` (gradient of the loss w.r.t. the output, [B, out]) for the same x as
    /// the last forward. Fills every parameter's gradient, and `dx` when given.
    pub fn backward(&mut self, b: &B, x: &Tensor<B>, d_out: &Tensor<B>, mut dx: Option<&mut Tensor<B>>) -> Result<()> {
        let bufs = self.bufs.as_mut().ok_or_else(|| Error::invalid("Mlp::backward", "forward has not run"))?;
        let last = self.layers.len() - 1;
        if d_out.shape() != bufs.pre[last].shape() {
            return Err(Error::shape(
                "Mlp::backward",
                format!("d_out should be {:?}, got {:?}", bufs.pre[last].shape(), d_out.shape()),
            ));
        }
        for i in (0..self.layers.len()).rev() {
            // d_post[i] (this layer's upstream) and d_post[i-1] (its dx) are split apart.
            let (lower, upper) = bufs.d_post.split_at_mut(i);
            let upstream = if i == last { d_out } else { &upper[0] };
            // Gradient w.r.t. the pre-activation; identity layers pass the upstream through.
            let d_pre: &Tensor<B> = match bufs.post[i].as_ref() {
                Some(y) => {
                    elementwise::activation_bwd(b, self.acts[i], y, upstream, &mut bufs.d_pre[i])?;
                    &bufs.d_pre[i]
                }
                None => upstream,
            };
            let input = if i == 0 { x } else { bufs.post[i - 1].as_ref().unwrap_or(&bufs.pre[i - 1]) };
            let dx_i = if i == 0 { dx.as_deref_mut() } else { lower.last_mut() };
            self.layers[i].backward(b, input, d_pre, dx_i)?;
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
