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
//! Precisions (inputs → accumulation → C): f32 → f32 → f32 ([`gemm`], exact f32 products: the
//! default), f32 rounded to TF32 → f32 → f32 (only with [`GemmMath::Tf32`], an explicit opt-in), and
//! bf16 or f16 → f32 → f32 ([`gemm_half`]; the products of two half-precision numbers are exact in
//! f32). The CPU path computes each the same way (TF32: the inputs are rounded by [`cpu::round_tf32`],
//! like the GPU's `cvt.rna`).
//!
//! Numerics: the CPU reference ([`cpu::gemm_ref`]) accumulates in f64 and is the spec. With `K` the
//! inner dimension and `ε = 2⁻²³` (f32's unit roundoff ×2), each output differs from the reference
//! of its inputs by at most about:
//! - f32 (CPU `matrixmultiply`, SIMT kernels): `K · ε · max|a| · max|b|` ([`f32_error_bound`]);
//! - bf16/f16 tensor cores: the same bound on the half-precision values, up to a factor of 2 for
//!   the tensor cores' accumulation (the tests allow 4×);
//! - TF32, against the unrounded f32 inputs: each input moves by up to `2⁻¹¹` relative, so
//!   `K · (2⁻¹⁰ + ε) · max|a| · max|b|` ([`tf32_error_bound`]); against the TF32-rounded inputs,
//!   the f32 bound. bf16 data has `2⁻⁸` relative rounding (f16: `2⁻¹¹`) if it was converted from f32.
//!
//! Kernels (`kernels/gemm.cu`, `kernels/gemm_tc.cu`): [`GemmKernel`] lists the numbered versions;
//! [`GemmKernel::Auto`] picks one by precision and output shape ([`auto_kernel`]), or, on a CUDA
//! backend set to [`GemmTuning::Measure`], the fastest measured for each shape ([`tune`]).

pub mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;
pub mod tune;

pub use tune::{parse_kernel_list, GemmTuneKey, GemmTuneRecord, GemmTuning};

use super::on_device;
use crate::backend::{Backend, DType, Scalar};
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
/// while tuning, as in llm.c; `Auto` picks by precision and shape ([`auto_kernel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GemmKernel {
    #[default]
    Auto,
    /// v1 (f32): 16×16 shared-memory tiles, one output per thread.
    Tiled16,
    /// v2 (f32): 128×128 block tiles, 8×8 register blocking per thread, float4 shared-memory reads.
    Simt128,
    /// v3 (f32): 128×128 block tiles, 8 warps with 64×32 warp tiles, float4 global loads, double
    /// buffering. For outputs with at least one block per SM.
    Simt128Warp,
    /// v3 (f32): [`GemmKernel::Simt128Warp`] capped at 128 registers a thread so that two blocks
    /// share an SM (the uncapped one takes 173 on sm_90, one block per SM), at the cost of some
    /// register spills. The fixed rule never picks it; measured tuning does where it wins.
    Simt128Warp2Cta,
    /// v3 (f32): 64×64 block tiles, 4 warps with 32×32 warp tiles (medium outputs).
    Simt64Warp,
    /// v3 (f32): 32×32 block tiles whose k range is sliced over 4 thread groups and added in a
    /// fixed order (skinny outputs with a long k, like 128×20×400).
    Simt32SlicedK,
    /// v4 (f32): split-k across blocks: the 64×64 tiles of v3, each block summing one range of k
    /// into a workspace slice, then a second kernel adding the slices in order and applying the
    /// epilogue ([`splitk_splits`] ranges). For outputs too small to fill the GPU with a long k,
    /// like the dW = dYᵀX products of a large batch (20×400×8192). m·n must fit
    /// [`SPLITK_WORKSPACE_FLOATS`]. The fixed rule now takes v18 ([`GemmKernel::Simt64WarpDbSplitK`])
    /// for these products.
    Simt64SplitK,
    /// v5 (f32): the 64×64 tiles of v3 with the block's k steps sliced over 4 groups of 4 warps
    /// (512 threads, 68 KiB of dynamic shared memory), added in a fixed group order: 16 warps per
    /// SM where v3 runs 4, for outputs of about one 64-tile per SM with a medium k (the 784↔400
    /// products of a batch of 1024). On an H100 (2026-11-27) 34.8 µs at 1024×400×784 where
    /// [`GemmKernel::Simt64Warp`] takes 40.2 (cuBLAS 25.8); slower where the 64-tiles alone fill the
    /// GPU. The fixed rule picked it for 64-tiles between half and all of the SMs and
    /// 128 ≤ k ≤ 2048 until v17 and v18 took those products (fourth H100 run: 1024×400×784 33.1 µs
    /// with v17 against its 34.8); measured tuning and the shipped table may still pick it.
    Simt64SlicedK4,
    /// v3 (f32): 128×128 block tiles over 4 warps with 64×64 warp tiles (128 threads, 128 outputs a
    /// thread: more FMAs per shared-memory read than [`GemmKernel::Simt128Warp`]'s 64, and two
    /// blocks per SM). ptxas holds it to 255 registers with ~180 bytes of spills; on an H100
    /// (2026-11-27) 3833 µs at 4096³ against [`GemmKernel::Simt128Warp`]'s 3627. The fixed rule never
    /// picks it.
    Simt128Warp4,
    /// v16 (f32): [`GemmKernel::Simt128Warp`]'s 128×128 tiles, warp tiles and lane layout with a main
    /// loop rebuilt to issue fewer instructions other than FMAs: the next k step's shared-memory
    /// fragments are read into a second set of registers while the current step multiplies (also
    /// across the barrier between tiles), each thread's global chunks are pointers advanced by a
    /// constant per tile and its shared-memory addresses compile-time offsets from one base, and
    /// the m / n edges are clamped instead of checked (rows past the matrix only feed outputs that
    /// are not stored), so only the last, partial k tile checks bounds. Operands whose rows are not
    /// 16-byte aligned, or whose contiguous dimension is not a multiple of 4, take an element-wise
    /// copy of the loads. 33 KiB of static shared memory, one block per SM (187 registers a thread
    /// on sm_86–sm_90, 175 on sm_80, no spills). The fixed rule's kernel for outputs that fill the
    /// GPU in 128-tiles: on an H100 (2026-11-27, third run, BENCHMARKS.md) 44.9 TFLOP/s at 4096³
    /// (0.89× cuBLAS SGEMM; [`GemmKernel::Simt128Warp`] 37.8) and 45.9 at 8192³.
    Simt128WarpDb,
    /// v17 (f32): [`GemmKernel::Simt64Warp`]'s 64×64 tiles, 32×32 warp tiles, lane layout and 17 KiB
    /// of static shared memory (128 threads) with [`GemmKernel::Simt128WarpDb`]'s main loop (the same
    /// template body, instanced for 64-tiles): register double-buffered fragments, global chunks as
    /// pointers advanced per tile, compile-time shared-memory offsets, m / n edges clamped so that
    /// only the last, partial k tile checks bounds, and the element-wise load copy for operands
    /// without 16-byte rows or with a contiguous dimension that is not a multiple of 4. 128
    /// registers a thread on sm_90 (126–127 on sm_80–sm_89), no spills. Written for the outputs of
    /// one or two 64-tiles per SM (the 784↔400 products of a batch of 1024 or 8192). The fixed rule's
    /// kernel for outputs of at least half an SM's worth of 64-tiles ([`auto_kernel`]): on an H100
    /// (2026-11-27, fourth run) 28.7 µs at 1024×784×400 against [`GemmKernel::Simt64Warp`]'s 35.3
    /// (cuBLAS 23.0) and 168 at 8192×784×400 against [`GemmKernel::Simt128WarpDb`]'s 184.
    Simt64WarpDb,
    /// v18 (f32): [`GemmKernel::Simt64WarpDb`]'s 64-tiles and main loop with
    /// [`GemmKernel::Simt64SplitK`]'s split-k: each block sums one k range of its tile into a slice of
    /// the backend's workspace, then the same reduce kernel adds the slices in order and applies the
    /// epilogue ([`splitk_splits`] ranges; m·n must fit [`SPLITK_WORKSPACE_FLOATS`]). For the long-k
    /// products whose output is a few dozen 64-tiles (the dW = dYᵀX of a batch of 8192, 400×784×8192:
    /// 91 tiles, where [`GemmKernel::Simt64SplitK`] ran 0.60× cuBLAS on an H100, 2026-11-27). 128
    /// registers a thread on sm_90, no spills. The fixed rule's kernel for a long k that splits: on an
    /// H100 (2026-11-27, fourth run) 207 µs at 400×784×8192 (v4 254, cuBLAS 158), and 14.5 µs at
    /// 128×400×784 (cuBLAS 17.7; v3's k-sliced 32-tiles 18.5).
    Simt64WarpDbSplitK,
    /// v19 (f32): [`GemmKernel::Simt64WarpDbSplitK`] in one launch instead of two: each block writes
    /// its k range's sums to the workspace and counts itself in on its output tile; the tile's last
    /// block adds the ranges in order (the reduce kernel's order: bitwise v18's results), applies the
    /// epilogue and resets the count. For the small products whose k is what splits (128×400×784 at
    /// a batch of 128: 14 tiles), where [`GemmKernel::Simt64SplitK`] pays a second launch. The
    /// output's 64-tiles must number at most [`SPLITK_TILE_COUNTS`]. 128 registers a thread on sm_90
    /// (launch bound of 4 blocks per SM), no spills. Slower than v18 on every product measured on an
    /// H100 (2026-11-27, fourth run): 30.0 µs at 128×400×784 against 14.5, 213 at 400×784×8192
    /// against 207; why (the last block's reduction, the counters' fences) is not profiled yet. The
    /// fixed rule never picks it.
    Simt64WarpDbSplitKFused,
    /// v20 (f32): [`GemmKernel::Simt64WarpDb`]'s 64-tiles, lane layout and fragment loop fed by a
    /// 4-stage `cp.async` ring (34 KiB of static shared memory) instead of register double
    /// buffering: three 16-k tiles in flight while one is multiplied, for products that wait on
    /// memory latency more than on FMAs (a short k, or few tiles per SM). k-contiguous operands are
    /// copied (transposed) with 4-byte `cp.async`, m/n-contiguous ones with 16-byte. sm_80+. 113–128
    /// registers a thread (launch bound of 4 blocks per SM), no spills. On an H100 (2026-11-27, fourth
    /// run) the fastest on the dW products of a batch of 128 and 1024 (400×784×128 9.9 µs, v17 10.0;
    /// 400×784×1024 36.7, v18 37.4) and slow where k is the long side of a small output
    /// (128×400×784 54.4). The fixed rule never picks it; measured tuning and the shipped table do.
    Simt64Async,
    /// v21 (f32): [`GemmKernel::Simt64Async`] with [`GemmKernel::Simt64WarpDbSplitKFused`]'s split-k
    /// and last-block reduction, in one launch: for the small products whose k splits into short
    /// ranges (128×400×784 at a batch of 128), where each range is then a few tiles all in flight
    /// at once. Same k ranges and order as [`GemmKernel::Simt64WarpDbSplitK`]. On an H100 (2026-11-27,
    /// fourth run) the fastest at 400×784×8192 (196 µs, v18 207) but 106 at 20×400×8192 (v18 23.0).
    /// The fixed rule never picks it; measured tuning and the shipped table do.
    Simt64AsyncSplitKFused,
    /// v22 (f32): [`GemmKernel::Simt128WarpDb`]'s 128-tiles and main loop (256 threads, one block per
    /// SM) with [`GemmKernel::Simt64WarpDbSplitKFused`]'s one-launch split-k: each block sums one k
    /// range of its tile into the workspace and the tile's last block adds the ranges in order and
    /// applies the epilogue. The range count fills whole waves of one block per SM
    /// ([`splitk_splits_waves`]). For the long-k products whose output is a few dozen 128-tiles
    /// (the dW = dYᵀX of a batch of 1024 or 8192, 400×784: 28 tiles, 9 ranges at k = 8192 on 132
    /// SMs), so that they run v16's loop on every SM. 189 registers a thread on sm_90, no spills.
    /// On an H100 (2026-11-27, fourth run) 208 µs at 400×784×8192 (v18 207) and 45.8 at 400×784×1024
    /// (v18 37.4). The fixed rule never picks it.
    Simt128WarpDbSplitKFused,
    /// v23 (f32): for a short k (a few dozen) and a large output, where the time is that of writing
    /// C (the dX = dY·W of a 400→20 layer: 8192×400×20, where the k-step kernels ran 0.50–0.65×
    /// cuBLAS on an H100, 2026-11-27). 128×64 block tiles of 256 threads, 8×4 outputs a thread;
    /// k in chunks of 32 copied whole into shared memory; the epilogue stores straight from
    /// registers, a float4 per 4 columns where C's rows are 16-byte aligned (the warp-tiled
    /// kernels park the tile in shared memory and store one value at a time). Any k works; each
    /// chunk is one copy and one barrier, so long k are slow. 80 registers a thread on sm_90, no
    /// spills (105 in the build measured below; since v25 the epilogue is shared with it, unrolled).
    /// On an H100 (2026-11-27, fourth run) 19.4 µs at 8192×400×20, no faster than v17 (19.3) or v3
    /// (19.4); cuBLAS 11.3. The fixed rule never picks it.
    SimtShortK,
    /// v25 (f32): [`GemmKernel::SimtShortK`]'s 128×64 tiles, 8×4 outputs a thread, 32-k chunks and
    /// register-stored epilogue in persistent blocks (at most two per SM, 256 threads) that walk
    /// the output tiles, with the next tile's operands copied by `cp.async` into a second
    /// shared-memory stage while the current one is multiplied and stored: each block waits on its
    /// loads once, not once per tile, and a tile's stores overlap the next tile's copies. Written
    /// for the store-bound dX = dY·W of a 400→20 layer at a large batch (8192×400×20, where every
    /// f32 kernel ran 19.3 µs or more against cuBLAS's 11.3 on an H100, 2026-11-27, fourth run).
    /// 50 KiB of dynamic shared memory, sm_80+. Same sums as [`GemmKernel::SimtShortK`], bit for
    /// bit. Not yet run on a GPU: not in [`GemmKernel::CHECKED_ON_GPU`], and the fixed rule never
    /// picks it.
    SimtShortKPersistent,
    /// v26 (f32): split-k through the workspace and reduce kernel of [`GemmKernel::Simt64SplitK`],
    /// on 32×128 tiles whose rows are computed only where they exist (in groups of 4): for outputs
    /// of a few rows with a long k, the dW = dYᵀX of a narrow layer (20×400×8192, where the 64-row
    /// tiles of v4 and v18 compute 64 rows for 20: v18 23.0 µs against cuBLAS 20.4 on an H100,
    /// 2026-11-27, fourth run). 128 threads, a column each; the block's A chunks in shared memory
    /// (broadcast float4 reads); B read from global memory 8 k ahead, or staged in shared memory
    /// too when it is stored [n, k]. [`splitk_splits_small_m`] ranges; m·n must fit
    /// [`SPLITK_WORKSPACE_FLOATS`]. sm_80+. Not yet run on a GPU: not in
    /// [`GemmKernel::CHECKED_ON_GPU`], and the fixed rule never picks it.
    SimtSmallMSplitK,
    /// v27 (f32): [`GemmKernel::SimtSmallMSplitK`] with the roles of the operands swapped: 128×32
    /// tiles, a row a thread, the columns computed only where they exist; for Y = XWᵀ into a
    /// narrow layer (8192×20×400, where v3's k-sliced 32-tiles ran 14.5 µs against cuBLAS 13.8 on an
    /// H100, 2026-11-27, fourth run). A stored [m, k] (the usual X) is staged in shared memory,
    /// copied coalesced. [`splitk_splits_small_m`] of the transposed output (n, m); m·n must fit
    /// [`SPLITK_WORKSPACE_FLOATS`]. sm_80+. Not yet run on a GPU: not in
    /// [`GemmKernel::CHECKED_ON_GPU`], and the fixed rule never picks it.
    SimtSmallNSplitK,
    /// v28 (f32): stream-K over [`GemmKernel::Simt128WarpDb`]'s 128-tiles and main loop (256
    /// threads, one block per SM): the product's (tile, 16-k step) units are dealt out in equal
    /// contiguous ranges to [`streamk_blocks`] blocks, so every SM does the same number of FMAs
    /// whatever the tile count. A block that holds the start of a tile but not its last step parks
    /// its raw sums in the backend's workspace (one 64 KiB slot a block) and raises a flag; the
    /// block holding the tile's last step adds the lower blocks' slots and stores with the
    /// epilogue. Blocks wait only on blocks that took an earlier ticket (an atomic counter), so no
    /// deadlock even if fewer fit at once than were launched. Each output's sum order is fixed by
    /// the shape and the grid: reproducible run to run, not bitwise
    /// [`GemmKernel::Simt128WarpDb`]'s. Written for the tile counts that don't fill whole waves:
    /// 1024×400×784 (32 tiles on 132 SMs: v16's loop on a quarter of them; the fastest f32 kernel,
    /// v17, ran 31.6 µs against cuBLAS 26.5 on an H100, 2026-11-27, fourth run) and 8192×784×400
    /// (448 tiles: 3.4 waves; v17 168 µs, cuBLAS 134 in the same run). 225 registers on sm_90, no
    /// spills. Not yet run on a GPU: not in [`GemmKernel::CHECKED_ON_GPU`], and the fixed rule
    /// never picks it.
    Simt128WarpDbStreamK,
    /// v29 (f32): [`GemmKernel::Simt128WarpDbStreamK`]'s stream-K over
    /// [`GemmKernel::Simt64WarpDb`]'s 64-tiles and main loop (128 threads, four blocks per SM; 16 KiB
    /// slots). 128 registers and 64 bytes of spills on sm_90 (one local load a 16-k step).
    /// Not yet run on a GPU: not in [`GemmKernel::CHECKED_ON_GPU`], and the fixed rule never picks
    /// it.
    Simt64WarpDbStreamK,
    /// v30 (f32): [`GemmKernel::Simt128WarpDb`]'s main loop on 128×200 tiles (320 threads, 10 warps
    /// of 64×40, 8×10 outputs a thread; 42 KiB of static shared memory), for outputs about 400 (or
    /// 800) columns wide with many rows: 8192×400×784 is 128 tiles, one wave on 132 SMs, where
    /// v16's square tiles pad 400 columns to 512 and make 256 (two waves; v16 158.5 µs against
    /// cuBLAS 134.6 on an H100, 2026-11-27, fourth run), and 8192×784×400 256 tiles, two waves,
    /// against v16's 448. The same sums in the same k order as [`GemmKernel::Simt128WarpDb`]: bit
    /// for bit its results. 168 registers on sm_90 (the most 10 warps get: three share an SM
    /// quarter's 16 K registers) with 184 bytes of stack, of which about 10 loads a 16-k step in the
    /// 16-byte-row loops (1280 FFMAs). Not yet run on a GPU: not in
    /// [`GemmKernel::CHECKED_ON_GPU`], and the fixed rule never picks it.
    Simt128x200WarpDb,
    /// v31 (f32): [`GemmKernel::Simt128x200WarpDb`]'s 128×200 tiles and main loop with
    /// [`GemmKernel::Simt128WarpDbSplitKFused`]'s one-launch split-k (each block sums one k range
    /// of its tile into a slice of the workspace; the tile's last block adds the slices in order
    /// and stores with the epilogue), the range count from [`splitk_splits_waves`]. For the dW =
    /// dYᵀX of a large batch, where v22's 128-tiles lose a fifth or a third of their outputs to
    /// padding: 784×400×8192 is 14 tiles of 128×200 (87.5% of their outputs inside the product; v22
    /// 78%), 9 ranges, one wave of 126 blocks on 132 SMs; 400×784×8192 16 tiles (77%; v22 68%), 8
    /// ranges. On an H100 (2026-11-27, fourth run) 400×784×8192 took v22 207.9 µs, the fastest
    /// version ([`GemmKernel::Simt64AsyncSplitKFused`]) 196.3 and cuBLAS 158.2. 168 registers on
    /// sm_90, as v30. Not yet run on a GPU: not in [`GemmKernel::CHECKED_ON_GPU`], and the fixed
    /// rule never picks it.
    Simt128x200WarpDbSplitKFused,
    /// v32 (f32): [`GemmKernel::Simt128x200WarpDbSplitKFused`] on the transposed product, so that
    /// C's tiles are 200×128: each block computes its tile of Cᵀ = op(B)ᵀ·op(A)ᵀ with v30's main
    /// loop and stores it transposed; the tile's last block adds the k ranges as in v31. For
    /// outputs 400 rows tall: 400×784×8192 (the dW of a 784→400 layer at a batch of 8192) is 14
    /// tiles, 87.5% of their outputs inside the product (v31: 16 tiles, 77%), 9 ranges, one wave on
    /// 132 SMs. Not yet run on a GPU: not in [`GemmKernel::CHECKED_ON_GPU`], and the fixed rule
    /// never picks it.
    Simt200x128WarpDbSplitKFused,
    /// Tensor cores (bf16, f16, or f32 with [`GemmMath::Tf32`]): `mma.sync` with `ldmatrix` and a
    /// 3-stage `cp.async` pipeline, 128×128 block tiles.
    TensorCore128,
    /// Tensor cores, 64×64 block tiles.
    TensorCore64,
    /// v24 (bf16, f16, TF32): [`GemmKernel::TensorCore64`]'s tiles and pipeline with
    /// [`GemmKernel::Simt64SplitK`]'s split-k: each block sums one k range of its tile into a slice
    /// of the backend's workspace, then the reduce kernel adds the slices in order and applies the
    /// epilogue ([`splitk_splits`] ranges; m·n must fit [`SPLITK_WORKSPACE_FLOATS`]). For the long-k
    /// products whose output is a few 64-tiles: the dW = dYᵀX of a batch of 8192 (20×400×8192: 7
    /// tiles, where [`GemmKernel::TensorCore64`] ran 185 µs bf16 against cuBLAS's 12.6 on an H100,
    /// 2026-11-27, fourth run; 400×784×8192: 92 against 22). Not yet run on a GPU: not in
    /// [`GemmKernel::CHECKED_ON_GPU`], and the fixed rule never picks it.
    TensorCore64SplitK,
    /// Tensor cores, 128×256 block tiles: 8 warps with 64×64 warp tiles, so each k16 step loads 8
    /// fragments per 32 mma (TensorCore128: 6 per 16) and shared memory carries a third less per
    /// FLOP. One block per SM (232 registers a thread, 90 KiB of shared memory). The fixed rule
    /// never picks it; measured tuning does where it wins.
    TensorCore128x256,
    /// v7 (bf16 / f16 only): [`GemmKernel::TensorCore128x256`]'s tiles rebuilt to feed the tensor
    /// pipe: k steps of 64 through 3 stages (144 KiB of shared memory: GPUs with less, like sm_86 /
    /// sm_89, refuse it), XOR-swizzled unpadded tiles (conflict-free `cp.async` and `ldmatrix`),
    /// addresses computed once before the k loop (interior blocks with 16-byte aligned rows copy
    /// without bounds checks; edge blocks take the checked copy), and fragments of the next k16 slice
    /// loaded while the current one multiplies. One block per SM (240 registers a thread on sm_80,
    /// 241 on sm_90, no spills). On an H100 (2026-11-27) 375–413 TFLOP/s at 4096³ bf16
    /// ([`GemmKernel::TensorCore128`]: ~200; cuBLAS ~755). The fixed rule never picks it.
    TensorCore128x256Swizzled,
    /// v10 (bf16 / f16 only): [`GemmKernel::TensorCore128x256Swizzled`]'s kernel on 128×128 block
    /// tiles over 4 warps (2×2, 64×64 warp tiles, 128 threads), 3 stages of 32 KiB: 96 KiB of shared
    /// memory and 239 registers a thread (sm_80 and sm_90, no spills), so two blocks share an SM of
    /// an H100 / H200 (an A100 holds one) and one block's barrier and load latency hide under the
    /// other's `mma`. Same k order as v7: bit-identical results. On an H100 (2026-11-27, measured
    /// tuning's candidate times, BENCHMARKS.md) 386 TFLOP/s at 4096³ bf16 and 439 at 8192³ (v7: 375
    /// and 445). The fixed rule never picks it.
    TensorCore128x128Swizzled,
    /// v11 (bf16 / f16 only): [`GemmKernel::TensorCore128x256Swizzled`] with a 4-stage pipeline
    /// (192 KiB of shared memory: H100 and H200 only; GPUs with less, an A100 included, refuse it
    /// and measured tuning skips it; 238 / 239 registers on sm_80 / sm_90, no spills). Same k order
    /// as v7: bit-identical results. On an H100 (2026-11-27, as v10) 377 TFLOP/s at 4096³ bf16 and
    /// 386 at 8192³. The fixed rule never picks it.
    TensorCore128x256Swizzled4Stage,
    /// v15 (bf16 / f16 only): [`GemmKernel::TensorCore128x256Swizzled`]'s kernel made persistent.
    /// One block per SM walks its share of the output tiles; after a tile's last k step it starts
    /// copying the next tile's first stages, then stores the finished tile straight from registers
    /// (v7 parks it in shared memory and stores it value by value, and each new block starts with
    /// an empty pipeline). Same k order as v7: bit-identical results. On an H100 (2026-11-27, third
    /// run, measured candidates) 356 µs at 4096³ bf16 against v7's 379 (0.52× cuBLAS), but 2695 at
    /// 8192³ against v7's 2440 (fourth run: 350 and 2624 µs). The fixed rule never picks it.
    TensorCore128x256SwizzledPersistent,
    /// v6, Hopper tensor cores (bf16 / f16 only, compute capability 9.0: H100, H200; built for
    /// sm_90a): `wgmma` reading both operands from shared memory, filled by TMA through a 4-stage
    /// mbarrier pipeline; one producer and two consumer warpgroups per 128×256 block tile. TMA needs
    /// 16-byte aligned bases and leading dimensions that are multiples of 8. The fixed rule never
    /// picks it; measured tuning and the shipped H100 table may (BENCHMARKS.md: 0.75× cuBLAS at 4096³).
    Wgmma256,
    /// v6 with 128×128 block tiles and 6 stages (outputs too small to fill the GPU with 128×256).
    /// The fixed rule's Hopper kernel for outputs below one 128-tile per SM with a k ≥ 1024: on an
    /// H100 (2026-11-27, fourth run) 63.8 µs at 400×784×8192 bf16 against `mma.sync` 64-tiles' 91.8.
    Wgmma128,
    /// v8, Hopper (as v6): persistent ping-pong over 128×128 tiles. One block per SM walks its
    /// share of the output tiles; the two consumer warpgroups take turns, one multiplying a tile
    /// while the other stores the previous one straight from its registers, so writing C overlaps
    /// the tensor work (v6 stores each tile while its SM's tensor cores idle). Same k order as
    /// [`GemmKernel::Wgmma128`]: bit-identical results. On an H100 (2026-11-27) 525–548 TFLOP/s at
    /// 4096³ bf16 (v6 128-wide: 463–478, v6 256-wide: 535–591) and the fastest of all on five of
    /// the six 784↔400 products of a batch of 8192.
    Wgmma128PingPong,
    /// v9, Hopper (as v6): [`GemmKernel::Wgmma256`]'s tiles in clusters of two blocks (adjacent
    /// along m) that share their B tile: each copies one half with TMA multicast into both, so a
    /// block reads a third less from L2 per k step. Same k order as [`GemmKernel::Wgmma256`]:
    /// bit-identical results. On an H100 (2026-11-27) 498 TFLOP/s at 4096³ and 563 at 8192³ bf16,
    /// below v6 (535–567 / 613).
    Wgmma256Multicast,
    /// v12, Hopper (as v6): [`GemmKernel::Wgmma256`]'s 128×256 tiles, stage ring and wgmma
    /// sequence in a persistent kernel. One block per SM walks its share of the output tiles, both
    /// consumer warpgroups on every tile; the producer copies the next tile's first k steps while
    /// the consumers store the current one straight from their registers (v6 parks it in shared
    /// memory, and each new block starts with an empty ring). Same k order as
    /// [`GemmKernel::Wgmma256`]: bit-identical results. On an H100 (2026-11-27, third run) 640
    /// TFLOP/s at 4096³ bf16 (0.86× cuBLAS; v6 572 in the same call) and 581 at 8192³. The fixed
    /// rule's Hopper kernel for outputs that fill the GPU in 128-tiles ([`auto_kernel`]; fourth run:
    /// 208 µs at 4096³, `mma.sync` 128-tiles 745).
    Wgmma256Persistent,
    /// v13: [`GemmKernel::Wgmma256Persistent`] releasing each stage as soon as the warpgroup's own
    /// wgmma group on it is done (wait_group 0; v6 and v12 release it one step later), so the
    /// producer may run three stages ahead instead of two while the other warpgroup's products keep
    /// the tensor cores busy. Bit-identical to [`GemmKernel::Wgmma256`]. On an H100 (2026-11-27,
    /// third run) 616–670 TFLOP/s at 4096³ bf16 (v12 640 in the same call).
    Wgmma256PersistentEarlyRelease,
    /// v14: [`GemmKernel::Wgmma256Persistent`] in clusters of two blocks that take vertically
    /// adjacent tiles and share each k step's B tile through TMA multicast (as v9 does for v6), so
    /// a block reads a third less from L2 per k step. A stage is released by one thread per
    /// consumer warpgroup in each block of the cluster (v9: every consumer warp, half of them
    /// across the cluster). Bit-identical to [`GemmKernel::Wgmma256`]. On an H100 (2026-11-27, third
    /// run) 604 TFLOP/s at 4096³ and 587 at 8192³ bf16 (v12: 640 and 581).
    Wgmma256PersistentMulticast,
    /// v33, Hopper (compute capability 9.0, built for sm_90a; bf16 / f16 only): `mma.sync` fed by
    /// TMA. [`GemmKernel::Wgmma256Persistent`]'s producer, 4-stage TMA ring and persistent walk
    /// over 128×256 tiles, with the multiplication of [`GemmKernel::TensorCore128x256Swizzled`]:
    /// 8 consumer warps of 64×64 warp tiles read their fragments with `ldmatrix` straight from the
    /// swizzled stages and multiply with `mma.sync`. Each warp waits on its stage's mbarrier and
    /// releases the stage alone, so no k step costs a block-wide barrier and only one thread issues
    /// copies (v7 / v15: every thread issues `cp.async`, then all 8 warps meet at a barrier per k
    /// step). Same k order as v7: bit-identical results. Operands as [`GemmKernel::Wgmma256`]'s
    /// (TMA: 16-byte aligned bases, leading dimensions multiples of 8). Written for the `mma.sync`
    /// target at 4096³ (v15: 0.54× cuBLAS on an H100, fourth run); not yet run on a GPU: not in
    /// [`GemmKernel::CHECKED_ON_GPU`], and the fixed rule never picks it.
    TensorCore128x256TmaPersistent,
}

impl GemmKernel {
    /// Every f32 SIMT version, oldest first (tests and benchmarks run each of them).
    pub const SIMT: [GemmKernel; 25] = [
        GemmKernel::Tiled16,
        GemmKernel::Simt128,
        GemmKernel::Simt128Warp,
        GemmKernel::Simt128Warp2Cta,
        GemmKernel::Simt64Warp,
        GemmKernel::Simt32SlicedK,
        GemmKernel::Simt64SplitK,
        GemmKernel::Simt64SlicedK4,
        GemmKernel::Simt128Warp4,
        GemmKernel::Simt128WarpDb,
        GemmKernel::Simt64WarpDb,
        GemmKernel::Simt64WarpDbSplitK,
        GemmKernel::Simt64WarpDbSplitKFused,
        GemmKernel::Simt64Async,
        GemmKernel::Simt64AsyncSplitKFused,
        GemmKernel::Simt128WarpDbSplitKFused,
        GemmKernel::SimtShortK,
        GemmKernel::SimtShortKPersistent,
        GemmKernel::SimtSmallMSplitK,
        GemmKernel::SimtSmallNSplitK,
        GemmKernel::Simt128WarpDbStreamK,
        GemmKernel::Simt64WarpDbStreamK,
        GemmKernel::Simt128x200WarpDb,
        GemmKernel::Simt128x200WarpDbSplitKFused,
        GemmKernel::Simt200x128WarpDbSplitKFused,
    ];
    /// Every `mma.sync` tensor-core version (sm_80+; the Hopper ones are [`GemmKernel::HOPPER`]).
    /// (v7, v10 and v11, the `Swizzled` ones, take bf16 / f16 only: [`GemmKernel::half_only`].)
    pub const TENSOR_CORE: [GemmKernel; 8] = [
        GemmKernel::TensorCore128,
        GemmKernel::TensorCore64,
        GemmKernel::TensorCore64SplitK,
        GemmKernel::TensorCore128x256,
        GemmKernel::TensorCore128x256Swizzled,
        GemmKernel::TensorCore128x128Swizzled,
        GemmKernel::TensorCore128x256Swizzled4Stage,
        GemmKernel::TensorCore128x256SwizzledPersistent,
    ];

    /// The Hopper-only versions (bf16 / f16 inputs, compute capability 9.0, TMA-fed): the `wgmma`
    /// ones and v33, which multiplies with `mma.sync`.
    pub const HOPPER: [GemmKernel; 8] = [
        GemmKernel::Wgmma256,
        GemmKernel::Wgmma128,
        GemmKernel::Wgmma128PingPong,
        GemmKernel::Wgmma256Multicast,
        GemmKernel::Wgmma256Persistent,
        GemmKernel::Wgmma256PersistentEarlyRelease,
        GemmKernel::Wgmma256PersistentMulticast,
        GemmKernel::TensorCore128x256TmaPersistent,
    ];

    /// The split-k versions (v4, v18, v19, v21, v22, v24, v26, v27): they sum k ranges in the
    /// backend's workspace, so the output must fit [`SPLITK_WORKSPACE_FLOATS`].
    pub fn is_split_k(self) -> bool {
        matches!(
            self,
            GemmKernel::Simt64SplitK
                | GemmKernel::Simt64WarpDbSplitK
                | GemmKernel::TensorCore64SplitK
                | GemmKernel::SimtSmallMSplitK
                | GemmKernel::SimtSmallNSplitK
        ) || self.splits_k_in_one_launch()
    }

    /// The split-k versions whose last block per output tile adds the k ranges (v19, v21, v22,
    /// v31, v32), instead of a second kernel.
    pub fn splits_k_in_one_launch(self) -> bool {
        matches!(
            self,
            GemmKernel::Simt64WarpDbSplitKFused
                | GemmKernel::Simt64AsyncSplitKFused
                | GemmKernel::Simt128WarpDbSplitKFused
                | GemmKernel::Simt128x200WarpDbSplitKFused
                | GemmKernel::Simt200x128WarpDbSplitKFused
        )
    }

    /// How many k ranges a split-k version ([`GemmKernel::is_split_k`]) splits an m×n×k product
    /// into on a GPU with `sms` multiprocessors: [`splitk_splits_waves`] for v22's 128-tiles,
    /// [`splitk_splits_small_m`] for v26's 32×128 tiles (and, transposed, v27's 128×32),
    /// [`splitk_splits`] for the 64-tile ones; 1 for every other version.
    pub fn splitk_ranges(self, m: usize, n: usize, k: usize, sms: usize) -> usize {
        match self {
            GemmKernel::Simt128WarpDbSplitKFused => splitk_splits_waves(m, n, k, sms, (128, 128)),
            GemmKernel::Simt128x200WarpDbSplitKFused => splitk_splits_waves(m, n, k, sms, (128, 200)),
            GemmKernel::Simt200x128WarpDbSplitKFused => splitk_splits_waves(m, n, k, sms, (200, 128)),
            GemmKernel::SimtSmallMSplitK => splitk_splits_small_m(m, n, k, sms),
            GemmKernel::SimtSmallNSplitK => splitk_splits_small_m(n, m, k, sms),
            kernel if kernel.is_split_k() => splitk_splits(m, n, k, sms),
            _ => 1,
        }
    }

    /// The stream-K versions (v28, v29): [`streamk_blocks`] blocks share the product's k steps
    /// evenly, through slots of the backend's workspace.
    pub fn is_stream_k(self) -> bool {
        matches!(self, GemmKernel::Simt128WarpDbStreamK | GemmKernel::Simt64WarpDbStreamK)
    }

    /// The persistent versions: [`GemmKernel::persistent_blocks_per_sm`] blocks per SM (at most one
    /// per tile) walk the output tiles.
    pub fn is_persistent(self) -> bool {
        matches!(
            self,
            GemmKernel::SimtShortKPersistent
                | GemmKernel::Wgmma128PingPong
                | GemmKernel::TensorCore128x256SwizzledPersistent
                | GemmKernel::Wgmma256Persistent
                | GemmKernel::Wgmma256PersistentEarlyRelease
                | GemmKernel::Wgmma256PersistentMulticast
                | GemmKernel::TensorCore128x256TmaPersistent
        )
    }

    /// How many blocks of a persistent version ([`GemmKernel::is_persistent`]) the launcher starts
    /// per SM: two of v25 (256 threads, 50 KiB of shared memory each), one of the others.
    pub fn persistent_blocks_per_sm(self) -> usize {
        if self == GemmKernel::SimtShortKPersistent {
            2
        } else {
            1
        }
    }

    /// The versions that have passed their parity tests and compute-sanitizer (memcheck, racecheck,
    /// synccheck) on a GPU (an H100: the first seven on 2026-11-26, the next five on 2026-11-27 at
    /// commit 0a9a4f2, five more on 2026-11-27 at commit 56302fc, v16 on 2026-11-27 at commit
    /// 29b6b6d, and the rest, v8, v9, v12–v15 and v17–v23, on 2026-11-27 at commit a059967, the
    /// wgmma and the swizzled `mma.sync` versions under racecheck one version a process;
    /// BENCHMARKS.md); [`GemmTuning::Measure`] chooses only among these. A version joins the list
    /// when a GPU run has checked it; a new version stays out until then. Since those runs, the
    /// shared-memory layouts of the SIMT versions (13f3f79) and of the `mma.sync` versions' tile
    /// copies and epilogue (95bfc49) were changed to remove bank conflicts, values landing where
    /// they did: those changes have passed the parity and race tests on the CUDA emulator only.
    pub const CHECKED_ON_GPU: [GemmKernel; 31] = [
        GemmKernel::Tiled16,
        GemmKernel::Simt128,
        GemmKernel::Simt128Warp,
        GemmKernel::Simt128Warp2Cta,
        GemmKernel::Simt64Warp,
        GemmKernel::Simt32SlicedK,
        GemmKernel::Simt64SplitK,
        GemmKernel::TensorCore128,
        GemmKernel::TensorCore64,
        GemmKernel::TensorCore128x256,
        GemmKernel::Wgmma256,
        GemmKernel::Wgmma128,
        GemmKernel::Simt64SlicedK4,
        GemmKernel::Simt128Warp4,
        GemmKernel::TensorCore128x256Swizzled,
        GemmKernel::TensorCore128x128Swizzled,
        GemmKernel::TensorCore128x256Swizzled4Stage,
        GemmKernel::Simt128WarpDb,
        GemmKernel::Wgmma128PingPong,
        GemmKernel::Wgmma256Multicast,
        GemmKernel::Wgmma256Persistent,
        GemmKernel::Wgmma256PersistentEarlyRelease,
        GemmKernel::Wgmma256PersistentMulticast,
        GemmKernel::TensorCore128x256SwizzledPersistent,
        GemmKernel::Simt64WarpDb,
        GemmKernel::Simt64WarpDbSplitK,
        GemmKernel::Simt64WarpDbSplitKFused,
        GemmKernel::Simt64Async,
        GemmKernel::Simt64AsyncSplitKFused,
        GemmKernel::Simt128WarpDbSplitKFused,
        GemmKernel::SimtShortK,
    ];

    /// Whether this kernel runs on tensor cores.
    pub fn is_tensor_core(self) -> bool {
        Self::TENSOR_CORE.contains(&self) || self.is_hopper()
    }

    /// Whether this is a Hopper-only kernel ([`GemmKernel::HOPPER`]: TMA operands, sm_90a).
    pub fn is_hopper(self) -> bool {
        Self::HOPPER.contains(&self)
    }

    /// Whether this kernel takes bf16 / f16 inputs only (no TF32 version).
    pub fn half_only(self) -> bool {
        self.is_hopper()
            || matches!(
                self,
                GemmKernel::TensorCore128x256Swizzled
                    | GemmKernel::TensorCore128x128Swizzled
                    | GemmKernel::TensorCore128x256Swizzled4Stage
                    | GemmKernel::TensorCore128x256SwizzledPersistent
            )
    }
}

/// How an f32 GEMM multiplies. TF32 is never chosen silently: f32 stays exact-f32 unless asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GemmMath {
    /// Exact f32 products, f32 accumulation (SIMT kernels).
    #[default]
    F32,
    /// Inputs rounded to TF32 (10 mantissa bits, round to nearest with ties away from zero), f32
    /// accumulation, on tensor cores; see [`tf32_error_bound`].
    Tf32,
}

/// f32 elements of the CUDA backend's split-k workspace (16 MiB, allocated with the backend so a
/// captured CUDA graph never allocates): `splits·m·n` must fit.
pub const SPLITK_WORKSPACE_FLOATS: usize = 1 << 22;

/// Output tiles (64×64, or v22's 128×128) that the versions of [`GemmKernel::splits_k_in_one_launch`]
/// can count arrivals on: the backend's counters (256 KiB), enough for every output the workspace
/// holds (m·n ≤ 2²² makes at most 2¹⁶ 64-tiles).
pub const SPLITK_TILE_COUNTS: usize = 1 << 16;

/// How many blocks a stream-K version ([`GemmKernel::is_stream_k`]: v28 on 128-tiles, one block
/// per SM; v29 on 64-tiles, four per SM) launches for an m×n×k product on a GPU with `sms`
/// multiprocessors: as many as fit the GPU at once, at most one per (tile, 16-k step) unit, and no
/// more than have a workspace slot (one tile of floats each within [`SPLITK_WORKSPACE_FLOATS`]) and
/// a flag (after the ticket counter, within [`SPLITK_TILE_COUNTS`]); 0 for every other version.
pub fn streamk_blocks(kernel: GemmKernel, m: usize, n: usize, k: usize, sms: usize) -> usize {
    let (tile, per_sm) = match kernel {
        GemmKernel::Simt128WarpDbStreamK => (128, 1),
        GemmKernel::Simt64WarpDbStreamK => (64, 4),
        _ => return 0,
    };
    let units = m.div_ceil(tile).saturating_mul(n.div_ceil(tile)).saturating_mul(k.div_ceil(16));
    (sms * per_sm).min(units).min(SPLITK_WORKSPACE_FLOATS / (tile * tile)).clamp(1, SPLITK_TILE_COUNTS - 1)
}

/// How many k ranges the split-k kernels ([`GemmKernel::Simt64SplitK`],
/// [`GemmKernel::Simt64WarpDbSplitK`], [`GemmKernel::Simt64WarpDbSplitKFused`],
/// [`GemmKernel::Simt64AsyncSplitKFused`], [`GemmKernel::TensorCore64SplitK`]) split an m×n×k product into on a GPU with `sms`
/// multiprocessors: enough 64×64-tile blocks for about 4 per SM (16 warps), each range at least 4
/// steps of 16 along k, and `splits·m·n` within [`SPLITK_WORKSPACE_FLOATS`]. 1 when the output
/// alone fills the GPU or k is short (the kernel then runs one range: the workspace and the
/// reduction add nothing but a copy).
pub fn splitk_splits(m: usize, n: usize, k: usize, sms: usize) -> usize {
    splitk_splits_filling(m, n, k, (64, 64), 4 * sms)
}

/// The range count of [`splitk_splits`] and [`splitk_splits_small_m`]: enough ranges for `blocks`
/// blocks of `tile` (rows × columns) output tiles, each range at least 4 steps of 16 along k, and
/// `splits·m·n` within [`SPLITK_WORKSPACE_FLOATS`]; at least 1.
fn splitk_splits_filling(m: usize, n: usize, k: usize, tile: (usize, usize), blocks: usize) -> usize {
    let tiles = m.div_ceil(tile.0) * n.div_ceil(tile.1);
    let steps = k.div_ceil(16);
    let want = blocks.div_ceil(tiles.max(1));
    let fit = SPLITK_WORKSPACE_FLOATS / (m * n).max(1);
    want.min(steps / 4).min(fit).max(1)
}

/// How many k ranges v26 ([`GemmKernel::SimtSmallMSplitK`]: 32×128 tiles of 128 threads) splits an
/// m×n×k product into on a GPU with `sms` multiprocessors: enough blocks for about 2 per SM (8
/// warps; more ranges would make the reduce kernel, which reads every range's m·n sums, the longer
/// part), each range at least 4 steps of 16 along k, and `splits·m·n` within
/// [`SPLITK_WORKSPACE_FLOATS`]. On 132 SMs: 20×400×8192 64 ranges of 128 (256 blocks), 20×400×1024
/// 16 of 64.
pub fn splitk_splits_small_m(m: usize, n: usize, k: usize, sms: usize) -> usize {
    splitk_splits_filling(m, n, k, (32, 128), 2 * sms)
}

/// How many k ranges v22 ([`GemmKernel::Simt128WarpDbSplitKFused`]), v31
/// ([`GemmKernel::Simt128x200WarpDbSplitKFused`]) and v32
/// ([`GemmKernel::Simt200x128WarpDbSplitKFused`]), with `tile` (rows, columns) blocks one per SM,
/// split an m×n×k product into on a GPU with `sms` multiprocessors. The count s minimises a
/// simple model of the time, in 16-k steps of one block: waves · (steps per range + 4) + s / 2,
/// where waves = ⌈tiles · s / sms⌉, the 4 steps stand for a block's pipeline fill and epilogue and
/// s / 2 for the last block's reading of the s slices; ties go to the smaller s. Each range has at
/// least 4 steps and `s·m·n` fits [`SPLITK_WORKSPACE_FLOATS`]. A model to be checked by measuring
/// (its constants are not measured): on 132 SMs it gives, for 128×128 tiles, 400×784×8192 9 ranges
/// (252 blocks, two waves), 400×784×1024 and 1024×400×784 4, 1024×784×400 2, and 8192×400×784 (256
/// tiles) 1; for 128×200 tiles, 784×400×8192 9 ranges (126 blocks, one wave) and 400×784×8192 8
/// (128 blocks); for 200×128 tiles, 400×784×8192 9 (126 blocks).
pub fn splitk_splits_waves(m: usize, n: usize, k: usize, sms: usize, tile: (usize, usize)) -> usize {
    let tiles = m.div_ceil(tile.0) * n.div_ceil(tile.1);
    let steps = k.div_ceil(16);
    let fit = SPLITK_WORKSPACE_FLOATS / (m * n).max(1);
    let most = (steps / 4).min(fit).max(1);
    // Twice the modelled time, in whole numbers.
    let cost = |s: usize| 2 * (tiles * s).div_ceil(sms.max(1)) * (steps.div_ceil(s) + 4) + s;
    (1..=most).min_by_key(|&s| (cost(s), s)).unwrap_or(1)
}

/// The kernels [`auto_kernel`] chooses among, set by the input type, the math and what the GPU
/// and the operands allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoFamily {
    /// f32 inputs with f32 math: the SIMT kernels.
    Simt,
    /// Tensor cores through `mma.sync`: TF32, or bf16 / f16 where the wgmma kernels can't take
    /// the call.
    MmaSync,
    /// bf16 / f16 on a GPU that loaded the Hopper kernels, with operands they can take (TMA:
    /// 16-byte aligned rows and base addresses).
    Wgmma,
}

impl AutoFamily {
    /// The family of a call: SIMT without tensor cores; with them, the wgmma kernels where `wgmma`
    /// (a bf16 / f16 call the Hopper kernels can take), else `mma.sync`.
    pub fn new(tensor_cores: bool, wgmma: bool) -> Self {
        match (tensor_cores, wgmma) {
            (false, _) => AutoFamily::Simt,
            (true, false) => AutoFamily::MmaSync,
            (true, true) => AutoFamily::Wgmma,
        }
    }
}

/// Picks the CUDA kernel of [`GemmKernel::Auto`] for an m×n×k product on a GPU with `sms`
/// multiprocessors. Every branch is the kernel measured fastest (or within a few percent of it) on
/// the bench products in one run on an H100 (2026-11-27, fourth run, `bench_gemm --measure-all`,
/// every version checked in that run; BENCHMARKS.md, logs in bench/results/2026-11-27-h100-run4).
///
/// f32 (SIMT):
/// - outputs that fill the GPU in 128-tiles with both sides ≥ 1024: v16's 128-tiles (4096³ 3040 µs
///   against v17's 3629; 8192³ 23742 against 28334);
/// - a long k (≥ 1024) that splits (output of few 64-tiles, [`splitk_splits`] ≥ 2): v18's split-k
///   (400×784×8192 207 µs, v4 254; 20×400×8192 23.0, v4 24.8; 400×784×1024 37.4, v5 38.6);
/// - outputs of at least half an SM's worth of 64-tiles, both sides ≥ 64: v17's 64-tiles
///   (1024×784×400 28.7 µs, v3 35.3; 8192×784×400 168, v16 184; 8192×400×20 19.3, v16 24.7;
///   8192×400×784 161, v16 159: the one product where it is slower);
/// - smaller outputs with a k ≥ 512 that splits: v18 (128×400×784 12.7–14.5 µs, v3's k-sliced
///   32-tiles 15.5–18.5);
/// - the rest (skinny or small outputs): the k-sliced 32-tiles (128×784×400 10.4 µs,
///   8192×20×400 14.5), or v1's 16×16 tiles for a k under 64 (128×400×20 3.1).
///
/// Tensor cores: `mma.sync` in 128-tiles when they fill the GPU, else 64-tiles. Where wgmma can
/// take the call: the persistent 128×256 wgmma kernel (v12) when the 128-tiles fill the GPU (4096³
/// 208 µs against `mma.sync` 128-tiles' 745; 8192×400×784 21 against 38), v6's 128×128 wgmma
/// tiles for a k ≥ 1024 (400×784×8192 64 µs against 92), else `mma.sync` 64-tiles.
///
/// Every kernel sums k in a fixed order, so results are bitwise reproducible on one GPU model; the
/// kernels differ in that order, so two GPUs with different SM counts may pick different kernels and
/// differ in the last bits (within the f32 bound). Name a kernel in the spec to pin it.
pub fn auto_kernel(m: usize, n: usize, k: usize, family: AutoFamily, sms: usize) -> GemmKernel {
    let tiles = |t: usize| m.div_ceil(t) * n.div_ceil(t);
    let fills = tiles(128) >= sms;
    match family {
        AutoFamily::Wgmma if fills => return GemmKernel::Wgmma256Persistent,
        AutoFamily::Wgmma if k >= 1024 => return GemmKernel::Wgmma128,
        AutoFamily::Wgmma => return GemmKernel::TensorCore64,
        AutoFamily::MmaSync if fills => return GemmKernel::TensorCore128,
        AutoFamily::MmaSync => return GemmKernel::TensorCore64,
        AutoFamily::Simt => {}
    }
    let skinny = m.min(n) < 64;
    let splits = splitk_splits(m, n, k, sms) >= 2;
    if fills && m.min(n) >= 1024 {
        GemmKernel::Simt128WarpDb
    } else if k >= 1024 && splits {
        GemmKernel::Simt64WarpDbSplitK
    } else if !skinny && tiles(64) >= sms / 2 {
        GemmKernel::Simt64WarpDb
    } else if !skinny && k >= 512 && splits {
        GemmKernel::Simt64WarpDbSplitK
    } else if k < 64 {
        GemmKernel::Tiled16
    } else {
        GemmKernel::Simt32SlicedK
    }
}

/// The K·ε·max|a|·max|b| bound of an f32-accumulated GEMM against the f64 reference (see the module
/// documentation).
pub fn f32_error_bound(k: usize, max_a: f32, max_b: f32) -> f32 {
    k as f32 * f32::EPSILON * max_a * max_b
}

/// The bound of a TF32 GEMM against the f64 reference of the unrounded f32 inputs.
pub fn tf32_error_bound(k: usize, max_a: f32, max_b: f32) -> f32 {
    k as f32 * (2f32.powi(-10) + f32::EPSILON) * max_a * max_b
}

/// Half-precision input types of the tensor-core GEMM ([`gemm_half`]).
pub trait HalfFloat: crate::backend::Scalar {
    fn to_f32(self) -> f32;
    /// Round to nearest even.
    fn from_f32(v: f32) -> Self;
}

impl HalfFloat for half::bf16 {
    fn to_f32(self) -> f32 {
        half::bf16::to_f32(self)
    }
    fn from_f32(v: f32) -> Self {
        half::bf16::from_f32(v)
    }
}

impl HalfFloat for half::f16 {
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    fn from_f32(v: f32) -> Self {
        half::f16::from_f32(v)
    }
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
    /// f32 inputs only (ignored by [`gemm_half`]'s callers: must stay [`GemmMath::F32`] there).
    pub math: GemmMath,
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
        Self { trans_a, trans_b, m, n, k, lda, ldb, ldc: n, alpha, beta, kernel: GemmKernel::Auto, math: GemmMath::F32 }
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

    /// Checks that the kernel and math suit inputs of type `dtype` (f32, bf16 or f16).
    pub fn validate_precision(&self, dtype: DType) -> Result<()> {
        const OP: &str = "gemm";
        let tc = self.kernel.is_tensor_core();
        match (dtype, self.math) {
            (DType::F32, _) if self.kernel.half_only() => Err(Error::invalid(
                OP,
                format!(
                    "{:?} takes bf16 or f16 inputs (TF32 runs on TensorCore128, TensorCore64 and TensorCore128x256)",
                    self.kernel
                ),
            )),
            (DType::F32, GemmMath::F32) if tc => Err(Error::invalid(
                OP,
                format!("{:?} multiplies f32 in TF32: ask for it with GemmMath::Tf32", self.kernel),
            )),
            (DType::F32, GemmMath::Tf32) if !tc && self.kernel != GemmKernel::Auto => Err(Error::invalid(
                OP,
                format!("GemmMath::Tf32 runs on the tensor-core kernels, not {:?}", self.kernel),
            )),
            (DType::F32, _) => Ok(()),
            (DType::BF16 | DType::F16, GemmMath::F32) if tc || self.kernel == GemmKernel::Auto => Ok(()),
            (DType::BF16 | DType::F16, GemmMath::F32) => Err(Error::invalid(
                OP,
                format!("{dtype:?} inputs run on the tensor-core kernels, not {:?}", self.kernel),
            )),
            (DType::BF16 | DType::F16, GemmMath::Tf32) => {
                Err(Error::invalid(OP, format!("GemmMath::Tf32 applies to f32 inputs, not {dtype:?}")))
            }
            (DType::U32, _) => Err(Error::invalid(OP, "u32 inputs are not supported")),
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
    validate_call(bk, spec, a, b, c, epilogue)?;
    // SAFETY: validate_call checked that every element the spec and the epilogue address lies
    // inside its buffer, on this backend's device, and that the kernel suits f32.
    unsafe { bk.gemm_f32(spec, a, b, c, epilogue) }
}

/// Every check of a GEMM call: devices, extents, kernel and math for the input type, epilogue.
fn validate_call<B: Backend, T: Scalar>(
    bk: &B,
    spec: &GemmSpec,
    a: &B::Buf<T>,
    b: &B::Buf<T>,
    c: &B::Buf<f32>,
    epilogue: &GemmEpilogue<'_, B>,
) -> Result<()> {
    for (name, dev) in [("A", B::buf_device(a)), ("B", B::buf_device(b)), ("C", B::buf_device(c))] {
        buf_on_device(bk, name, dev)?;
    }
    spec.validate(B::buf_len(a), B::buf_len(b), B::buf_len(c))?;
    spec.validate_precision(T::DTYPE)?;
    epilogue.validate(bk, spec)
}

/// GEMM with bf16 or f16 inputs, f32 accumulation and an f32 C, on tensor cores on CUDA (raw
/// buffers with leading dimensions, like [`gemm`]).
pub fn gemm_half<B: Backend, T: HalfFloat>(
    bk: &B,
    spec: &GemmSpec,
    a: &B::Buf<T>,
    b: &B::Buf<T>,
    c: &mut B::Buf<f32>,
) -> Result<()> {
    gemm_half_with(bk, spec, a, b, c, &GemmEpilogue::None)
}

/// [`gemm_half`] with an epilogue.
pub fn gemm_half_with<B: Backend, T: HalfFloat>(
    bk: &B,
    spec: &GemmSpec,
    a: &B::Buf<T>,
    b: &B::Buf<T>,
    c: &mut B::Buf<f32>,
    epilogue: &GemmEpilogue<'_, B>,
) -> Result<()> {
    validate_call(bk, spec, a, b, c, epilogue)?;
    // SAFETY: as in gemm_with: every addressed element is inside its buffer, on this device.
    unsafe { bk.gemm_half(spec, a, b, c, epilogue) }
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
    let (spec, epilogue) = tensor_spec(bk, trans_a, trans_b, alpha, a, b, beta, c, epilogue)?;
    gemm_with(bk, &spec, a.buf(), b.buf(), c.buf_mut(), &epilogue)
}

/// [`matmul_with`] for bf16 or f16 tensors (f32 accumulation, f32 C, tensor cores on CUDA).
#[allow(clippy::too_many_arguments)]
pub fn matmul_half<B: Backend, T: HalfFloat>(
    bk: &B,
    trans_a: Transpose,
    trans_b: Transpose,
    alpha: f32,
    a: &Tensor<B, T>,
    b: &Tensor<B, T>,
    beta: f32,
    c: &mut Tensor<B>,
    epilogue: TensorEpilogue<'_, B>,
) -> Result<()> {
    let (spec, epilogue) = tensor_spec(bk, trans_a, trans_b, alpha, a, b, beta, c, epilogue)?;
    gemm_half_with(bk, &spec, a.buf(), b.buf(), c.buf_mut(), &epilogue)
}

/// Shape checks of the tensor entry points: the contiguous spec and the raw epilogue.
#[allow(clippy::too_many_arguments)]
fn tensor_spec<'a, B: Backend, T: Scalar>(
    bk: &B,
    trans_a: Transpose,
    trans_b: Transpose,
    alpha: f32,
    a: &Tensor<B, T>,
    b: &Tensor<B, T>,
    beta: f32,
    c: &Tensor<B>,
    epilogue: TensorEpilogue<'a, B>,
) -> Result<(GemmSpec, GemmEpilogue<'a, B>)> {
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
    Ok((GemmSpec::contiguous(trans_a, trans_b, m, n, k, alpha, beta), epilogue))
}
