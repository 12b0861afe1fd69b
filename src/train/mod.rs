//! Training: optimizers over a model's parameters and the training loops.

mod metric_trainer;
mod optimizer;
mod vae_trainer;

pub use metric_trainer::{
    distance_kind, MetricEpochRecord, MetricEval, MetricLoss, MetricStepStats, MetricTrainConfig, MetricTrainer,
};
pub use optimizer::{Adam, Sgd};
pub use vae_trainer::{EpochRecord, StepMode, VaeTrainConfig, VaeTrainer};

/// The checkpoint file both trainers resume from: the weights (under [`WEIGHTS_PREFIX`]), the
/// optimizer's moments and step, the counters and seeds, written atomically.
pub const TRAINER_FILE: &str = "trainer.safetensors";
/// The weights alone, for export, written after [`TRAINER_FILE`].
pub const MODEL_FILE: &str = "model.safetensors";
/// The prefix of the weights' names in [`TRAINER_FILE`].
pub const WEIGHTS_PREFIX: &str = "model.";

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::nn::Param;

/// The end-of-epoch check of both trainers: every step's loss is checked before its update, so
/// the epoch's last update is checked here, on the weights, before the epoch counts (and is
/// saved): [`Error::NonFiniteParameter`] names the first non-finite one.
fn check_params_finite<'a, B: Backend>(b: &B, params: impl IntoIterator<Item = &'a Param<B>>, step: u64) -> Result<()> {
    for p in params {
        if let Some(&value) = p.value.to_vec(b)?.iter().find(|v| !v.is_finite()) {
            return Err(Error::NonFiniteParameter { step, name: p.name.clone(), value });
        }
    }
    Ok(())
}
