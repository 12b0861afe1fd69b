//! Training utilities: optimizers over a model's parameters.

mod optimizer;

pub use optimizer::{Adam, Sgd};
