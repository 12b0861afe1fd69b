//! CPU reference for `kernels/optim.cu`, written in f32 in the same operation order as the kernels
//! so the two agree to rounding.

use super::{AdamConfig, SgdConfig};

pub fn optim_tick(state: &mut [f32], beta1: f32, beta2: f32) {
    let t = state[0] + 1.0;
    state[0] = t;
    state[1] = 1.0 - beta1.powf(t);
    state[2] = 1.0 - beta2.powf(t);
}

pub fn adam_step(p: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], state: &[f32], cfg: &AdamConfig) {
    let step_size = cfg.lr / state[1];
    let bc2_sqrt = state[2].sqrt();
    for i in 0..p.len() {
        let mut w = p[i];
        let mut g = grad[i];
        if cfg.weight_decay != 0.0 {
            if cfg.decoupled_weight_decay {
                w *= 1.0 - cfg.lr * cfg.weight_decay;
            } else {
                g += cfg.weight_decay * w;
            }
        }
        let mi = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
        let vi = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = w - step_size * mi / (vi.sqrt() / bc2_sqrt + cfg.eps);
    }
}

pub fn sgd_step(p: &mut [f32], grad: &[f32], buf: &mut [f32], state: &[f32], cfg: &SgdConfig) {
    let first = state[0] <= 1.0;
    for i in 0..p.len() {
        let mut g = grad[i];
        if cfg.weight_decay != 0.0 {
            g += cfg.weight_decay * p[i];
        }
        if cfg.momentum != 0.0 {
            let b = if first { g } else { cfg.momentum * buf[i] + (1.0 - cfg.dampening) * g };
            buf[i] = b;
            g = if cfg.nesterov { g + cfg.momentum * b } else { b };
        }
        p[i] -= cfg.lr * g;
    }
}
