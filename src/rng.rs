//! Seeded, reproducible randomness for the CPU side (initialisation, shuffling, test inputs).
//!
//! ChaCha8 is used explicitly (not `StdRng`, whose algorithm may change between `rand` releases),
//! so a seed names the same stream of numbers on every platform and version of this crate.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

/// The crate's generator type.
pub type LkRng = ChaCha8Rng;

/// A generator from a 64-bit seed.
pub fn seeded(seed: u64) -> LkRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `n` draws from U(lo, hi); `lo < hi` (an empty or reversed range gives `lo` everywhere).
pub fn uniform_vec(rng: &mut impl Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut v = vec![lo; n];
    uniform_fill(rng, &mut v, lo, hi);
    v
}

/// Fills `out` with draws from U(lo, hi), in order: the values [`uniform_vec`] returns.
pub fn uniform_fill(rng: &mut impl Rng, out: &mut [f32], lo: f32, hi: f32) {
    match Uniform::new(lo, hi) {
        Ok(d) => out.iter_mut().for_each(|x| *x = d.sample(rng)),
        Err(_) => out.fill(lo),
    }
}

/// `n` draws from N(mean, std²); a non-finite or negative std gives `mean` everywhere.
pub fn normal_vec(rng: &mut impl Rng, n: usize, mean: f32, std: f32) -> Vec<f32> {
    match Normal::new(mean, std) {
        Ok(d) => (0..n).map(|_| d.sample(rng)).collect(),
        Err(_) => vec![mean; n],
    }
}

/// A permutation of 0..n (Fisher–Yates).
pub fn permutation(rng: &mut impl Rng, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        idx.swap(i, j);
    }
    idx
}
