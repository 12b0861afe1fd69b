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
/// optimizer's moments and step, the counters and seeds, and the settings the trainer runs as
/// metadata, written atomically.
pub const TRAINER_FILE: &str = "trainer.safetensors";
/// The weights alone, for export, written after [`TRAINER_FILE`].
pub const MODEL_FILE: &str = "model.safetensors";
/// The prefix of the weights' names in [`TRAINER_FILE`].
pub const WEIGHTS_PREFIX: &str = "model.";

use std::collections::BTreeMap;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::nn::Param;
use crate::ops::AdamConfig;

/// Checkpoint metadata: text fields by name.
type Meta = BTreeMap<String, String>;

/// Metadata field `key` parsed, or a message that names it (missing or malformed).
fn meta_field<T: std::str::FromStr>(meta: &Meta, key: &str) -> std::result::Result<T, String> {
    let v = meta.get(key).ok_or_else(|| format!("metadata field {key:?} missing"))?;
    v.parse().map_err(|_| format!("metadata field {key:?} = {v:?} is malformed"))
}

/// Records Adam's settings under `adam_*` (f32's Display is the shortest text that parses back to
/// the same value, so they round-trip exactly).
fn record_adam(a: &AdamConfig, meta: &mut Meta) {
    let mut put = |k: &str, v: String| meta.insert(k.to_string(), v);
    put("adam_lr", a.lr.to_string());
    put("adam_beta1", a.beta1.to_string());
    put("adam_beta2", a.beta2.to_string());
    put("adam_eps", a.eps.to_string());
    put("adam_weight_decay", a.weight_decay.to_string());
    put("adam_decoupled_weight_decay", a.decoupled_weight_decay.to_string());
}

/// The inverse of [`record_adam`].
fn parse_adam(meta: &Meta) -> std::result::Result<AdamConfig, String> {
    Ok(AdamConfig {
        lr: meta_field(meta, "adam_lr")?,
        beta1: meta_field(meta, "adam_beta1")?,
        beta2: meta_field(meta, "adam_beta2")?,
        eps: meta_field(meta, "adam_eps")?,
        weight_decay: meta_field(meta, "adam_weight_decay")?,
        decoupled_weight_decay: meta_field(meta, "adam_decoupled_weight_decay")?,
    })
}

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
