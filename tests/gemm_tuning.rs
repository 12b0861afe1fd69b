//! `GemmKernel::Auto` with measured choices (`GemmTuning::Measure`). A test binary of its own: the
//! tuning mode belongs to the process-wide CUDA backend, and the other GEMM tests expect the fixed
//! rule.

mod common;

use common::*;
use latentkit::backend::Backend;
use latentkit::ops::gemm::tune::tune_candidates;
use latentkit::ops::gemm::{
    auto_kernel, cpu::gemm_ref, f32_error_bound, gemm, gemm_half_with, gemm_with, tf32_error_bound, AutoFamily,
    GemmEpilogue, GemmKernel, GemmMath, GemmSpec, GemmTuneRecord, GemmTuning, Transpose,
};
use latentkit::ops::Activation;
use latentkit::{DType, Tensor};

/// A record is consistent: the candidates are the checked versions of the precision plus the fixed
/// rule's kernel, the choice is the fastest that ran, and the fixed rule's kernel ran.
fn check_record(rec: &GemmTuneRecord, candidates: &[GemmKernel], fixed: GemmKernel) {
    let tried: Vec<GemmKernel> = rec.times.iter().map(|t| t.0).collect();
    assert_eq!(tried, candidates, "{rec:?}");
    assert!(tried.iter().all(|&k| GemmKernel::CHECKED_ON_GPU.contains(&k) || k == fixed), "checked versions only");
    let best = rec.times.iter().filter_map(|t| t.1).fold(f64::INFINITY, f64::min);
    let chosen = rec.times.iter().find(|t| t.0 == rec.chosen).and_then(|t| t.1);
    assert_eq!(chosen, Some(best), "the choice is the fastest: {rec:?}");
    assert!(best > 0.0 && best < 1.0, "{rec:?}");
    assert!(rec.times.iter().any(|t| t.0 == fixed && t.1.is_some()), "the fixed rule's {fixed:?} ran: {rec:?}");
}

/// The tests of this binary change the one backend's mode: one at a time.
static MODE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn measured_auto_matches_reference_and_keeps_its_choice() {
    const NAME: &str = "measured_auto_matches_reference_and_keeps_its_choice";
    let Some(b) = cuda(NAME) else { return };
    let _one = MODE.lock().unwrap_or_else(|p| p.into_inner());
    b.set_gemm_tuning(GemmTuning::Measure);
    b.clear_gemm_tuning();
    let mut r = rng(90);
    // Training products and awkward sizes; f32 exact and TF32; β = 0 with a bias + ReLU epilogue
    // and β = 1 (both must survive the measurement, which writes to a scratch output).
    let cases = [
        (Transpose::No, Transpose::Yes, 128, 400, 784, GemmMath::F32, 0.0f32),
        (Transpose::Yes, Transpose::No, 400, 784, 128, GemmMath::F32, 1.0),
        (Transpose::No, Transpose::No, 33, 7, 129, GemmMath::F32, 0.0),
        (Transpose::Yes, Transpose::Yes, 1000, 20, 3, GemmMath::F32, 1.0),
        (Transpose::No, Transpose::Yes, 257, 300, 700, GemmMath::Tf32, 0.0),
    ];
    for (i, &(ta, tb, m, n, k, math, beta)) in cases.iter().enumerate() {
        let mut spec = GemmSpec::contiguous(ta, tb, m, n, k, 0.75, beta);
        spec.math = math;
        let (ar, br) = (spec.stored_a(), spec.stored_b());
        let a0 = rand_vec(&mut r, ar.0 * ar.1, -1.0, 1.0);
        let b0 = rand_vec(&mut r, br.0 * br.1, -1.0, 1.0);
        let c0 = rand_vec(&mut r, m * n, -1.0, 1.0);
        let bias0 = rand_vec(&mut r, n, -1.0, 1.0);
        let mut want = c0.clone();
        gemm_ref(&spec, &a0, &b0, &mut want).unwrap();
        let relu = beta == 0.0;
        if relu {
            for row in want.chunks_mut(n) {
                row.iter_mut().zip(&bias0).for_each(|(v, bj)| *v = (*v + bj).max(0.0));
            }
        }
        // TF32 against the unrounded inputs (tf32_error_bound); f32 at the default bound.
        let atol = match math {
            GemmMath::Tf32 => 2.0 * tf32_error_bound(k, 1.0, 1.0),
            GemmMath::F32 => f32_error_bound(k, 1.0, 1.0) + 1e-6,
        };
        let (at, bt, bias) = (tensor(&b, &[a0.len()], &a0), tensor(&b, &[b0.len()], &b0), tensor(&b, &[n], &bias0));
        // Twice: the first call measures, the second reuses the choice.
        for call in 0..2 {
            let mut c = if relu { poisoned(&b, &[m * n]) } else { tensor(&b, &[m * n], &c0) };
            let epi = if relu {
                GemmEpilogue::BiasAct { bias: Some(bias.buf()), act: Activation::Relu }
            } else {
                GemmEpilogue::None
            };
            gemm_with(&b, &spec, at.buf(), bt.buf(), out_buf(&mut c), &epi).unwrap();
            assert_close(&format!("case {i} call {call}"), &host(&b, &c), &want, atol, 1e-5);
        }
        let report = b.gemm_tuning_report();
        assert_eq!(report.len(), i + 1, "one record per shape, made on the first call");
        let rec = &report[i];
        assert_eq!((rec.key.m, rec.key.n, rec.key.k, rec.key.tensor_cores), (m, n, k, math == GemmMath::Tf32));
        let fixed = auto_kernel(m, n, k, AutoFamily::new(math == GemmMath::Tf32, false), b.sm_count());
        check_record(rec, &tune_candidates(DType::F32, math, b.supports_wgmma(), false, fixed), fixed);
        eprintln!("{NAME}: {m}×{n}×{k} {math:?}: {:?} of {:?}", rec.chosen, rec.times);
    }

    // bf16 (on Hopper the wgmma kernels are candidates too, and the fixed rule's family: the
    // operands are fresh allocations with rows of 512 elements, which TMA takes).
    let spec = GemmSpec::contiguous(Transpose::No, Transpose::Yes, 256, 264, 512, 1.0, 0.0);
    let a0 = rand_vec(&mut r, 256 * 512, -1.0, 1.0);
    let b0 = rand_vec(&mut r, 264 * 512, -1.0, 1.0);
    let (ah, bh): (Vec<half::bf16>, Vec<half::bf16>) =
        (a0.iter().map(|&v| half::bf16::from_f32(v)).collect(), b0.iter().map(|&v| half::bf16::from_f32(v)).collect());
    let seen = |v: &[half::bf16]| v.iter().map(|x| x.to_f32()).collect::<Vec<f32>>();
    let mut want = vec![0.0; 256 * 264];
    gemm_ref(&spec, &seen(&ah), &seen(&bh), &mut want).unwrap();
    let (at, bt) =
        (Tensor::from_slice(&b, &[ah.len()], &ah).unwrap(), Tensor::from_slice(&b, &[bh.len()], &bh).unwrap());
    let mut c = poisoned(&b, &[256 * 264]);
    gemm_half_with(&b, &spec, at.buf(), bt.buf(), out_buf(&mut c), &GemmEpilogue::None).unwrap();
    // The products of bf16 values are exact in f32: f32's bound, ×4 for the tensor cores' order.
    assert_close("bf16", &host(&b, &c), &want, 4.0 * f32_error_bound(512, 1.0, 1.0) + 1e-6, 1e-5);
    let rec = b.gemm_tuning_report().pop().unwrap();
    assert_eq!(rec.key.dtype, DType::BF16);
    let bf16_fixed = auto_kernel(256, 264, 512, AutoFamily::new(true, b.supports_wgmma()), b.sm_count());
    check_record(&rec, &tune_candidates(DType::BF16, GemmMath::F32, b.supports_wgmma(), false, bf16_fixed), bf16_fixed);
    eprintln!("{NAME}: bf16 256×264×512: {:?} of {:?}", rec.chosen, rec.times);

    // Inside a graph capture nothing is timed: a new shape runs the fixed rule's kernel, unrecorded.
    let before = b.gemm_tuning_report().len();
    let spec = GemmSpec::contiguous(Transpose::No, Transpose::No, 65, 100, 47, 1.0, 0.0);
    let a0 = rand_vec(&mut r, 65 * 47, -1.0, 1.0);
    let b0 = rand_vec(&mut r, 47 * 100, -1.0, 1.0);
    let mut want_65x100 = vec![0.0; 6500];
    gemm_ref(&spec, &a0, &b0, &mut want_65x100).unwrap();
    let (at, bt) = (tensor(&b, &[a0.len()], &a0), tensor(&b, &[b0.len()], &b0));
    let mut c = poisoned(&b, &[6500]);
    let mut step = || gemm(&b, &spec, at.buf(), bt.buf(), out_buf(&mut c));
    // SAFETY: the step only queues one GEMM on buffers that outlive the graph.
    let graph = unsafe { b.capture_graph(&mut step) }.unwrap().expect("CUDA captures graphs");
    graph.replay().unwrap();
    drop(graph);
    assert_close("captured", &host(&b, &c), &want_65x100, f32_error_bound(47, 1.0, 1.0) + 1e-6, 1e-5);
    assert_eq!(b.gemm_tuning_report().len(), before, "no measurement inside a capture");

    // Saved and loaded into a fresh state, the choices are used as they are (no new measurement).
    let file = std::env::temp_dir().join(format!("latentkit-gemm-tuning-{}.tsv", std::process::id()));
    let saved: Vec<_> = b.gemm_tuning_report().iter().map(|r| (r.key, r.chosen)).collect();
    b.save_gemm_tuning(&file).unwrap();
    b.clear_gemm_tuning();
    assert_eq!(b.load_gemm_tuning(&file).unwrap(), saved.len());
    let loaded: Vec<_> = b.gemm_tuning_report().iter().map(|r| (r.key, r.chosen)).collect();
    assert_eq!(loaded, saved);
    let first = saved[0].0;
    let spec = GemmSpec::contiguous(Transpose::No, Transpose::Yes, first.m, first.n, first.k, 1.0, 0.0);
    let (a0, b0) = (rand_vec(&mut r, first.m * first.k, -1.0, 1.0), rand_vec(&mut r, first.n * first.k, -1.0, 1.0));
    let mut want = vec![0.0; first.m * first.n];
    gemm_ref(&spec, &a0, &b0, &mut want).unwrap();
    let mut c = poisoned(&b, &[first.m * first.n]);
    gemm(&b, &spec, tensor(&b, &[a0.len()], &a0).buf(), tensor(&b, &[b0.len()], &b0).buf(), out_buf(&mut c)).unwrap();
    assert_close("loaded choice", &host(&b, &c), &want, f32_error_bound(first.k, 1.0, 1.0) + 1e-6, 1e-5);
    let rec = &b.gemm_tuning_report()[0];
    assert!(rec.times.is_empty(), "a loaded choice is not measured again: {rec:?}");
    // Choices of another GPU are refused, naming the file.
    let text = std::fs::read_to_string(&file).unwrap();
    let gpu_line = text.lines().find(|l| l.starts_with("gpu\t")).unwrap().to_string();
    std::fs::write(&file, text.replace(&gpu_line, "gpu\tSome Other GPU (sm_80, 108 SMs)")).unwrap();
    let err = b.load_gemm_tuning(&file).unwrap_err().to_string();
    assert!(err.contains("Some Other GPU") && err.contains("latentkit-gemm-tuning"), "{err}");
    let _ = std::fs::remove_file(&file);

    // Back to the fixed rule: measured choices are kept but not used.
    b.set_gemm_tuning(GemmTuning::Heuristic);
    assert_eq!(b.gemm_tuning(), GemmTuning::Heuristic);
    let spec = GemmSpec::contiguous(Transpose::No, Transpose::No, 65, 100, 47, 1.0, 0.0);
    let mut c = poisoned(&b, &[6500]);
    gemm(&b, &spec, at.buf(), bt.buf(), out_buf(&mut c)).unwrap();
    assert_close("heuristic", &host(&b, &c), &want_65x100, f32_error_bound(47, 1.0, 1.0) + 1e-6, 1e-5);
    assert_eq!(b.gemm_tuning_report().len(), before);

    // A loaded choice that can't take its shape (split-k on an output past the workspace) gives
    // way to the fixed rule's kernel instead of failing every call of that shape.
    let (m, n) = (2100, 2100);
    assert!(m * n > latentkit::ops::gemm::SPLITK_WORKSPACE_FLOATS);
    let header = text.lines().next().unwrap();
    std::fs::write(&file, format!("{header}\n{gpu_line}\n{m}\t{n}\t1\tN\tN\t1\t{n}\tf32\t0\tSimt64SplitK\n")).unwrap();
    b.set_gemm_tuning(GemmTuning::Measure);
    b.clear_gemm_tuning();
    assert_eq!(b.load_gemm_tuning(&file).unwrap(), 1);
    let spec = GemmSpec::contiguous(Transpose::No, Transpose::No, m, n, 1, 1.0, 0.0);
    let (a0, b0) = (rand_vec(&mut r, m, -1.0, 1.0), rand_vec(&mut r, n, -1.0, 1.0));
    let mut want = vec![0.0; m * n];
    gemm_ref(&spec, &a0, &b0, &mut want).unwrap();
    let mut c = poisoned(&b, &[m * n]);
    gemm(&b, &spec, tensor(&b, &[m], &a0).buf(), tensor(&b, &[n], &b0).buf(), out_buf(&mut c)).unwrap();
    assert_close("ineligible loaded choice", &host(&b, &c), &want, 0.0, 0.0);
    let _ = std::fs::remove_file(&file);
    b.set_gemm_tuning(GemmTuning::Heuristic);
}

/// The VAE trainer's resident mode captures its step in a CUDA graph on the first step; with
/// measured choices it first primes the step eagerly, so the graph runs measured kernels for every
/// layer's products, and training matches the fixed rule's within rounding.
#[test]
fn resident_vae_training_measures_before_its_capture() {
    use latentkit::data::Mnist;
    use latentkit::nn::VaeConfig;
    use latentkit::train::{StepMode, VaeTrainConfig, VaeTrainer};
    const NAME: &str = "resident_vae_training_measures_before_its_capture";
    let Some(b) = cuda(NAME) else { return };
    let _one = MODE.lock().unwrap_or_else(|p| p.into_inner());
    let mut data = Mnist::committed_subset().unwrap();
    data.train.truncate(1280);
    data.test.truncate(200);
    let mut losses = Vec::new();
    for mode in [GemmTuning::Heuristic, GemmTuning::Measure] {
        b.set_gemm_tuning(mode);
        b.clear_gemm_tuning();
        let mut t = VaeTrainer::new(&b, VaeConfig::default(), VaeTrainConfig::default()).unwrap();
        let rec = t.run_epoch(&b, &data.train, &data.test, StepMode::Resident, |_, _, _| {}).unwrap();
        losses.push(rec.train.loss);
        let report = b.gemm_tuning_report();
        if mode == GemmTuning::Heuristic {
            assert!(report.is_empty(), "{report:?}");
            continue;
        }
        // The step's products at batch 128 (784-400-20): Y = X·Wᵀ, dX = dY·W, dW = dYᵀ·X.
        for (m, n, k, ta, tb) in
            [(128, 400, 784, false, true), (128, 400, 20, false, false), (400, 784, 128, true, false)]
        {
            assert!(
                report.iter().any(|r| (r.key.m, r.key.n, r.key.k, r.key.trans_a, r.key.trans_b) == (m, n, k, ta, tb)),
                "{m}×{n}×{k} not measured before the capture: {report:?}"
            );
        }
        eprintln!("{NAME}: {} shapes measured", report.len());
    }
    b.set_gemm_tuning(GemmTuning::Heuristic);
    // Other kernels sum k in another order: the mean loss of 10 steps agrees closely, not bitwise.
    assert_close("epoch train loss, measured vs fixed rule", &losses[1..], &losses[..1], 0.0, 1e-3);
}
