//! Times latentkit's kernels on one backend and prints napkin math (GB/s against the bytes each
//! kernel must move, TFLOP/s against the FLOPs it must do). On CUDA the clock is a pair of CUDA
//! events around a batch of launches. GEMM against cuBLAS, in every precision and on every shape
//! of the GEMM issue, is `bench_gemm`'s job; here it is one row per shape for the napkin math.
//!
//!     cargo run --release --example bench_kernels                      # CPU
//!     cargo run --release --features cuda --example bench_kernels -- --device cuda
//!
//! Options: --device cpu|cuda[:N]  --samples N (≥ 20 recommended; median reported)

use latentkit::bench::median_secs;
use latentkit::ops::gemm::{matmul, Transpose};
use latentkit::ops::optim::{adam_step, OPTIM_STATE_LEN};
use latentkit::ops::{elementwise, loss, Activation, AdamConfig};
use latentkit::rng::{seeded, uniform_vec};
use latentkit::{Backend, CpuBackend, CudaBackend, Device, Result, Tensor};

fn row(name: &str, secs: f64, bytes: f64, flops: f64, extra: &str) {
    let gbs = if bytes > 0.0 { format!("{:9.1} GB/s", bytes / secs * 1e-9) } else { " ".repeat(14) };
    let tfs = if flops > 0.0 { format!("{:8.3} TFLOP/s", flops / secs * 1e-12) } else { " ".repeat(16) };
    println!("| {name:<34} | {:>10.2} µs | {gbs} | {tfs} | {extra}", secs * 1e6);
}

fn rand_tensor<B: Backend>(b: &B, shape: &[usize], seed: u64, lo: f32, hi: f32) -> Result<Tensor<B>> {
    let n = shape.iter().product();
    Tensor::from_slice(b, shape, &uniform_vec(&mut seeded(seed), n, lo, hi))
}

fn bench<B: Backend>(b: &B, samples: usize, big: bool) -> Result<()> {
    println!("device: {}  (median of {samples} samples)", b.device());
    println!("| kernel | time | bandwidth | compute | baseline");
    let n = if big { 1 << 24 } else { 1 << 22 };
    let x = rand_tensor(b, &[n], 1, -1.0, 1.0)?;
    let mut y = Tensor::zeros(b, &[n])?;
    let t = median_secs(b, samples, || elementwise::activation_fwd(b, Activation::Relu, &x, &mut y))?;
    row(&format!("activation_fwd relu n={n}"), t, 8.0 * n as f64, 0.0, "");

    let g = rand_tensor(b, &[n], 2, -1.0, 1.0)?;
    let (mut p, mut m, mut v) = (rand_tensor(b, &[n], 3, -1.0, 1.0)?, Tensor::zeros(b, &[n])?, Tensor::zeros(b, &[n])?);
    let state = Tensor::from_slice(b, &[OPTIM_STATE_LEN], &[1.0, 0.1, 0.001])?;
    let cfg = AdamConfig::default();
    let t = median_secs(b, samples, || adam_step(b, &mut p, &g, &mut m, &mut v, &state, &cfg))?;
    row(&format!("adam_step n={n}"), t, 7.0 * 4.0 * n as f64, 0.0, "reads p,g,m,v; writes p,m,v");

    let (rows, cols) = (4096, 784);
    let logits = rand_tensor(b, &[rows, cols], 4, -4.0, 4.0)?;
    let target = rand_tensor(b, &[rows, cols], 5, 0.0, 1.0)?;
    let mut rl = Tensor::zeros(b, &[rows])?;
    let t = median_secs(b, samples, || loss::bce_logits_fwd(b, &logits, &target, &mut rl))?;
    row(&format!("bce_logits_fwd {rows}x{cols}"), t, 8.0 * (rows * cols) as f64, 0.0, "");

    // Bias gradients of the VAE's layers (Σ over the batch of dY), at batch 128 and 4096.
    for (rows, cols) in [(128, 400), (128, 784), (4096, 400), (4096, 784)] {
        let dy = rand_tensor(b, &[rows, cols], 8, -1.0, 1.0)?;
        let mut db = Tensor::zeros(b, &[cols])?;
        let t = median_secs(b, samples, || elementwise::col_sum(b, &dy, 0.0, &mut db))?;
        row(&format!("col_sum {rows}x{cols}"), t, 4.0 * (rows * cols + cols) as f64, 0.0, "");
    }

    let mut shapes = vec![(128, 400, 784), (128, 784, 400), (128, 20, 400), (1024, 400, 784)];
    shapes.push(if big { (4096, 4096, 4096) } else { (1024, 1024, 1024) });
    for (mm, nn, kk) in shapes {
        let a = rand_tensor(b, &[mm, kk], 6, -1.0, 1.0)?;
        let w = rand_tensor(b, &[nn, kk], 7, -1.0, 1.0)?;
        let mut c = Tensor::zeros(b, &[mm, nn])?;
        let flops = 2.0 * (mm * nn * kk) as f64;
        // The kernel Auto picks (bench_gemm: every version and precision, against cuBLAS).
        let t = median_secs(b, samples, || matmul(b, Transpose::No, Transpose::Yes, 1.0, &a, &w, 0.0, &mut c))?;
        row(&format!("gemm f32 {mm}x{nn}x{kk} (N,T) Auto"), t, 0.0, flops, "");
    }
    Ok(())
}

fn main() {
    let mut device = Device::Cpu;
    let mut samples = 20;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        let parsed = match (a.as_str(), v) {
            ("--device", Some(v)) => v.parse().map(|d| device = d).map_err(|e| e.to_string()),
            ("--samples", Some(v)) => v.parse().map(|s| samples = s).map_err(|e| format!("--samples: {e}")),
            (other, _) => Err(format!("unknown or incomplete option {other:?}")),
        };
        if let Err(e) = parsed {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    let res = match device {
        Device::Cpu => bench(&CpuBackend, samples, false),
        Device::Cuda(i) => CudaBackend::new(i).and_then(|b| bench(&b, samples, true)),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
