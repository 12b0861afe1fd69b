//! Typed launcher for `kernels/gemm.cu`.
//!
//! # Safety
//! `gemm` is `unsafe`: the caller guarantees the spec was validated against the buffers
//! (`GemmSpec::validate`, called by `ops::gemm::gemm`).

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::GemmSpec;
use crate::backend::cuda::{abi, launch, CudaBackend};
use crate::error::{Error, Result};

const TILE: usize = 16;

/// `gemm_tiled16_f32(lk_gemm_params p, const float* a, const float* b, float* c)`
pub(crate) unsafe fn gemm(
    be: &CudaBackend,
    spec: &GemmSpec,
    a: &CudaSlice<f32>,
    b: &CudaSlice<f32>,
    c: &mut CudaSlice<f32>,
) -> Result<()> {
    let (gx, gy) = (spec.n.div_ceil(TILE), spec.m.div_ceil(TILE));
    if gy > 65_535 || gx > i32::MAX as usize {
        return Err(Error::invalid(
            "gemm",
            format!("{}×{} output exceeds the tiled kernel's grid (m ≤ {})", spec.m, spec.n, 65_535 * TILE),
        ));
    }
    let p = abi::lk_gemm_params {
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
    };
    let cfg = LaunchConfig {
        grid_dim: (gx as u32, gy as u32, 1),
        block_dim: (TILE as u32, TILE as u32, 1),
        shared_mem_bytes: 0,
    };
    launch!(be, "gemm_tiled16_f32", cfg, [&p, a, b, c])
}
