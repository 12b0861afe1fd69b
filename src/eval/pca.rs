//! A 2-D principal-component projection for embedding scatter plots: the covariance (f64), its two
//! leading eigenvectors by power iteration with deflation from a fixed start (deterministic), then
//! the centred data projected on them.

use crate::error::{Error, Result};

pub fn pca_2d(x: &[f32], dim: usize) -> Result<Vec<(f32, f32)>> {
    if dim == 0 || x.is_empty() || x.len() % dim != 0 {
        return Err(Error::shape("pca_2d", format!("{} values are not rows of dimension {dim}", x.len())));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid("pca_2d", "the points hold a non-finite value"));
    }
    let n = x.len() / dim;
    let mut mean = vec![0.0f64; dim];
    for row in x.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v) / n as f64;
        }
    }
    // dim² f64: reserved first, so a dimension the host can't hold is an error, not an abort.
    let too_big = |why: String| Error::invalid("pca_2d", format!("a {dim}×{dim} covariance: {why}"));
    let cells = dim.checked_mul(dim).ok_or_else(|| too_big("overflows usize".into()))?;
    let mut cov = Vec::new();
    cov.try_reserve_exact(cells).map_err(|e| too_big(e.to_string()))?;
    cov.resize(cells, 0.0f64);
    for row in x.chunks_exact(dim) {
        let c: Vec<f64> = row.iter().zip(&mean).map(|(&v, m)| f64::from(v) - m).collect();
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] += c[i] * c[j];
            }
        }
    }
    // Power iteration with deflation from a fixed start; where it finds no variance off the axes
    // already found (relative to the total, so rounding noise counts as none), a start along the
    // largest variance of one coordinate, in case the fixed one was orthogonal to it; then none:
    // the axis projects to 0.
    let trace: f64 = (0..dim).map(|i| cov[i * dim + i]).sum();
    let widest = (0..dim).max_by(|&a, &b| cov[a * dim + a].total_cmp(&cov[b * dim + b])).unwrap_or(0);
    let mut axes: Vec<Vec<f64>> = Vec::new();
    for k in 0..2.min(dim) {
        let fixed: Vec<f64> = (0..dim).map(|i| 1.0 + (i * 7 + k * 3) as f64 % 5.0).collect();
        let basis: Vec<f64> = (0..dim).map(|i| f64::from(u8::from(i == widest))).collect();
        let axis = [fixed, basis].into_iter().find_map(|mut v| {
            for _ in 0..300 {
                let mut w: Vec<f64> = (0..dim).map(|i| (0..dim).map(|j| cov[i * dim + j] * v[j]).sum()).collect();
                for a in &axes {
                    let p: f64 = w.iter().zip(a).map(|(x, y)| x * y).sum();
                    w.iter_mut().zip(a).for_each(|(x, y)| *x -= p * y);
                }
                let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
                let v_norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm <= 1e-12 * trace * v_norm {
                    return None;
                }
                v = w.into_iter().map(|x| x / norm).collect();
            }
            Some(v)
        });
        axes.push(axis.unwrap_or_else(|| vec![0.0; dim]));
    }
    Ok(x.chunks_exact(dim)
        .map(|row| {
            let proj = |a: &Vec<f64>| {
                row.iter().zip(&mean).zip(a).map(|((&v, m), w)| (f64::from(v) - m) * w).sum::<f64>() as f32
            };
            (proj(&axes[0]), axes.get(1).map_or(0.0, proj))
        })
        .collect())
}
