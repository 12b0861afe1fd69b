//! Optimizer kernels against an independent f64 implementation of PyTorch's update rules.

mod common;

use common::*;
use latentkit::ops::optim::{adam_step, adam_step_multi, optim_tick, sgd_step, AdamTensors, OPTIM_STATE_LEN};
use latentkit::ops::{AdamConfig, SgdConfig};
use latentkit::Tensor;

/// torch.optim.Adam / AdamW, step by step, in f64.
fn adam_f64(p: &mut [f64], m: &mut [f64], v: &mut [f64], g: &[f32], t: i32, c: &AdamConfig) {
    let (lr, b1, b2, eps, wd) =
        (f64::from(c.lr), f64::from(c.beta1), f64::from(c.beta2), f64::from(c.eps), f64::from(c.weight_decay));
    for i in 0..p.len() {
        let mut gi = f64::from(g[i]);
        if c.decoupled_weight_decay {
            p[i] *= 1.0 - lr * wd;
        } else {
            gi += wd * p[i];
        }
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        p[i] -= lr / bc1 * m[i] / ((v[i] / bc2).sqrt() + eps);
    }
}

/// torch.optim.SGD in f64.
fn sgd_f64(p: &mut [f64], buf: &mut [f64], g: &[f32], t: i32, c: &SgdConfig) {
    let (lr, mu, damp, wd) =
        (f64::from(c.lr), f64::from(c.momentum), f64::from(c.dampening), f64::from(c.weight_decay));
    for i in 0..p.len() {
        let mut gi = f64::from(g[i]) + wd * p[i];
        if mu != 0.0 {
            buf[i] = if t == 1 { gi } else { mu * buf[i] + (1.0 - damp) * gi };
            gi = if c.nesterov { gi + mu * buf[i] } else { buf[i] };
        }
        p[i] -= lr * gi;
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

parity_test!(adam_and_adamw_match_pytorch_rules, |b| {
    let mut r = rng(31);
    let mut outs = Vec::new();
    let configs = [
        AdamConfig::default(),
        AdamConfig { lr: 3e-3, weight_decay: 0.1, ..AdamConfig::default() },
        AdamConfig::adamw(1e-2, 0.05),
    ];
    for (ci, cfg) in configs.iter().enumerate() {
        for &n in &[1usize, 7, 33, 1000, 70_001] {
            let p0 = rand_vec(&mut r, n, -1.0, 1.0);
            let mut p = tensor(b, &[n], &p0);
            let mut m = Tensor::zeros(b, &[n]).unwrap();
            let mut v = Tensor::zeros(b, &[n]).unwrap();
            let mut state = Tensor::zeros(b, &[OPTIM_STATE_LEN]).unwrap();
            let (mut pr, mut mr, mut vr) =
                (p0.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(), vec![0.0; n], vec![0.0; n]);
            for t in 1..=5 {
                let g = rand_vec(&mut r, n, -1.0, 1.0);
                optim_tick(b, &mut state, cfg.beta1, cfg.beta2).unwrap();
                adam_step(b, &mut p, &tensor(b, &[n], &g), &mut m, &mut v, &state, cfg).unwrap();
                adam_f64(&mut pr, &mut mr, &mut vr, &g, t, cfg);
            }
            let st = host(b, &state);
            assert_eq!(st[0], 5.0, "step counter");
            // Five f32 updates of size ≤ lr against f64: a few ulps of |p| plus lr·1e-5.
            let got = host(b, &p);
            assert_close(&format!("adam cfg{ci} n={n} params"), &got, &to_f32(&pr), 1e-6, 1e-5);
            assert_close(&format!("adam cfg{ci} n={n} m"), &host(b, &m), &to_f32(&mr), 1e-7, 1e-5);
            assert_close(&format!("adam cfg{ci} n={n} v"), &host(b, &v), &to_f32(&vr), 1e-9, 1e-5);
            outs.push(Out::new(format!("adam cfg{ci} n={n}"), got));
        }
    }
    outs
});

parity_test!(adam_multi_writes_the_bits_of_adam_step, |b| {
    // 19 tensors (two launches of at most 16 on CUDA), sizes around its 2048-element blocks and
    // odd ones; three steps of Adam with L2 decay and of AdamW. Multi must equal per-tensor
    // adam_step bit for bit (the same update function), so the tolerance is 0.
    let mut r = rng(33);
    let sizes = [1usize, 7, 2047, 2048, 2049, 33, 4096, 5000, 1, 300, 6145, 2, 64, 999, 10_000, 3, 2048, 17, 400];
    let mut outs = Vec::new();
    for (ci, cfg) in
        [AdamConfig { lr: 3e-3, weight_decay: 0.1, ..AdamConfig::default() }, AdamConfig::adamw(1e-2, 0.05)]
            .iter()
            .enumerate()
    {
        let p0: Vec<Vec<f32>> = sizes.iter().map(|&n| rand_vec(&mut r, n, -1.0, 1.0)).collect();
        let make = |b: &_| -> Vec<[Tensor<_>; 3]> {
            p0.iter()
                .map(|p| {
                    [
                        tensor(b, &[p.len()], p),
                        Tensor::zeros(b, &[p.len()]).unwrap(),
                        Tensor::zeros(b, &[p.len()]).unwrap(),
                    ]
                })
                .collect()
        };
        let (mut single, mut multi) = (make(b), make(b));
        let (mut st_single, mut st_multi) =
            (Tensor::zeros(b, &[OPTIM_STATE_LEN]).unwrap(), Tensor::zeros(b, &[OPTIM_STATE_LEN]).unwrap());
        for _ in 0..3 {
            let grads: Vec<Tensor<_>> =
                sizes.iter().map(|&n| tensor(b, &[n], &rand_vec(&mut r, n, -1.0, 1.0))).collect();
            optim_tick(b, &mut st_single, cfg.beta1, cfg.beta2).unwrap();
            optim_tick(b, &mut st_multi, cfg.beta1, cfg.beta2).unwrap();
            for ([p, m, v], g) in single.iter_mut().zip(&grads) {
                adam_step(b, p, g, m, v, &st_single, cfg).unwrap();
            }
            let mut tensors: Vec<AdamTensors<'_, _>> =
                multi.iter_mut().zip(&grads).map(|([p, m, v], g)| (p, g, m, v)).collect();
            adam_step_multi(b, &mut tensors, &st_multi, cfg).unwrap();
        }
        for (i, (s, m)) in single.iter().zip(&multi).enumerate() {
            for (k, name) in ["params", "m", "v"].iter().enumerate() {
                let (want, got) = (host(b, &s[k]), host(b, &m[k]));
                assert_close(&format!("adam multi cfg{ci} tensor {i} {name}"), &got, &want, 0.0, 0.0);
                if k == 0 {
                    outs.push(Out::new(format!("adam multi cfg{ci} tensor {i}"), got));
                }
            }
        }
    }
    // A shape mismatch in any tensor is an error before anything runs.
    let (mut p, mut m, mut v) =
        (tensor(b, &[3], &[1.0; 3]), Tensor::zeros(b, &[3]).unwrap(), Tensor::zeros(b, &[2]).unwrap());
    let g = tensor(b, &[3], &[0.5; 3]);
    let state = Tensor::zeros(b, &[OPTIM_STATE_LEN]).unwrap();
    let err = adam_step_multi(b, &mut [(&mut p, &g, &mut m, &mut v)], &state, &AdamConfig::default()).unwrap_err();
    assert!(err.to_string().contains("adam_step_multi"), "{err}");
    assert_eq!(host(b, &p), vec![1.0; 3], "nothing ran");
    outs
});

parity_test!(first_adam_step_moves_each_parameter_by_lr, |b| {
    // Golden value: after one step m̂ = g and v̂ = g², so p₁ = p₀ − lr·g/(|g| + eps).
    let mut p = tensor(b, &[3], &[1.0, -2.0, 0.5]);
    let g = tensor(b, &[3], &[0.5, -3.0, 1e-3]);
    let mut m = Tensor::zeros(b, &[3]).unwrap();
    let mut v = Tensor::zeros(b, &[3]).unwrap();
    let mut state = Tensor::zeros(b, &[OPTIM_STATE_LEN]).unwrap();
    let cfg = AdamConfig { lr: 0.1, ..AdamConfig::default() };
    optim_tick(b, &mut state, cfg.beta1, cfg.beta2).unwrap();
    adam_step(b, &mut p, &g, &mut m, &mut v, &state, &cfg).unwrap();
    let got = host(b, &p);
    assert_close("first adam step", &got, &[0.9, -1.9, 0.4], 1e-6, 1e-6);
    vec![Out::new("first adam step", got)]
});

parity_test!(sgd_momentum_matches_pytorch_rules, |b| {
    let mut r = rng(32);
    let mut outs = Vec::new();
    let configs = [
        SgdConfig { momentum: 0.0, ..SgdConfig::default() },
        SgdConfig::default(),
        SgdConfig { lr: 0.05, momentum: 0.8, dampening: 0.1, weight_decay: 1e-2, nesterov: false },
        SgdConfig { lr: 0.05, momentum: 0.9, dampening: 0.0, weight_decay: 1e-3, nesterov: true },
    ];
    for (ci, cfg) in configs.iter().enumerate() {
        for &n in &[1usize, 33, 1000] {
            let p0 = rand_vec(&mut r, n, -1.0, 1.0);
            let mut p = tensor(b, &[n], &p0);
            let mut buf = Tensor::zeros(b, &[n]).unwrap();
            let mut state = Tensor::zeros(b, &[OPTIM_STATE_LEN]).unwrap();
            let (mut pr, mut br) = (p0.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(), vec![0.0; n]);
            for t in 1..=4 {
                let g = rand_vec(&mut r, n, -1.0, 1.0);
                optim_tick(b, &mut state, 0.0, 0.0).unwrap();
                sgd_step(b, &mut p, &tensor(b, &[n], &g), &mut buf, &state, cfg).unwrap();
                sgd_f64(&mut pr, &mut br, &g, t, cfg);
            }
            let got = host(b, &p);
            assert_close(&format!("sgd cfg{ci} n={n}"), &got, &to_f32(&pr), 1e-6, 1e-5);
            outs.push(Out::new(format!("sgd cfg{ci} n={n}"), got));
        }
    }
    outs
});
