//! The P×K class-balanced batch sampler of metric learning: every batch holds P classes with K
//! examples each, so every anchor has K − 1 positives and (P − 1)·K negatives. Classes are drawn
//! without replacement within a batch; examples within a class without replacement while the
//! class has at least K, with replacement otherwise. Seeded: the same seed gives the same batches.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::rng::{permutation, seeded, LkRng};
use rand::Rng;

pub struct PkSampler {
    by_class: Vec<Vec<usize>>,
    p: usize,
    k: usize,
    rng: LkRng,
}

impl PkSampler {
    /// `labels[i]` is example i's class.
    pub fn new(labels: &[u32], p: usize, k: usize, seed: u64) -> Result<Self> {
        if p < 2 || k < 2 {
            return Err(Error::invalid("PkSampler", format!("P ≥ 2 classes and K ≥ 2 examples per class are needed for positives and negatives, got P = {p}, K = {k}")));
        }
        // A batch larger than the data would give no epoch at all, and bounds what a batch allocates.
        if p.checked_mul(k).is_none_or(|n| n > labels.len()) {
            return Err(Error::invalid(
                "PkSampler",
                format!("a P×K batch of {p}×{k} examples exceeds the {} labels", labels.len()),
            ));
        }
        // Grouped through a map: a label's value can be anything up to u32::MAX.
        let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, &l) in labels.iter().enumerate() {
            groups.entry(l).or_default().push(i);
        }
        let by_class: Vec<Vec<usize>> = groups.into_values().collect();
        if by_class.len() < p {
            return Err(Error::invalid(
                "PkSampler",
                format!("P = {p} classes per batch but the data has {}", by_class.len()),
            ));
        }
        Ok(Self { by_class, p, k, rng: seeded(seed) })
    }

    /// (P, K): classes per batch and examples per class.
    pub fn classes_and_examples(&self) -> (usize, usize) {
        (self.p, self.k)
    }

    pub fn batch_size(&self) -> usize {
        self.p * self.k
    }

    /// One batch of P·K example indices, class by class.
    pub fn next_batch(&mut self) -> Vec<usize> {
        let classes = permutation(&mut self.rng, self.by_class.len());
        let mut out = Vec::with_capacity(self.p * self.k);
        for &c in &classes[..self.p] {
            let members = &self.by_class[c];
            if members.len() >= self.k {
                let pick = permutation(&mut self.rng, members.len());
                out.extend(pick[..self.k].iter().map(|&i| members[i]));
            } else {
                out.extend((0..self.k).map(|_| members[self.rng.random_range(0..members.len())]));
            }
        }
        out
    }

    /// The number of examples the labels hold.
    pub fn examples(&self) -> usize {
        self.by_class.iter().map(Vec::len).sum()
    }

    /// Whether `label(i)` groups the examples as the labels the sampler was built on did (the
    /// same examples in each class, distinct classes apart).
    pub fn same_classes(&self, label: impl Fn(usize) -> u32) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        self.by_class.iter().all(|members| {
            let l = label(members[0]);
            seen.insert(l) && members.iter().all(|&i| label(i) == l)
        })
    }

    /// How far the sampler's generator has advanced (in 32-bit words): with the seed and the
    /// labels, what a checkpoint needs to continue the same sequence of batches.
    pub fn position(&self) -> u128 {
        self.rng.get_word_pos()
    }

    /// Moves the generator to `position` (from [`PkSampler::position`]).
    pub fn set_position(&mut self, position: u128) {
        self.rng.set_word_pos(position);
    }

    /// A 64-bit FNV-1a digest of the grouping of the examples into classes (which examples share
    /// a class, classes in the order of their label values; not the values themselves): all the
    /// batches depend on besides the seed. A resumed trainer checks it against its labels.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let words = self.by_class.iter().flat_map(|c| std::iter::once(c.len()).chain(c.iter().copied()));
        for w in words {
            for byte in (w as u64).to_le_bytes() {
                h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }

    /// The batches of one epoch: ⌊examples / (P·K)⌋ of them (at least one: `new` refuses a
    /// batch larger than the data).
    pub fn epoch(&mut self) -> Vec<Vec<usize>> {
        (0..self.examples() / self.batch_size()).map(|_| self.next_batch()).collect()
    }
}
