//! CPU reference for `kernels/latent.cu`. ε is bit-identical to the GPU's; the KL row sums
//! accumulate in f64.

use super::{KlSchedule, LatentConfig, LOGVAR_MAX, LOGVAR_MIN};
use crate::ops::rng::cpu::NormalStream;

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
    let mut noise = NormalStream::new(cfg.seed, offset);
    for (r, out) in kl_row.iter_mut().enumerate() {
        let mut s = 0.0f64;
        for c in 0..cols {
            let i = r * cols + c;
            let lv = clamp_logvar(logvar[i]);
            z[i] = if cfg.sample { mu[i] + noise.get(i as u64) * (0.5 * lv).exp() } else { mu[i] };
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
    let mut noise = NormalStream::new(cfg.seed, offset);
    for i in 0..mu.len() {
        let w = kl_weight[i % cols];
        let lv = clamp_logvar(logvar[i]);
        let mut dlv = 0.5 * w * (lv.exp() - 1.0);
        if cfg.sample {
            dlv += 0.5 * dz[i] * noise.get(i as u64) * (0.5 * lv).exp();
        }
        dmu[i] = dz[i] + w * mu[i];
        dlogvar[i] = dlv;
    }
}

/// `vae_objective_f32`: row sums in f64, the rest in f32 in the kernel's order.
#[allow(clippy::too_many_arguments)]
pub fn vae_objective(
    sched: &KlSchedule,
    optim_state: &[f32],
    recon_row: &[f32],
    kl_row: &[f32],
    kl_dim: Option<&[f32]>,
    kl_weight: &mut [f32],
    stats: &mut [f32],
    acc: &mut [f32],
) {
    let n = recon_row.len() as f32;
    let recon = (recon_row.iter().map(|&v| f64::from(v)).sum::<f64>() as f32) / n;
    let kl = (kl_row.iter().map(|&v| f64::from(v)).sum::<f64>() as f32) / n;
    let t = optim_state[0];
    let warmup = sched.warmup_steps as f32;
    let beta = if warmup > 0.0 { sched.beta * ((t + 1.0) / warmup).min(1.0) } else { sched.beta };
    let free_bits = kl_dim.filter(|_| sched.free_bits > 0.0);
    let mut kl_objective = if free_bits.is_some() { 0.0 } else { kl };
    for (c, w) in kl_weight.iter_mut().enumerate() {
        *w = beta / n;
        if let Some(kd) = free_bits {
            let m = kd[c] / n;
            if m < sched.free_bits {
                *w = 0.0;
            }
            kl_objective += if m.is_nan() { m } else { m.max(sched.free_bits) };
        }
    }
    let loss = recon + beta * kl_objective;
    for (i, v) in [recon, kl, loss].into_iter().enumerate() {
        stats[i] = v;
        acc[i] += v;
    }
}
