//! Row-major GEMM: `C[m, n] = α · op(A)[m, k] · op(B)[k, n] + β · C`, `op ∈ {N, T}`.
//!
//! Storage: with `Transpose::No`, A is `[m, k]` with row stride `lda ≥ k`; with `Transpose::Yes`
//! it is stored `[k, m]` with `lda ≥ m` (likewise B: `[k, n]`/`ldb ≥ n` or `[n, k]`/`ldb ≥ k`);
//! C is `[m, n]` with `ldc ≥ n`. `β = 0` means C is not read (BLAS convention), so C may hold
//! anything, NaN included. The three products of a linear layer `Y = X·Wᵀ` are
//! `gemm(N, T)` forward, `dX = dY·W` as `gemm(N, N)` and `dW = dYᵀ·X` as `gemm(T, N)`.
//!
//! An epilogue transforms each output `v = α·(op(A)·op(B))[i,j] + β·C[i,j]` before it is stored
//! ([`GemmEpilogue`]): `act(v + bias[j])` is a Linear layer's forward in one kernel, and
//! `v · act'(y[i,j])` (act' written from the forward output y) is the backward into the layer
//! below's pre-activation.
//!
//! Numerics: the CPU reference ([`cpu::gemm_ref`]) accumulates in f64 and is the spec; the f32
//! paths (CPU `matrixmultiply`, CUDA kernels) differ from it by at most about
//! `K · ε_f32 · max|a| · max|b|` per element, the bound the tests use.
//! Kernels: `kernels/gemm.cu`.

pub mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::on_device;
use crate::backend::Backend;
use crate::error::{check_len, Error, Result};
use crate::ops::Activation;
use crate::tensor::Tensor;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Transpose {
    #[default]
    No,
    Yes,
}

impl Transpose {
    pub fn is_yes(self) -> bool {
        self == Transpose::Yes
    }
}

/// Which CUDA kernel version runs a GEMM (the CPU path ignores it). The numbered versions stay
/// while tuning, as in llm.c; `Auto` picks the verified default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GemmKernel {
    /// The default: v1 until a later version is verified and measured on a GPU.
    #[default]
    Auto,
    /// v1: 16×16 shared-memory tiles, one output per thread.
    Tiled16,
    /// v2: 128×128 block tiles, 8×8 register blocking per thread, float4 shared-memory reads.
    Simt128,
}

/// The full description of one GEMM call on raw row-major buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmSpec {
    pub trans_a: Transpose,
    pub trans_b: Transpose,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub alpha: f32,
    pub beta: f32,
    pub kernel: GemmKernel,
}

impl GemmSpec {
    /// A spec for contiguous operands (leading dimensions equal to the stored row lengths).
    pub fn contiguous(
        trans_a: Transpose,
        trans_b: Transpose,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        beta: f32,
    ) -> Self {
        let lda = if trans_a.is_yes() { m } else { k };
        let ldb = if trans_b.is_yes() { k } else { n };
        Self { trans_a, trans_b, m, n, k, lda, ldb, ldc: n, alpha, beta, kernel: GemmKernel::Auto }
    }

    /// (rows, cols) of A and B as stored.
    pub fn stored_a(&self) -> (usize, usize) {
        if self.trans_a.is_yes() {
            (self.k, self.m)
        } else {
            (self.m, self.k)
        }
    }

    pub fn stored_b(&self) -> (usize, usize) {
        if self.trans_b.is_yes() {
            (self.n, self.k)
        } else {
            (self.k, self.n)
        }
    }

    /// Checks sizes and leading dimensions, and that buffers of the given lengths cover them.
    pub fn validate(&self, a_len: usize, b_len: usize, c_len: usize) -> Result<()> {
        const OP: &str = "gemm";
        if self.m == 0 || self.n == 0 || self.k == 0 {
            return Err(Error::shape(OP, format!("m, n, k must be ≥ 1, got {}×{}×{}", self.m, self.n, self.k)));
        }
        if !self.alpha.is_finite() || !self.beta.is_finite() {
            return Err(Error::invalid(
                OP,
                format!("alpha and beta must be finite, got {} and {}", self.alpha, self.beta),
            ));
        }
        let need = |name: &'static str, (rows, cols): (usize, usize), ld: usize, len: usize| -> Result<()> {
            if ld < cols {
                return Err(Error::shape(
                    OP,
                    format!("leading dimension of {name} is {ld}, less than its row length {cols}"),
                ));
            }
            let span = (rows - 1).checked_mul(ld).and_then(|x| x.checked_add(cols));
            let span = span.ok_or_else(|| Error::shape(OP, format!("{name} extent overflows")))?;
            check_len(OP, name, len, span)
        };
        need("A", self.stored_a(), self.lda, a_len)?;
        need("B", self.stored_b(), self.ldb, b_len)?;
        need("C", (self.m, self.n), self.ldc, c_len)
    }
}

/// What happens to each output `v` of a GEMM before it is stored.
pub enum GemmEpilogue<'a, B: Backend> {
    /// `C = v`.
    None,
    /// `C = act(v + bias[j])`; `bias` ([n]) is optional.
    BiasAct { bias: Option<&'a B::Buf<f32>>, act: Activation },
    /// `C = v · act'(y[i, j])` with act' written from the forward output `y` ([m, n], row stride
    /// `ldy`).
    ActGrad { act: Activation, y: &'a B::Buf<f32>, ldy: usize },
}

impl<B: Backend> GemmEpilogue<'_, B> {
    fn validate(&self, bk: &B, spec: &GemmSpec) -> Result<()> {
        const OP: &str = "gemm";
        match self {
            GemmEpilogue::None | GemmEpilogue::BiasAct { bias: None, .. } => Ok(()),
            GemmEpilogue::BiasAct { bias: Some(bias), .. } => {
                buf_on_device(bk, "bias", B::buf_device(*bias))?;
                check_len(OP, "bias", B::buf_len(*bias), spec.n)
            }
            GemmEpilogue::ActGrad { y, ldy, .. } => {
                buf_on_device(bk, "y", B::buf_device(*y))?;
                if *ldy < spec.n {
                    return Err(Error::shape(OP, format!("leading dimension of y is {ldy}, less than n = {}", spec.n)));
                }
                let span = (spec.m - 1).checked_mul(*ldy).and_then(|v| v.checked_add(spec.n));
                check_len(OP, "y", B::buf_len(*y), span.ok_or_else(|| Error::shape(OP, "y extent overflows"))?)
            }
        }
    }
}

/// Errors unless a raw buffer (named `name` in the message) lives on the backend's device.
fn buf_on_device<B: Backend>(bk: &B, name: &str, dev: crate::device::Device) -> Result<()> {
    if dev != bk.device() {
        return Err(Error::DeviceMismatch {
            op: "gemm",
            msg: format!("{name} is on {dev}, the backend on {}", bk.device()),
        });
    }
    Ok(())
}

/// GEMM on raw buffers with explicit leading dimensions (strided sub-matrices).
pub fn gemm<B: Backend>(bk: &B, spec: &GemmSpec, a: &B::Buf<f32>, b: &B::Buf<f32>, c: &mut B::Buf<f32>) -> Result<()> {
    gemm_with(bk, spec, a, b, c, &GemmEpilogue::None)
}

/// [`gemm`] with an epilogue.
pub fn gemm_with<B: Backend>(
    bk: &B,
    spec: &GemmSpec,
    a: &B::Buf<f32>,
    b: &B::Buf<f32>,
    c: &mut B::Buf<f32>,
    epilogue: &GemmEpilogue<'_, B>,
) -> Result<()> {
    for (name, dev) in [("A", B::buf_device(a)), ("B", B::buf_device(b)), ("C", B::buf_device(c))] {
        buf_on_device(bk, name, dev)?;
    }
    spec.validate(B::buf_len(a), B::buf_len(b), B::buf_len(c))?;
    epilogue.validate(bk, spec)?;
    // SAFETY: the validations checked that every element the spec and the epilogue address lies
    // inside its buffer, on this backend's device.
    unsafe { bk.gemm_f32(spec, a, b, c, epilogue) }
}

/// `c = α · op(a) · op(b) + β · c` on contiguous 2-D tensors (BLAS-shaped argument list).
#[allow(clippy::too_many_arguments)]
pub fn matmul<B: Backend>(
    bk: &B,
    trans_a: Transpose,
    trans_b: Transpose,
    alpha: f32,
    a: &Tensor<B>,
    b: &Tensor<B>,
    beta: f32,
    c: &mut Tensor<B>,
) -> Result<()> {
    matmul_with(bk, trans_a, trans_b, alpha, a, b, beta, c, TensorEpilogue::None)
}

/// The epilogue of [`matmul_with`], on tensors.
pub enum TensorEpilogue<'a, B: Backend> {
    None,
    /// `act(v + bias[j])`, bias: [n].
    BiasAct {
        bias: Option<&'a Tensor<B>>,
        act: Activation,
    },
    /// `v · act'(y)`, y: [m, n] (the forward output of the activation).
    ActGrad {
        act: Activation,
        y: &'a Tensor<B>,
    },
}

/// [`matmul`] with an epilogue applied to every output before it is stored.
#[allow(clippy::too_many_arguments)]
pub fn matmul_with<B: Backend>(
    bk: &B,
    trans_a: Transpose,
    trans_b: Transpose,
    alpha: f32,
    a: &Tensor<B>,
    b: &Tensor<B>,
    beta: f32,
    c: &mut Tensor<B>,
    epilogue: TensorEpilogue<'_, B>,
) -> Result<()> {
    const OP: &str = "matmul";
    on_device(OP, bk, a)?;
    on_device(OP, bk, b)?;
    on_device(OP, bk, c)?;
    let (ar, ac) = a.dims2(OP)?;
    let (br, bc) = b.dims2(OP)?;
    let (m, k) = if trans_a.is_yes() { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if trans_b.is_yes() { (bc, br) } else { (br, bc) };
    if k != kb {
        return Err(Error::shape(OP, format!("inner dimensions differ: op(A) is {m}×{k}, op(B) is {kb}×{n}")));
    }
    if c.shape() != [m, n] {
        return Err(Error::shape(OP, format!("C should be [{m}, {n}], got {:?}", c.shape())));
    }
    let epilogue = match epilogue {
        TensorEpilogue::None => GemmEpilogue::None,
        TensorEpilogue::BiasAct { bias, act } => {
            if let Some(t) = bias {
                on_device(OP, bk, t)?;
                super::expect_shape(OP, "bias", t, &[n])?;
            }
            GemmEpilogue::BiasAct { bias: bias.map(|t| t.buf()), act }
        }
        TensorEpilogue::ActGrad { act, y } => {
            on_device(OP, bk, y)?;
            super::expect_shape(OP, "y", y, &[m, n])?;
            GemmEpilogue::ActGrad { act, y: y.buf(), ldy: n }
        }
    };
    let spec = GemmSpec::contiguous(trans_a, trans_b, m, n, k, alpha, beta);
    gemm_with(bk, &spec, a.buf(), b.buf(), c.buf_mut(), &epilogue)
}
