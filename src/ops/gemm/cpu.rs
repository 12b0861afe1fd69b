//! CPU GEMM: the f64 reference (the spec every kernel is tested against) and the fast path used
//! for CPU training (`matrixmultiply`: SIMD, multithreaded), itself tested against the reference.

use super::{GemmEpilogue, GemmSpec};
use crate::backend::CpuBackend;
use crate::error::Result;

fn a_at(spec: &GemmSpec, a: &[f32], i: usize, p: usize) -> f32 {
    if spec.trans_a.is_yes() {
        a[p * spec.lda + i]
    } else {
        a[i * spec.lda + p]
    }
}

fn b_at(spec: &GemmSpec, b: &[f32], p: usize, j: usize) -> f32 {
    if spec.trans_b.is_yes() {
        b[j * spec.ldb + p]
    } else {
        b[p * spec.ldb + j]
    }
}

/// Reference: plain triple loop, f64 accumulation, one rounding to f32 per output.
pub fn gemm_ref(spec: &GemmSpec, a: &[f32], b: &[f32], c: &mut [f32]) -> Result<()> {
    spec.validate(a.len(), b.len(), c.len())?;
    for i in 0..spec.m {
        for j in 0..spec.n {
            let dot: f64 = (0..spec.k).map(|p| f64::from(a_at(spec, a, i, p)) * f64::from(b_at(spec, b, p, j))).sum();
            let out = &mut c[i * spec.ldc + j];
            let prev = if spec.beta == 0.0 { 0.0 } else { f64::from(spec.beta) * f64::from(*out) };
            let ab = if spec.alpha == 0.0 { 0.0 } else { f64::from(spec.alpha) * dot };
            *out = (ab + prev) as f32;
        }
    }
    Ok(())
}

/// Fast f32 path through `matrixmultiply::sgemm`, which takes arbitrary row and column strides, so
/// both transposes are a swap of strides rather than a copy.
pub fn gemm_fast(spec: &GemmSpec, a: &[f32], b: &[f32], c: &mut [f32]) -> Result<()> {
    spec.validate(a.len(), b.len(), c.len())?;
    if spec.alpha == 0.0 {
        // BLAS: A and B are not read; C = beta·C (and C is not read when beta = 0 either).
        for row in c.chunks_mut(spec.ldc).take(spec.m) {
            for v in &mut row[..spec.n] {
                *v = if spec.beta == 0.0 { 0.0 } else { spec.beta * *v };
            }
        }
        return Ok(());
    }
    let (rsa, csa) = if spec.trans_a.is_yes() { (1, spec.lda) } else { (spec.lda, 1) };
    let (rsb, csb) = if spec.trans_b.is_yes() { (1, spec.ldb) } else { (spec.ldb, 1) };
    // SAFETY: validate above proved that all addressed elements lie
    // inside a, b and c; the strides fit isize because the slices' lengths do.
    unsafe {
        matrixmultiply::sgemm(
            spec.m,
            spec.k,
            spec.n,
            spec.alpha,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            spec.beta,
            c.as_mut_ptr(),
            spec.ldc as isize,
            1,
        );
    }
    Ok(())
}

/// Applies an epilogue to the m×n outputs of C in place (after the product was stored). The
/// backend's callers have checked C, the bias and y against the spec.
fn apply_epilogue(
    spec: &GemmSpec,
    c: &mut [f32],
    bias: Option<&[f32]>,
    act: crate::ops::Activation,
    grad_from: Option<(&[f32], usize)>,
) {
    use crate::ops::elementwise::cpu::{activation, activation_grad_from_output};
    for i in 0..spec.m {
        let row = &mut c[i * spec.ldc..i * spec.ldc + spec.n];
        match grad_from {
            Some((y, ldy)) => {
                for (j, v) in row.iter_mut().enumerate() {
                    *v *= activation_grad_from_output(act, y[i * ldy + j]);
                }
            }
            None => {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = activation(act, *v + bias.map_or(0.0, |b| b[j]));
                }
            }
        }
    }
}

/// The CPU backend's epilogue step.
pub(crate) fn apply_epilogue_of(spec: &GemmSpec, c: &mut [f32], epilogue: &GemmEpilogue<'_, CpuBackend>) {
    match epilogue {
        GemmEpilogue::None => {}
        GemmEpilogue::BiasAct { bias, act } => apply_epilogue(spec, c, bias.map(|b| &b[..]), *act, None),
        GemmEpilogue::ActGrad { act, y, ldy } => apply_epilogue(spec, c, None, *act, Some((&y[..], *ldy))),
    }
}

/// Rounds an f32 to TF32 as the GPU's `cvt.rna.tf32.f32` does: 10 mantissa bits, to nearest with
/// ties away from zero; the result is an f32 whose low 13 mantissa bits are zero. NaN and ±∞ pass
/// through; values that round past f32::MAX become ±∞.
pub fn round_tf32(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    // Sign-magnitude bits: adding half an ulp of TF32 to the magnitude and truncating rounds
    // halfway cases away from zero; a carry into the exponent is the correct next binade.
    f32::from_bits((x.to_bits() + 0x1000) & !0x1fff)
}

pub(crate) fn round_tf32_all(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| round_tf32(x)).collect()
}
