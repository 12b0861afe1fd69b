//! Training: optimizers over a model's parameters and the training loops.

mod metric_trainer;
mod optimizer;
mod vae_trainer;

pub use metric_trainer::{
    distance_kind, MetricEpochRecord, MetricEval, MetricLoss, MetricStepStats, MetricTrainConfig, MetricTrainer,
};
pub use optimizer::{Adam, Sgd};
pub use vae_trainer::{EpochRecord, StepMode, VaeTrainConfig, VaeTrainer, MODEL_FILE, TRAINER_FILE};
