//! Metric-learning training: an MLP embedding net trained on P×K class-balanced batches with one
//! of three losses ([`MetricLoss`]): the fused triplet miners, the contrastive loss over every
//! in-batch pair, or a siamese cosine-similarity head trained with BCE. Evaluated by exact
//! retrieval (test queries against train references) and by pair verification on fixed, seeded
//! sets of balanced MNIST pairs (accuracy at a threshold picked on training pairs, ROC-AUC).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use rand::Rng;

use super::{meta_field, parse_adam, record_adam, Adam, Meta, MODEL_FILE, TRAINER_FILE, WEIGHTS_PREFIX};
use crate::backend::cpu::host_vec;
use crate::backend::Backend;
use crate::data::{MnistSplit, PkSampler};
use crate::error::{Error, Result};
use crate::eval::{accuracy_at, best_threshold, retrieval_metrics, roc_auc, DistanceKind, RetrievalMetrics};
use crate::io::checkpoint::{load_checkpoint, save_checkpoint, NamedTensor};
use crate::nn::{load_params, sizes_label, weight_chain, weight_shape, Mlp, MlpSpec, Param};
use crate::ops::batch::{gather_rows, gather_sum_rows};
use crate::ops::distance::{Metric, COSINE_NORM_FLOOR};
use crate::ops::metric_loss::{
    batch_pairs, contrastive_batch_bwd, contrastive_batch_fwd, siamese_cos_bwd, siamese_cos_fwd,
};
use crate::ops::mining::{triplet_bwd, triplet_fwd, Miner, TripletConfig, TripletStats, TripletWorkspace};
use crate::ops::{Activation, AdamConfig};
use crate::rng::seeded;
use crate::tensor::Tensor;

const TEST_PAIR_SEED: u64 = 0x7e57_9a12;
const TRAIN_PAIR_SEED: u64 = 0x7a19_9a12;
/// Pairs closer than this count as collapsed in the contrastive / BCE step statistics.
const COLLAPSE_EPS: f64 = 1e-3;
/// `format` of [`MetricTrainer::save`]'s trainer file and of its weights-only model file.
const TRAINER_FORMAT: &str = "latentkit-metric-trainer";
const MODEL_FORMAT: &str = "latentkit-embedding-mlp";
/// The prefix of the embedding net's parameter names.
const NET_PREFIX: &str = "embed.";

/// The training loss.
///
/// - `Triplet`: the fused miners of [`crate::ops::mining`] over the P×K batch (anchors and
///   references are the same batch).
/// - `Contrastive`: `½·y·d² + ½·(1 − y)·max(0, m − d)²` averaged over every unordered pair of the
///   P×K batch (y from the class labels), d the Euclidean distance of the raw embeddings
///   ([`crate::ops::metric_loss::contrastive_batch_fwd`]).
/// - `BceHead`: a siamese head `logit = scale·cos(e1, e2) + bias` (trainable scalars `head.scale`,
///   `head.bias`, initialised to [`MetricTrainConfig::HEAD_INIT_SCALE`] / `HEAD_INIT_BIAS` and
///   updated by the same Adam as the net) with BCE-with-logits, mean over 2·m·P·K pairs built
///   inside each batch (m = [`MetricTrainConfig::BCE_PAIRS_PER_EXAMPLE`]): every example with m
///   positives (the examples 1..=m places after it in its class block, cyclically) and m negatives
///   (the examples at its position in the next 1..=m class blocks). The sampler shuffles classes
///   and examples per batch, so the pairs are random and deterministic per seed. Gradients go back
///   to the batch rows through [`crate::ops::batch::gather_sum_rows`] (each row sums the pairs
///   that hold it: no atomics, O(pairs·dim) memory, the same sums on every backend).
///
/// Measured on full MNIST, 5 epochs, defaults otherwise (CPU): contrastive margin 1.0 reaches test
/// p@1 0.978, pair accuracy 0.985 (ROC-AUC 0.998); the BCE head 0.982 and 0.980 (ROC-AUC 0.998).
/// On the committed subset (5 epochs) margins 0.5 / 1 / 2 / 4 gave pair accuracy 0.943 / 0.947 /
/// 0.938 / 0.923, and m = 1 / 2 / 4 / 7 pairs per example 0.922 / 0.941 / 0.946 / 0.944.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricLoss {
    Triplet(TripletConfig),
    Contrastive { margin: f32 },
    BceHead,
}

impl Default for MetricLoss {
    fn default() -> Self {
        MetricLoss::Triplet(default_triplet())
    }
}

impl MetricLoss {
    /// Short name: `triplet`, `contrastive` or `bce` (the example's `--loss` values).
    pub fn name(&self) -> &'static str {
        match self {
            MetricLoss::Triplet(_) => "triplet",
            MetricLoss::Contrastive { .. } => "contrastive",
            MetricLoss::BceHead => "bce",
        }
    }

    pub fn triplet(&self) -> Option<&TripletConfig> {
        match self {
            MetricLoss::Triplet(t) => Some(t),
            _ => None,
        }
    }

    pub fn triplet_mut(&mut self) -> Option<&mut TripletConfig> {
        match self {
            MetricLoss::Triplet(t) => Some(t),
            _ => None,
        }
    }

    pub fn contrastive_margin(&self) -> Option<f32> {
        match self {
            MetricLoss::Contrastive { margin } => Some(*margin),
            _ => None,
        }
    }

    /// How embeddings are compared for retrieval and for the pair scores of the distance losses:
    /// the triplet metric, Euclidean for contrastive, cosine for the BCE head.
    pub fn distance_kind(&self) -> DistanceKind {
        match self {
            MetricLoss::Triplet(t) => distance_kind(t.metric),
            MetricLoss::Contrastive { .. } => DistanceKind::Euclidean,
            MetricLoss::BceHead => DistanceKind::Cosine,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            MetricLoss::Triplet(t) => t.validate(),
            MetricLoss::Contrastive { margin } if !(margin.is_finite() && *margin >= 0.0) => {
                Err(Error::invalid("MetricLoss", format!("contrastive margin must be finite and ≥ 0, got {margin}")))
            }
            _ => Ok(()),
        }
    }
}

/// Semi-hard mining with TensorFlow Addons' rule, cosine distance, margin 0.2.
fn default_triplet() -> TripletConfig {
    TripletConfig {
        miner: crate::ops::mining::Miner::SemiHard(crate::ops::mining::SemiHardPolicy::TfAddons),
        metric: Metric::Cosine,
        margin: 0.2,
        squared: false,
        collapse_eps: 1e-3,
        tfa_compat: false,
    }
}

/// Model and optimisation settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricTrainConfig {
    /// Embedding net sizes `[input, hidden..., embedding]`, ReLU between layers.
    pub sizes: Vec<usize>,
    /// Classes per batch (P) and examples per class (K).
    pub p: usize,
    pub k: usize,
    pub adam: AdamConfig,
    pub loss: MetricLoss,
    /// Cosine decay of the learning rate to 0 over this many epochs (0: constant rate).
    pub lr_decay_epochs: usize,
    /// Seed of the initialisation and of the batch sampler.
    pub seed: u64,
}

impl Default for MetricTrainConfig {
    /// MLP 784-512-256-128, P×K = 8×32 (batch 256), Adam 2e-3 with a cosine decay over 5 epochs,
    /// semi-hard mining with TensorFlow Addons' rule (every anchor–positive pair, the closest
    /// negative farther than the positive), cosine distance, margin 0.2: measured on full MNIST,
    /// test precision@1 0.9813 after 4 epochs (BENCHMARKS.md).
    fn default() -> Self {
        Self {
            sizes: vec![784, 512, 256, 128],
            p: 8,
            k: 32,
            adam: AdamConfig { lr: 2e-3, ..AdamConfig::default() },
            loss: MetricLoss::default(),
            lr_decay_epochs: 5,
            seed: 1,
        }
    }
}

impl MetricTrainConfig {
    /// Default margin of [`MetricLoss::Contrastive`] (Euclidean distance on the raw embeddings),
    /// chosen by measurement (see `tests/metric.rs` and BENCHMARKS.md).
    pub const CONTRASTIVE_MARGIN: f32 = 1.0;
    /// Initial `head.scale` of [`MetricLoss::BceHead`]: logit = scale·cos + bias.
    pub const HEAD_INIT_SCALE: f32 = 10.0;
    /// Initial `head.bias` of [`MetricLoss::BceHead`] (logit 0 at cos = 0.5).
    pub const HEAD_INIT_BIAS: f32 = -5.0;
    /// Positive (and as many negative) pairs per example and step of [`MetricLoss::BceHead`].
    pub const BCE_PAIRS_PER_EXAMPLE: usize = 4;
    /// Pairs in each evaluation set (half similar, half dissimilar).
    pub const EVAL_PAIRS: usize = 10_000;

    /// The defaults with the triplet loss `t`.
    pub fn triplet(t: TripletConfig) -> Self {
        Self { loss: MetricLoss::Triplet(t), ..Self::default() }
    }

    /// The defaults with the in-batch contrastive loss of margin `margin`
    /// ([`MetricTrainConfig::CONTRASTIVE_MARGIN`] is the measured default).
    pub fn contrastive(margin: f32) -> Self {
        Self { loss: MetricLoss::Contrastive { margin }, ..Self::default() }
    }

    /// The defaults with the siamese BCE head.
    pub fn bce_head() -> Self {
        Self { loss: MetricLoss::BceHead, ..Self::default() }
    }
}

/// One training step's statistics. Triplet: the miner's ([`TripletStats`], also in `triplet`).
/// Contrastive, over every in-batch pair: `active_fraction` = pairs with a nonzero loss, mean
/// Euclidean distance of same-class (`mean_d_ap`) and different-class (`mean_d_an`) pairs,
/// `collapse_fraction` = different-class pairs closer than 1e-3. BCE head, over the step's pairs:
/// `active_fraction` = pairs on the wrong side of logit 0, mean cosine distances 1 − cos of the
/// positive / negative pairs, `collapse_fraction` = negative pairs with 1 − cos < 1e-3.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricStepStats {
    pub loss: f32,
    pub active_fraction: f32,
    pub mean_d_ap: f32,
    pub mean_d_an: f32,
    pub collapse_fraction: f32,
    pub triplet: Option<TripletStats>,
}

/// Retrieval and pair verification of the current net.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricEval {
    pub retrieval: RetrievalMetrics,
    /// Accuracy on [`MetricTrainConfig::EVAL_PAIRS`] balanced test pairs at `pair_threshold`.
    pub pair_accuracy: f64,
    /// ROC-AUC on the same test pairs.
    pub pair_auc: f64,
    /// The score threshold that maximises accuracy on [`MetricTrainConfig::EVAL_PAIRS`] balanced training pairs. The
    /// score is the head's logit (BCE head) or −distance ([`MetricLoss::distance_kind`]).
    pub pair_threshold: f32,
}

/// One epoch's record: means over its steps, retrieval and pair metrics on the test split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricEpochRecord {
    pub epoch: usize,
    pub step: u64,
    pub loss: f32,
    pub active_fraction: f32,
    pub mean_d_ap: f32,
    pub mean_d_an: f32,
    pub collapse_fraction: f32,
    pub retrieval: RetrievalMetrics,
    pub pair_accuracy: f64,
    pub pair_auc: f64,
    pub pair_threshold: f32,
    pub seconds: f64,
}

/// Buffers of the BCE head's step: the pair gathers, the head and the gradient scatter.
struct BceBuffers<B: Backend> {
    /// Row i of the pair side 1 / side 2 (i < m·N: positive pairs, then negative pairs).
    idx1: Tensor<B, u32>,
    idx2: Tensor<B, u32>,
    cursor: Tensor<B, u32>,
    /// The pair rows that hold each batch row, [2m, N] each: row j of the batch is side 1 of pair
    /// t·N + j and side 2 of pair sum2[t, j] (each block of idx2 is a permutation), so
    /// d_emb[j] = Σ_t dx1[sum1[t, j]] + Σ_t dx2[sum2[t, j]], a gather-sum.
    sum1: Tensor<B, u32>,
    sum2: Tensor<B, u32>,
    y: Tensor<B>,
    d_loss: Tensor<B>,
    x1: Tensor<B>,
    x2: Tensor<B>,
    dx1: Tensor<B>,
    dx2: Tensor<B>,
    logits: Tensor<B>,
    loss: Tensor<B>,
    /// Host copy of idx2 (checked against the batch labels each step).
    partner: Vec<u32>,
}

enum LossState<B: Backend> {
    Triplet(TripletConfig, Box<TripletWorkspace<B>>),
    Contrastive(f32, Tensor<B>),
    Bce(Box<BceBuffers<B>>),
}

pub struct MetricTrainer<B: Backend> {
    net: Mlp<B>,
    /// `head.scale`, `head.bias` ([1] each) for the BCE head; empty otherwise.
    head: Vec<Param<B>>,
    pub opt: Adam<B>,
    /// The settings `new` was given. `lr_decay_epochs` and, while it is > 0, `adam.lr` (the
    /// schedule's peak) apply from the next step; the optimizer's other settings are `opt.cfg`.
    /// The net, sampler and loss were built from the rest, and changing it here changes nothing
    /// ([`MetricTrainer::save`] records what the trainer runs).
    pub cfg: MetricTrainConfig,
    /// The seed `new` was given (the sampler's).
    seed: u64,
    pub epoch: usize,
    pub step: u64,
    sampler: PkSampler,
    x: Tensor<B>,
    labels: Tensor<B, u32>,
    d_emb: Tensor<B>,
    state: LossState<B>,
    host_x: Vec<f32>,
}

/// The retrieval ranking that matches a triplet metric.
pub fn distance_kind(metric: Metric) -> DistanceKind {
    match metric {
        Metric::Cosine => DistanceKind::Cosine,
        Metric::Euclidean | Metric::SquaredEuclidean => DistanceKind::Euclidean,
    }
}

fn scalar_param<B: Backend>(b: &B, name: &str, value: f32) -> Result<Param<B>> {
    Ok(Param { name: name.into(), value: Tensor::from_slice(b, &[1], &[value])?, grad: Tensor::zeros(b, &[1])? })
}

fn all_params<'a, B: Backend>(net: &'a mut Mlp<B>, head: &'a mut [Param<B>]) -> Vec<&'a mut Param<B>> {
    let mut v = net.params_mut();
    v.extend(head.iter_mut());
    v
}

impl<B: Backend> BceBuffers<B> {
    /// `m` positive and `m` negative pairs per example (m < P, m < K).
    fn new(b: &B, p: usize, k: usize, m: usize, dim: usize) -> Result<Self> {
        const OP: &str = "MetricTrainer";
        if m == 0 || m >= p || m >= k {
            return Err(Error::invalid(
                OP,
                format!("the BCE head pairs each example with {m} positives and negatives: needs 1 ≤ {m} < P = {p} and < K = {k}"),
            ));
        }
        let n = p * k;
        let pairs = (2 * m).checked_mul(n).filter(|&c| u32::try_from(c).is_ok()).ok_or_else(|| {
            Error::invalid(OP, format!("the BCE head's pairs for P×K = {p}×{k} overflow u32 indices"))
        })?;
        let pos = |s: usize, r: usize| (r / k) * k + (r % k + s) % k;
        let neg = |s: usize, r: usize| ((r / k + s) % p) * k + r % k;
        // Pair i = t·N + r: row r against its s-th positive (t < m, s = t + 1) or negative.
        // Block t of idx2 is a permutation of 0..N, inverted into sum2 so that each batch row
        // lists the pairs that hold it.
        let (mut idx1, mut idx2) = (host_vec(OP, pairs, 0u32)?, host_vec(OP, pairs, 0u32)?);
        let (mut sum1, mut sum2) = (host_vec(OP, pairs, 0u32)?, host_vec(OP, pairs, 0u32)?);
        for t in 0..2 * m {
            for r in 0..n {
                let j = if t < m { pos(t + 1, r) } else { neg(t - m + 1, r) };
                let i = t * n + r;
                (idx1[i], idx2[i], sum1[i]) = (r as u32, j as u32, i as u32);
                sum2[t * n + j] = i as u32;
            }
        }
        let mut y = host_vec(OP, pairs, 0.0f32)?;
        y[..pairs / 2].fill(1.0);
        Ok(Self {
            idx1: Tensor::from_slice(b, &[pairs], &idx1)?,
            idx2: Tensor::from_slice(b, &[pairs], &idx2)?,
            cursor: Tensor::zeros(b, &[1])?,
            sum1: Tensor::from_slice(b, &[2 * m, n], &sum1)?,
            sum2: Tensor::from_slice(b, &[2 * m, n], &sum2)?,
            y: Tensor::from_slice(b, &[pairs], &y)?,
            d_loss: Tensor::from_slice(b, &[pairs], &host_vec(OP, pairs, 1.0 / pairs as f32)?)?,
            x1: Tensor::zeros(b, &[pairs, dim])?,
            x2: Tensor::zeros(b, &[pairs, dim])?,
            dx1: Tensor::zeros(b, &[pairs, dim])?,
            dx2: Tensor::zeros(b, &[pairs, dim])?,
            logits: Tensor::zeros(b, &[pairs])?,
            loss: Tensor::zeros(b, &[pairs])?,
            partner: idx2,
        })
    }
}

fn norm(a: &[f32]) -> f64 {
    a.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt()
}

fn euclidean(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>().sqrt()
}

/// Cosine similarity with norms floored as the kernels do.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let floor = f64::from(COSINE_NORM_FLOOR);
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    dot / (norm(a).max(floor) * norm(b).max(floor))
}

/// The examples of each label value, the labels present, and those with two examples or more.
type PairClasses = (Vec<Vec<usize>>, Vec<usize>, Vec<usize>);

/// The examples of each label value, the labels present, and those with two examples or more;
/// an error unless there are two labels and one of them has two examples (what balanced pairs
/// need).
fn pair_classes(labels: &[u8]) -> Result<PairClasses> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &l) in labels.iter().enumerate() {
        by_class[usize::from(l)].push(i);
    }
    let classes: Vec<usize> = (0..256).filter(|&c| !by_class[c].is_empty()).collect();
    let pairable: Vec<usize> = classes.iter().copied().filter(|&c| by_class[c].len() >= 2).collect();
    if classes.len() < 2 || pairable.is_empty() {
        return Err(Error::invalid("balanced_pairs", "pairs need two classes and a class with two examples"));
    }
    Ok((by_class, classes, pairable))
}

/// `n` pairs of distinct examples, alternately of the same and of different classes, seeded.
/// Index pairs and whether each is a same-class pair.
type PairSet = (Vec<(usize, usize)>, Vec<bool>);

fn balanced_pairs(labels: &[u8], n: usize, seed: u64) -> Result<PairSet> {
    let (by_class, classes, pairable) = pair_classes(labels)?;
    let mut rng = seeded(seed);
    let (mut pairs, mut same) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for t in 0..n {
        if t % 2 == 0 {
            let members = &by_class[pairable[rng.random_range(0..pairable.len())]];
            let i = rng.random_range(0..members.len());
            let j = (i + rng.random_range(1..members.len())) % members.len();
            pairs.push((members[i], members[j]));
            same.push(true);
        } else {
            let ci = rng.random_range(0..classes.len());
            let cj = (ci + rng.random_range(1..classes.len())) % classes.len();
            let (mi, mj) = (&by_class[classes[ci]], &by_class[classes[cj]]);
            pairs.push((mi[rng.random_range(0..mi.len())], mj[rng.random_range(0..mj.len())]));
            same.push(false);
        }
    }
    Ok((pairs, same))
}

impl<B: Backend> MetricTrainer<B> {
    /// A fresh net; `train_labels` set up the P×K sampler.
    pub fn new(b: &B, cfg: MetricTrainConfig, train_labels: &[u32]) -> Result<Self> {
        cfg.loss.validate()?;
        let spec = MlpSpec::new(&cfg.sizes, Activation::Relu, Activation::None);
        let mut net = Mlp::new(b, &spec, NET_PREFIX, &mut seeded(cfg.seed))?;
        let sampler = PkSampler::new(train_labels, cfg.p, cfg.k, cfg.seed ^ 0x5eed)?;
        let n = sampler.batch_size();
        let (din, dout) = (net.in_features(), net.out_features());
        let mut head = Vec::new();
        let state = match cfg.loss {
            MetricLoss::Triplet(t) => LossState::Triplet(t, Box::new(TripletWorkspace::new(b, n, n, &t)?)),
            MetricLoss::Contrastive { margin } => LossState::Contrastive(margin, Tensor::zeros(b, &[n])?),
            MetricLoss::BceHead => {
                head.push(scalar_param(b, "head.scale", MetricTrainConfig::HEAD_INIT_SCALE)?);
                head.push(scalar_param(b, "head.bias", MetricTrainConfig::HEAD_INIT_BIAS)?);
                LossState::Bce(Box::new(BceBuffers::new(
                    b,
                    cfg.p,
                    cfg.k,
                    MetricTrainConfig::BCE_PAIRS_PER_EXAMPLE,
                    dout,
                )?))
            }
        };
        let opt = Adam::new(b, &all_params(&mut net, &mut head), cfg.adam)?;
        Ok(Self {
            x: Tensor::zeros(b, &[n, din])?,
            labels: Tensor::zeros(b, &[n])?,
            d_emb: Tensor::zeros(b, &[n, dout])?,
            state,
            host_x: host_vec("MetricTrainer", n.saturating_mul(din), 0.0f32)?,
            net,
            head,
            opt,
            seed: cfg.seed,
            cfg,
            sampler,
            epoch: 0,
            step: 0,
        })
    }

    /// One step on the batch of example indices `idx` (P·K of them, class by class) of `train`.
    fn train_step(&mut self, b: &B, train: &MnistSplit, idx: &[usize]) -> Result<MetricStepStats> {
        let dim = train.dim();
        for (row, &i) in idx.iter().enumerate() {
            self.host_x[row * dim..(row + 1) * dim].copy_from_slice(&train.images[i * dim..(i + 1) * dim]);
        }
        let labels: Vec<u32> = idx.iter().map(|&i| u32::from(train.labels[i])).collect();
        self.x.copy_from_slice(b, &self.host_x)?;
        self.labels.copy_from_slice(b, &labels)?;
        self.net.forward(b, &self.x)?;
        let emb = self.net.output()?;
        let step = self.step;
        let finite =
            |loss: f32| if loss.is_finite() { Ok(()) } else { Err(Error::NonFiniteLoss { step, value: loss }) };
        let stats = match &mut self.state {
            LossState::Triplet(cfg, ws) => {
                let st = triplet_fwd(b, cfg, emb, &self.labels, emb, &self.labels, true, ws)?;
                finite(st.loss)?;
                triplet_bwd(b, cfg, emb, &self.labels, emb, &self.labels, true, ws, 1.0, &mut self.d_emb, None)?;
                MetricStepStats {
                    loss: st.loss,
                    active_fraction: st.active_fraction,
                    mean_d_ap: st.mean_d_ap,
                    mean_d_an: st.mean_d_an,
                    collapse_fraction: st.collapse_fraction,
                    triplet: Some(st),
                }
            }
            LossState::Contrastive(margin, row_loss) => {
                let margin = *margin;
                contrastive_batch_fwd(b, margin, emb, &self.labels, row_loss)?;
                let n = labels.len();
                let total: f64 = row_loss.to_vec(b)?.iter().map(|&v| f64::from(v)).sum();
                let loss = (total / batch_pairs(n).max(1) as f64) as f32;
                finite(loss)?;
                contrastive_batch_bwd(b, margin, emb, &self.labels, 1.0, &mut self.d_emb)?;
                let e = emb.to_vec(b)?;
                let d = e.len() / n.max(1);
                // Sums and counts of (same, different) distances, active pairs, collapsed pairs.
                let (mut sum, mut cnt, mut active, mut collapsed) = ([0.0f64; 2], [0usize; 2], 0usize, 0usize);
                for i in 0..n {
                    for j in i + 1..n {
                        let dist = euclidean(&e[i * d..(i + 1) * d], &e[j * d..(j + 1) * d]);
                        let diff = usize::from(labels[i] != labels[j]);
                        sum[diff] += dist;
                        cnt[diff] += 1;
                        active += usize::from(if diff == 0 { dist > 0.0 } else { dist < f64::from(margin) });
                        collapsed += usize::from(diff == 1 && dist < COLLAPSE_EPS);
                    }
                }
                let frac = |a: usize, c: usize| if c > 0 { a as f32 / c as f32 } else { 0.0 };
                MetricStepStats {
                    loss,
                    active_fraction: frac(active, cnt[0] + cnt[1]),
                    mean_d_ap: if cnt[0] > 0 { (sum[0] / cnt[0] as f64) as f32 } else { 0.0 },
                    mean_d_an: if cnt[1] > 0 { (sum[1] / cnt[1] as f64) as f32 } else { 0.0 },
                    collapse_fraction: frac(collapsed, cnt[1]),
                    triplet: None,
                }
            }
            LossState::Bce(s) => {
                let n = labels.len();
                let half = s.partner.len() / 2;
                for (r, &j) in s.partner.iter().enumerate() {
                    if (labels[r % n] == labels[j as usize]) != (r < half) {
                        return Err(Error::invalid(
                            "MetricTrainer",
                            "the BCE head's pairs need the batch as P blocks of K examples of distinct classes",
                        ));
                    }
                }
                let (scale, bias) = self.head.split_at_mut(1);
                let (scale, bias) = (&mut scale[0], &mut bias[0]);
                gather_rows(b, emb, &s.idx1, &s.cursor, &mut s.x1)?;
                gather_rows(b, emb, &s.idx2, &s.cursor, &mut s.x2)?;
                siamese_cos_fwd(b, &s.x1, &s.x2, &s.y, &scale.value, &bias.value, &mut s.logits, &mut s.loss)?;
                let pair_loss = s.loss.to_vec(b)?;
                let loss = (pair_loss.iter().map(|&v| f64::from(v)).sum::<f64>() / pair_loss.len() as f64) as f32;
                finite(loss)?;
                siamese_cos_bwd(
                    b,
                    &s.x1,
                    &s.x2,
                    &s.y,
                    &s.d_loss,
                    &scale.value,
                    &bias.value,
                    &mut s.dx1,
                    &mut s.dx2,
                    &mut scale.grad,
                    &mut bias.grad,
                )?;
                gather_sum_rows(b, &s.dx1, &s.sum1, false, &mut self.d_emb)?;
                gather_sum_rows(b, &s.dx2, &s.sum2, true, &mut self.d_emb)?;
                // Cosines back from the logits: cos = (logit − bias) / scale.
                let logits = s.logits.to_vec(b)?;
                let (sc, bi) = (scale.value.to_vec(b)?[0], bias.value.to_vec(b)?[0]);
                let (mut wrong, mut sum, mut collapsed) = (0usize, [0.0f64; 2], 0usize);
                for (r, &lg) in logits.iter().enumerate() {
                    let similar = r < half;
                    wrong += usize::from((lg > 0.0) != similar);
                    let dist = if sc != 0.0 { 1.0 - (f64::from(lg) - f64::from(bi)) / f64::from(sc) } else { 0.0 };
                    sum[usize::from(!similar)] += dist;
                    collapsed += usize::from(!similar && dist < COLLAPSE_EPS);
                }
                let n = half.max(1) as f64;
                MetricStepStats {
                    loss,
                    active_fraction: (wrong as f64 / (2.0 * n)) as f32,
                    mean_d_ap: (sum[0] / n) as f32,
                    mean_d_an: (sum[1] / n) as f32,
                    collapse_fraction: (collapsed as f64 / n) as f32,
                    triplet: None,
                }
            }
        };
        self.net.backward(b, &self.x, &self.d_emb, None)?;
        self.opt.step(b, &mut all_params(&mut self.net, &mut self.head))?;
        Ok(stats)
    }

    /// Trains one epoch (⌊train / (P·K)⌋ batches) and evaluates on `test` (retrieval against
    /// `train` as references, pair metrics). `on_step(i, steps, stats)` reports progress.
    pub fn run_epoch(
        &mut self,
        b: &B,
        train: &MnistSplit,
        test: &MnistSplit,
        mut on_step: impl FnMut(usize, usize, &MetricStepStats),
    ) -> Result<MetricEpochRecord> {
        train.validate()?;
        test.validate()?;
        // Everything the evaluation after the epoch needs is checked before the epoch trains.
        if train.dim() != self.net.in_features() || test.dim() != self.net.in_features() {
            return Err(Error::shape(
                "MetricTrainer",
                format!(
                    "images have {} (train) and {} (test) pixels, the net takes {}",
                    train.dim(),
                    test.dim(),
                    self.net.in_features()
                ),
            ));
        }
        pair_classes(&train.labels)?;
        pair_classes(&test.labels)?;
        // The sampler draws indices into the labels `new` was given: they must be this split's.
        if train.len() != self.sampler.examples()
            || !self.sampler.same_classes(|i| u32::from(train.labels.get(i).copied().unwrap_or(u8::MAX)))
        {
            return Err(Error::shape(
                "MetricTrainer::run_epoch",
                format!(
                    "{} training examples whose labels are not the {} the sampler was built on",
                    train.len(),
                    self.sampler.examples()
                ),
            ));
        }
        let t0 = Instant::now();
        let batches = self.sampler.epoch();
        let steps = batches.len();
        let total_steps = self.cfg.lr_decay_epochs as f64 * steps as f64;
        let mut sums = [0.0f64; 5];
        for (s, idx) in batches.iter().enumerate() {
            if total_steps > 0.0 {
                let progress = (self.step as f64 / total_steps).min(1.0);
                self.opt.cfg.lr =
                    (f64::from(self.cfg.adam.lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32;
            }
            let st = self.train_step(b, train, idx)?;
            self.step = self.step.saturating_add(1);
            for (acc, v) in
                sums.iter_mut().zip([st.loss, st.active_fraction, st.mean_d_ap, st.mean_d_an, st.collapse_fraction])
            {
                *acc += f64::from(v);
            }
            on_step(s, steps, &st);
        }
        super::check_params_finite(b, self.net.params().into_iter().chain(self.head.iter()), self.step)?;
        let ev = self.evaluate(b, train, test)?;
        self.epoch = self.epoch.saturating_add(1);
        let mean = |i: usize| (sums[i] / steps.max(1) as f64) as f32;
        Ok(MetricEpochRecord {
            epoch: self.epoch,
            step: self.step,
            loss: mean(0),
            active_fraction: mean(1),
            mean_d_ap: mean(2),
            mean_d_an: mean(3),
            collapse_fraction: mean(4),
            retrieval: ev.retrieval,
            pair_accuracy: ev.pair_accuracy,
            pair_auc: ev.pair_auc,
            pair_threshold: ev.pair_threshold,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Embeddings of every image of a split ([n, embedding]), in batches.
    pub fn embed(&mut self, b: &B, split: &MnistSplit) -> Result<Vec<f32>> {
        split.validate()?;
        let d = self.net.out_features();
        let total = split.len().saturating_mul(d);
        let mut out = Vec::new();
        out.try_reserve_exact(total)
            .map_err(|e| Error::invalid("MetricTrainer::embed", format!("{} embeddings of {d}: {e}", split.len())))?;
        for (n, pixels) in split.image_chunks(1000) {
            let x = Tensor::from_slice(b, &[n, split.dim()], pixels)?;
            self.net.forward(b, &x)?;
            out.extend(self.net.output()?.to_vec(b)?);
        }
        Ok(out)
    }

    /// Pair scores ("higher is more similar") of embeddings `emb` ([n, D]): the head's logit for
    /// the BCE head, −distance ([`MetricLoss::distance_kind`]) otherwise.
    pub fn pair_scores(&self, b: &B, emb: &[f32], pairs: &[(usize, usize)]) -> Result<Vec<f32>> {
        let d = self.net.out_features();
        let rows = emb.len() / d;
        let outside = pairs.iter().find(|&&(i, j)| i.max(j) >= rows);
        if emb.len() % d != 0 || outside.is_some() {
            return Err(Error::shape(
                "MetricTrainer::pair_scores",
                format!("{} values are not rows of {d}, or pair {outside:?} is past their {rows} rows", emb.len()),
            ));
        }
        let row = |i: usize| &emb[i * d..(i + 1) * d];
        let head = match self.head.as_slice() {
            [scale, bias] => Some((f64::from(scale.value.to_vec(b)?[0]), f64::from(bias.value.to_vec(b)?[0]))),
            _ => None,
        };
        let kind = self.loss().distance_kind();
        Ok(pairs
            .iter()
            .map(|&(i, j)| {
                let s = match (head, kind) {
                    (Some((scale, bias)), _) => scale * cosine(row(i), row(j)) + bias,
                    (None, DistanceKind::Cosine) => cosine(row(i), row(j)) - 1.0,
                    (None, DistanceKind::Euclidean) => -euclidean(row(i), row(j)),
                };
                s as f32
            })
            .collect())
    }

    /// Exact retrieval metrics of the test images (queries) against the training images, and the
    /// pair metrics: [`MetricTrainConfig::EVAL_PAIRS`] fixed, seeded, balanced test pairs scored by
    /// [`MetricTrainer::pair_scores`], thresholded where accuracy is best on as many training
    /// pairs (fixed and seeded too).
    pub fn evaluate(&mut self, b: &B, train: &MnistSplit, test: &MnistSplit) -> Result<MetricEval> {
        let refs = self.embed(b, train)?;
        let queries = self.embed(b, test)?;
        let rl: Vec<u32> = train.labels.iter().map(|&l| u32::from(l)).collect();
        let ql: Vec<u32> = test.labels.iter().map(|&l| u32::from(l)).collect();
        let retrieval =
            retrieval_metrics(&queries, &ql, &refs, &rl, self.net.out_features(), self.loss().distance_kind(), false)?;
        let (train_pairs, train_same) = balanced_pairs(&train.labels, MetricTrainConfig::EVAL_PAIRS, TRAIN_PAIR_SEED)?;
        let (test_pairs, test_same) = balanced_pairs(&test.labels, MetricTrainConfig::EVAL_PAIRS, TEST_PAIR_SEED)?;
        let (threshold, _) = best_threshold(&self.pair_scores(b, &refs, &train_pairs)?, &train_same)?;
        let test_scores = self.pair_scores(b, &queries, &test_pairs)?;
        Ok(MetricEval {
            retrieval,
            pair_accuracy: accuracy_at(&test_scores, &test_same, threshold)?,
            pair_auc: roc_auc(&test_scores, &test_same)?,
            pair_threshold: threshold,
        })
    }

    /// The weights as named tensors (`embed.{i}.weight` [out, in], `embed.{i}.bias`, and for the
    /// BCE head `head.scale`, `head.bias` [1]).
    pub fn state_dict(&self, b: &B) -> Result<Vec<NamedTensor>> {
        self.params().into_iter().map(|p| p.to_named(b)).collect()
    }

    /// The embedding net (read-only: the trainer's buffers are sized for it).
    pub fn net(&self) -> &Mlp<B> {
        &self.net
    }

    /// `head.scale` and `head.bias` ([1] each) for the BCE head; empty otherwise.
    pub fn head(&self) -> &[Param<B>] {
        &self.head
    }

    /// The settings the trainer runs: sizes, P, K, loss and seed as built by `new` (whatever
    /// `cfg` says now), the optimizer's settings and the learning-rate schedule.
    fn running_config(&self) -> MetricTrainConfig {
        let layers = self.net.layers();
        let sizes = std::iter::once(self.net.in_features()).chain(layers.iter().map(|l| l.out_features())).collect();
        let (p, k) = self.sampler.classes_and_examples();
        // The peak rate while the schedule runs, the optimizer's own otherwise.
        let lr = if self.cfg.lr_decay_epochs > 0 { self.cfg.adam.lr } else { self.opt.cfg.lr };
        MetricTrainConfig {
            sizes,
            p,
            k,
            adam: AdamConfig { lr, ..self.opt.cfg },
            loss: self.loss(),
            lr_decay_epochs: self.cfg.lr_decay_epochs,
            seed: self.seed,
        }
    }

    /// The loss the trainer was built with.
    pub fn loss(&self) -> MetricLoss {
        match &self.state {
            LossState::Triplet(t, _) => MetricLoss::Triplet(*t),
            LossState::Contrastive(margin, _) => MetricLoss::Contrastive { margin: *margin },
            LossState::Bce(_) => MetricLoss::BceHead,
        }
    }

    /// The net's parameters, then the head's: the order the optimizer was built with.
    fn params(&self) -> Vec<&Param<B>> {
        self.net.params().into_iter().chain(self.head.iter()).collect()
    }

    /// Writes `trainer.safetensors` (everything [`MetricTrainer::resume`] needs: the weights
    /// under `model.`, the Adam moments and step, the epoch and step counters, the sampler's
    /// position and a digest of the grouping of the training labels, and the net's sizes, the
    /// loss with its settings, P, K and the seed as metadata), then `model.safetensors` (the
    /// weights alone, [`MetricTrainer::state_dict`]'s names, for export) into `dir`, each
    /// atomically. Resuming reads the trainer file alone, so a crash at any point leaves a
    /// consistent checkpoint: the previous one, or the new one with the model file a save behind.
    pub fn save(&self, b: &B, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), offset: 0, source: e })?;
        let weights = self.state_dict(b)?;
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), MODEL_FORMAT.to_string());
        let running = self.running_config();
        meta.insert("sizes".into(), sizes_label(&running.sizes));
        meta.insert("epoch".into(), self.epoch.to_string());
        meta.insert("loss".into(), running.loss.name().into());
        let mut trainer_meta = meta.clone();
        trainer_meta.insert("format".into(), TRAINER_FORMAT.into());
        record_settings(&self.running_config(), &mut trainer_meta);
        trainer_meta.insert("step".into(), self.step.to_string());
        trainer_meta.insert("sampler_position".into(), self.sampler.position().to_string());
        trainer_meta.insert("sampler_labels".into(), format!("{:016x}", self.sampler.fingerprint()));
        let mut state: Vec<NamedTensor> =
            weights.iter().map(|t| NamedTensor { name: format!("{WEIGHTS_PREFIX}{}", t.name), ..t.clone() }).collect();
        state.extend(self.opt.state_dict(b, &self.params())?);
        save_checkpoint(&dir.join(TRAINER_FILE), &state, &trainer_meta)?;
        save_checkpoint(&dir.join(MODEL_FILE), &weights, &meta)
    }

    /// Restores a trainer saved by [`MetricTrainer::save`] from `dir/trainer.safetensors`, so
    /// that the next epochs are those an uninterrupted run would have trained: the same batches
    /// and updates (bit for bit on the CPU; on CUDA as far as the GEMM kernels chosen are the
    /// same, see [`crate::ops::gemm::GemmKernel::Auto`]). Every setting comes from the checkpoint:
    /// the net's sizes, the loss and its settings, P, K, the seed, Adam's settings and the
    /// learning-rate schedule (change `cfg.adam.lr`, `cfg.lr_decay_epochs` or `opt.cfg` afterwards
    /// to train on differently). `train_labels` must group and order the classes as the labels
    /// the checkpoint was trained on did. The recorded sizes are checked against the saved weights
    /// before anything is allocated.
    pub fn resume(b: &B, dir: &Path, train_labels: &[u32]) -> Result<Self> {
        const OP: &str = "MetricTrainer::resume";
        let path = dir.join(TRAINER_FILE);
        let (tensors, meta) = load_checkpoint(&path)?;
        let format = |msg: String| Error::Format { path: path.clone(), offset: 0, msg };
        let field = |key: &str| meta.get(key).ok_or_else(|| format(format!("metadata field {key:?} missing")));
        let number = |key: &str| -> Result<u128> { meta_field(&meta, key).map_err(format) };
        if field("format")? != TRAINER_FORMAT {
            return Err(format(format!("format {:?}, expected {TRAINER_FORMAT:?}", meta["format"])));
        }
        let cfg = parse_settings(&meta).map_err(format)?;
        let (weights, opt_state): (Vec<NamedTensor>, Vec<NamedTensor>) =
            tensors.into_iter().partition(|t| t.name.starts_with(WEIGHTS_PREFIX));
        let weights: Vec<NamedTensor> = weights
            .into_iter()
            .map(|t| NamedTensor { name: t.name[WEIGHTS_PREFIX.len()..].to_string(), ..t })
            .collect();
        // The recorded sizes allocate the net: they must be those of the weights the file holds.
        let saved = mlp_sizes(&weights, NET_PREFIX);
        if saved.as_deref() != Some(cfg.sizes.as_slice()) {
            return Err(Error::shape(
                OP,
                format!(
                    "{}: the checkpoint records sizes {} but its weights are {}",
                    path.display(),
                    sizes_label(&cfg.sizes),
                    saved.map_or_else(|| "no embedding net".into(), |s| sizes_label(&s))
                ),
            ));
        }
        let mut t = Self::new(b, cfg, train_labels)?;
        let recorded = field("sampler_labels")?;
        let given = format!("{:016x}", t.sampler.fingerprint());
        if *recorded != given {
            return Err(Error::invalid(
                OP,
                format!(
                    "the training labels group or order the classes differently from those {} was trained \
                     on (digest {given}, recorded {recorded})",
                    path.display()
                ),
            ));
        }
        let names: Vec<String> = t.params().iter().map(|p| p.name.clone()).collect();
        if let Some(extra) = weights.iter().find(|w| !names.contains(&w.name)) {
            return Err(Error::invalid(
                OP,
                format!(
                    "{}: tensor {} is not a parameter of this {} trainer",
                    path.display(),
                    extra.name,
                    t.cfg.loss.name()
                ),
            ));
        }
        load_params(b, &mut all_params(&mut t.net, &mut t.head), &weights, OP)?;
        let params: Vec<&Param<B>> = t.net.params().into_iter().chain(t.head.iter()).collect();
        t.opt.load_state_dict(b, &params, &opt_state)?;
        // Everything else the file holds must be the optimizer's: a stray tensor means another layout.
        let known = |name: &str| {
            name == "adam.state"
                || names.iter().any(|p| name.strip_prefix("adam.m.").or(name.strip_prefix("adam.v.")) == Some(p))
        };
        if let Some(stray) = opt_state.iter().find(|t| !known(&t.name)) {
            return Err(Error::invalid(
                OP,
                format!("{}: tensor {} is not this {} trainer's", path.display(), stray.name, t.cfg.loss.name()),
            ));
        }
        let counter = |key: &str| -> Result<u64> {
            u64::try_from(number(key)?).map_err(|_| format(format!("metadata field {key:?} is out of range")))
        };
        t.epoch = usize::try_from(counter("epoch")?)
            .map_err(|_| format("metadata field \"epoch\" is out of range".into()))?;
        t.step = counter("step")?;
        t.sampler.set_position(number("sampler_position")?);
        Ok(t)
    }
}

/// The sizes `[input, hidden..., output]` of the MLP whose weights `{prefix}{i}.weight` ([out,
/// in], i = 0, 1, …) `tensors` hold, as [`weight_chain`] reads them.
fn mlp_sizes(tensors: &[NamedTensor], prefix: &str) -> Option<Vec<usize>> {
    weight_chain((0..).map_while(|i| weight_shape(tensors, &format!("{prefix}{i}.weight"))))
}

/// Records the settings the trainer runs: sizes, loss settings, P, K, seed, the optimizer and the
/// learning-rate schedule.
fn record_settings(cfg: &MetricTrainConfig, meta: &mut Meta) {
    record_adam(&cfg.adam, meta);
    let mut put = |k: &str, v: String| meta.insert(k.to_string(), v);
    put("sizes", sizes_label(&cfg.sizes));
    put("p", cfg.p.to_string());
    put("k", cfg.k.to_string());
    put("seed", cfg.seed.to_string());
    put("lr_decay_epochs", cfg.lr_decay_epochs.to_string());
    put("loss", cfg.loss.name().to_string());
    match cfg.loss {
        // f32's Display is the shortest text that parses back to the same value.
        MetricLoss::Triplet(t) => {
            put("miner", t.miner.label().into());
            put("metric", t.metric.label().into());
            put("margin", t.margin.to_string());
            put("squared", t.squared.to_string());
            put("collapse_eps", t.collapse_eps.to_string());
            put("tfa_compat", t.tfa_compat.to_string());
        }
        MetricLoss::Contrastive { margin } => {
            put("margin", margin.to_string());
        }
        MetricLoss::BceHead => {}
    }
}

/// The inverse of [`record_settings`]; the message says which field is missing or malformed.
fn parse_settings(meta: &Meta) -> std::result::Result<MetricTrainConfig, String> {
    use super::meta_field as get;
    let sizes = get::<String>(meta, "sizes")?
        .split('-')
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| format!("metadata field \"sizes\" = {:?} is malformed", meta["sizes"]))?;
    let loss = match get::<String>(meta, "loss")?.as_str() {
        "triplet" => MetricLoss::Triplet(TripletConfig {
            miner: get::<Miner>(meta, "miner")?,
            metric: get::<Metric>(meta, "metric")?,
            margin: get(meta, "margin")?,
            squared: get(meta, "squared")?,
            collapse_eps: get(meta, "collapse_eps")?,
            tfa_compat: get(meta, "tfa_compat")?,
        }),
        "contrastive" => MetricLoss::Contrastive { margin: get(meta, "margin")? },
        "bce" => MetricLoss::BceHead,
        other => return Err(format!("metadata field \"loss\" is {other:?}; expected triplet, contrastive or bce")),
    };
    let adam = parse_adam(meta)?;
    Ok(MetricTrainConfig {
        sizes,
        p: get(meta, "p")?,
        k: get(meta, "k")?,
        adam,
        loss,
        lr_decay_epochs: get(meta, "lr_decay_epochs")?,
        seed: get(meta, "seed")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend;

    /// The BCE head's gather-sum lists give each batch row the sum of the pair rows that hold it,
    /// on either side: the scatter d_emb[idx1[i]] += dx1[i], d_emb[idx2[i]] += dx2[i] over every
    /// pair i (computed here in f64). P×K sizes small, uneven and the default 8×32.
    #[test]
    fn bce_gradient_gather_is_the_pair_scatter() {
        let b = CpuBackend;
        let mut r = seeded(7);
        for (p, k, m) in [(2, 2, 1), (5, 3, 2), (8, 32, 4)] {
            let (n, dim) = (p * k, 3);
            let pairs = 2 * m * n;
            let s = BceBuffers::new(&b, p, k, m, dim).unwrap();
            let mut draw = || -> Vec<f32> { (0..pairs * dim).map(|_| r.random_range(0.1f32..1.0)).collect() };
            let (dx1, dx2) = (draw(), draw());
            let (idx1, idx2) = (s.idx1.to_vec(&b).unwrap(), s.idx2.to_vec(&b).unwrap());
            let mut want = vec![0.0f64; n * dim];
            for i in 0..pairs {
                for c in 0..dim {
                    want[idx1[i] as usize * dim + c] += f64::from(dx1[i * dim + c]);
                    want[idx2[i] as usize * dim + c] += f64::from(dx2[i * dim + c]);
                }
            }
            let mut got = Tensor::zeros(&b, &[n, dim]).unwrap();
            let side = |v: &[f32]| Tensor::from_slice(&b, &[pairs, dim], v).unwrap();
            gather_sum_rows(&b, &side(&dx1), &s.sum1, false, &mut got).unwrap();
            gather_sum_rows(&b, &side(&dx2), &s.sum2, true, &mut got).unwrap();
            // Each row sums 4·m values in (0.1, 1): f32 rounding stays below 4·m·2⁻²⁴ relative.
            for (j, (&g, &w)) in got.to_vec(&b).unwrap().iter().zip(&want).enumerate() {
                assert!((f64::from(g) - w).abs() <= 1e-6 * w, "P×K {p}×{k}, m {m}: d_emb[{j}] = {g}, scatter {w}");
            }
        }
    }
}
