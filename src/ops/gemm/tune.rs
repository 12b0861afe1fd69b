//! Measured kernel choice for [`GemmKernel::Auto`] on CUDA, as `torch.backends.cudnn.benchmark`
//! does for convolutions: opt-in with `CudaBackend::set_gemm_tuning(GemmTuning::Measure)`.
//!
//! The fixed rule ([`super::auto_kernel`]) was tuned on one GPU; which kernel wins on a shape
//! depends on the GPU (SM count, shared memory, clocks) as much as on the shape. With
//! [`GemmTuning::Measure`], the first `Auto` call of each [`GemmTuneKey`] times every kernel of its
//! precision ([`tune_candidates`]) on the call's own operands into a scratch output, keeps the
//! fastest for every later call, and records the times ([`GemmTuneRecord`]). The precision never
//! changes: exact f32 stays on the f32 SIMT kernels, TF32 and bf16/f16 on tensor cores.
//!
//! Costs and limits:
//! - the first call of a key takes a few times longer than the kernels it times (each candidate
//!   runs 1 + [`TUNE_SAMPLES`] times, fewer when it is clearly slower);
//! - the kernels differ in how they sum along k, so the bits of a result can depend on which one
//!   was measured fastest: two processes may round differently (within the documented error
//!   bounds). Keep [`GemmTuning::Heuristic`] (the default) where runs must match bit for bit;
//! - a call made while the stream is being captured into a CUDA graph can't time anything: it
//!   uses a choice measured earlier for its key, else the fixed rule (not recorded). Run one step
//!   eagerly before capturing, as the trainers do.

use std::collections::HashMap;

use super::{GemmKernel, GemmMath};
use crate::backend::DType;
use crate::error::{Error, Result};

/// How [`GemmKernel::Auto`] picks a CUDA kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GemmTuning {
    /// The fixed rule of shape and SM count ([`super::auto_kernel`]): reproducible bit for bit.
    #[default]
    Heuristic,
    /// Time the candidates on the first call of each shape and keep the fastest (module docs).
    Measure,
}

impl std::str::FromStr for GemmTuning {
    type Err = Error;

    /// `heuristic` or `measure` (command-line flags).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "heuristic" => Ok(Self::Heuristic),
            "measure" => Ok(Self::Measure),
            _ => Err(Error::invalid("GemmTuning", format!("{s:?}: expected heuristic or measure"))),
        }
    }
}

/// What a measured choice is kept for: everything that decides which kernels can run and how
/// fast (the epilogue, α and β cost the same on every kernel and are left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmTuneKey {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub lda: usize,
    pub ldb: usize,
    /// Input type (f32, bf16 or f16).
    pub dtype: DType,
    /// Tensor cores (TF32 for f32 inputs; always for bf16/f16).
    pub tensor_cores: bool,
}

/// The outcome of one measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmTuneRecord {
    pub key: GemmTuneKey,
    /// The fastest candidate: what `Auto` runs for this key from now on.
    pub chosen: GemmKernel,
    /// Every candidate with its best time in seconds per call, or `None` when it can't run this
    /// call (launch limits, alignment, a kernel not built for this GPU).
    pub times: Vec<(GemmKernel, Option<f64>)>,
}

/// Timed calls per candidate after the first (which also warms it up), for the candidates within
/// [`TUNE_KEEP`] of the fastest first call.
pub const TUNE_SAMPLES: usize = 3;

/// A candidate whose first timed call is more than this factor slower than the fastest first call
/// is not timed again (it would have to be 2× off to win).
pub const TUNE_KEEP: f64 = 2.0;

/// The kernels `Auto` chooses among for an input type and math, fixed rule's kinds only: exact f32
/// takes every SIMT version, TF32 the `mma.sync` versions, bf16/f16 those and, where `wgmma` (a
/// compute capability 9.0 GPU), the Hopper ones.
pub fn tune_candidates(dtype: DType, math: GemmMath, wgmma: bool) -> Vec<GemmKernel> {
    match (dtype, math) {
        (DType::F32, GemmMath::F32) => GemmKernel::SIMT.to_vec(),
        (DType::F32, GemmMath::Tf32) => GemmKernel::TENSOR_CORE.to_vec(),
        _ if wgmma => GemmKernel::TENSOR_CORE.into_iter().chain(GemmKernel::WGMMA).collect(),
        _ => GemmKernel::TENSOR_CORE.to_vec(),
    }
}

/// Whether a launcher's error means "this kernel can't take this call" (a limit, an alignment, a
/// kernel missing on this GPU), so tuning skips the candidate, rather than a failure to report.
pub fn is_ineligible(e: &Error) -> bool {
    matches!(e, Error::InvalidArgument { .. } | Error::KernelsNotBuilt(_))
}

/// Picks the fastest of `candidates`. `time(kernel)` runs one call and returns its seconds, or
/// `Ok(None)` when the kernel can't take the call. Every candidate is timed once (after its own
/// warm-up, which `time` does on the first call); those within [`TUNE_KEEP`] of the fastest get
/// [`TUNE_SAMPLES`] more calls, and each keeps its minimum. Ties go to the earlier candidate.
/// `Ok(None)` when no candidate can run.
pub fn measure_fastest(
    key: GemmTuneKey,
    candidates: &[GemmKernel],
    mut time: impl FnMut(GemmKernel) -> Result<Option<f64>>,
) -> Result<Option<GemmTuneRecord>> {
    let mut times: Vec<(GemmKernel, Option<f64>)> = Vec::with_capacity(candidates.len());
    for &kernel in candidates {
        times.push((kernel, time(kernel)?));
    }
    let Some(first_best) = times.iter().filter_map(|t| t.1).min_by(f64::total_cmp) else {
        return Ok(None);
    };
    for (kernel, best) in times.iter_mut() {
        let Some(t0) = *best else { continue };
        if t0 > TUNE_KEEP * first_best {
            continue;
        }
        for _ in 0..TUNE_SAMPLES {
            // A kernel that ran once runs again; `None` now would be a launcher bug, so keep t0.
            if let Some(t) = time(*kernel)? {
                *best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
    }
    let mut chosen = None;
    for &(kernel, t) in &times {
        if let Some(t) = t {
            if chosen.is_none_or(|(_, bt)| t < bt) {
                chosen = Some((kernel, t));
            }
        }
    }
    Ok(chosen.map(|(chosen, _)| GemmTuneRecord { key, chosen, times }))
}

/// The per-backend state: the mode and the choices measured so far (held by the CUDA backend).
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) struct TuneState {
    pub mode: GemmTuning,
    pub records: HashMap<GemmTuneKey, GemmTuneRecord>,
    /// Insertion order of `records`, for reports.
    pub order: Vec<GemmTuneKey>,
}

#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
impl TuneState {
    pub fn insert(&mut self, rec: GemmTuneRecord) {
        if self.records.insert(rec.key, rec.clone()).is_none() {
            self.order.push(rec.key);
        }
    }

    pub fn report(&self) -> Vec<GemmTuneRecord> {
        self.order.iter().filter_map(|k| self.records.get(k).cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> GemmTuneKey {
        GemmTuneKey {
            m: 128,
            n: 400,
            k: 784,
            trans_a: false,
            trans_b: true,
            lda: 784,
            ldb: 784,
            dtype: DType::F32,
            tensor_cores: false,
        }
    }

    #[test]
    fn parses_from_flags() {
        assert_eq!("measure".parse::<GemmTuning>().unwrap(), GemmTuning::Measure);
        assert_eq!("heuristic".parse::<GemmTuning>().unwrap(), GemmTuning::Heuristic);
        assert!("fast".parse::<GemmTuning>().unwrap_err().to_string().contains("heuristic or measure"));
    }

    #[test]
    fn candidates_keep_the_precision() {
        assert_eq!(tune_candidates(DType::F32, GemmMath::F32, true), GemmKernel::SIMT.to_vec());
        let tf32 = tune_candidates(DType::F32, GemmMath::Tf32, true);
        assert!(tf32.iter().all(|k| k.is_tensor_core() && !k.is_wgmma()), "TF32 has no wgmma kernel: {tf32:?}");
        let bf16 = tune_candidates(DType::BF16, GemmMath::F32, true);
        assert!(bf16.contains(&GemmKernel::Wgmma256) && bf16.contains(&GemmKernel::TensorCore128));
        assert!(!tune_candidates(DType::F16, GemmMath::F32, false).iter().any(|k| k.is_wgmma()));
        assert!(!tune_candidates(DType::BF16, GemmMath::F32, true).contains(&GemmKernel::Auto));
    }

    /// The kernels a fake timer was called with, in order.
    type CallLog = std::rc::Rc<std::cell::RefCell<Vec<GemmKernel>>>;

    /// A fake timer: each kernel has a list of times it returns in turn (the last one repeats).
    fn timer(plan: Vec<(GemmKernel, Vec<Option<f64>>)>) -> (impl FnMut(GemmKernel) -> Result<Option<f64>>, CallLog) {
        let calls = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let log = calls.clone();
        let mut next: HashMap<GemmKernel, usize> = HashMap::new();
        let f = move |k: GemmKernel| {
            log.borrow_mut().push(k);
            let times = &plan.iter().find(|p| p.0 == k).expect("kernel in plan").1;
            let i = next.entry(k).or_default();
            let t = times[(*i).min(times.len() - 1)];
            *i += 1;
            Ok(t)
        };
        (f, calls)
    }

    #[test]
    fn picks_the_minimum_over_samples_and_skips_what_cannot_run() {
        use GemmKernel::*;
        let cands = [Tiled16, Simt128Warp, Simt64Warp, Simt64SplitK];
        let (f, calls) = timer(vec![
            (Tiled16, vec![Some(9e-5)]), // > 2× the best first call: timed once
            (Simt128Warp, vec![Some(3e-5), Some(2.9e-5), Some(2.8e-5)]), // best first, min 2.8e-5
            (Simt64Warp, vec![Some(4e-5), Some(2.7e-5), Some(5e-5)]), // slower first, min 2.7e-5: wins
            (Simt64SplitK, vec![None]),  // can't run
        ]);
        let rec = measure_fastest(key(), &cands, f).unwrap().unwrap();
        assert_eq!(rec.chosen, Simt64Warp);
        assert_eq!(
            rec.times,
            vec![(Tiled16, Some(9e-5)), (Simt128Warp, Some(2.8e-5)), (Simt64Warp, Some(2.7e-5)), (Simt64SplitK, None)]
        );
        let calls = calls.borrow();
        let count = |k| calls.iter().filter(|&&c| c == k).count();
        assert_eq!(count(Tiled16), 1, "pruned after its first call");
        assert_eq!(count(Simt128Warp), 1 + TUNE_SAMPLES);
        assert_eq!(count(Simt64Warp), 1 + TUNE_SAMPLES);
        assert_eq!(count(Simt64SplitK), 1, "ineligible: never retried");
    }

    #[test]
    fn ties_go_to_the_earlier_candidate_and_nothing_runnable_is_none() {
        use GemmKernel::*;
        let (f, _) = timer(vec![(Simt64Warp, vec![Some(1e-5)]), (Simt128Warp, vec![Some(1e-5)])]);
        let rec = measure_fastest(key(), &[Simt64Warp, Simt128Warp], f).unwrap().unwrap();
        assert_eq!(rec.chosen, Simt64Warp);
        let (f, _) = timer(vec![(Wgmma256, vec![None])]);
        assert_eq!(measure_fastest(key(), &[Wgmma256], f).unwrap(), None);
    }

    #[test]
    fn errors_other_than_ineligibility_stop_the_measurement() {
        let failing = |_k: GemmKernel| -> Result<Option<f64>> {
            Err(Error::Cuda { context: "event", msg: "illegal address".into() })
        };
        assert!(measure_fastest(key(), &[GemmKernel::Simt64Warp], failing).is_err());
        assert!(is_ineligible(&Error::invalid("gemm", "too much shared memory")));
        assert!(!is_ineligible(&Error::Launch { kernel: "gemm", msg: "launch failed".into() }));
    }

    #[test]
    fn state_reports_in_measurement_order_once_per_key() {
        let mut st = TuneState::default();
        let a = GemmTuneRecord { key: key(), chosen: GemmKernel::Simt64Warp, times: vec![] };
        let b = GemmTuneRecord { key: GemmTuneKey { m: 1, ..key() }, chosen: GemmKernel::Tiled16, times: vec![] };
        st.insert(b.clone());
        st.insert(a.clone());
        st.insert(a.clone());
        assert_eq!(st.report(), vec![b, a]);
    }
}
