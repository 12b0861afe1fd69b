//! One GEMM by one kernel version, once, on the CUDA backend: for tools that watch a single launch,
//! such as the emulator's shared-memory bank profile (`scripts/emu-banks.sh`, tools/cuda-emu) or
//! ncu on a GPU. Inputs are uniform in [−1, 1]; the result is checked against the f64 CPU
//! reference at the precision's bound, so a profile is never of a launch that computed garbage.
//!
//!     cargo run --release --features cuda --example gemm_once -- --kernel Simt64Warp \
//!         --shape 1024x400x784 [--op NT] [--precision f32|tf32|bf16|f16]
//!
//! `--op` gives op(A) and op(B) (N or T each; default NN). `--kernel` takes a version's `Debug`
//! name (`bench_gemm --list-simt` lists the SIMT ones) or `Auto`.

#[cfg(feature = "cuda")]
mod gpu {
    use latentkit::ops::gemm::cpu::gemm_ref;
    use latentkit::ops::gemm::{
        f32_error_bound, gemm, gemm_half, tf32_error_bound, GemmKernel, GemmMath, GemmSpec, Transpose,
    };
    use latentkit::rng::{seeded, uniform_vec};
    use latentkit::{Backend, CudaBackend, Result};

    pub struct Opts {
        pub kernel: GemmKernel,
        pub m: usize,
        pub n: usize,
        pub k: usize,
        pub trans: (Transpose, Transpose),
        pub precision: String,
    }

    /// Runs the product once and checks it; the error names the first element out of bounds.
    pub fn run(o: &Opts) -> std::result::Result<(), String> {
        let bk = CudaBackend::new(0).map_err(|e| e.to_string())?;
        run_on(&bk, o).map_err(|e| e.to_string())?
    }

    fn run_on(bk: &CudaBackend, o: &Opts) -> Result<std::result::Result<(), String>> {
        let mut spec = GemmSpec::contiguous(o.trans.0, o.trans.1, o.m, o.n, o.k, 1.0, 0.0);
        spec.kernel = o.kernel;
        let mut rng = seeded(7);
        let mut a = uniform_vec(&mut rng, o.m * o.k, -1.0, 1.0);
        let mut b = uniform_vec(&mut rng, o.k * o.n, -1.0, 1.0);
        let mut c = bk.upload(&vec![f32::NAN; o.m * o.n])?;
        // The project's bounds (inputs in [−1, 1]): K·ε for f32 accumulation, TF32's against the
        // unrounded inputs; the half types' inputs are rounded first, so that the reference sees
        // what the kernel sees.
        let bound = match o.precision.as_str() {
            "f32" => {
                bk_gemm_f32(bk, &spec, &a, &b, &mut c)?;
                f32_error_bound(o.k, 1.0, 1.0)
            }
            "tf32" => {
                spec.math = GemmMath::Tf32;
                bk_gemm_f32(bk, &spec, &a, &b, &mut c)?;
                tf32_error_bound(o.k, 1.0, 1.0)
            }
            "bf16" => {
                let (ah, bh) = (to_half::<half::bf16>(&mut a), to_half::<half::bf16>(&mut b));
                gemm_half(bk, &spec, &bk.upload(&ah)?, &bk.upload(&bh)?, &mut c)?;
                f32_error_bound(o.k, 1.0, 1.0)
            }
            "f16" => {
                let (ah, bh) = (to_half::<half::f16>(&mut a), to_half::<half::f16>(&mut b));
                gemm_half(bk, &spec, &bk.upload(&ah)?, &bk.upload(&bh)?, &mut c)?;
                f32_error_bound(o.k, 1.0, 1.0)
            }
            p => return Ok(Err(format!("precision {p:?}: expected f32, tf32, bf16 or f16"))),
        };
        let got = bk.download(&c)?;
        let mut want = vec![0.0f32; o.m * o.n];
        gemm_ref(&spec, &a, &b, &mut want)?;
        for (e, (&g, &w)) in got.iter().zip(&want).enumerate() {
            if g.is_nan() || (g - w).abs() > bound {
                return Ok(Err(format!(
                    "{:?}: C[{}, {}] = {g}, reference {w} (bound {bound:.3e})",
                    o.kernel,
                    e / o.n,
                    e % o.n
                )));
            }
        }
        println!("{:?} {}×{}×{} {:?} {}: matches the f64 reference", o.kernel, o.m, o.n, o.k, o.trans, o.precision);
        Ok(Ok(()))
    }

    fn bk_gemm_f32(
        bk: &CudaBackend,
        spec: &GemmSpec,
        a: &[f32],
        b: &[f32],
        c: &mut <CudaBackend as Backend>::Buf<f32>,
    ) -> Result<()> {
        gemm(bk, spec, &bk.upload(a)?, &bk.upload(b)?, c)
    }

    /// The half-precision copy of v, and v rounded to it in place.
    fn to_half<T: latentkit::ops::gemm::HalfFloat>(v: &mut [f32]) -> Vec<T> {
        v.iter_mut()
            .map(|x| {
                let h = T::from_f32(*x);
                *x = h.to_f32();
                h
            })
            .collect()
    }
}

fn main() {
    let mut kernel = None;
    let mut shape = None;
    let mut op = "NN".to_string();
    let mut precision = "f32".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let Some(v) = args.next() else {
            eprintln!("error: {a} needs a value");
            std::process::exit(2);
        };
        match a.as_str() {
            "--kernel" => kernel = Some(v),
            "--shape" => shape = Some(v),
            "--op" => op = v.to_uppercase(),
            "--precision" => precision = v.to_lowercase(),
            other => {
                eprintln!("error: unknown option {other:?}");
                std::process::exit(2);
            }
        }
    }
    let dims: Vec<usize> = shape.as_deref().unwrap_or("").split('x').filter_map(|d| d.parse().ok()).collect();
    let (Some(kernel), &[m, n, k], true) =
        (kernel, dims.as_slice(), op.len() == 2 && op.chars().all(|c| c == 'N' || c == 'T'))
    else {
        eprintln!("usage: gemm_once --kernel NAME --shape MxNxK [--op NN|NT|TN|TT] [--precision f32|tf32|bf16|f16]");
        std::process::exit(2);
    };
    #[cfg(feature = "cuda")]
    {
        use latentkit::ops::gemm::{GemmKernel, Transpose};
        let t = |c: char| if c == 'T' { Transpose::Yes } else { Transpose::No };
        let kernel = if kernel == "Auto" { Ok(GemmKernel::Auto) } else { kernel.parse::<GemmKernel>() };
        let run = kernel.map_err(|e| e.to_string()).and_then(|kernel| {
            let ops: Vec<char> = op.chars().collect();
            gpu::run(&gpu::Opts { kernel, m, n, k, trans: (t(ops[0]), t(ops[1])), precision })
        });
        if let Err(e) = run {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (kernel, m, n, k, precision);
        eprintln!("gemm_once runs a CUDA kernel: build with --features cuda");
        std::process::exit(1);
    }
}
