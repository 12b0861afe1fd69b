//! End-to-end metric learning on the committed MNIST subset (6000 train / 1000 test), one test
//! per loss: the fused semi-hard miner, the in-batch contrastive loss and the siamese BCE head
//! train the embedding net, retrieval and pair verification improve over the untrained net, and
//! the artefacts' inputs are well formed.

mod common;

use common::*;
use latentkit::data::Mnist;
use latentkit::io::checkpoint::{load_checkpoint, save_checkpoint, NamedTensor};
use latentkit::ops::distance::Metric;
use latentkit::ops::mining::{Miner, TripletConfig};
use latentkit::train::{MetricEpochRecord, MetricLoss, MetricTrainConfig, MetricTrainer, MODEL_FILE, TRAINER_FILE};
use latentkit::{CpuBackend, Error};
use std::collections::BTreeMap;

/// Minimum figures after two epochs (of the default cosine decay over 5).
struct Bounds {
    p_at_1: f64,
    map_gain: f64,
    pair_accuracy: f64,
    pair_auc: f64,
}

/// Trains two epochs with `cfg` and checks the record against `bounds`; returns the first step's
/// loss (CPU and GPU diverge in rounding over many steps) and the trainer.
fn train_two_epochs<B: latentkit::Backend>(
    b: &B,
    cfg: MetricTrainConfig,
    bounds: Bounds,
) -> (Vec<f32>, MetricTrainer<B>) {
    let data = Mnist::committed_subset().unwrap();
    let labels: Vec<u32> = data.train.labels.iter().map(|&l| u32::from(l)).collect();
    let name = cfg.loss.name();
    let mut t = MetricTrainer::new(b, cfg, &labels).unwrap();
    let before = t.evaluate(b, &data.train, &data.test).unwrap();
    let mut losses = Vec::new();
    let mut last = None;
    for _ in 0..2 {
        let rec = t.run_epoch(b, &data.train, &data.test, |_, _, st| losses.push(st.loss)).unwrap();
        assert!(rec.loss.is_finite() && rec.mean_d_an > rec.mean_d_ap, "{name}: {rec:?}");
        assert!(rec.collapse_fraction < 0.01, "{name}: {rec:?}");
        last = Some(rec);
    }
    assert!(losses.iter().all(|l| l.is_finite()), "{name}");
    let rec = last.unwrap();
    let r = &rec.retrieval;
    assert!(r.precision_at_1 > bounds.p_at_1, "{name}: {r:?}");
    assert!(r.map_at_r > before.retrieval.map_at_r + bounds.map_gain, "{name}: MAP@R {before:?} → {r:?}");
    assert_eq!(r.queries, 1000);
    assert!(rec.pair_accuracy > bounds.pair_accuracy, "{name}: {rec:?}");
    assert!(rec.pair_auc > bounds.pair_auc, "{name}: {rec:?}");
    // Untrained (every loss): pair accuracy 0.62–0.65, ROC-AUC 0.67–0.70.
    assert!(rec.pair_accuracy > before.pair_accuracy + 0.2, "{name}: {before:?} → {rec:?}");
    assert!(rec.pair_auc > before.pair_auc + 0.2, "{name}: {before:?} → {rec:?}");
    let emb = t.embed(b, &data.test).unwrap();
    assert_eq!(emb.len(), 1000 * 128);
    assert!(emb.iter().all(|v| v.is_finite()));
    (losses, t)
}

parity_test!(triplet_training_improves_retrieval_on_the_mnist_subset, |b| {
    // Measured on the CPU after epoch 2: p@1 0.926, MAP@R 0.866 (untrained 0.198), pair accuracy
    // 0.928 (untrained 0.651), ROC-AUC 0.975 (0.705); the bounds leave room for other rounding
    // paths.
    let bounds = Bounds { p_at_1: 0.9, map_gain: 0.5, pair_accuracy: 0.9, pair_auc: 0.96 };
    let (losses, _) = train_two_epochs(b, MetricTrainConfig::default(), bounds);
    vec![Out::new("first loss", losses[..1].to_vec()).tol(1e-3, 1e-3)]
});

parity_test!(contrastive_training_improves_retrieval_and_pairs_on_the_mnist_subset, |b| {
    // Measured on the CPU after epoch 2 (margin 1.0): p@1 0.916, MAP@R 0.795 (untrained 0.182 by
    // Euclidean ranking), pair accuracy 0.923 (untrained 0.617), ROC-AUC 0.978 (0.667).
    let bounds = Bounds { p_at_1: 0.9, map_gain: 0.5, pair_accuracy: 0.9, pair_auc: 0.96 };
    let cfg = MetricTrainConfig::contrastive(MetricTrainConfig::CONTRASTIVE_MARGIN);
    let (losses, _) = train_two_epochs(b, cfg, bounds);
    vec![Out::new("first loss", losses[..1].to_vec()).tol(1e-3, 1e-3)]
});

parity_test!(bce_head_training_improves_retrieval_and_pairs_on_the_mnist_subset, |b| {
    // Measured on the CPU after epoch 2: p@1 0.921, MAP@R 0.794 (untrained 0.198), pair accuracy
    // 0.928 (untrained 0.651), ROC-AUC 0.977 (0.705).
    let bounds = Bounds { p_at_1: 0.9, map_gain: 0.5, pair_accuracy: 0.9, pair_auc: 0.96 };
    let (losses, t) = train_two_epochs(b, MetricTrainConfig::bce_head(), bounds);
    let state = t.state_dict(b).unwrap();
    let names: Vec<&str> = state.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["embed.0.weight", "embed.0.bias", "embed.1.weight", "embed.1.bias", "embed.2.weight", "embed.2.bias"]
            .into_iter()
            .chain(["head.scale", "head.bias"])
            .collect::<Vec<_>>()
    );
    let scale = &state[6];
    let bias = &state[7];
    assert_eq!((scale.shape.as_slice(), bias.shape.as_slice()), ([1].as_slice(), [1].as_slice()));
    // The head trains with the net (Adam moves each scalar by about lr per step).
    assert!(scale.data[0] != MetricTrainConfig::HEAD_INIT_SCALE && scale.data[0].is_finite(), "{scale:?}");
    assert!(bias.data[0] != MetricTrainConfig::HEAD_INIT_BIAS && bias.data[0].is_finite(), "{bias:?}");
    vec![Out::new("first loss", losses[..1].to_vec()).tol(1e-3, 1e-3)]
});

#[test]
fn bad_configurations_are_errors() {
    let b = latentkit::CpuBackend;
    let labels: Vec<u32> = (0..1000).map(|i| i % 10).collect();
    let cfg = MetricTrainConfig { p: 1, ..MetricTrainConfig::default() };
    assert!(MetricTrainer::new(&b, cfg, &labels).is_err(), "P = 1 has no negatives");
    let triplet: TripletConfig = *MetricTrainConfig::default().loss.triplet().unwrap();
    let cfg = MetricTrainConfig::triplet(TripletConfig { margin: -1.0, ..triplet });
    assert!(MetricTrainer::new(&b, cfg, &labels).is_err());
    let mut cfg = MetricTrainConfig::default();
    cfg.loss.triplet_mut().unwrap().margin = f32::NAN;
    assert!(MetricTrainer::new(&b, cfg, &labels).is_err());
    assert!(MetricTrainer::new(&b, MetricTrainConfig::contrastive(-1.0), &labels).is_err());
    assert!(MetricTrainer::new(&b, MetricTrainConfig::contrastive(f32::INFINITY), &labels).is_err());
    assert!(MetricTrainer::new(&b, MetricTrainConfig::contrastive(1.0), &labels).is_ok());
    let cfg = MetricTrainConfig { p: 12, ..MetricTrainConfig::default() };
    assert!(MetricTrainer::new(&b, cfg, &labels).is_err(), "more classes per batch than the data has");
    // The BCE head pairs each example with BCE_PAIRS_PER_EXAMPLE positives and negatives.
    let m = MetricTrainConfig::BCE_PAIRS_PER_EXAMPLE;
    let cfg = MetricTrainConfig { p: m, ..MetricTrainConfig::bce_head() };
    assert!(MetricTrainer::new(&b, cfg, &labels).is_err(), "too few classes per batch for the BCE pairs");
    let cfg = MetricTrainConfig { p: m + 1, k: m + 1, ..MetricTrainConfig::bce_head() };
    assert!(MetricTrainer::new(&b, cfg, &labels).is_ok());
}

#[test]
fn pair_metrics_are_deterministic() {
    // The evaluation pairs are fixed and seeded: two fresh trainers with the same seed agree, and
    // the BCE head's scores are its logits (scale·cos + bias at initialisation).
    let b = latentkit::CpuBackend;
    let data = Mnist::committed_subset().unwrap();
    let labels: Vec<u32> = data.train.labels.iter().map(|&l| u32::from(l)).collect();
    let mut t1 = MetricTrainer::new(&b, MetricTrainConfig::bce_head(), &labels).unwrap();
    let mut t2 = MetricTrainer::new(&b, MetricTrainConfig::bce_head(), &labels).unwrap();
    let e1 = t1.evaluate(&b, &data.train, &data.test).unwrap();
    let e2 = t2.evaluate(&b, &data.train, &data.test).unwrap();
    assert_eq!(e1, e2);
    assert!((0.5..1.0).contains(&e1.pair_accuracy) && (0.5..1.0).contains(&e1.pair_auc), "{e1:?}");
    let emb = t1.embed(&b, &data.test).unwrap();
    let scores = t1.pair_scores(&b, &emb, &[(0, 0), (0, 1)]).unwrap();
    let (s, c) = (MetricTrainConfig::HEAD_INIT_SCALE, MetricTrainConfig::HEAD_INIT_BIAS);
    assert!((scores[0] - (s + c)).abs() < 1e-4, "a pair with itself has cos 1: {scores:?}");
    assert!(scores[1] <= s + c + 1e-4 && scores[1] >= c - s - 1e-4, "{scores:?}");
}

/// run_epoch takes the split whose labels built the sampler; the sampler takes any label values,
/// and at least one P×K batch of them.
#[test]
fn run_epoch_checks_its_split_against_the_sampler() {
    let b = latentkit::CpuBackend;
    let data = Mnist::committed_subset().unwrap();
    let labels: Vec<u32> = data.train.labels.iter().map(|&l| u32::from(l)).collect();
    let mut t = MetricTrainer::new(&b, MetricTrainConfig::default(), &labels).unwrap();
    let mut smaller = data.train.clone();
    smaller.truncate(data.train.len() - 1);
    let e = t.run_epoch(&b, &smaller, &data.test, |_, _, _| {}).unwrap_err();
    assert!(matches!(e, latentkit::Error::Shape { .. }), "{e}");
    // The same size with other labels.
    let mut relabelled = data.train.clone();
    let other = relabelled.labels.iter().position(|&l| l != relabelled.labels[0]).unwrap();
    relabelled.labels.swap(0, other);
    let e = t.run_epoch(&b, &relabelled, &data.test, |_, _, _| {}).unwrap_err();
    assert!(matches!(e, latentkit::Error::Shape { .. }), "{e}");
    assert_eq!((t.epoch, t.step), (0, 0));

    // Fewer examples than one P×K batch: an error, not an empty epoch that counts.
    let cfg = MetricTrainConfig::default();
    let mut few = data.train.clone();
    few.truncate(cfg.p * cfg.k - 1);
    let few_labels: Vec<u32> = few.labels.iter().map(|&l| u32::from(l)).collect();
    let e = MetricTrainer::new(&b, cfg, &few_labels).map(|_| ()).unwrap_err();
    assert!(matches!(e, latentkit::Error::InvalidArgument { .. }), "{e}");

    // Label values up to u32::MAX group by value (no table as long as the largest).
    let sparse: Vec<u32> = (0..64u32).map(|i| if i % 2 == 0 { u32::MAX } else { i % 3 }).collect();
    let mut sampler = latentkit::data::PkSampler::new(&sparse, 2, 4, 1).unwrap();
    let batch = sampler.next_batch();
    assert_eq!(batch.len(), 8);
    for class in batch.chunks(4) {
        assert!(class.iter().all(|&i| sparse[i] == sparse[class[0]]), "{batch:?}");
    }
    assert!(latentkit::data::PkSampler::new(&sparse, 2, usize::MAX, 1).is_err(), "P·K overflows");
}

/// The epoch's last update is checked before the epoch counts: a step size that overflows to ∞
/// in the epoch's only step (one P×K batch; its loss, computed before the update, is finite).
#[test]
fn a_diverging_last_update_stops_the_metric_epoch() {
    let b = latentkit::CpuBackend;
    let data = Mnist::committed_subset().unwrap();
    let mut cfg = MetricTrainConfig::default();
    cfg.adam.lr = 1e38;
    let mut one_batch = data.train.clone();
    one_batch.truncate(cfg.p * cfg.k);
    let labels: Vec<u32> = one_batch.labels.iter().map(|&l| u32::from(l)).collect();
    let mut t = MetricTrainer::new(&b, cfg, &labels).unwrap();
    match t.run_epoch(&b, &one_batch, &data.test, |_, _, st| assert!(st.loss.is_finite())) {
        Err(latentkit::Error::NonFiniteParameter { step: 1, .. }) => {}
        other => panic!("expected NonFiniteParameter after step 1, got {:?}", other.map(|r| r.epoch)),
    }
    assert_eq!((t.epoch, t.step), (0, 1));
}

/// A small trainer for the checkpoint tests: MLP 784-64-16, P×K = 5×8 (the BCE head needs
/// P, K > 4), a 1040-image training split (26 steps an epoch), the learning rate decaying over 3
/// epochs.
fn small_config(loss: MetricLoss) -> MetricTrainConfig {
    let adam = latentkit::ops::AdamConfig { beta2: 0.99, ..latentkit::ops::AdamConfig::adamw(3e-3, 1e-2) };
    MetricTrainConfig { sizes: vec![784, 64, 16], p: 5, k: 8, adam, loss, lr_decay_epochs: 3, seed: 11 }
}

fn small_data() -> (latentkit::data::MnistSplit, latentkit::data::MnistSplit, Vec<u32>) {
    let data = Mnist::committed_subset().unwrap();
    let mut train = data.train.clone();
    train.truncate(1040);
    let labels = train.labels.iter().map(|&l| u32::from(l)).collect();
    (train, data.test, labels)
}

/// The records of `epochs` epochs, wall time left out (everything else must repeat exactly).
fn epochs_of(
    b: &CpuBackend,
    t: &mut MetricTrainer<CpuBackend>,
    train: &latentkit::data::MnistSplit,
    test: &latentkit::data::MnistSplit,
    epochs: usize,
) -> Vec<MetricEpochRecord> {
    (0..epochs)
        .map(|_| MetricEpochRecord { seconds: 0.0, ..t.run_epoch(b, train, test, |_, _, _| {}).unwrap() })
        .collect()
}

/// Everything a checkpoint holds, as bits: weights, Adam moments and step.
fn trainer_state(b: &CpuBackend, t: &MetricTrainer<CpuBackend>) -> Vec<(String, Vec<u32>)> {
    let params: Vec<&latentkit::nn::Param<CpuBackend>> = t.net().params().into_iter().chain(t.head().iter()).collect();
    t.state_dict(b)
        .unwrap()
        .into_iter()
        .chain(t.opt.state_dict(b, &params).unwrap())
        .map(|n| (n.name, n.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

/// Saving after one epoch and resuming gives the run an uninterrupted trainer has, bit for bit,
/// for every loss (the BCE head's scalars and a non-default triplet configuration included): the
/// sampler continues its sequence of batches, Adam its moments and the learning-rate schedule its
/// step. Every setting comes from the checkpoint (what the trainer ran, whatever its `cfg` field
/// said when saved), AdamW's and the schedule's included.
#[test]
fn resume_continues_the_metric_run_exactly() {
    let b = CpuBackend;
    let (train, test, labels) = small_data();
    let triplet = TripletConfig {
        miner: Miner::BatchAll,
        metric: Metric::Euclidean,
        margin: 0.3,
        squared: true,
        collapse_eps: 2e-3,
        tfa_compat: true,
    };
    for loss in [
        MetricLoss::Triplet(triplet),
        MetricLoss::Triplet(TripletConfig {
            tfa_compat: false,
            ..*MetricTrainConfig::default().loss.triplet().unwrap()
        }),
        MetricLoss::Contrastive { margin: 0.7 },
        MetricLoss::BceHead,
    ] {
        let cfg = small_config(loss);
        let dir = TempDir::new(&format!("metric-resume-{}", loss.name()));
        let mut whole = MetricTrainer::new(&b, cfg.clone(), &labels).unwrap();
        let straight = epochs_of(&b, &mut whole, &train, &test, 3);

        let mut first = MetricTrainer::new(&b, cfg.clone(), &labels).unwrap();
        let mut resumed_run = epochs_of(&b, &mut first, &train, &test, 1);
        // Sizes, P, K, loss and seed other than the trainer runs: save records what it runs.
        first.cfg = MetricTrainConfig { adam: cfg.adam, lr_decay_epochs: cfg.lr_decay_epochs, ..Default::default() };
        first.save(&b, dir.path()).unwrap();
        drop(first);
        let mut resumed = MetricTrainer::resume(&b, dir.path(), &labels).unwrap();
        assert_eq!(resumed.cfg, cfg, "{loss:?}: the settings come from the checkpoint");
        assert_eq!((resumed.epoch, resumed.step), (1, 26));
        resumed_run.extend(epochs_of(&b, &mut resumed, &train, &test, 2));
        assert_eq!(straight, resumed_run, "{loss:?}");
        assert!(trainer_state(&b, &whole) == trainer_state(&b, &resumed), "{loss:?}: state differs after resuming");

        // The model file holds the weights alone, under the state dict's names.
        let (weights, meta) = load_checkpoint(&dir.join(MODEL_FILE)).unwrap();
        let names: Vec<String> = resumed.state_dict(&b).unwrap().into_iter().map(|t| t.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(weights.iter().map(|t| t.name.clone()).collect::<Vec<_>>(), sorted);
        assert_eq!((meta["sizes"].as_str(), meta["epoch"].as_str()), ("784-64-16", "1"));
    }
}

/// Rewrites the trainer file of `dir` with `edit` applied to its tensors and metadata.
fn edit_trainer_file(dir: &TempDir, edit: impl FnOnce(&mut Vec<NamedTensor>, &mut BTreeMap<String, String>)) {
    let (mut tensors, mut meta) = load_checkpoint(&dir.join(TRAINER_FILE)).unwrap();
    edit(&mut tensors, &mut meta);
    save_checkpoint(&dir.join(TRAINER_FILE), &tensors, &meta).unwrap();
}

/// A checkpoint that does not fit the labels, or whose records contradict each other or its
/// weights, is an error naming what differs, before anything large is allocated.
#[test]
fn resume_refuses_checkpoints_that_do_not_fit() {
    let b = CpuBackend;
    let (train, test, labels) = small_data();
    let cfg = small_config(MetricLoss::Contrastive { margin: 1.0 });
    let missing = TempDir::new("metric-resume-missing");
    let e = MetricTrainer::resume(&b, missing.path(), &labels).map(|_| ()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");

    let saved = TempDir::new("metric-resume-saved");
    let mut t = MetricTrainer::new(&b, cfg.clone(), &labels).unwrap();
    t.run_epoch(&b, &train, &test, |_, _, _| {}).unwrap();
    t.save(&b, saved.path()).unwrap();
    let original = std::fs::read(saved.join(TRAINER_FILE)).unwrap();
    let resume = |labels: &[u32]| MetricTrainer::resume(&b, saved.path(), labels).map(|_| ());
    resume(&labels).unwrap();

    // Labels grouping the examples otherwise (two examples of different classes swapped).
    let mut swapped = labels.clone();
    let other = swapped.iter().position(|&l| l != swapped[0]).unwrap();
    swapped.swap(0, other);
    let e = resume(&swapped).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("group"), "{e}");
    // The same grouping under other label values is the same training set.
    resume(&labels.iter().map(|&l| l + 100).collect::<Vec<_>>()).unwrap();

    type Edit = fn(&mut Vec<NamedTensor>, &mut BTreeMap<String, String>);
    type Expected = fn(&Error) -> bool;
    let cases: [(&str, Edit, Expected); 11] = [
        (
            "a tensor of no optimizer state",
            |t, _| {
                t.push(NamedTensor { name: "adam.m.embed.9.weight".into(), shape: vec![1], data: vec![0.0] });
            },
            |e| matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("adam.m.embed.9.weight"),
        ),
        (
            "no learning-rate schedule",
            |_, m| drop(m.remove("lr_decay_epochs")),
            |e| matches!(e, Error::Format { .. }) && e.to_string().contains("lr_decay_epochs"),
        ),
        (
            "a layer that takes no previous output",
            |t, m| {
                // [2^40, 0] holds no data: without the chain check the recorded sizes would allocate.
                let w = t.iter_mut().find(|t| t.name == "model.embed.1.weight").unwrap();
                (w.shape, w.data) = (vec![1 << 40, 0], vec![]);
                m.insert("sizes".into(), format!("784-64-{}", 1u64 << 40));
            },
            |e| matches!(e, Error::Shape { .. }) && e.to_string().contains("no embedding net"),
        ),
        (
            "another format",
            |_, m| drop(m.insert("format".into(), "latentkit-vae".into())),
            |e| matches!(e, Error::Format { .. }),
        ),
        (
            "sizes beyond the weights",
            |_, m| drop(m.insert("sizes".into(), "784-1000000000000-16".into())),
            |e| matches!(e, Error::Shape { .. }),
        ),
        (
            "malformed sizes",
            |_, m| drop(m.insert("sizes".into(), "784--16".into())),
            |e| matches!(e, Error::Format { .. }),
        ),
        (
            "an unknown miner",
            |_, m| {
                m.insert("loss".into(), "triplet".into());
                m.insert("miner".into(), "hardest".into());
            },
            |e| matches!(e, Error::Format { .. }) && e.to_string().contains("miner"),
        ),
        (
            "no sampler position",
            |_, m| drop(m.remove("sampler_position")),
            |e| matches!(e, Error::Format { .. }) && e.to_string().contains("sampler_position"),
        ),
        (
            "the BCE head's loss without its scalars",
            |_, m| drop(m.insert("loss".into(), "bce".into())),
            |e| e.to_string().contains("head.scale"),
        ),
        (
            "a weight of no parameter",
            |t, _| {
                let extra = NamedTensor { name: "model.head.scale".into(), shape: vec![1], data: vec![1.0] };
                t.push(extra);
            },
            |e| matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("head.scale"),
        ),
        (
            "missing Adam moments",
            |t, _| t.retain(|t| !t.name.starts_with("adam.m.")),
            |e| e.to_string().contains("adam.m."),
        ),
    ];
    for (what, edit, expected) in cases {
        std::fs::write(saved.join(TRAINER_FILE), &original).unwrap();
        edit_trainer_file(&saved, edit);
        let e = resume(&labels).unwrap_err();
        assert!(expected(&e), "{what}: {e}");
    }
}

/// Inputs the trainer's public fields and methods can't index past: a split whose pixels don't
/// match its labels, pairs past the embeddings, a BCE head's pair matrices past usize.
#[test]
fn metric_trainer_checks_what_it_indexes() {
    let b = CpuBackend;
    let (train, test, labels) = small_data();
    let mut t = MetricTrainer::new(&b, small_config(MetricLoss::BceHead), &labels).unwrap();
    let mut short = train.clone();
    short.images.truncate(784);
    for (train, test) in [(&short, &test), (&train, &short)] {
        let e = t.run_epoch(&b, train, test, |_, _, _| {}).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("pixel values"), "{e}");
    }
    let e = t.embed(&b, &short).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    // A test split the evaluation can't pair (one class) is refused before the epoch trains.
    let mut one_class = test.clone();
    one_class.labels.fill(3);
    let e = t.run_epoch(&b, &train, &one_class, |_, _, _| {}).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("two classes"), "{e}");
    assert_eq!((t.epoch, t.step), (0, 0));

    let emb = t.embed(&b, &test).unwrap();
    assert_eq!(t.pair_scores(&b, &emb, &[(0, 999)]).unwrap().len(), 1);
    for (emb, pair) in [(&emb[..], (0, 1000)), (&emb[..], (1000, 0)), (&emb[..15], (0, 0)), (&[][..], (0, 0))] {
        let e = t.pair_scores(&b, emb, &[pair]).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{} values, pair {pair:?}: {e}", emb.len());
    }

    // P×K past the labels is refused by the sampler: no BCE head buffers of 2^44 pairs.
    let many: Vec<u32> = (0..1 << 20).map(|i| i % 10).collect();
    let cfg = MetricTrainConfig { p: 10, k: 1 << 40, ..small_config(MetricLoss::BceHead) };
    let e = MetricTrainer::new(&b, cfg, &many).map(|_| ()).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("exceeds"), "{e}");
}
