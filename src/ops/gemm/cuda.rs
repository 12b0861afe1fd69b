//! Typed launchers for `kernels/gemm.cu` (f32 SIMT), `kernels/gemm_tc.cu` (tensor cores, mma.sync)
//! and `kernels/gemm_wgmma.cu` (Hopper tensor cores, wgmma + TMA).
//!
//! Every kernel takes `(lk_gemm_params p, const T* a, const T* b, float* c, const float* bias,
//! const float* y)` with `T` = f32, or the 16-bit storage of bf16/f16; the wgmma kernels take the
//! TMA tensor maps of A and B (`CUtensorMap`, by value) in place of the two pointers.
//!
//! # Safety
//! `gemm` and `gemm_half` are `unsafe`: the caller guarantees the spec was validated against the
//! buffers and the input type (`GemmSpec::validate`, `validate_precision`; called by `ops::gemm`).

use std::collections::HashMap;

use cudarc::driver::sys::{
    CUevent_flags, CUresult, CUstreamCaptureStatus, CUtensorMap, CUtensorMapDataType, CUtensorMapFloatOOBfill,
    CUtensorMapInterleave, CUtensorMapL2promotion, CUtensorMapSwizzle,
};
use cudarc::driver::{CudaSlice, DevicePtr, DeviceRepr, LaunchConfig};

use super::tune::{is_ineligible, measure_fastest};
use super::{
    auto_kernel, AutoFamily, GemmEpilogue, GemmKernel, GemmMath, GemmSpec, GemmTuneKey, GemmTuneRecord, GemmTuning,
    HalfFloat, SPLITK_TILE_COUNTS, SPLITK_WORKSPACE_FLOATS,
};
use crate::backend::cuda::{abi, launch, CudaBackend};
use crate::backend::DType;
use crate::error::{Error, Result};
use crate::ops::elementwise::cuda::abi_activation;
use crate::ops::Activation;

/// One kernel's launch shape: output tile (rows × columns), thread block, dynamic shared memory.
struct Shape {
    name: &'static str,
    tile: (usize, usize),
    block: (u32, u32, u32),
    smem: u32,
}

/// Dynamic shared memory of every wgmma kernel (`WgConfig::SMEM_BYTES` of kernels/gemm_wgmma.cu,
/// which asserts the same value): 1 KiB of alignment slack and a 192 KiB pipeline.
const WGMMA_SMEM: u32 = 197_632;

/// Dynamic shared memory of v5 (`gemm_simt64_slicedk4_f32`): 4 k-slice groups' double buffers of
/// 16 × (64 + 4) floats for each operand (`LK_S3_GROUP_SMEM` in kernels/gemm.cu).
const SIMT_SLICEDK4_SMEM: u32 = 4 * 2 * 16 * (68 + 68) * 4;

/// Dynamic shared memory of v25 (`gemm_simt_shortk_persistent_f32`): two stages of a 32-k chunk,
/// A as [32][128 + 4] and B as [32][64 + 4] floats (`LK_SKP_STAGE` in kernels/gemm.cu).
const SIMT_SHORTK_PERSISTENT_SMEM: u32 = 2 * 32 * (132 + 68) * 4;

/// Dynamic shared memory of the swizzled `mma.sync` kernels v7, v10 and v11 (`Tc2Tile::SMEM_BYTES`
/// in kernels/gemm_tc.cu, which asserts the same values): `stages` stages of a 128×64 A and a
/// `bn`×64 B tile of 16-bit elements, unpadded (swizzled); the epilogue parks its accumulators in
/// the same memory. v7: 144 KiB; v10 (bn 128): 96 KiB, so two blocks fit an SM of an H100 / H200;
/// v11 (4 stages): 192 KiB, H100 / H200 only (launch_kernel refuses it elsewhere).
const fn tc2_smem(bn: u32, stages: u32) -> u32 {
    stages * (128 + bn) * 64 * 2
}

/// Dynamic shared memory of the tensor-core kernels (`kernels/gemm_tc.cu`) with `bm × bn` block
/// tiles over `warps_m × warps_n` warps, bytes per element `e`, k step `bk`: the larger of
/// - the pipeline: 3 stages of an A and a B tile whose rows are padded by one 16-byte chunk (two for
///   f32 tiles contiguous along m/n), each operand in the larger of its two layouts;
/// - the epilogue's parking space: each warp's WM×WN accumulators, at most 32 columns at a time
///   (rows unpadded: `tc_park_and_store` permutes their columns instead).
fn tc_smem(bm: usize, bn: usize, (warps_m, warps_n): (usize, usize), e: usize, bk: usize) -> u32 {
    let chunk = 16 / e;
    let operand = |rows: usize| {
        let k_major = rows * (bk + chunk); // rows of the tile, k contiguous
        let mn_major = bk * (rows + if e == 4 { 2 * chunk } else { chunk }); // rows along k
        k_major.max(mn_major)
    };
    let pipeline = 3 * (operand(bm) + operand(bn)) * e;
    let (wm, wn) = (bm / warps_m, bn / warps_n);
    let park_cols = if wn >= 64 { wn / 2 } else { wn };
    let park = warps_m * warps_n * wm * park_cols * 4;
    pipeline.max(park) as u32
}

/// The kernels whose dynamic shared memory exceeds the default 48 KiB, with their needs (read off
/// the launch shapes): the backend raises each one's limit once, when it loads the modules.
pub(crate) fn dynamic_smem() -> impl Iterator<Item = (&'static str, u32)> {
    launch_shapes().filter(|s| s.smem > 48 * 1024).map(|s| (s.name, s.smem))
}

/// The launch shape of every kernel version in every input type it takes (f32 for the SIMT ones).
fn launch_shapes() -> impl Iterator<Item = Shape> {
    let simt = GemmKernel::SIMT.into_iter().map(|k| shape(k, DType::F32));
    let tc = GemmKernel::TENSOR_CORE.into_iter().chain(GemmKernel::HOPPER);
    simt.chain(tc.flat_map(|k| [DType::BF16, DType::F16, DType::F32].map(|d| shape(k, d)))).filter_map(|s| s.ok())
}

fn shape(kernel: GemmKernel, dtype: DType) -> Result<Shape> {
    let simt = |name, tile, threads| Ok(Shape { name, tile: (tile, tile), block: (threads, 1, 1), smem: 0 });
    // v30–v32: 128×200 tiles of C (v32: 200×128), 320 threads.
    let wide = |name, tile| Ok(Shape { name, tile, block: (320, 1, 1), smem: 0 });
    let tc = |names: [&'static str; 3], (bm, bn): (usize, usize), warps: (usize, usize)| {
        let (name, e, bk) = match dtype {
            DType::BF16 => (names[0], 2, 32),
            DType::F16 => (names[1], 2, 32),
            _ => (names[2], 4, 16),
        };
        let threads = (32 * warps.0 * warps.1) as u32;
        Ok(Shape { name, tile: (bm, bn), block: (threads, 1, 1), smem: tc_smem(bm, bn, warps, e, bk) })
    };
    // v7, v10, v11: bf16 / f16 only; 128-row tiles.
    let tc2 = |names: [&'static str; 2], bn: usize, threads: u32, stages: u32| {
        let name = match dtype {
            DType::BF16 => names[0],
            DType::F16 => names[1],
            _ => return Err(Error::invalid("gemm", format!("{kernel:?} takes bf16 or f16 inputs"))),
        };
        Ok(Shape { name, tile: (128, bn), block: (threads, 1, 1), smem: tc2_smem(bn as u32, stages) })
    };
    let wgmma = |names: [&'static str; 2], tile_n: usize| {
        let name = match dtype {
            DType::BF16 => names[0],
            DType::F16 => names[1],
            _ => return Err(Error::invalid("gemm", format!("{kernel:?} takes bf16 or f16 inputs"))),
        };
        Ok(Shape { name, tile: (128, tile_n), block: (384, 1, 1), smem: WGMMA_SMEM })
    };
    match kernel {
        // v1 is the one 2-D thread block: a thread per output of its 16×16 tile.
        GemmKernel::Tiled16 => Ok(Shape { name: "gemm_tiled16_f32", tile: (16, 16), block: (16, 16, 1), smem: 0 }),
        GemmKernel::Simt128 => simt("gemm_simt128_f32", 128, 256),
        GemmKernel::Simt128Warp => simt("gemm_simt128_warp_f32", 128, 256),
        GemmKernel::Simt128Warp2Cta => simt("gemm_simt128_warp_2cta_f32", 128, 256),
        GemmKernel::Simt64Warp => simt("gemm_simt64_warp_f32", 64, 128),
        GemmKernel::Simt32SlicedK => simt("gemm_simt32_slicedk_f32", 32, 256),
        GemmKernel::Simt64SplitK => simt("gemm_simt64_splitk_f32", 64, 128),
        GemmKernel::Simt128Warp4 => simt("gemm_simt128_warp4_f32", 128, 128),
        GemmKernel::Simt128WarpDb => simt("gemm_simt128_warp_db_f32", 128, 256),
        GemmKernel::Simt64WarpDb => simt("gemm_simt64_warp_db_f32", 64, 128),
        GemmKernel::Simt64WarpDbSplitK => simt("gemm_simt64_warp_db_splitk_f32", 64, 128),
        GemmKernel::Simt64WarpDbSplitKFused => simt("gemm_simt64_warp_db_splitk_fused_f32", 64, 128),
        GemmKernel::Simt64Async => simt("gemm_simt64_async_f32", 64, 128),
        GemmKernel::Simt64AsyncSplitKFused => simt("gemm_simt64_async_splitk_fused_f32", 64, 128),
        GemmKernel::Simt128WarpDbSplitKFused => simt("gemm_simt128_warp_db_splitk_fused_f32", 128, 256),
        GemmKernel::SimtShortK => {
            Ok(Shape { name: "gemm_simt_shortk_f32", tile: (128, 64), block: (256, 1, 1), smem: 0 })
        }
        GemmKernel::SimtShortKPersistent => Ok(Shape {
            name: "gemm_simt_shortk_persistent_f32",
            tile: (128, 64),
            block: (256, 1, 1),
            smem: SIMT_SHORTK_PERSISTENT_SMEM,
        }),
        GemmKernel::SimtSmallMSplitK => {
            Ok(Shape { name: "gemm_simt_small_m_splitk_f32", tile: (32, 128), block: (128, 1, 1), smem: 0 })
        }
        GemmKernel::SimtSmallNSplitK => {
            Ok(Shape { name: "gemm_simt_small_n_splitk_f32", tile: (128, 32), block: (128, 1, 1), smem: 0 })
        }
        GemmKernel::Simt128WarpDbStreamK => simt("gemm_simt128_warp_db_streamk_f32", 128, 256),
        GemmKernel::Simt64WarpDbStreamK => simt("gemm_simt64_warp_db_streamk_f32", 64, 128),
        GemmKernel::Simt128x200WarpDb => wide("gemm_simt128x200_warp_db_f32", (128, 200)),
        GemmKernel::Simt128x200WarpDbSplitKFused => wide("gemm_simt128x200_warp_db_splitk_fused_f32", (128, 200)),
        GemmKernel::Simt200x128WarpDbSplitKFused => wide("gemm_simt200x128_warp_db_splitk_fused_f32", (200, 128)),
        GemmKernel::Simt64SlicedK4 => {
            Ok(Shape { name: "gemm_simt64_slicedk4_f32", tile: (64, 64), block: (512, 1, 1), smem: SIMT_SLICEDK4_SMEM })
        }
        GemmKernel::TensorCore128 => tc(["gemm_tc128_bf16", "gemm_tc128_f16", "gemm_tc128_tf32"], (128, 128), (2, 4)),
        GemmKernel::TensorCore64 => tc(["gemm_tc64_bf16", "gemm_tc64_f16", "gemm_tc64_tf32"], (64, 64), (2, 2)),
        GemmKernel::TensorCore64SplitK => {
            tc(["gemm_tc64_splitk_bf16", "gemm_tc64_splitk_f16", "gemm_tc64_splitk_tf32"], (64, 64), (2, 2))
        }
        GemmKernel::TensorCore128x256 => {
            tc(["gemm_tc128x256_bf16", "gemm_tc128x256_f16", "gemm_tc128x256_tf32"], (128, 256), (2, 4))
        }
        GemmKernel::TensorCore128x256Swizzled => tc2(["gemm_tc2_128x256_bf16", "gemm_tc2_128x256_f16"], 256, 256, 3),
        GemmKernel::TensorCore128x128Swizzled => tc2(["gemm_tc2_128x128_bf16", "gemm_tc2_128x128_f16"], 128, 128, 3),
        GemmKernel::TensorCore128x256Swizzled4Stage => {
            tc2(["gemm_tc2_128x256s4_bf16", "gemm_tc2_128x256s4_f16"], 256, 256, 4)
        }
        GemmKernel::TensorCore128x256SwizzledPersistent => {
            tc2(["gemm_tc2p_128x256_bf16", "gemm_tc2p_128x256_f16"], 256, 256, 3)
        }
        GemmKernel::Wgmma256 => wgmma(["gemm_wgmma256_bf16", "gemm_wgmma256_f16"], 256),
        GemmKernel::Wgmma128 => wgmma(["gemm_wgmma128_bf16", "gemm_wgmma128_f16"], 128),
        GemmKernel::Wgmma128PingPong => wgmma(["gemm_wgmma128pp_bf16", "gemm_wgmma128pp_f16"], 128),
        GemmKernel::Wgmma256Multicast => wgmma(["gemm_wgmma256mc_bf16", "gemm_wgmma256mc_f16"], 256),
        GemmKernel::Wgmma256Persistent => wgmma(["gemm_wgmma256p_bf16", "gemm_wgmma256p_f16"], 256),
        GemmKernel::Wgmma256PersistentEarlyRelease => wgmma(["gemm_wgmma256pe_bf16", "gemm_wgmma256pe_f16"], 256),
        GemmKernel::Wgmma256PersistentMulticast => wgmma(["gemm_wgmma256pmc_bf16", "gemm_wgmma256pmc_f16"], 256),
        GemmKernel::TensorCore128x256TmaPersistent => wgmma(["gemm_tma_mma256p_bf16", "gemm_tma_mma256p_f16"], 256),
        GemmKernel::Auto => Err(Error::invalid("gemm", "internal: Auto must be resolved before launch")),
    }
}

/// Whether the Hopper kernels were loaded (`CudaBackend::supports_wgmma`).
pub(crate) fn wgmma_loaded(be: &CudaBackend) -> bool {
    shape(GemmKernel::Wgmma256, DType::BF16).is_ok_and(|s| be.has_function(s.name))
}

/// f32 inputs: exact SIMT, or TF32 tensor cores when the spec asks for them.
pub(crate) unsafe fn gemm(
    be: &CudaBackend,
    spec: &GemmSpec,
    a: &CudaSlice<f32>,
    b: &CudaSlice<f32>,
    c: &mut CudaSlice<f32>,
    epilogue: &GemmEpilogue<'_, CudaBackend>,
) -> Result<()> {
    launch_gemm(be, spec, DType::F32, spec.math == GemmMath::Tf32, a, b, c, epilogue)
}

/// bf16 / f16 inputs on tensor cores.
pub(crate) unsafe fn gemm_half<T: HalfFloat + DeviceRepr>(
    be: &CudaBackend,
    spec: &GemmSpec,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    c: &mut CudaSlice<f32>,
    epilogue: &GemmEpilogue<'_, CudaBackend>,
) -> Result<()> {
    launch_gemm(be, spec, T::DTYPE, true, a, b, c, epilogue)
}

#[allow(clippy::too_many_arguments)]
unsafe fn launch_gemm<T: DeviceRepr>(
    be: &CudaBackend,
    spec: &GemmSpec,
    dtype: DType,
    tensor_cores: bool,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    c: &mut CudaSlice<f32>,
    epilogue: &GemmEpilogue<'_, CudaBackend>,
) -> Result<()> {
    if spec.kernel != GemmKernel::Auto {
        return launch_kernel(be, spec, spec.kernel, dtype, a, b, c, epilogue);
    }
    // Auto: the choice; if it can't take this call (a stored or loaded choice meeting a limit
    // it was not measured at, say), the fixed rule's kernel; then the 128-row tiles, whose grid
    // takes the tallest outputs (m up to 65535·128). A refusal from these checks comes before
    // anything is launched, so the next kernel starts from the caller's C.
    let (chosen, fixed) = resolve_auto(be, spec, dtype, tensor_cores, a, b)?;
    let tall = if dtype == DType::F32 && !tensor_cores { GemmKernel::Simt128WarpDb } else { GemmKernel::TensorCore128 };
    let refused = |r: &Result<()>| matches!(r, Err(Error::InvalidArgument { .. } | Error::KernelsNotBuilt(_)));
    let first = launch_kernel(be, spec, chosen, dtype, a, b, c, epilogue);
    if !refused(&first) {
        return first;
    }
    let mut tried = vec![chosen];
    for next in [fixed, tall] {
        if tried.contains(&next) {
            continue;
        }
        tried.push(next);
        let result = launch_kernel(be, spec, next, dtype, a, b, c, epilogue);
        if !refused(&result) {
            return result;
        }
    }
    // Every kernel refused: the choice's reason.
    first
}

/// Launches `kernel` (not Auto) on the call, or says why it can't take it.
#[allow(clippy::too_many_arguments)]
unsafe fn launch_kernel<T: DeviceRepr>(
    be: &CudaBackend,
    spec: &GemmSpec,
    kernel: GemmKernel,
    dtype: DType,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    c: &mut CudaSlice<f32>,
    epilogue: &GemmEpilogue<'_, CudaBackend>,
) -> Result<()> {
    let Shape { name, tile, block, smem } = shape(kernel, dtype)?;
    // (A kernel that isn't loaded here, like the Hopper ones elsewhere, gets its own error below.)
    if be.has_function(name) && smem as usize > be.max_shared_memory_per_block() {
        return Err(Error::invalid(
            "gemm",
            format!(
                "{kernel:?} needs {smem} B of shared memory per block; this GPU allows {}",
                be.max_shared_memory_per_block()
            ),
        ));
    }
    let (gx, gy) = (spec.n.div_ceil(tile.1), spec.m.div_ceil(tile.0));
    // Rows of tiles go on grid y (a 65535 limit; v13's clusters of two round it up to even),
    // except in the persistent and stream-K kernels' 1-D grids.
    let one_d = kernel.is_persistent() || kernel.is_stream_k();
    let gy_launched = if kernel == GemmKernel::Wgmma256Multicast { gy.next_multiple_of(2) } else { gy };
    if (!one_d && gy_launched > 65_535) || gx > i32::MAX as usize {
        return Err(Error::invalid(
            "gemm",
            format!(
                "{}×{} output exceeds {kernel:?}'s grid ({gx}×{gy_launched} blocks of {}×{} tiles)",
                spec.m, spec.n, tile.0, tile.1
            ),
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
        k_split: 0,
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
    if kernel.is_stream_k() {
        // v28, v29 (kernels/gemm.cu has the scheme): `streamk_blocks` blocks, each with a slot of the
        // split-k workspace and a flag among its tile counters (the first is the ticket counter).
        // The kernel numbers (tile, 16-k step) units in 32 bits, up to blocks · ⌈units / blocks⌉
        // ≤ units + blocks − 1 (the end of the last block's share).
        let blocks = super::streamk_blocks(kernel, spec.m, spec.n, spec.k, be.sm_count());
        let units = gx.checked_mul(gy).and_then(|t| t.checked_mul(spec.k.div_ceil(16)));
        if units.and_then(|u| u.checked_add(blocks)).is_none_or(|u| u > i32::MAX as usize) {
            return Err(Error::invalid("gemm", format!("{kernel:?}: {}×{}×{} is too large", spec.m, spec.n, spec.k)));
        }
        let mut ws = be.splitk_workspace()?;
        let ws = &mut *ws;
        let cfg = LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: block, shared_mem_bytes: smem };
        return launch!(be, name, cfg, [&p, a, b, c, bias, y, &mut ws.partials, &mut ws.tile_counts]);
    }
    if kernel.is_split_k() {
        return launch_splitk(be, spec, p, (kernel, name), (gx as u32, gy as u32), (block, smem), a, b, c, bias, y);
    }
    // The persistent kernels run one or two blocks per SM (at most one per tile); each walks its
    // tiles.
    let grid = if kernel.is_persistent() {
        // v14 walks pairs of vertically adjacent tiles, one cluster of two blocks per pair
        // (compiled in: __cluster_dims__(2, 1, 1)); H100 SMs come in pairs (TPCs), so SMs / 2
        // clusters fit at once.
        let pairs = kernel == GemmKernel::Wgmma256PersistentMulticast;
        let items = if pairs { gx * gy.div_ceil(2) } else { gx * gy };
        let slots = if pairs { be.sm_count() / 2 } else { be.sm_count() * kernel.persistent_blocks_per_sm() };
        let blocks = items.min(slots.max(1));
        // The kernels count tiles, and the wgmma ones k steps over a block's tiles (j·steps + kt),
        // in 32 bits.
        if items > i32::MAX as usize || items.div_ceil(blocks) * spec.k.div_ceil(64) > i32::MAX as usize {
            return Err(Error::invalid("gemm", format!("{kernel:?}: {}×{}×{} is too large", spec.m, spec.n, spec.k)));
        }
        ((if pairs { 2 * blocks } else { blocks }) as u32, 1, 1)
    } else if kernel == GemmKernel::Wgmma256Multicast {
        // Clusters of two blocks along y (compiled in: __cluster_dims__(1, 2, 1)).
        (gx as u32, gy.next_multiple_of(2) as u32, 1)
    } else {
        (gx as u32, gy as u32, 1)
    };
    let cfg = LaunchConfig { grid_dim: grid, block_dim: block, shared_mem_bytes: smem };
    if kernel.is_hopper() {
        return launch_wgmma(be, spec, p, (kernel, name), dtype, tile.1, cfg, a, b, c, bias, y);
    }
    launch!(be, name, cfg, [&p, a, b, c, bias, y])
}

/// The kernel `Auto` runs: the shipped table's choice for this GPU and key, else the fixed rule;
/// or when measuring, the choice measured (or loaded) for this key, measuring it now (on `a` and
/// `b` into a scratch output; the method is in `ops::gemm::tune`) if this is its first call and
/// the stream is not being captured. A stored choice whose kernel is not loaded here (a build
/// without it) gives way to the fixed rule. Returns the choice and the fixed rule's kernel.
unsafe fn resolve_auto<T: DeviceRepr>(
    be: &CudaBackend,
    spec: &GemmSpec,
    dtype: DType,
    tensor_cores: bool,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
) -> Result<(GemmKernel, GemmKernel)> {
    // The wgmma kernels, where the GPU has them and the operands suit TMA (also for a stored choice:
    // one measured on aligned operands may meet a view that is not).
    let wgmma = tensor_cores && dtype != DType::F32 && be.supports_wgmma() && {
        let stream = be.stream();
        let (pa, _ga) = a.device_ptr(stream);
        let (pb, _gb) = b.device_ptr(stream);
        check_wgmma_operands(GemmKernel::Wgmma256Persistent, spec, pa, pb).is_ok()
    };
    let fixed = auto_kernel(spec.m, spec.n, spec.k, AutoFamily::new(tensor_cores, wgmma), be.sm_count());
    let key = GemmTuneKey {
        m: spec.m,
        n: spec.n,
        k: spec.k,
        trans_a: spec.trans_a.is_yes(),
        trans_b: spec.trans_b.is_yes(),
        lda: spec.lda,
        ldb: spec.ldb,
        dtype,
        tensor_cores,
    };
    let loaded = |k: GemmKernel| shape(k, dtype).is_ok_and(|s| be.has_function(s.name)) && (wgmma || !k.is_hopper());
    let cached = |be: &CudaBackend| {
        let st = be.tune_state();
        (st.mode, st.choice(&key, fixed).filter(|&k| loaded(k)))
    };
    match cached(be) {
        (_, Some(chosen)) => return Ok((chosen, fixed)),
        (GemmTuning::Heuristic, None) => return Ok((fixed, fixed)),
        _ => {}
    }
    let capture =
        be.stream().capture_status().map_err(|e| Error::Cuda { context: "capture status", msg: e.to_string() })?;
    if capture != CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE {
        return Ok((fixed, fixed)); // nothing can be timed inside a capture
    }
    // One measurement at a time (they share the stream); another thread may have just made this one.
    let _measuring = be.measure_lock();
    match cached(be) {
        (_, Some(chosen)) => return Ok((chosen, fixed)),
        (GemmTuning::Heuristic, None) => return Ok((fixed, fixed)),
        _ => {}
    }
    // Out of memory for the scratch output: the fixed rule, not recorded.
    let Ok(mut scratch) = be.stream().alloc_zeros::<f32>(spec.m * spec.n) else { return Ok((fixed, fixed)) };
    let math = if dtype == DType::F32 && tensor_cores { GemmMath::Tf32 } else { GemmMath::F32 };
    let has_wgmma = be.supports_wgmma();
    let candidates = be.tune_state().candidates(dtype, math, has_wgmma, fixed);
    let launches_before = be.launches();
    let rec = measure_key(be, spec, key, fixed, &candidates, dtype, tensor_cores, a, b, &mut scratch);
    // The measurement's launches are not the caller's, whatever it returned.
    be.uncount_launches(be.launches().saturating_sub(launches_before));
    Ok(match rec? {
        Some(rec) => {
            let chosen = rec.chosen;
            be.tune_state().insert(rec);
            (chosen, fixed)
        }
        None => (fixed, fixed),
    })
}

/// Times `candidates` for `key` on `a`, `b` into `scratch` (m × n): warm-up on `fixed`, then
/// [`measure_fastest`] over batches queued behind a GPU spin (`ops::gemm::tune` has the method).
#[allow(clippy::too_many_arguments)]
unsafe fn measure_key<T: DeviceRepr>(
    be: &CudaBackend,
    spec: &GemmSpec,
    key: GemmTuneKey,
    fixed: GemmKernel,
    candidates: &[GemmKernel],
    dtype: DType,
    tensor_cores: bool,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    scratch: &mut CudaSlice<f32>,
) -> Result<Option<GemmTuneRecord>> {
    let event_err = |e: cudarc::driver::DriverError| Error::Cuda { context: "GEMM tuning event", msg: e.to_string() };
    // Plain product into the scratch output: the caller's C, bias and epilogue are not touched.
    let mut probe = GemmSpec { alpha: 1.0, beta: 0.0, ldc: spec.n, ..*spec };
    let flags = Some(CUevent_flags::CU_EVENT_DEFAULT);
    let (start, end) =
        (be.context().new_event(flags).map_err(event_err)?, be.context().new_event(flags).map_err(event_err)?);
    // n calls back to back, timed by the events, queued behind a spin that keeps the GPU busy while
    // the host enqueues them (a few µs a launch). If the start event had already passed when the
    // last call was queued, the queue ran dry: spin twice as long and time the batch again.
    let batch = |probe: &GemmSpec, scratch: &mut CudaSlice<f32>, n: usize| -> Result<f64> {
        let mut spin_ns = 20_000 + 8_000 * n as u64;
        for attempt in 0..3 {
            let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1, 1, 1), shared_mem_bytes: 0 };
            launch!(be, "spin_ns_u64", cfg, [&spin_ns])?;
            start.record(be.stream()).map_err(event_err)?;
            for _ in 0..n {
                launch_gemm(be, probe, dtype, tensor_cores, a, b, scratch, &GemmEpilogue::None)?;
            }
            let queued_in_time = !start.try_is_complete().map_err(event_err)?;
            end.record(be.stream()).map_err(event_err)?;
            end.synchronize().map_err(event_err)?;
            if queued_in_time || attempt == 2 {
                break;
            }
            spin_ns *= 2;
        }
        Ok(f64::from(start.elapsed_ms(&end).map_err(event_err)?) * 1e-3 / n as f64)
    };
    // Warm the GPU (clocks, caches, first-launch costs) on the fixed rule's kernel for about 3 ms
    // (on the first candidate if the fixed rule's is excluded); if even it can't take the call,
    // the candidates say so below.
    probe.kernel = if candidates.contains(&fixed) || candidates.is_empty() { fixed } else { candidates[0] };
    match batch(&probe, scratch, 1) {
        Ok(once) => {
            batch(&probe, scratch, ((3e-3 / once.max(1e-7)).ceil() as usize).clamp(1, 64))?;
        }
        Err(e) if is_ineligible(&e) => {}
        Err(e) => return Err(e),
    }
    // Calls per timed batch of each candidate: about 200 µs, from a batch of 4 after one untimed
    // call (which also tells whether the kernel can take the call).
    let mut reps: HashMap<GemmKernel, usize> = HashMap::new();
    measure_fastest(key, candidates, |kernel| {
        probe.kernel = kernel;
        let n = match reps.get(&kernel) {
            Some(&n) => n,
            None => {
                match launch_gemm(be, &probe, dtype, tensor_cores, a, b, scratch, &GemmEpilogue::None) {
                    Err(e) if is_ineligible(&e) => return Ok(None),
                    r => r?,
                }
                let per_call = batch(&probe, scratch, 4)?;
                let n = ((200e-6 / per_call.max(1e-7)).ceil() as usize).clamp(1, 64);
                reps.insert(kernel, n);
                n
            }
        };
        batch(&probe, scratch, n).map(Some)
    })
}

/// v4, v18, v24: the split kernel writes each k range's raw sums into a slice of the backend's workspace
/// (grid z = range), then `gemm_splitk_reduce_f32` adds the slices in order and applies α, β·C and
/// the epilogue. v19, v21, v22 (`splits_k_in_one_launch`): one kernel, whose last block per output
/// tile does the reduction (counting arrivals in the workspace's tile counters). The range count is
/// the kernel's own ([`GemmKernel::splitk_ranges`]).
#[allow(clippy::too_many_arguments)]
unsafe fn launch_splitk<T: DeviceRepr>(
    be: &CudaBackend,
    spec: &GemmSpec,
    mut p: abi::lk_gemm_params,
    (kernel, name): (GemmKernel, &'static str),
    (gx, gy): (u32, u32),
    (block, smem): ((u32, u32, u32), u32),
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    c: &mut CudaSlice<f32>,
    bias: &CudaSlice<f32>,
    y: &CudaSlice<f32>,
) -> Result<()> {
    let fused = kernel.splits_k_in_one_launch();
    let mn = spec.m * spec.n;
    if mn > SPLITK_WORKSPACE_FLOATS {
        return Err(Error::invalid(
            "gemm",
            format!("{}×{} output exceeds the split-k workspace ({SPLITK_WORKSPACE_FLOATS} floats)", spec.m, spec.n),
        ));
    }
    let tiles = gx as usize * gy as usize;
    if fused && tiles > SPLITK_TILE_COUNTS {
        return Err(Error::invalid(
            "gemm",
            format!("{}×{} output has {tiles} tiles, over the {SPLITK_TILE_COUNTS} tile counters", spec.m, spec.n),
        ));
    }
    let steps = spec.k.div_ceil(16);
    let k_split = steps.div_ceil(kernel.splitk_ranges(spec.m, spec.n, spec.k, be.sm_count())) * 16;
    let splits = spec.k.div_ceil(k_split);
    p.k_split = i32::try_from(k_split).map_err(|_| Error::invalid("gemm", format!("k = {} too long", spec.k)))?;
    let mut ws = be.splitk_workspace()?;
    let ws = &mut *ws;
    let cfg = LaunchConfig { grid_dim: (gx, gy, splits as u32), block_dim: block, shared_mem_bytes: smem };
    if fused {
        return launch!(be, name, cfg, [&p, a, b, c, bias, y, &mut ws.partials, &mut ws.tile_counts]);
    }
    launch!(be, name, cfg, [&p, a, b, &mut ws.partials, bias, y])?;
    let cfg = crate::backend::cuda::grid_1d(mn);
    launch!(be, "gemm_splitk_reduce_f32", cfg, [&p, &ws.partials, &(splits as i32), c, bias, y])
}

/// The driver's TMA descriptor, passed by value as a kernel parameter (`lk_tma_map` in
/// kernels/gemm_wgmma.cu).
#[repr(transparent)]
struct TmaMap(CUtensorMap);

// SAFETY: CUtensorMap is the driver's #[repr(C)] 128-byte opaque descriptor; the kernel declares
// the parameter as a 128-byte struct (`const __grid_constant__ lk_tma_map`), so copying these bytes
// is exactly what the driver expects.
unsafe impl DeviceRepr for TmaMap {}

/// A TMA map of a row-major `rows × cols` matrix of 16-bit elements at device address `ptr` with
/// row stride `ld` (elements), copied in boxes of `box_rows` rows × 64 columns (128 bytes) with the
/// 128-byte swizzle; parts of a box outside the matrix read as zeros.
fn tma_map(dtype: DType, ptr: u64, rows: usize, cols: usize, ld: usize, box_rows: u32) -> Result<TmaMap> {
    let data_type = match dtype {
        DType::BF16 => CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
        _ => CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
    };
    let dims = [cols as u64, rows as u64];
    let strides = [(ld * 2) as u64];
    let boxes = [64u32, box_rows];
    let element_strides = [1u32, 1];
    let mut map = TmaMap(CUtensorMap { opaque: [0; 16] });
    // SAFETY: every pointer argument points at a live local array of the length the rank (2)
    // implies; the call only writes the 128-byte map. The caller checked the driver's rules
    // (16-byte aligned address and stride, box within 256 rows and 128 bytes).
    let res = unsafe {
        cudarc::driver::sys::cuTensorMapEncodeTiled(
            &mut map.0,
            data_type,
            2,
            ptr as *mut std::ffi::c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            boxes.as_ptr(),
            element_strides.as_ptr(),
            CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
    };
    if res != CUresult::CUDA_SUCCESS {
        // The driver refused this operand (nothing ran): a launch that can't happen, not a broken
        // context.
        return Err(Error::Launch {
            kernel: "gemm (TMA descriptor)",
            msg: format!("cuTensorMapEncodeTiled({rows}×{cols}, ld {ld}, box {box_rows}×64): {res:?}"),
        });
    }
    Ok(map)
}

/// Whether the wgmma kernels can take operands at device addresses `pa`, `pb` (TMA: 16-byte aligned
/// base addresses and rows, extents under 2^31).
fn check_wgmma_operands(kernel: GemmKernel, spec: &GemmSpec, pa: u64, pb: u64) -> Result<()> {
    let limit = i32::MAX as usize;
    if spec.m > limit || spec.n > limit || spec.k > limit {
        return Err(Error::invalid("gemm", format!("{kernel:?} takes m, n, k < 2^31")));
    }
    if pa % 16 != 0 || pb % 16 != 0 || spec.lda % 8 != 0 || spec.ldb % 8 != 0 {
        return Err(Error::invalid(
            "gemm",
            format!(
                "{kernel:?} loads with TMA, which needs 16-byte aligned base addresses and rows: lda = {} and ldb = {} must be multiples of 8",
                spec.lda, spec.ldb
            ),
        ));
    }
    Ok(())
}

/// v6 (Hopper): encodes the TMA maps of A and B as stored (K-major operands in boxes of 64 k × the
/// tile's rows, MN-major ones in 64 × 64 boxes, as kernels/gemm_wgmma.cu loads them) and launches.
#[allow(clippy::too_many_arguments)]
unsafe fn launch_wgmma<T: DeviceRepr>(
    be: &CudaBackend,
    spec: &GemmSpec,
    p: abi::lk_gemm_params,
    (kernel, name): (GemmKernel, &'static str),
    dtype: DType,
    tile_n: usize,
    cfg: LaunchConfig,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    c: &mut CudaSlice<f32>,
    bias: &CudaSlice<f32>,
    y: &CudaSlice<f32>,
) -> Result<()> {
    if !be.has_function(name) {
        return Err(Error::invalid(
            "gemm",
            format!(
                "{kernel:?} runs on compute capability 9.0 GPUs (H100, H200) with 90 in LATENTKIT_CUDA_ARCHS; this is {}",
                be.compute_capability().map(|(x, y)| format!("sm_{x}{y}")).unwrap_or_else(|_| "unknown".into())
            ),
        ));
    }
    let stream = be.stream();
    let (pa, _ga) = a.device_ptr(stream);
    let (pb, _gb) = b.device_ptr(stream);
    check_wgmma_operands(kernel, spec, pa, pb)?;
    let (ar, ac) = spec.stored_a();
    let (br, bc) = spec.stored_b();
    // K-major A ([m, k]) comes in one box of the tile's 128 rows; MN-major ([k, m]) in two 64 × 64.
    let map_a = tma_map(dtype, pa, ar, ac, spec.lda, if spec.trans_a.is_yes() { 64 } else { 128 })?;
    // K-major B ([n, k]) in one box of tile_n rows (v9, v14: two, one from each block of the cluster);
    // MN-major ([k, n]) in tile_n / 64 boxes of 64 × 64.
    let multicast = matches!(kernel, GemmKernel::Wgmma256Multicast | GemmKernel::Wgmma256PersistentMulticast);
    let b_rows = if multicast { tile_n / 2 } else { tile_n };
    let map_b = tma_map(dtype, pb, br, bc, spec.ldb, if spec.trans_b.is_yes() { b_rows as u32 } else { 64 })?;
    launch!(be, name, cfg, [&p, &map_a, &map_b, c, bias, y])
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernels_past_48_kib_raise_their_shared_memory_limit() {
        let raised: Vec<_> = super::dynamic_smem().collect();
        assert_eq!(
            raised,
            [
                ("gemm_simt64_slicedk4_f32", 69_632),
                ("gemm_simt_shortk_persistent_f32", 51_200),
                ("gemm_tc128_bf16", 65_536),
                ("gemm_tc128_f16", 65_536),
                ("gemm_tc128_tf32", 65_536),
                ("gemm_tc128x256_bf16", 92_160),
                ("gemm_tc128x256_f16", 92_160),
                ("gemm_tc128x256_tf32", 92_160),
                ("gemm_tc2_128x256_bf16", 147_456),
                ("gemm_tc2_128x256_f16", 147_456),
                ("gemm_tc2_128x128_bf16", 98_304),
                ("gemm_tc2_128x128_f16", 98_304),
                ("gemm_tc2_128x256s4_bf16", 196_608),
                ("gemm_tc2_128x256s4_f16", 196_608),
                ("gemm_tc2p_128x256_bf16", 147_456),
                ("gemm_tc2p_128x256_f16", 147_456),
                ("gemm_wgmma256_bf16", 197_632),
                ("gemm_wgmma256_f16", 197_632),
                ("gemm_wgmma128_bf16", 197_632),
                ("gemm_wgmma128_f16", 197_632),
                ("gemm_wgmma128pp_bf16", 197_632),
                ("gemm_wgmma128pp_f16", 197_632),
                ("gemm_wgmma256mc_bf16", 197_632),
                ("gemm_wgmma256mc_f16", 197_632),
                ("gemm_wgmma256p_bf16", 197_632),
                ("gemm_wgmma256p_f16", 197_632),
                ("gemm_wgmma256pe_bf16", 197_632),
                ("gemm_wgmma256pe_f16", 197_632),
                ("gemm_wgmma256pmc_bf16", 197_632),
                ("gemm_wgmma256pmc_f16", 197_632),
                ("gemm_tma_mma256p_bf16", 197_632),
                ("gemm_tma_mma256p_f16", 197_632),
            ],
            "the other kernels fit the default 48 KiB"
        );
    }

    // Every kernel name the launcher can ask for is an entry of the embedded fatbins (build.rs
    // checked those against the PTX), so a misspelt name fails here, on any machine, rather than on
    // a GPU; the Hopper kernels included, which the CPU emulator can't run.
    #[test]
    fn every_launched_kernel_name_is_built() {
        let built: Vec<&str> =
            crate::backend::cuda::KERNEL_MODULES.iter().flat_map(|m| m.functions.iter().copied()).collect();
        let mut names: Vec<&str> = super::launch_shapes().map(|s| s.name).collect();
        names.push("gemm_splitk_reduce_f32");
        // (The sm_90a source is built only when LATENTKIT_CUDA_ARCHS has 90.)
        let hopper = |n: &str| n.starts_with("gemm_wgmma") || n.starts_with("gemm_tma_");
        let hopper_built = built.iter().any(|f| hopper(f));
        for name in names.into_iter().filter(|n| hopper_built || !hopper(n)) {
            assert!(built.contains(&name), "`{name}` is launched but not built");
        }
    }
}
