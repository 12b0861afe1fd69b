//! Test helpers shared by every integration test: one `assert_close`, seeded non-zero random
//! inputs, NaN poisoning, and the CPU/CUDA parity runner.
#![allow(dead_code)]

use latentkit::rng::{seeded, LkRng};
use latentkit::{Backend, CudaBackend, Tensor};
use rand::Rng;
use std::io::Write as _;

/// Default tolerance for f32 results compared with a reference computed in the same precision or
/// higher: a few ulps of accumulated rounding.
pub const ATOL: f32 = 1e-6;
pub const RTOL: f32 = 1e-5;

/// Sizes that are not multiples of any tile or block size, plus one that needs several blocks.
pub const SIZES: &[usize] = &[1, 7, 33, 1000, 70_001];

/// Passes when every |got − want| ≤ atol + rtol·|want| (NaN never passes); otherwise panics with
/// the count and the worst offenders.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs reference {}", got.len(), want.len());
    let mut bad: Vec<(usize, f32, f32, f32)> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter_map(|(i, (&g, &w))| {
            let err = (g - w).abs();
            let ok = err <= atol + rtol * w.abs();
            (!ok).then_some((i, g, w, if err.is_nan() { f32::INFINITY } else { err }))
        })
        .collect();
    if !bad.is_empty() {
        bad.sort_by(|a, b| b.3.total_cmp(&a.3));
        let worst: Vec<String> =
            bad.iter().take(5).map(|(i, g, w, e)| format!("[{i}] got {g:e}, want {w:e} (|err| {e:e})")).collect();
        panic!(
            "{what}: {} of {} elements outside atol {atol:e} + rtol {rtol:e}·|want|; worst: {}",
            bad.len(),
            got.len(),
            worst.join("; ")
        );
    }
}

pub fn rng(seed: u64) -> LkRng {
    seeded(seed)
}

/// n uniform values in [lo, hi], never exactly zero (a zero input hides missing terms).
pub fn rand_vec(rng: &mut LkRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|_| loop {
            let v: f32 = rng.random_range(lo..=hi);
            if v != 0.0 {
                break v;
            }
        })
        .collect()
}

/// Fills a tensor with NaN so an element the kernel fails to write fails the comparison.
pub fn poison<B: Backend>(b: &B, t: &mut Tensor<B>) {
    latentkit::ops::elementwise::fill(b, t, f32::NAN).expect("poison fill");
}

/// A tensor on `b` from host data.
pub fn tensor<B: Backend>(b: &B, shape: &[usize], data: &[f32]) -> Tensor<B> {
    Tensor::from_slice(b, shape, data).expect("upload")
}

/// A NaN-filled tensor on `b`.
pub fn poisoned<B: Backend>(b: &B, shape: &[usize]) -> Tensor<B> {
    let mut t = Tensor::zeros(b, shape).expect("alloc");
    poison(b, &mut t);
    t
}

/// A tensor's buffer for the GEMM entry points that take buffers (they check its length and
/// device themselves).
pub fn out_buf<B: Backend>(t: &mut Tensor<B>) -> &mut B::Buf<f32> {
    // SAFETY: the callers hand it to those entry points, which only write its elements.
    unsafe { t.buf_mut_unchecked() }
}

pub fn host<B: Backend>(b: &B, t: &Tensor<B>) -> Vec<f32> {
    t.to_vec(b).expect("download")
}

/// The CUDA backend, or `None` after printing one skip line. With `LATENTKIT_REQUIRE_CUDA=1` a
/// missing GPU fails the test instead.
pub fn cuda(test: &str) -> Option<CudaBackend> {
    match CudaBackend::new(0) {
        Ok(b) => Some(b),
        Err(e) => {
            if std::env::var("LATENTKIT_REQUIRE_CUDA").is_ok_and(|v| v == "1") {
                panic!("{test}: LATENTKIT_REQUIRE_CUDA=1 but CUDA is unusable: {e}");
            }
            // Written to the real stderr (not eprintln!, which the test harness captures) so the
            // skip is visible in a normal `cargo test` run.
            let _ = writeln!(std::io::stderr(), "SKIP {test} [cuda half]: {e}");
            None
        }
    }
}

/// One named output of a parity body, compared across backends with its tolerance.
pub struct Out {
    pub name: String,
    pub data: Vec<f32>,
    pub atol: f32,
    pub rtol: f32,
}

impl Out {
    pub fn new(name: impl Into<String>, data: Vec<f32>) -> Self {
        Self { name: name.into(), data, atol: ATOL, rtol: RTOL }
    }

    pub fn tol(mut self, atol: f32, rtol: f32) -> Self {
        self.atol = atol;
        self.rtol = rtol;
        self
    }
}

/// Runs one test body on the CPU backend and, where a GPU is present, on CUDA in the same
/// process; the body checks its backend against the reference itself and returns its outputs,
/// which are then compared CPU vs CUDA.
///
/// ```ignore
/// parity_test!(name, |b| { ...; vec![Out::new("y", host(b, &y))] });
/// ```
#[macro_export]
macro_rules! parity_test {
    ($name:ident, |$b:ident| $body:block) => {
        #[test]
        fn $name() {
            fn body<B: latentkit::Backend>($b: &B) -> Vec<$crate::common::Out> {
                $body
            }
            let cpu = body(&latentkit::CpuBackend);
            if let Some(gpu_backend) = $crate::common::cuda(stringify!($name)) {
                let gpu = body(&gpu_backend);
                assert_eq!(cpu.len(), gpu.len());
                for (c, g) in cpu.iter().zip(&gpu) {
                    $crate::common::assert_close(&format!("{} cuda vs cpu", c.name), &g.data, &c.data, c.atol, c.rtol);
                }
            }
        }
    };
}

/// A fresh directory under the system temp dir, named after the test and this process, removed
/// on drop even when the test fails.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("latentkit-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, file: &str) -> std::path::PathBuf {
        self.0.join(file)
    }

    /// The names of the directory's entries.
    pub fn entries(&self) -> std::collections::BTreeSet<String> {
        std::fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
