//! Pair metrics for a siamese similarity head: scores are "higher means more similar", labels
//! true for similar pairs.

use crate::error::{Error, Result};

fn check(op: &'static str, scores: &[f32], labels: &[bool]) -> Result<()> {
    if scores.len() != labels.len() || scores.is_empty() {
        return Err(Error::shape(op, format!("{} scores for {} labels", scores.len(), labels.len())));
    }
    if scores.iter().any(|s| s.is_nan()) {
        return Err(Error::invalid(op, "NaN score"));
    }
    Ok(())
}

/// Area under the ROC curve: the probability that a random similar pair scores above a random
/// dissimilar one, ties counting ½ (Mann–Whitney U). 0.5 when either class is absent.
pub fn roc_auc(scores: &[f32], labels: &[bool]) -> Result<f64> {
    check("roc_auc", scores, labels)?;
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks over ties, then the rank-sum of the positives.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += idx[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * avg_rank;
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return Ok(0.5);
    }
    Ok((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Fraction of pairs classified right by `score > threshold ⇔ similar`.
pub fn accuracy_at(scores: &[f32], labels: &[bool], threshold: f32) -> Result<f64> {
    check("accuracy_at", scores, labels)?;
    Ok(scores.iter().zip(labels).filter(|(&s, &l)| (s > threshold) == l).count() as f64 / scores.len() as f64)
}

/// The largest f32 below `x` (f32::next_down, stable only since Rust 1.86).
fn next_down(x: f32) -> f32 {
    if x.is_nan() || x == f32::NEG_INFINITY {
        x
    } else if x == 0.0 {
        -f32::from_bits(1)
    } else if x > 0.0 {
        f32::from_bits(x.to_bits() - 1)
    } else {
        f32::from_bits(x.to_bits() + 1)
    }
}

/// The threshold (midpoint between consecutive distinct scores, where it rounds strictly between
/// them) that maximises accuracy on these pairs, and that accuracy, which [`accuracy_at`] gives
/// at that threshold; pick it on training pairs, report accuracy on test pairs.
pub fn best_threshold(scores: &[f32], labels: &[bool]) -> Result<(f32, f64)> {
    check("best_threshold", scores, labels)?;
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut correct = labels.iter().filter(|&&l| l).count() as i64;
    // Threshold below everything: all predicted similar (min − 1, or the next float down where
    // 1 is lost in rounding); impossible when the lowest score is −∞.
    let lo = scores[idx[0]];
    let mut best = match lo - 1.0 {
        _ if lo == f32::NEG_INFINITY => (lo, i64::MIN),
        below if below < lo => (below, correct),
        _ => (next_down(lo), correct),
    };
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        // Moving the threshold past a group of equal scores flips all of them to "dissimilar".
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            correct += if labels[idx[j]] { -1 } else { 1 };
            j += 1;
        }
        // Any t in [a, b) separates the groups; the midpoint unless rounding lands it on b (or
        // past: a + b overflowing), then a itself. Past the last group, its score + 1, or the
        // score itself where 1 is lost in rounding.
        let a = scores[idx[i]];
        let t = match idx.get(j).map(|&k| scores[k]) {
            Some(b) => Some((0.5 * (f64::from(a) + f64::from(b))) as f32).filter(|&m| a <= m && m < b).unwrap_or(a),
            None => Some(a + 1.0).filter(|&above| above > a).unwrap_or(a),
        };
        if correct > best.1 {
            best = (t, correct);
        }
        i = j;
    }
    Ok((best.0, best.1 as f64 / scores.len() as f64))
}
