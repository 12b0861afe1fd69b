//! Datasets and batching.

pub mod mnist;

pub use mnist::{Mnist, MnistSplit};
