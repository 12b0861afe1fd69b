//! CPU reference for `kernels/latent.cu`. ε is bit-identical to the GPU's; the KL row sums
//! accumulate in f64.

use super::{LatentConfig, LOGVAR_MAX, LOGVAR_MIN};
use crate::ops::rng::cpu::philox_normal;

fn clamp_logvar(lv: f32) -> f32 {
    lv.clamp(LOGVAR_MIN, LOGVAR_MAX)
}

/// ½(μ² + e^lv − lv − 1) for the clamped lv.
pub fn kl_term(mu: f32, logvar: f32) -> f32 {
    let lv = clamp_logvar(logvar);
    0.5 * (mu * mu + lv.exp() - lv - 1.0)
}

#[allow(clippy::too_many_arguments)]
pub fn reparam_kl_fwd(
    cfg: &LatentConfig,
    offset: u64,
    mu: &[f32],
    logvar: &[f32],
    z: &mut [f32],
    kl_row: &mut [f32],
    mut kl_elem: Option<&mut [f32]>,
    cols: usize,
) {
    for (r, out) in kl_row.iter_mut().enumerate() {
        let mut s = 0.0f64;
        for c in 0..cols {
            let i = r * cols + c;
            let lv = clamp_logvar(logvar[i]);
            z[i] =
                if cfg.sample { mu[i] + philox_normal(cfg.seed, offset, i as u64) * (0.5 * lv).exp() } else { mu[i] };
            let k = kl_term(mu[i], logvar[i]);
            if let Some(ke) = kl_elem.as_deref_mut() {
                ke[i] = k;
            }
            s += f64::from(k);
        }
        *out = s as f32;
    }
}

#[allow(clippy::too_many_arguments)]
pub fn reparam_kl_bwd(
    cfg: &LatentConfig,
    offset: u64,
    mu: &[f32],
    logvar: &[f32],
    dz: &[f32],
    kl_weight: &[f32],
    dmu: &mut [f32],
    dlogvar: &mut [f32],
) {
    let cols = kl_weight.len();
    for i in 0..mu.len() {
        let w = kl_weight[i % cols];
        let lv = clamp_logvar(logvar[i]);
        let mut dlv = 0.5 * w * (lv.exp() - 1.0);
        if cfg.sample {
            dlv += 0.5 * dz[i] * philox_normal(cfg.seed, offset, i as u64) * (0.5 * lv).exp();
        }
        dmu[i] = dz[i] + w * mu[i];
        dlogvar[i] = dlv;
    }
}
