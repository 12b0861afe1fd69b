//! Datasets and batching.

pub mod mnist;
pub mod sampler;

pub use mnist::{Mnist, MnistSplit};
pub use sampler::PkSampler;
