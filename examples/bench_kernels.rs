//! Times latentkit's kernels on one backend and prints napkin math (GB/s against the bytes each
//! kernel must move, TFLOP/s against the FLOPs it must do). On CUDA the clock is a pair of CUDA
//! events around a batch of launches, and GEMM is also timed through cuBLAS SGEMM (TF32 off) in
//! the same process, with the ratio.
//!
//!     cargo run --release --example bench_kernels                      # CPU
//!     cargo run --release --features cuda --example bench_kernels -- --device cuda
//!
//! Options: --device cpu|cuda[:N]  --samples N (≥ 20 recommended; median reported)

use latentkit::bench::median_secs;
use latentkit::ops::gemm::{gemm, GemmSpec, Transpose};
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

    let mut shapes = vec![(128, 400, 784), (128, 784, 400), (128, 20, 400), (1024, 400, 784)];
    shapes.push(if big { (4096, 4096, 4096) } else { (1024, 1024, 1024) });
    for (mm, nn, kk) in shapes {
        let a = rand_tensor(b, &[mm, kk], 6, -1.0, 1.0)?;
        let w = rand_tensor(b, &[nn, kk], 7, -1.0, 1.0)?;
        let mut c = Tensor::zeros(b, &[mm, nn])?;
        let flops = 2.0 * (mm * nn * kk) as f64;
        // The kernel Auto picks (bench_gemm times every version, precision and training shape).
        let spec = GemmSpec::contiguous(Transpose::No, Transpose::Yes, mm, nn, kk, 1.0, 0.0);
        let t = median_secs(b, samples, || gemm(b, &spec, a.buf(), w.buf(), c.buf_mut()))?;
        let extra = cublas_ratio(b, samples, &a, &w, &mut c, (mm, nn, kk), t)?;
        row(&format!("gemm f32 {mm}x{nn}x{kk} (N,T) Auto"), t, 0.0, flops, &extra);
    }
    Ok(())
}

/// cuBLAS SGEMM (default math mode: no TF32) on the same operands, formatted as
/// "cuBLAS x TFLOP/s, ours/cuBLAS r". Row-major C = A·Wᵀ is column-major Cᵀ = W·Aᵀ.
#[cfg(feature = "cuda")]
fn cublas_ratio<B: Backend>(
    b: &B,
    samples: usize,
    a: &Tensor<B>,
    w: &Tensor<B>,
    c: &mut Tensor<B>,
    (m, n, k): (usize, usize, usize),
    ours: f64,
) -> Result<String> {
    use cudarc::cublas::{sys::cublasOperation_t as Op, CudaBlas, Gemm, GemmConfig};
    use std::any::Any;
    let Some(cuda) = (b as &dyn Any).downcast_ref::<CudaBackend>() else { return Ok(String::new()) };
    let (a, w, c) = (
        (a as &dyn Any).downcast_ref::<Tensor<CudaBackend>>(),
        (w as &dyn Any).downcast_ref::<Tensor<CudaBackend>>(),
        (c as &mut dyn Any).downcast_mut::<Tensor<CudaBackend>>(),
    );
    let (Some(a), Some(w), Some(c)) = (a, w, c) else { return Ok(String::new()) };
    let blas = CudaBlas::new(cuda.stream().clone())
        .map_err(|e| latentkit::Error::Cuda { context: "cuBLAS init", msg: e.to_string() })?;
    // Column-major view: C^T [n×m] = W [n×k] (stored k-major, so op = T) · A^T [k×m] (op = N).
    let cfg = GemmConfig {
        transa: Op::CUBLAS_OP_T,
        transb: Op::CUBLAS_OP_N,
        m: n as i32,
        n: m as i32,
        k: k as i32,
        alpha: 1.0f32,
        lda: k as i32,
        ldb: k as i32,
        beta: 0.0f32,
        ldc: n as i32,
    };
    let t = median_secs(b, samples, || {
        // SAFETY: the three buffers hold n·k, m·k and m·n elements, matching cfg's extents.
        unsafe { blas.gemm(cfg, w.buf(), a.buf(), c.buf_mut()) }
            .map_err(|e| latentkit::Error::Launch { kernel: "cublasSgemm", msg: e.to_string() })
    })?;
    let flops = 2.0 * (m * n * k) as f64;
    Ok(format!("cuBLAS {:.3} TFLOP/s, ours/cuBLAS {:.2}", flops / t * 1e-12, t / ours))
}

#[cfg(not(feature = "cuda"))]
fn cublas_ratio<B: Backend>(
    _b: &B,
    _samples: usize,
    _a: &Tensor<B>,
    _w: &Tensor<B>,
    _c: &mut Tensor<B>,
    _shape: (usize, usize, usize),
    _ours: f64,
) -> Result<String> {
    Ok(String::new())
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
