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
pub(crate) use vae::load_params;
pub(crate) use vae::{checkpoint_sizes, sizes_label};
pub use vae::{StepStats, Vae, VaeConfig};

use crate::backend::Backend;
use crate::tensor::Tensor;

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
