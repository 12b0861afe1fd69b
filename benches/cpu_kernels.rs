//! Criterion benchmarks of the CPU backend's kernels at training sizes (784-400-20 model, batch
//! 128). Throughput is reported in elements (pointwise kernels) or FLOPs (GEMM).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use latentkit::ops::gemm::{matmul, Transpose};
use latentkit::ops::optim::{adam_step, OPTIM_STATE_LEN};
use latentkit::ops::{elementwise, loss, Activation, AdamConfig};
use latentkit::rng::{seeded, uniform_vec};
use latentkit::{CpuBackend, Tensor};

fn rand(shape: &[usize], seed: u64) -> Tensor<CpuBackend> {
    let n = shape.iter().product();
    Tensor::from_slice(&CpuBackend, shape, &uniform_vec(&mut seeded(seed), n, -1.0, 1.0)).expect("tensor")
}

fn gemm(c: &mut Criterion) {
    let b = CpuBackend;
    let mut g = c.benchmark_group("gemm_f32");
    for (m, n, k) in [(128, 400, 784), (128, 784, 400), (128, 20, 400), (512, 512, 512)] {
        let (a, w) = (rand(&[m, k], 1), rand(&[n, k], 2));
        let mut out = Tensor::zeros(&b, &[m, n]).expect("tensor");
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_function(BenchmarkId::new("N,T", format!("{m}x{n}x{k}")), |bench| {
            bench.iter(|| matmul(&b, Transpose::No, Transpose::Yes, 1.0, &a, &w, 0.0, &mut out).expect("gemm"))
        });
    }
    g.finish();
}

fn pointwise(c: &mut Criterion) {
    let b = CpuBackend;
    let mut g = c.benchmark_group("pointwise");
    let n = 128 * 784;
    g.throughput(Throughput::Elements(n as u64));
    let x = rand(&[128, 784], 3);
    let t = Tensor::from_slice(&b, &[128, 784], &uniform_vec(&mut seeded(4), n, 0.0, 1.0)).expect("tensor");
    let mut y = Tensor::zeros(&b, &[128, 784]).expect("tensor");
    let mut rl = Tensor::zeros(&b, &[128]).expect("tensor");
    g.bench_function("relu_fwd 128x784", |bench| {
        bench.iter(|| elementwise::activation_fwd(&b, Activation::Relu, &x, &mut y).expect("relu"))
    });
    g.bench_function("bce_logits_fwd 128x784", |bench| {
        bench.iter(|| loss::bce_logits_fwd(&b, &x, &t, &mut rl).expect("bce"))
    });
    g.bench_function("bce_logits_bwd 128x784", |bench| {
        bench.iter(|| loss::bce_logits_bwd(&b, &x, &t, 1.0 / 128.0, &mut y).expect("bce"))
    });
    // The VAE's 784-400-20 parameter count.
    let p_n = 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784;
    let (mut p, gr, mut m, mut v) = (rand(&[p_n], 5), rand(&[p_n], 6), rand(&[p_n], 7), rand(&[p_n], 8));
    let state = Tensor::from_slice(&b, &[OPTIM_STATE_LEN], &[10.0, 0.65, 0.01]).expect("tensor");
    g.throughput(Throughput::Elements(p_n as u64));
    g.bench_function(format!("adam_step {p_n}"), |bench| {
        bench.iter(|| adam_step(&b, &mut p, &gr, &mut m, &mut v, &state, &AdamConfig::default()).expect("adam"))
    });
    g.finish();
}

criterion_group!(benches, gemm, pointwise);
criterion_main!(benches);
