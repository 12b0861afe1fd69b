//! Layers and models with explicit forward and backward passes over preallocated buffers (no
//! dynamic graph): what a training step does is written out, and the same code runs on any
//! backend.

mod autoencoder;
mod linear;
mod mlp;
mod vae;

pub use crate::ops::latent::KlSchedule;
pub use autoencoder::{Autoencoder, Likelihood};
pub use linear::Linear;
pub use mlp::{Mlp, MlpSpec};
pub(crate) use vae::checkpoint_sizes;
pub(crate) use vae::load_params;
pub use vae::{StepStats, Vae, VaeConfig};

use crate::backend::Backend;
use crate::io::checkpoint::NamedTensor;
use crate::tensor::Tensor;

/// Layer widths as checkpoints and messages write them: `784-400-20`.
pub(crate) fn sizes_label(sizes: &[usize]) -> String {
    sizes.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("-")
}

/// The shape of the 2-D tensor `name` among `tensors`; None when it is missing or not 2-D.
pub(crate) fn weight_shape<'a>(tensors: &'a [NamedTensor], name: &str) -> Option<&'a [usize]> {
    tensors.iter().find(|t| t.name == name).map(|t| t.shape.as_slice()).filter(|s| s.len() == 2)
}

/// The widths `[input, out₀, out₁, …]` of a chain of weights ([out, in] each, input side first);
/// None for no weights, a size of 0, or a weight that does not take the previous one's output.
/// Every width is then a dimension of a non-empty weight, so a model of these widths allocates no
/// more than a few times the weights' data: checkpoints check the sizes they record with this
/// before allocating anything.
pub(crate) fn weight_chain<'a>(weights: impl IntoIterator<Item = &'a [usize]>) -> Option<Vec<usize>> {
    let mut sizes: Vec<usize> = Vec::new();
    for w in weights {
        let (&out, &inp) = (w.first()?, w.get(1)?);
        match sizes.last() {
            None if inp > 0 => sizes.push(inp),
            Some(&prev) if prev == inp => {}
            _ => return None,
        }
        if out == 0 {
            return None;
        }
        sizes.push(out);
    }
    (!sizes.is_empty()).then_some(sizes)
}

/// A trainable tensor and its gradient (same shape), with the name checkpoints use.
pub struct Param<B: Backend> {
    pub name: String,
    pub value: Tensor<B>,
    pub grad: Tensor<B>,
}

impl<B: Backend> Param<B> {
    /// The value as a named host tensor (for checkpoints).
    pub fn to_named(&self, b: &B) -> crate::error::Result<crate::io::checkpoint::NamedTensor> {
        Ok(crate::io::checkpoint::NamedTensor {
            name: self.name.clone(),
            shape: self.value.shape().to_vec(),
            data: self.value.to_vec(b)?,
        })
    }
}

impl<B: Backend> std::fmt::Debug for Param<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({} {:?})", self.name, self.value.shape())
    }
}
