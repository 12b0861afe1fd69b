//! Training: optimizers over a model's parameters and the training loops.

mod optimizer;
mod vae_trainer;

pub use optimizer::{Adam, Sgd};
pub use vae_trainer::{EpochRecord, StepMode, VaeTrainConfig, VaeTrainer, MODEL_FILE, TRAINER_FILE};
