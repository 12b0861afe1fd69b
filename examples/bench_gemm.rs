//! GEMM side by side with cuBLAS, in one process on one GPU: for each shape and precision, our
//! kernel (the one `GemmKernel::Auto` picks, then `Auto` with measured choices, whose
//! per-candidate times are printed at the end; or every version with `--all`) and cuBLAS on the
//! same operands (bf16 also on the Hopper wgmma kernels when the GPU has them and the rows are
//! 16-byte aligned), timed with CUDA events (3 warm-up calls, median of `--samples` samples, each a
//! batch of calls ≥ 2 ms), as TFLOP/s and the ratio ours / cuBLAS (> 1: faster than cuBLAS). cuBLAS
//! is timed right after each of our rows, and the row's ratio is of those two times.
//!
//! Precisions: f32 (cuBLAS SGEMM through cublasGemmEx with CUBLAS_COMPUTE_32F: no TF32), TF32
//! (ours with GemmMath::Tf32; cuBLAS CUBLAS_COMPUTE_32F_FAST_TF32) and bf16 inputs with f32
//! accumulation and an f32 C (cuBLAS GemmEx with the same types).
//! Shapes: 4096³, 8192³, and the three products of the VAE's layers (B×400×784, B×784×400,
//! B×20×400 as Y = X·Wᵀ, dX = dY·W, dW = dYᵀ·X) for B ∈ {128, 1024, 8192}. Inputs are uniform in
//! [−1, 1] (never zeros); the 4096 and 8192 operands are larger than the H100's 50 MB L2.
//!
//!     cargo run --release --features cuda --example bench_gemm -- [--samples N] [--all] [--quick]
//!         [--no-wgmma] [--shape LABEL-PART] [--precision f32,tf32,bf16] [--measure-all]
//!         [--gemm-tuning-file FILE] [--gemm-exclude VERSION,...]
//!     cargo run --release --features cuda --example bench_gemm -- --ceilings [--samples N]
//!
//! `--no-wgmma` leaves the Hopper kernels out of every row (scripts/gpu-run.sh passes it when their
//! test failed). `--quick` keeps 4096³, B = 128 and the two long-k dW products of B = 8192.
//! `--shape` keeps the shapes whose label contains the text (`4096³`, `B=1024 784→400`),
//! `--precision` the listed precisions (to profile one kernel with ncu); it fails when they match
//! nothing. The measured rows weigh the versions checked on a GPU (`GemmTuning::Measure`), or with
//! `--measure-all` every version (`MeasureAll`: after their tests passed in the same run, as
//! scripts/gpu-run.sh does).
//! `--gemm-tuning-file` loads earlier choices first (when the file exists) and saves every choice
//! at the end (tuning/README.md). `--gemm-exclude` leaves versions out of their own rows (`--all`,
//! the Hopper rows) and out of the measured rows (`CudaBackend::exclude_gemm_kernels`;
//! scripts/gpu-run.sh passes the versions whose tests failed in the same call). Without a GPU (or
//! without the `cuda` feature) it says so and exits with status 1.
//!
//! `--list-simt` prints the names of the f32 SIMT versions, one a line, and exits (no GPU needed;
//! scripts/gpu-run.sh takes the every-version test one version at a time under racecheck);
//! `--list-versions` prints every GEMM version, one a line as `NAME<tab>FAMILY<tab>CHECKED` (simt,
//! tensor-core or hopper; checked or unchecked: whether `GemmKernel::CHECKED_ON_GPU` holds it), so
//! that gpu-run.sh can test the versions not yet checked one at a time when the gemm tests fail.
//!
//! `--ceilings` prints, instead of the table, the issue-rate ceilings of the two instructions our
//! GEMMs are built on (`latentkit::bench::peak`, kernels/peak.cu): `mma.sync` m16n8k16 bf16 with
//! f32 accumulators, and FFMA f32, each the best TFLOP/s over a few grids of SM count × 1, 2 or 4
//! blocks of 4 or 8 warps (every grid printed), its output checked against the CPU twin; then
//! cuBLAS bf16 and SGEMM at 4096³ in the same process, as fractions of those ceilings. Options
//! other than `--samples` do not apply to it.

#[cfg(feature = "cuda")]
mod gpu {
    use cudarc::cublas::sys::{
        cublasComputeType_t as Compute, cublasGemmAlgo_t, cublasOperation_t as Op, cudaDataType_t,
    };
    use cudarc::cublas::CudaBlas;
    use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};
    use latentkit::bench::median_secs;
    use latentkit::bench::peak::{peak_reference, PeakGrid, PeakInstr, PeakProbe};
    use latentkit::ops::gemm::{
        auto_kernel, gemm, gemm_half, AutoFamily, GemmKernel, GemmMath, GemmSpec, GemmTuneKey, GemmTuning, Transpose,
        SPLITK_WORKSPACE_FLOATS,
    };
    use latentkit::rng::{seeded, uniform_vec};
    use latentkit::{CudaBackend, DType, Error, Result, Tensor};

    /// A tensor's buffer for the entry points that take buffers (gemm, gemm_half and the cuBLAS
    /// calls below, which check its length themselves).
    fn out_buf(t: &mut Tensor<CudaBackend>) -> &mut CudaSlice<f32> {
        // SAFETY: the callers only write its elements through it.
        unsafe { t.buf_mut_unchecked() }
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Precision {
        F32,
        Tf32,
        Bf16,
    }

    struct Case {
        label: String,
        m: usize,
        n: usize,
        k: usize,
        ta: Transpose,
        tb: Transpose,
    }

    fn cases(quick: bool) -> Vec<Case> {
        let mut v = Vec::new();
        let sq: &[usize] = if quick { &[4096] } else { &[4096, 8192] };
        for &s in sq {
            v.push(Case { label: format!("{s}³"), m: s, n: s, k: s, ta: Transpose::No, tb: Transpose::No });
        }
        let batches: &[usize] = if quick { &[128] } else { &[128, 1024, 8192] };
        for &bsz in batches {
            for (fin, fout) in [(784, 400), (400, 784), (400, 20)] {
                // Y[B, out] = X[B, in]·W[out, in]ᵀ; dX[B, in] = dY[B, out]·W; dW[out, in] = dYᵀ·X.
                v.push(Case {
                    label: format!("Y=XWᵀ B={bsz} {fin}→{fout}"),
                    m: bsz,
                    n: fout,
                    k: fin,
                    ta: Transpose::No,
                    tb: Transpose::Yes,
                });
                v.push(Case {
                    label: format!("dX=dY·W B={bsz} {fin}→{fout}"),
                    m: bsz,
                    n: fin,
                    k: fout,
                    ta: Transpose::No,
                    tb: Transpose::No,
                });
                v.push(Case {
                    label: format!("dW=dYᵀX B={bsz} {fin}→{fout}"),
                    m: fout,
                    n: fin,
                    k: bsz,
                    ta: Transpose::Yes,
                    tb: Transpose::No,
                });
            }
        }
        if quick {
            // The long-k products that split-k (v4) is for, so `--all --quick` compares it with v3.
            for (fin, fout) in [(784, 400), (400, 20)] {
                let label = format!("dW=dYᵀX B=8192 {fin}→{fout}");
                v.push(Case { label, m: fout, n: fin, k: 8192, ta: Transpose::Yes, tb: Transpose::No });
            }
        }
        v
    }

    fn blas_err(e: cudarc::cublas::result::CublasError) -> Error {
        Error::Launch { kernel: "cublasGemmEx", msg: e.to_string() }
    }

    /// cuBLAS on the row-major problem: C[m,n] = op(A)·op(B) is the column-major Cᵀ[n,m] =
    /// op(B)ᵀ·op(A)ᵀ, where a row-major buffer is the column-major transpose of what it stores.
    #[allow(clippy::too_many_arguments)]
    fn cublas_gemm<T>(
        be: &CudaBackend,
        blas: &CudaBlas,
        spec: &GemmSpec,
        dtype: cudaDataType_t,
        compute: Compute,
        a: &CudaSlice<T>,
        b: &CudaSlice<T>,
        c: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let op = |t: Transpose| if t.is_yes() { Op::CUBLAS_OP_T } else { Op::CUBLAS_OP_N };
        let (alpha, beta) = (spec.alpha, spec.beta);
        let stream = be.stream();
        let (pa, _ga) = a.device_ptr(stream);
        let (pb, _gb) = b.device_ptr(stream);
        let (pc, _gc) = c.device_ptr_mut(stream);
        // SAFETY: the buffers hold the spec's extents (allocated from it below), the handle is
        // bound to the backend's stream, and alpha/beta are f32 as the f32 compute types require.
        unsafe {
            cudarc::cublas::result::gemm_ex(
                *blas.handle(),
                op(spec.trans_b),
                op(spec.trans_a),
                spec.n as i32,
                spec.m as i32,
                spec.k as i32,
                (&alpha) as *const f32 as *const _,
                pb as *const _,
                dtype,
                spec.ldb as i32,
                pa as *const _,
                dtype,
                spec.lda as i32,
                (&beta) as *const f32 as *const _,
                pc as *mut _,
                cudaDataType_t::CUDA_R_32F,
                spec.ldc as i32,
                compute,
                cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(blas_err)
    }

    fn tflops(m: usize, n: usize, k: usize, secs: f64) -> f64 {
        2.0 * (m * n * k) as f64 / secs * 1e-12
    }

    pub fn run(o: &super::Opts) -> Result<()> {
        let super::Opts { samples, all, quick, wgmma, .. } = *o;
        let be = CudaBackend::new(0)?;
        // cudarc panics on its first cuBLAS call when the library is missing (the CUDA emulator
        // has a driver but no cuBLAS): say so instead.
        // SAFETY: only tries to dlopen libcublas; no cuBLAS call is made.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(Error::CudaUnavailable(
                "cuBLAS (libcublas.so) could not be loaded: bench_gemm compares with it".into(),
            ));
        }
        let blas = CudaBlas::new(be.stream().clone()).map_err(blas_err)?;
        if o.ceilings {
            return ceilings(&be, &blas, samples);
        }
        if let Some(f) = &o.tuning_file {
            println!("loaded {} GEMM choices from {}", be.load_gemm_tuning_if_present(f)?, f.display());
        }
        let mut excluded = o.exclude.clone();
        if !wgmma {
            excluded.extend(GemmKernel::HOPPER);
        }
        be.exclude_gemm_kernels(&excluded);
        if !o.exclude.is_empty() {
            println!("left out (--gemm-exclude): {:?}", o.exclude);
        }
        println!(
            "device: {} (sm {:?}, {} SMs); median of {samples} samples; ratio = cuBLAS time / ours (> 1: ours faster)",
            be.name()?,
            be.compute_capability()?,
            be.sm_count()
        );
        println!(
            "| shape | m×n×k | precision | kernel | ours µs | ours TFLOP/s | cuBLAS µs | cuBLAS TFLOP/s | ratio |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let mut rows = 0usize;
        for (ci, case) in cases(quick).into_iter().enumerate() {
            let Case { label, m, n, k, ta, tb } = case;
            if o.shape.as_ref().is_some_and(|s| !label.contains(s.as_str())) {
                continue;
            }
            let spec0 = GemmSpec::contiguous(ta, tb, m, n, k, 1.0, 0.0);
            let (ar, ac) = spec0.stored_a();
            let (br, bc) = spec0.stored_b();
            let seed = 1000 + 3 * ci as u64;
            let a = Tensor::from_slice(&be, &[ar, ac], &uniform_vec(&mut seeded(seed), ar * ac, -1.0, 1.0))?;
            let b = Tensor::from_slice(&be, &[br, bc], &uniform_vec(&mut seeded(seed + 1), br * bc, -1.0, 1.0))?;
            let mut c = Tensor::<CudaBackend>::zeros(&be, &[m, n])?;
            let a16 = Tensor::from_slice(&be, &[ar, ac], &to_bf16(&a.to_vec(&be)?))?;
            let b16 = Tensor::from_slice(&be, &[br, bc], &to_bf16(&b.to_vec(&be)?))?;
            for precision in [Precision::F32, Precision::Tf32, Precision::Bf16] {
                let name = format!("{precision:?}").to_lowercase();
                if o.precisions.as_ref().is_some_and(|p| !p.contains(&name)) {
                    continue;
                }
                let tc = precision != Precision::F32;
                // The Hopper kernels (bf16 only here) load with TMA: rows must be 16-byte aligned.
                let aligned = spec0.lda % 8 == 0 && spec0.ldb % 8 == 0;
                let hopper = wgmma && precision == Precision::Bf16 && be.supports_wgmma() && aligned;
                let auto = auto_kernel(m, n, k, AutoFamily::new(tc, hopper), be.sm_count());
                // The split-k workspace holds SPLITK_WORKSPACE_FLOATS partial sums.
                let fits = |k: &GemmKernel| !k.is_split_k() || m * n <= SPLITK_WORKSPACE_FLOATS;
                let mut kernels: Vec<GemmKernel> = match (all, tc) {
                    (false, _) => vec![auto],
                    (true, false) => GemmKernel::SIMT.into_iter().filter(fits).collect(),
                    // (The half-only versions have no TF32 form.)
                    (true, true) => GemmKernel::TENSOR_CORE
                        .into_iter()
                        .filter(|k| fits(k) && (precision == Precision::Bf16 || !k.half_only()))
                        .collect(),
                };
                if hopper {
                    kernels.extend(GemmKernel::HOPPER.into_iter().filter(|&k| k != auto));
                }
                // (The Auto row's kernel stays: a version the fixed rule picks was checked on a GPU.)
                kernels.retain(|k| *k == auto || !o.exclude.contains(k));
                let (dtype, compute) = match precision {
                    Precision::F32 => (cudaDataType_t::CUDA_R_32F, Compute::CUBLAS_COMPUTE_32F),
                    Precision::Tf32 => (cudaDataType_t::CUDA_R_32F, Compute::CUBLAS_COMPUTE_32F_FAST_TF32),
                    Precision::Bf16 => (cudaDataType_t::CUDA_R_16BF, Compute::CUBLAS_COMPUTE_32F),
                };
                // cuBLAS is timed again right after each of our rows, so that a ratio compares two
                // adjacent measurements: the card's clock drifts over a long sequence (on an H100,
                // 2026-11-27, one kernel timed 616.5 and 670.0 TFLOP/s in one process).
                let time_blas = |c: &mut Tensor<CudaBackend>| {
                    median_secs(&be, samples, || match precision {
                        Precision::Bf16 => {
                            cublas_gemm(&be, &blas, &spec0, dtype, compute, a16.buf(), b16.buf(), out_buf(c))
                        }
                        _ => cublas_gemm(&be, &blas, &spec0, dtype, compute, a.buf(), b.buf(), out_buf(c)),
                    })
                };
                // Without --all, also `Auto` with measured choices (GemmTuning::Measure, or with
                // --measure-all MeasureAll), among the versions not excluded (run()).
                let measured = !all;
                let tuning = if o.measure_all { GemmTuning::MeasureAll } else { GemmTuning::Measure };
                let runs = kernels.into_iter().map(|k| (k, false)).chain(measured.then_some((GemmKernel::Auto, true)));
                for (kernel, tuned) in runs {
                    let mut spec = spec0;
                    spec.kernel = kernel;
                    spec.math = if precision == Precision::Tf32 { GemmMath::Tf32 } else { GemmMath::F32 };
                    be.set_gemm_tuning(if tuned { tuning } else { GemmTuning::Heuristic });
                    // (With Measure, the first warm-up call measures the candidates.)
                    let t = median_secs(&be, samples, || match precision {
                        Precision::Bf16 => gemm_half(&be, &spec, a16.buf(), b16.buf(), out_buf(&mut c)),
                        _ => gemm(&be, &spec, a.buf(), b.buf(), out_buf(&mut c)),
                    })?;
                    be.set_gemm_tuning(GemmTuning::Heuristic);
                    let t_blas = time_blas(&mut c)?;
                    rows += 1;
                    let chosen = if tuned {
                        let key = GemmTuneKey {
                            m,
                            n,
                            k,
                            trans_a: ta.is_yes(),
                            trans_b: tb.is_yes(),
                            lda: spec0.lda,
                            ldb: spec0.ldb,
                            dtype: if precision == Precision::Bf16 { DType::BF16 } else { DType::F32 },
                            tensor_cores: tc,
                        };
                        match be.gemm_tuning_record(&key) {
                            Some(r) if r.times.is_empty() => format!("{:?} (loaded)", r.chosen),
                            Some(r) => format!("{:?} ({tuning:?})", r.chosen),
                            None => format!("{auto:?} (fixed rule: nothing measured)"),
                        }
                    } else if kernel == auto {
                        format!("{kernel:?} (Auto)")
                    } else {
                        format!("{kernel:?}")
                    };
                    println!(
                        "| {label} | {m}×{n}×{k} | {precision:?} | {chosen} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} |",
                        t * 1e6,
                        tflops(m, n, k, t),
                        t_blas * 1e6,
                        tflops(m, n, k, t_blas),
                        t_blas / t
                    );
                }
            }
        }
        print_tuning(&be);
        o.tuning_file.as_ref().map_or(Ok(()), |f| be.save_gemm_tuning(f))?;
        if rows == 0 {
            return Err(Error::InvalidArgument {
                op: "bench_gemm",
                msg: "no shape and precision matched --shape / --precision".into(),
            });
        }
        Ok(())
    }

    /// `--ceilings`: each probe on every grid of GRIDS (printed), its best TFLOP/s as the ceiling;
    /// then cuBLAS at 4096³ as a fraction of it.
    fn ceilings(be: &CudaBackend, blas: &CudaBlas, samples: usize) -> Result<()> {
        // (blocks per SM, warps per block): 4 to 32 warps an SM. The mma probe's 123 registers a
        // thread (ptxas, sm_90) leave room for 16 resident warps: its 32-warp grid takes two waves.
        const GRIDS: [(usize, usize); 6] = [(1, 4), (1, 8), (2, 4), (2, 8), (4, 4), (4, 8)];
        let sms = be.sm_count();
        println!(
            "device: {} (sm {:?}, {sms} SMs); median of {samples} samples; CUDA events",
            be.name()?,
            be.compute_capability()?
        );
        let mut best = Vec::new();
        // Iterations: a launch of a few milliseconds at 16 warps an SM, so that the one-off loads
        // and stores are a fraction of a percent of it.
        for (instr, iters, line) in
            [(PeakInstr::MmaBf16, 16_384, "mma.sync bf16 m16n8k16 f32-acc"), (PeakInstr::Ffma, 65_536, "FFMA f32")]
        {
            // Uniform in [−1, 1] as in the GEMM rows (the tensor cores' power, and so the clock,
            // depends on the operands' bits); FFMA's m near 1 keeps the chains finite.
            let mut input = uniform_vec(&mut seeded(7), instr.set_len(), -1.0, 1.0);
            if instr == PeakInstr::Ffma {
                input[0] = 0.999;
            }
            let mut top: Option<(f64, PeakGrid)> = None;
            for (per_sm, warps_per_block) in GRIDS {
                let grid = PeakGrid { blocks: sms * per_sm, warps_per_block, iters };
                let mut probe = PeakProbe::new(be, instr, grid, &input)?;
                let t = median_secs(be, samples, || probe.launch())?;
                check_probe(instr, grid, &input, &probe.output()?)?;
                let tflops = probe.flop() / t * 1e-12;
                println!(
                    "  {line}: {per_sm} block(s)/SM × {warps_per_block} warps ({} blocks), {iters} iterations: {:.3} ms, {tflops:.1} TFLOP/s",
                    grid.blocks,
                    t * 1e3
                );
                if top.is_none_or(|(b, _)| tflops > b) {
                    top = Some((tflops, grid));
                }
            }
            let (tflops, grid) = top.expect("GRIDS is not empty");
            println!("ceiling: {line}  {tflops:.1} TFLOP/s  ({} blocks × {} warps)", grid.blocks, grid.warps_per_block);
            best.push(tflops);
        }
        // cuBLAS at 4096³ (as in the table: uniform operands, C = A·B, f32 C).
        let s = 4096;
        let spec = GemmSpec::contiguous(Transpose::No, Transpose::No, s, s, s, 1.0, 0.0);
        let a = Tensor::from_slice(be, &[s, s], &uniform_vec(&mut seeded(1000), s * s, -1.0, 1.0))?;
        let b = Tensor::from_slice(be, &[s, s], &uniform_vec(&mut seeded(1001), s * s, -1.0, 1.0))?;
        let a16 = Tensor::from_slice(be, &[s, s], &to_bf16(&a.to_vec(be)?))?;
        let b16 = Tensor::from_slice(be, &[s, s], &to_bf16(&b.to_vec(be)?))?;
        let mut c = Tensor::<CudaBackend>::zeros(be, &[s, s])?;
        let (f32_t, bf16_t) = (cudaDataType_t::CUDA_R_32F, cudaDataType_t::CUDA_R_16BF);
        let compute = Compute::CUBLAS_COMPUTE_32F;
        let t_bf16 = median_secs(be, samples, || {
            cublas_gemm(be, blas, &spec, bf16_t, compute, a16.buf(), b16.buf(), out_buf(&mut c))
        })?;
        let t_f32 = median_secs(be, samples, || {
            cublas_gemm(be, blas, &spec, f32_t, compute, a.buf(), b.buf(), out_buf(&mut c))
        })?;
        for (what, t, ceiling, of) in
            [("bf16 GemmEx", t_bf16, best[0], "mma.sync"), ("SGEMM (no TF32)", t_f32, best[1], "FFMA")]
        {
            let tf = tflops(s, s, s, t);
            println!("cuBLAS {what} 4096³: {tf:.1} TFLOP/s = {:.2} of the {of} ceiling", tf / ceiling);
        }
        Ok(())
    }

    /// A probe's output against its CPU twin, so that a ceiling is never the speed of a kernel that
    /// skipped work: within 1% of the largest |value|. (The tensor cores round a tile's sum and the
    /// accumulation their own way, not as the twin does: at most an ulp of the accumulator per
    /// iteration, 16,384·2⁻²³ ≈ 0.2% of it. A missed iteration or a misplaced fragment is off by
    /// far more.)
    fn check_probe(instr: PeakInstr, grid: PeakGrid, input: &[f32], got: &[f32]) -> Result<()> {
        let want = peak_reference(instr, grid, input)?;
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
        if got.iter().any(|g| !g.is_finite()) || worst > 1e-2 * scale {
            return Err(Error::InvalidArgument {
                op: "bench_gemm --ceilings",
                msg: format!(
                    "{instr:?} probe output differs from its CPU twin by {worst:e} (largest |value| {scale:e})"
                ),
            });
        }
        Ok(())
    }

    /// Every choice behind the measured rows: each candidate's best time on the shape (none for a
    /// choice loaded from a tuning file).
    fn print_tuning(be: &CudaBackend) {
        let report = be.gemm_tuning_report();
        if report.is_empty() {
            return;
        }
        println!("\nMeasured choices: every candidate's best µs per call on the shape");
        println!("| m×n×k | op | input | tensor cores | chosen | candidates (µs; – could not run) |");
        println!("|---|---|---|---|---|---|");
        for r in report {
            let key = r.key;
            let op = |t: bool| if t { "T" } else { "N" };
            let times: Vec<String> = r
                .times
                .iter()
                .map(|(k, t)| format!("{k:?} {}", t.map_or("–".to_string(), |t| format!("{:.1}", t * 1e6))))
                .collect();
            println!(
                "| {}×{}×{} | {}{} | {:?} | {} | {:?} | {} |",
                key.m,
                key.n,
                key.k,
                op(key.trans_a),
                op(key.trans_b),
                key.dtype,
                key.tensor_cores,
                r.chosen,
                times.join(", ")
            );
        }
    }

    fn to_bf16(v: &[f32]) -> Vec<half::bf16> {
        v.iter().map(|&x| half::bf16::from_f32(x)).collect()
    }
}

/// Command-line options.
struct Opts {
    samples: usize,
    all: bool,
    quick: bool,
    wgmma: bool,
    /// `--shape`: only the shapes whose label contains this (e.g. "4096³", "B=1024 784→400").
    shape: Option<String>,
    /// `--precision`: only these precisions (f32, tf32, bf16; comma-separated).
    precisions: Option<Vec<String>>,
    /// `--measure-all`: the measured rows weigh every version (GemmTuning::MeasureAll), not only
    /// those checked on a GPU.
    measure_all: bool,
    /// `--gemm-tuning-file`: choices loaded first (when it exists) and every choice saved at the end.
    tuning_file: Option<std::path::PathBuf>,
    /// `--gemm-exclude`: versions left out of their own rows and of the measured rows.
    exclude: Vec<latentkit::ops::gemm::GemmKernel>,
    /// `--ceilings`: the instruction probes and cuBLAS at 4096³ instead of the table.
    ceilings: bool,
}

fn main() {
    let mut o = Opts {
        samples: 20,
        all: false,
        quick: false,
        wgmma: true,
        shape: None,
        precisions: None,
        measure_all: false,
        tuning_file: None,
        exclude: Vec::new(),
        ceilings: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--samples" => match args.next().and_then(|v| v.parse().ok()) {
                Some(s) => o.samples = s,
                None => {
                    eprintln!("error: --samples needs a number");
                    std::process::exit(2);
                }
            },
            "--all" => o.all = true,
            "--quick" => o.quick = true,
            "--no-wgmma" => o.wgmma = false,
            "--measure-all" => o.measure_all = true,
            "--ceilings" => o.ceilings = true,
            "--list-simt" => {
                for k in latentkit::ops::gemm::GemmKernel::SIMT {
                    println!("{k:?}");
                }
                return;
            }
            "--list-versions" => {
                use latentkit::ops::gemm::GemmKernel;
                let families = [("simt", &GemmKernel::SIMT[..]), ("tensor-core", &GemmKernel::TENSOR_CORE[..])];
                for (family, kernels) in families.into_iter().chain([("hopper", &GemmKernel::HOPPER[..])]) {
                    for k in kernels {
                        let checked = if GemmKernel::CHECKED_ON_GPU.contains(k) { "checked" } else { "unchecked" };
                        println!("{k:?}\t{family}\t{checked}");
                    }
                }
                return;
            }
            "--shape" | "--precision" | "--gemm-tuning-file" | "--gemm-exclude" => {
                let Some(v) = args.next() else {
                    eprintln!("error: {a} needs a value");
                    std::process::exit(2);
                };
                match a.as_str() {
                    "--shape" => o.shape = Some(v),
                    "--precision" => {
                        let list: Vec<String> = v.split(',').map(|p| p.trim().to_lowercase()).collect();
                        if let Some(bad) = list.iter().find(|p| !["f32", "tf32", "bf16"].contains(&p.as_str())) {
                            eprintln!("error: --precision {bad:?}: expected f32, tf32 or bf16");
                            std::process::exit(2);
                        }
                        o.precisions = Some(list);
                    }
                    "--gemm-exclude" => match latentkit::ops::gemm::parse_kernel_list(&v) {
                        Ok(list) => o.exclude = list,
                        Err(e) => {
                            eprintln!("error: --gemm-exclude: {e}");
                            std::process::exit(2);
                        }
                    },
                    _ => o.tuning_file = Some(v.into()),
                }
            }
            other => {
                eprintln!("error: unknown option {other:?}");
                std::process::exit(2);
            }
        }
    }
    #[cfg(feature = "cuda")]
    if let Err(e) = gpu::run(&o) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (o.samples, o.all, o.quick, o.wgmma, o.shape, o.precisions, o.measure_all, o.tuning_file, o.exclude);
        let _ = o.ceilings;
        eprintln!("bench_gemm compares CUDA kernels with cuBLAS: build with --features cuda and run on a GPU");
        std::process::exit(1);
    }
}
