//! Typed launcher for `kernels/gemm.cu`.
//!
//! # Safety
//! `gemm` is `unsafe`: the caller guarantees the spec was validated against the buffers
//! (`GemmSpec::validate`, called by `ops::gemm::gemm`).

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::{GemmEpilogue, GemmKernel, GemmSpec};
use crate::backend::cuda::{abi, launch, CudaBackend};
use crate::error::{Error, Result};
use crate::ops::elementwise::cuda::abi_activation;
use crate::ops::Activation;

const TILE: usize = 16;
/// Output tile of `gemm_simt128_f32` (128×128 per 256-thread block).
const SIMT128_TILE: usize = 128;

/// `gemm_tiled16_f32(lk_gemm_params p, const float* a, const float* b, float* c, const float* bias,
///                   const float* y)`
pub(crate) unsafe fn gemm(
    be: &CudaBackend,
    spec: &GemmSpec,
    a: &CudaSlice<f32>,
    b: &CudaSlice<f32>,
    c: &mut CudaSlice<f32>,
    epilogue: &GemmEpilogue<'_, CudaBackend>,
) -> Result<()> {
    let (tile, threads, name): (usize, (u32, u32), &'static str) = match spec.kernel {
        GemmKernel::Auto | GemmKernel::Tiled16 => (TILE, (TILE as u32, TILE as u32), "gemm_tiled16_f32"),
        GemmKernel::Simt128 => (SIMT128_TILE, (256, 1), "gemm_simt128_f32"),
    };
    let (gx, gy) = (spec.n.div_ceil(tile), spec.m.div_ceil(tile));
    if gy > 65_535 || gx > i32::MAX as usize {
        return Err(Error::invalid(
            "gemm",
            format!("{}×{} output exceeds the kernel's grid (m ≤ {})", spec.m, spec.n, 65_535 * tile),
        ));
    }
    let mut p = abi::lk_gemm_params {
        m: spec.m as i64,
        n: spec.n as i64,
        k: spec.k as i64,
        lda: spec.lda as i64,
        ldb: spec.ldb as i64,
        ldc: spec.ldc as i64,
        alpha: spec.alpha,
        beta: spec.beta,
        trans_a: i32::from(spec.trans_a.is_yes()),
        trans_b: i32::from(spec.trans_b.is_yes()),
        ldy: 0,
        epilogue: abi::LK_EPI_NONE,
        act: abi_activation(Activation::None),
        has_bias: 0,
        _pad: 0,
    };
    // Unused pointer slots (flags say so) take the 1-element placeholder.
    let (mut bias, mut y) = (be.placeholder(), be.placeholder());
    match *epilogue {
        GemmEpilogue::None => {}
        GemmEpilogue::BiasAct { bias: b_opt, act } => {
            p.epilogue = abi::LK_EPI_BIAS_ACT;
            p.act = abi_activation(act);
            if let Some(bb) = b_opt {
                p.has_bias = 1;
                bias = bb;
            }
        }
        GemmEpilogue::ActGrad { act, y: yy, ldy } => {
            p.epilogue = abi::LK_EPI_ACT_GRAD;
            p.act = abi_activation(act);
            p.ldy = ldy as i64;
            y = yy;
        }
    }
    let cfg =
        LaunchConfig { grid_dim: (gx as u32, gy as u32, 1), block_dim: (threads.0, threads.1, 1), shared_mem_bytes: 0 };
    launch!(be, name, cfg, [&p, a, b, c, bias, y])
}
