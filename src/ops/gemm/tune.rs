//! Measured kernel choice for [`GemmKernel::Auto`] on CUDA, as `torch.backends.cudnn.benchmark`
//! does for convolutions: opt-in with `CudaBackend::set_gemm_tuning(GemmTuning::Measure)`.
//!
//! The fixed rule ([`super::auto_kernel`]) was tuned on one GPU; which kernel wins on a shape
//! depends on the GPU (SM count, shared memory, clocks) as much as on the shape. With
//! [`GemmTuning::Measure`], the first `Auto` call of each [`GemmTuneKey`] times the kernels of its
//! precision that have passed their tests on a GPU ([`tune_candidates`]), plus the fixed rule's own
//! choice, on the call's own operands into a scratch output, keeps the fastest for every later
//! call, and records the times ([`GemmTuneRecord`]). The precision never changes: exact f32 stays
//! on the f32 SIMT kernels, TF32 and bf16/f16 on tensor cores. [`GemmTuning::MeasureAll`] also
//! weighs the versions not yet checked on a GPU (for runs right after their tests passed on this
//! machine, as scripts/gpu-run.sh does).
//!
//! How a candidate is timed: after about 3 ms of the fixed rule's kernel to warm the GPU, one
//! untimed call (a kernel that can't take the call, e.g. for alignment or shared memory, drops
//! out), then batches of calls sized to about 200 µs, each queued behind a GPU spin long enough
//! for the host to enqueue the batch (lengthened and retried when the batch started before it was
//! queued), so that the batch runs back to back and the host's launch latency is not timed (a CUDA
//! graph replay does not pay it either). Every candidate runs one batch; those within
//! [`TUNE_KEEP`] of the fastest run [`TUNE_SAMPLES`] more, round-robin, and each keeps its fastest.
//!
//! Costs and limits:
//! - the first call of a key costs about 10–40 ms of GPU time (more for products longer than
//!   200 µs: one warm-up call plus at least two batches each), with a host synchronization per
//!   batch; launches made while measuring are not counted by `CudaBackend::launches`;
//! - the kernels differ in how they sum along k, so the bits of a result depend on which one
//!   runs: two processes may round differently (within the documented error bounds), and so may
//!   a graph captured before a shape was measured (it keeps the fixed rule's kernel) and later
//!   eager calls. Keep [`GemmTuning::Heuristic`] (the default) where runs must match bit for bit,
//!   or save the choices (`CudaBackend::save_gemm_tuning`) and load them in later runs;
//! - a call made while the stream is being captured into a CUDA graph can't time anything: it
//!   uses a choice measured earlier for its key, else the fixed rule (not recorded). Run one step
//!   eagerly before capturing, as the VAE trainer does (`Vae::prime`);
//! - one host thread should not capture a graph on the backend while another makes a first call
//!   of a key (the measurement's launches would land in the capture); measurements of different
//!   threads are serialized;
//! - if the m×n f32 scratch output can't be allocated, the call runs the fixed rule's kernel
//!   (not recorded).

use std::collections::HashMap;

use super::{GemmKernel, GemmMath};
use crate::backend::DType;
use crate::error::{Error, Result};

/// How [`GemmKernel::Auto`] picks a CUDA kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GemmTuning {
    /// The shipped table of this GPU model for the shapes it lists ([`BUILTIN_TABLES`]), else the
    /// fixed rule of shape and SM count ([`super::auto_kernel`]): reproducible bit for bit.
    #[default]
    Heuristic,
    /// Time the candidates on the first call of each shape and keep the fastest (module docs),
    /// among the versions that have passed their tests on a GPU ([`GemmKernel::CHECKED_ON_GPU`])
    /// and the fixed rule's own choice.
    Measure,
    /// [`GemmTuning::Measure`] among every version of the precision, including those not yet run
    /// on a GPU: for runs right after their tests passed on this machine.
    MeasureAll,
}

impl std::str::FromStr for GemmTuning {
    type Err = Error;

    /// `heuristic`, `measure` or `measure-all` (command-line flags).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "heuristic" => Ok(Self::Heuristic),
            "measure" => Ok(Self::Measure),
            "measure-all" => Ok(Self::MeasureAll),
            _ => Err(Error::invalid("GemmTuning", format!("{s:?}: expected heuristic, measure or measure-all"))),
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

/// Timed batches per candidate after the first, for the candidates within [`TUNE_KEEP`] of the
/// fastest first batch.
pub const TUNE_SAMPLES: usize = 3;

/// A candidate whose first timed batch is more than this factor slower than the fastest first
/// batch is not timed again (it would have to be 3× off to win: room for clocks still ramping).
pub const TUNE_KEEP: f64 = 3.0;

/// The kernels `Auto` chooses among for an input type and math: exact f32 takes the SIMT versions,
/// TF32 the `mma.sync` versions that have a TF32 form ([`GemmKernel::half_only`]), bf16/f16 every
/// `mma.sync` version and, where `wgmma` (a compute capability 9.0 GPU), the Hopper ones; unless
/// `unchecked`, only those in [`GemmKernel::CHECKED_ON_GPU`] and `fixed`
/// (the fixed rule's choice for the shape, which runs anyway without measuring).
pub fn tune_candidates(
    dtype: DType,
    math: GemmMath,
    wgmma: bool,
    unchecked: bool,
    fixed: GemmKernel,
) -> Vec<GemmKernel> {
    let all: Vec<GemmKernel> = match (dtype, math) {
        (DType::F32, GemmMath::F32) => GemmKernel::SIMT.to_vec(),
        (DType::F32, GemmMath::Tf32) => GemmKernel::TENSOR_CORE.into_iter().filter(|k| !k.half_only()).collect(),
        _ if wgmma => GemmKernel::TENSOR_CORE.into_iter().chain(GemmKernel::HOPPER).collect(),
        _ => GemmKernel::TENSOR_CORE.to_vec(),
    };
    all.into_iter().filter(|&k| unchecked || allowed_unmeasured(k, fixed)).collect()
}

/// Whether [`GemmTuning::Measure`] may run `kernel` for a shape whose fixed-rule choice is `fixed`:
/// a version checked on a GPU, or the one the fixed rule runs anyway.
pub fn allowed_unmeasured(kernel: GemmKernel, fixed: GemmKernel) -> bool {
    GemmKernel::CHECKED_ON_GPU.contains(&kernel) || kernel == fixed
}

/// Whether a launcher's error means "this kernel can't take this call" (a limit, an alignment, a
/// kernel missing on this GPU, a launch the driver refuses), so tuning skips the candidate, rather
/// than a failure to report (a driver error while synchronizing: the context is broken).
pub fn is_ineligible(e: &Error) -> bool {
    matches!(e, Error::InvalidArgument { .. } | Error::KernelsNotBuilt(_) | Error::Launch { .. })
}

/// Picks the fastest of `candidates`. `time(kernel)` runs one timed batch and returns its seconds
/// per call, or `Ok(None)` when the kernel can't take the call. Every candidate is timed once;
/// those within [`TUNE_KEEP`] of the fastest get [`TUNE_SAMPLES`] more rounds, round-robin (so a
/// drift of clocks or of the GPU's load spreads over all of them), and each keeps its minimum.
/// Ties go to the earlier candidate. `Ok(None)` when no candidate can run.
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
    let live: Vec<usize> =
        (0..times.len()).filter(|&i| times[i].1.is_some_and(|t| t <= TUNE_KEEP * first_best)).collect();
    for _ in 0..TUNE_SAMPLES {
        for &i in &live {
            // A kernel that ran once runs again; `None` now would be a launcher bug, so keep t0.
            if let Some(t) = time(times[i].0)? {
                times[i].1 = times[i].1.map(|b| b.min(t));
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

/// First line of a tuning file ([`format_tuning`]).
pub const TUNING_FILE_HEADER: &str = "# latentkit GEMM tuning v1";

impl std::str::FromStr for GemmKernel {
    type Err = Error;

    /// A concrete kernel by its `Debug` name (`Simt64Warp`, `TensorCore128`, ...); not `Auto`.
    fn from_str(s: &str) -> Result<Self> {
        GemmKernel::SIMT
            .into_iter()
            .chain(GemmKernel::TENSOR_CORE)
            .chain(GemmKernel::HOPPER)
            .find(|k| format!("{k:?}") == s)
            .ok_or_else(|| Error::invalid("GemmKernel", format!("{s:?} is not a kernel version")))
    }
}

/// Kernel versions by their `Debug` names, comma-separated (`Simt128x200WarpDb,Wgmma128`; spaces
/// around a name and empty items are ignored): the `--gemm-exclude` option of the examples.
pub fn parse_kernel_list(s: &str) -> Result<Vec<GemmKernel>> {
    s.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::parse).collect()
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::U32 => "u32",
    }
}

/// The choices as a tuning file: a header, the GPU they were measured on (`gpu`: name, compute
/// capability and SM count, as `CudaBackend::save_gemm_tuning` writes it), then one line per key
/// with tab-separated `m n k op_a op_b lda ldb input tensor_cores kernel`. Saved choices make
/// [`GemmTuning::Measure`] reproducible: a process that loads them runs the same kernels.
pub fn format_tuning(gpu: &str, records: &[GemmTuneRecord]) -> String {
    let op = |t: bool| if t { "T" } else { "N" };
    let mut out =
        format!("{TUNING_FILE_HEADER}\ngpu\t{gpu}\n# m\tn\tk\top_a\top_b\tlda\tldb\tinput\ttensor_cores\tkernel\n");
    for r in records {
        let k = r.key;
        out += &format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:?}\n",
            k.m,
            k.n,
            k.k,
            op(k.trans_a),
            op(k.trans_b),
            k.lda,
            k.ldb,
            dtype_name(k.dtype),
            u8::from(k.tensor_cores),
            r.chosen
        );
    }
    out
}

/// Reads a tuning file written by [`format_tuning`] for the GPU `gpu`. Errors name the file and
/// the byte offset of the offending line: another header, choices measured on another GPU (the
/// fastest kernel differs between GPUs), a malformed line, or a kernel that does not compute the
/// line's precision (an f32 product must stay exact f32).
pub fn parse_tuning(path: &std::path::Path, text: &str, gpu: &str) -> Result<TuningEntries> {
    let bad = |offset: usize, msg: String| Error::Format { path: path.to_path_buf(), offset: offset as u64, msg };
    let mut offset = 0;
    let mut out = Vec::new();
    let mut seen_gpu = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let at = offset;
        offset += line.len();
        let line = line.trim_end_matches(['\n', '\r']);
        if i == 0 {
            if line != TUNING_FILE_HEADER {
                return Err(bad(at, format!("expected the header {TUNING_FILE_HEADER:?}, found {line:?}")));
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(g) = line.strip_prefix("gpu\t") {
            if g != gpu {
                return Err(bad(at, format!("choices measured on {g}; this is {gpu}: measure again here")));
            }
            seen_gpu = true;
            continue;
        }
        if !seen_gpu {
            return Err(bad(at, "a choice before the `gpu` line".into()));
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 10 {
            return Err(bad(at, format!("expected 10 tab-separated fields, found {}: {line:?}", f.len())));
        }
        let num = |j: usize| f[j].parse::<usize>().map_err(|e| bad(at, format!("field {} {:?}: {e}", j + 1, f[j])));
        let op = |j: usize| match f[j] {
            "N" => Ok(false),
            "T" => Ok(true),
            o => Err(bad(at, format!("field {} {o:?}: expected N or T", j + 1))),
        };
        let dtype = match f[7] {
            "f32" => DType::F32,
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            d => return Err(bad(at, format!("input type {d:?}: expected f32, f16 or bf16"))),
        };
        let tensor_cores = match f[8] {
            "0" => false,
            "1" => true,
            t => return Err(bad(at, format!("tensor_cores {t:?}: expected 0 or 1"))),
        };
        let kernel: GemmKernel = f[9].parse().map_err(|e: Error| bad(at, e.to_string()))?;
        let math = if dtype == DType::F32 && tensor_cores { GemmMath::Tf32 } else { GemmMath::F32 };
        if (dtype != DType::F32 && !tensor_cores) || !tune_candidates(dtype, math, true, true, kernel).contains(&kernel)
        {
            return Err(bad(at, format!("{kernel:?} does not compute {} with tensor_cores = {}", f[7], f[8])));
        }
        let key = GemmTuneKey {
            m: num(0)?,
            n: num(1)?,
            k: num(2)?,
            trans_a: op(3)?,
            trans_b: op(4)?,
            lda: num(5)?,
            ldb: num(6)?,
            dtype,
            tensor_cores,
        };
        if out.iter().any(|(k, _): &(GemmTuneKey, GemmKernel)| *k == key) {
            return Err(bad(at, format!("a second choice for {}×{}×{} {}{} {}", f[0], f[1], f[2], f[3], f[4], f[7])));
        }
        out.push((key, kernel));
    }
    if text.is_empty() {
        return Err(bad(0, format!("empty file: expected the header {TUNING_FILE_HEADER:?}")));
    }
    if !seen_gpu {
        return Err(bad(offset, "no `gpu` line".into()));
    }
    Ok(out)
}

/// Tuning tables shipped with the crate, `(file name, contents)` in the format of
/// [`format_tuning`]: choices measured on one GPU model (the file's `gpu` line) by a GPU run of
/// the benches and trainers with `--gemm-tuning-file` (tuning/README.md says how each was made).
/// On a GPU whose name, compute capability and SM count match a table's, [`GemmTuning::Heuristic`]
/// runs the table's kernel for the shapes it lists and the fixed rule elsewhere: still the same
/// kernels on every run.
pub const BUILTIN_TABLES: &[(&str, &str)] =
    &[("h100-80gb-hbm3.tsv", include_str!("../../../tuning/h100-80gb-hbm3.tsv"))];

/// The choices of a tuning file, in file order.
pub type TuningEntries = Vec<(GemmTuneKey, GemmKernel)>;

/// The shipped table measured on `gpu`, if any: its file name and choices (the first table whose
/// `gpu` line matches).
pub fn builtin_table(gpu: &str) -> Result<Option<(&'static str, TuningEntries)>> {
    for &(name, text) in BUILTIN_TABLES {
        let of_gpu = text.lines().any(|l| l.strip_prefix("gpu\t") == Some(gpu));
        if of_gpu {
            return Ok(Some((name, parse_tuning(std::path::Path::new(name), text, gpu)?)));
        }
    }
    Ok(None)
}

/// The per-backend state: the mode and the choices measured so far (held by the CUDA backend).
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) struct TuneState {
    pub mode: GemmTuning,
    pub records: HashMap<GemmTuneKey, GemmTuneRecord>,
    /// Insertion order of `records`, for reports.
    pub order: Vec<GemmTuneKey>,
    /// The shipped table of this GPU model ([`builtin_table`]), used in Heuristic mode.
    pub builtin: HashMap<GemmTuneKey, GemmKernel>,
    pub builtin_name: Option<&'static str>,
    /// Versions that measuring neither runs nor keeps (`CudaBackend::exclude_gemm_kernels`).
    pub excluded: Vec<GemmKernel>,
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

    /// The kernel `Auto` runs for `key` without measuring: a measured or loaded choice when
    /// measuring (under [`GemmTuning::Measure`] only one it may run: checked on a GPU or the fixed
    /// rule's own, `fixed`; never an excluded one), else (Heuristic) the shipped table's, else
    /// `None` (the fixed rule, or measure).
    pub fn choice(&self, key: &GemmTuneKey, fixed: GemmKernel) -> Option<GemmKernel> {
        let measured = self.records.get(key).map(|r| r.chosen).filter(|k| !self.excluded.contains(k));
        match self.mode {
            GemmTuning::Heuristic => self.builtin.get(key).copied(),
            GemmTuning::Measure => measured.filter(|&k| allowed_unmeasured(k, fixed)),
            GemmTuning::MeasureAll => measured,
        }
    }

    /// What measuring times for a key: [`tune_candidates`] less the excluded versions.
    pub fn candidates(&self, dtype: DType, math: GemmMath, wgmma: bool, fixed: GemmKernel) -> Vec<GemmKernel> {
        let unchecked = self.mode == GemmTuning::MeasureAll;
        let mut all = tune_candidates(dtype, math, wgmma, unchecked, fixed);
        all.retain(|k| !self.excluded.contains(k));
        all
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
        assert_eq!("measure-all".parse::<GemmTuning>().unwrap(), GemmTuning::MeasureAll);
        assert!("fast".parse::<GemmTuning>().unwrap_err().to_string().contains("heuristic, measure or measure-all"));
    }

    #[test]
    fn candidates_keep_the_precision() {
        let any = GemmKernel::Tiled16;
        assert_eq!(tune_candidates(DType::F32, GemmMath::F32, true, true, any), GemmKernel::SIMT.to_vec());
        let tf32 = tune_candidates(DType::F32, GemmMath::Tf32, true, true, any);
        assert!(tf32.iter().all(|k| k.is_tensor_core() && !k.half_only()), "TF32 has no half-only kernel: {tf32:?}");
        let bf16 = tune_candidates(DType::BF16, GemmMath::F32, true, true, any);
        // Without `unchecked`, the versions not yet checked on a GPU drop out (none since the H100 run
        // of 2026-11-27 that checked v8, v9 and v12–v23: then Measure and MeasureAll try the same).
        let checked = tune_candidates(DType::BF16, GemmMath::F32, true, false, GemmKernel::TensorCore128);
        let left_out: Vec<_> = bf16.iter().filter(|k| !checked.contains(k)).collect();
        assert!(left_out.iter().all(|k| !GemmKernel::CHECKED_ON_GPU.contains(k)), "{left_out:?}");
        assert_eq!(checked.len() + left_out.len(), bf16.len());
        assert!(bf16.contains(&GemmKernel::Wgmma256) && bf16.contains(&GemmKernel::TensorCore128));
        assert!(!tune_candidates(DType::F16, GemmMath::F32, false, true, any).iter().any(|k| k.is_hopper()));
        assert!(!bf16.contains(&GemmKernel::Auto));
        // Without `unchecked`: the versions that passed on a GPU and always the fixed rule's own
        // choice.
        for (dtype, math) in [(DType::F32, GemmMath::F32), (DType::F32, GemmMath::Tf32), (DType::BF16, GemmMath::F32)] {
            let tc = math == GemmMath::Tf32 || dtype != DType::F32;
            // (The wgmma family only for bf16 / f16.)
            let families = [false, dtype != DType::F32].map(|wgmma| crate::ops::gemm::AutoFamily::new(tc, wgmma));
            let shapes = [(4096, 4096, 4096), (128, 400, 784), (20, 400, 8192), (400, 784, 4096), (128, 400, 20)];
            for (family, (m, n, k)) in families.into_iter().flat_map(|f| shapes.map(|s| (f, s))) {
                let fixed = crate::ops::gemm::auto_kernel(m, n, k, family, 132);
                let cands = tune_candidates(dtype, math, true, false, fixed);
                assert!(cands.contains(&fixed), "{m}×{n}×{k} {dtype:?}: {fixed:?} missing from {cands:?}");
                assert!(cands.iter().all(|&c| GemmKernel::CHECKED_ON_GPU.contains(&c) || c == fixed), "{cands:?}");
            }
        }
        let fixed = crate::ops::gemm::auto_kernel(20, 400, 8192, crate::ops::gemm::AutoFamily::Simt, 132);
        assert_eq!(fixed, GemmKernel::Simt64WarpDbSplitK);
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
            (Tiled16, vec![Some(1e-4)]), // > 3× the best first batch: timed once
            (Simt128Warp, vec![Some(3e-5), Some(2.9e-5), Some(2.8e-5)]), // best first, min 2.8e-5
            (Simt64Warp, vec![Some(4e-5), Some(2.7e-5), Some(5e-5)]), // slower first, min 2.7e-5: wins
            (Simt64SplitK, vec![None]),  // can't run
        ]);
        let rec = measure_fastest(key(), &cands, f).unwrap().unwrap();
        assert_eq!(rec.chosen, Simt64Warp);
        assert_eq!(
            rec.times,
            vec![(Tiled16, Some(1e-4)), (Simt128Warp, Some(2.8e-5)), (Simt64Warp, Some(2.7e-5)), (Simt64SplitK, None)]
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
        assert!(is_ineligible(&Error::Launch { kernel: "gemm", msg: "CUDA_ERROR_INVALID_VALUE".into() }));
        assert!(!is_ineligible(&Error::Cuda { context: "GEMM tuning event", msg: "illegal address".into() }));
    }

    #[test]
    fn tuning_files_round_trip_and_refuse_what_does_not_apply() {
        use std::path::Path;
        let gpu = "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)";
        let recs = vec![
            GemmTuneRecord { key: key(), chosen: GemmKernel::Simt64SplitK, times: vec![] },
            GemmTuneRecord {
                key: GemmTuneKey { dtype: DType::BF16, tensor_cores: true, trans_a: true, ..key() },
                chosen: GemmKernel::Wgmma128,
                times: vec![(GemmKernel::Wgmma128, Some(1e-5))],
            },
        ];
        let text = format_tuning(gpu, &recs);
        let path = Path::new("tuning.tsv");
        let back = parse_tuning(path, &text, gpu).unwrap();
        assert_eq!(back, recs.iter().map(|r| (r.key, r.chosen)).collect::<Vec<_>>());
        // Each refusal names the byte offset of its line.
        let err = |t: &str, g: &str| parse_tuning(path, t, g).unwrap_err().to_string();
        let line2 = TUNING_FILE_HEADER.len() + 1;
        let e = err(&text, "NVIDIA A100-SXM4-80GB (sm_80, 108 SMs)");
        assert!(e.contains(&format!("offset {line2}")) && e.contains("measure again"), "{e}");
        assert!(err("# other\n", gpu).contains("offset 0"));
        let last = text.rfind("128\t").unwrap();
        let swapped = text.replace("Simt64SplitK", "TensorCore64");
        let e = err(&swapped, gpu);
        assert!(
            e.contains("does not compute f32") && e.contains(&format!("offset {}", text.find("128\t400").unwrap())),
            "{e}"
        );
        let e = err(&format!("{}\t9", &text[..text.len() - 1]), gpu);
        assert!(e.contains("10 tab-separated fields") && e.contains(&format!("offset {last}")), "{e}");
        assert!(err(&text.replace("Wgmma128", "Fastest"), gpu).contains("not a kernel version"));
        assert!(err(TUNING_FILE_HEADER, gpu).contains("no `gpu` line"));
        assert!(err("", gpu).contains("empty file"));
        let first = text.find("128\t400").unwrap();
        let line = &text[first..=first + text[first..].find('\n').unwrap()];
        let e = err(&format!("{text}{line}"), gpu);
        assert!(e.contains("a second choice") && e.contains(&format!("offset {}", text.len())), "{e}");
        assert_eq!("Simt128Warp2Cta".parse::<GemmKernel>().unwrap(), GemmKernel::Simt128Warp2Cta);
        assert!("Auto".parse::<GemmKernel>().is_err());
    }

    #[test]
    fn shipped_tables_parse_and_heuristic_mode_uses_them() {
        for &(name, text) in BUILTIN_TABLES {
            let gpu =
                text.lines().find_map(|l| l.strip_prefix("gpu\t")).unwrap_or_else(|| panic!("{name}: no gpu line"));
            let (found, entries) = builtin_table(gpu).unwrap().unwrap();
            assert_eq!(found, name);
            assert!(!entries.is_empty(), "{name} lists no choice");
            // The default mode runs these: only versions that have passed on a GPU.
            for (key, kernel) in entries {
                assert!(GemmKernel::CHECKED_ON_GPU.contains(&kernel), "{name}: {kernel:?} for {key:?} is not checked");
            }
        }
        assert_eq!(builtin_table("no such GPU (sm_00, 1 SMs)").unwrap(), None);
        let fixed = GemmKernel::Simt32SlicedK;
        let mut st = TuneState::default();
        st.builtin.insert(key(), GemmKernel::Simt64Warp);
        assert_eq!(st.choice(&key(), fixed), Some(GemmKernel::Simt64Warp), "Heuristic: the shipped table");
        st.mode = GemmTuning::Measure;
        assert_eq!(st.choice(&key(), fixed), None, "Measure: measured here, not the table");
        st.insert(GemmTuneRecord { key: key(), chosen: GemmKernel::Tiled16, times: vec![] });
        assert_eq!(st.choice(&key(), fixed), Some(GemmKernel::Tiled16));
        // A loaded choice of a version not checked on a GPU: only MeasureAll runs it (or Measure,
        // where it is the fixed rule's own choice). While every version is checked, Measure runs
        // any loaded choice.
        let every = GemmKernel::SIMT.into_iter().chain(GemmKernel::TENSOR_CORE).chain(GemmKernel::HOPPER);
        match every.clone().find(|k| !GemmKernel::CHECKED_ON_GPU.contains(k)) {
            Some(unchecked) => {
                st.insert(GemmTuneRecord { key: key(), chosen: unchecked, times: vec![] });
                assert_eq!(st.choice(&key(), fixed), None);
                assert_eq!(st.choice(&key(), unchecked), Some(unchecked));
                st.mode = GemmTuning::MeasureAll;
                assert_eq!(st.choice(&key(), fixed), Some(unchecked));
                st.mode = GemmTuning::Measure;
            }
            None => {
                for k in every {
                    st.insert(GemmTuneRecord { key: key(), chosen: k, times: vec![] });
                    assert_eq!(st.choice(&key(), fixed), Some(k), "{k:?} is checked");
                }
            }
        }
        st.mode = GemmTuning::Heuristic;
        assert_eq!(st.choice(&key(), fixed), Some(GemmKernel::Simt64Warp));
    }

    #[test]
    fn excluded_versions_are_neither_measured_nor_kept() {
        let fixed = GemmKernel::Simt64WarpDb;
        let gone = [GemmKernel::Simt128x200WarpDb, GemmKernel::Simt64WarpDb, GemmKernel::Wgmma128];
        let mut st = TuneState { mode: GemmTuning::MeasureAll, ..TuneState::default() };
        st.insert(GemmTuneRecord { key: key(), chosen: GemmKernel::Simt128x200WarpDb, times: vec![] });
        assert_eq!(st.choice(&key(), fixed), Some(GemmKernel::Simt128x200WarpDb));
        let all_f32 = st.candidates(DType::F32, GemmMath::F32, true, fixed);
        assert_eq!(all_f32, GemmKernel::SIMT.to_vec());
        st.excluded = gone.to_vec();
        // The stored choice is measured again, among the others.
        assert_eq!(st.choice(&key(), fixed), None);
        for (dtype, math) in [(DType::F32, GemmMath::F32), (DType::BF16, GemmMath::F32)] {
            for mode in [GemmTuning::Measure, GemmTuning::MeasureAll] {
                st.mode = mode;
                let kept = st.candidates(dtype, math, true, fixed);
                let before = tune_candidates(dtype, math, true, mode == GemmTuning::MeasureAll, fixed);
                assert!(!kept.is_empty() && kept.iter().all(|k| !gone.contains(k)), "{mode:?}: {kept:?}");
                assert_eq!(kept, before.into_iter().filter(|k| !gone.contains(k)).collect::<Vec<_>>());
            }
        }
        // The list parser of `--gemm-exclude`.
        assert_eq!(parse_kernel_list(" Simt128x200WarpDb, Simt64WarpDb,,Wgmma128 ").unwrap(), gone.to_vec());
        assert_eq!(parse_kernel_list("").unwrap(), vec![]);
        let e = parse_kernel_list("Simt64WarpDb,Simt65").unwrap_err().to_string();
        assert!(e.contains("\"Simt65\" is not a kernel version"), "{e}");
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
