//! The P×K class-balanced batch sampler of metric learning: every batch holds P classes with K
//! examples each, so every anchor has K − 1 positives and (P − 1)·K negatives. Classes are drawn
//! without replacement within a batch; examples within a class without replacement while the
//! class has at least K, with replacement otherwise. Seeded: the same seed gives the same batches.

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
        let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
        let mut by_class = vec![Vec::new(); classes];
        for (i, &l) in labels.iter().enumerate() {
            by_class[l as usize].push(i);
        }
        by_class.retain(|c| !c.is_empty());
        if by_class.len() < p {
            return Err(Error::invalid(
                "PkSampler",
                format!("P = {p} classes per batch but the data has {}", by_class.len()),
            ));
        }
        Ok(Self { by_class, p, k, rng: seeded(seed) })
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

    /// The batches of one epoch: ⌊examples / (P·K)⌋ of them.
    pub fn epoch(&mut self) -> Vec<Vec<usize>> {
        let n: usize = self.by_class.iter().map(Vec::len).sum();
        (0..n / self.batch_size()).map(|_| self.next_batch()).collect()
    }
}
