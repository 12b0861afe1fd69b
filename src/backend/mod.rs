//! The backend seam: one trait lists every kernel entry point; [`CpuBackend`] is the specification
//! and [`CudaBackend`] runs the same entry points as hand-written CUDA kernels.
//!
//! Models and trainers are generic over `B: Backend`, so the same code trains on either and
//! "CPU and GPU give the same numbers" is one generic test.
//!
//! The kernel methods are `unsafe`: they take raw buffers plus sizes and trust that every buffer
//! holds the elements the sizes imply. The safe API in [`crate::ops`] checks shapes and devices and
//! is what callers use; a CUDA kernel reading past a buffer would be undefined behaviour, which is
//! why the check lives in one place that every caller goes through.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(not(feature = "cuda"))]
#[path = "cuda_stub.rs"]
pub mod cuda;

pub use cpu::CpuBackend;
pub use cuda::CudaBackend;

use std::fmt;

use crate::device::Device;
use crate::error::Result;
use crate::ops::gemm::{GemmEpilogue, HalfFloat};
use crate::ops::latent::LatentKernel;
use crate::ops::{Activation, AdamConfig, GemmSpec, KlSchedule, LatentConfig, SgdConfig};

/// Element types a buffer can hold. f32 is what every kernel takes today; f16/bf16 storage (via
/// `half`) is here so the tensor-core kernels can take it, and u32 holds indices.
pub trait Scalar: Copy + Default + PartialEq + Send + Sync + fmt::Debug + 'static + sealed::Sealed {
    const DTYPE: DType;
}

/// Runtime name of a [`Scalar`] type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    U32,
}

mod sealed {
    #[cfg(feature = "cuda")]
    pub trait Sealed: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits {}
    #[cfg(not(feature = "cuda"))]
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
    impl Sealed for u32 {}
}

impl Scalar for f32 {
    const DTYPE: DType = DType::F32;
}
impl Scalar for half::f16 {
    const DTYPE: DType = DType::F16;
}
impl Scalar for half::bf16 {
    const DTYPE: DType = DType::BF16;
}
impl Scalar for u32 {
    const DTYPE: DType = DType::U32;
}

/// A recorded sequence of kernel launches that replays as one unit (a CUDA graph).
pub trait ReplayGraph {
    /// Queues one replay of the recorded work on the backend's stream.
    fn replay(&self) -> Result<()>;
}

/// One tensor of [`Backend::adam_multi_step_f32`]: parameters, gradients and the two moments,
/// each of `n` elements.
pub struct AdamSlot<'a, B: Backend> {
    pub params: &'a mut B::Buf<f32>,
    pub grads: &'a B::Buf<f32>,
    pub m: &'a mut B::Buf<f32>,
    pub v: &'a mut B::Buf<f32>,
    pub n: usize,
}

/// Every kernel entry point, implemented by the CPU reference and by CUDA.
///
/// Memory methods are safe (they check lengths, and on CUDA that the buffers are this GPU's).
///
/// # Safety
/// Kernel methods are `unsafe` with one contract, stated here once: every buffer passed is on
/// this backend's device and holds at least the elements its sizes imply (`rows·cols`, `n`, the
/// GEMM extents of [`GemmSpec`], 3 for optimizer state). [`crate::ops`] checks this before every
/// call (through the tensors' shapes and devices, see [`crate::Tensor`]).
#[allow(clippy::missing_safety_doc)]
pub trait Backend: Clone + Send + Sync + fmt::Debug + 'static {
    /// Storage of `len` elements of `T` on this backend's device.
    type Buf<T: Scalar>: Send + Sync;

    fn device(&self) -> Device;
    fn buf_len<T: Scalar>(buf: &Self::Buf<T>) -> usize;
    /// The device a buffer lives on.
    fn buf_device<T: Scalar>(buf: &Self::Buf<T>) -> Device;
    /// A zero-filled buffer.
    fn zeros<T: Scalar>(&self, len: usize) -> Result<Self::Buf<T>>;
    fn upload<T: Scalar>(&self, data: &[T]) -> Result<Self::Buf<T>>;
    /// Copies the buffer back to the host (synchronizing with pending work).
    fn download<T: Scalar>(&self, buf: &Self::Buf<T>) -> Result<Vec<T>>;
    /// Overwrites the first `data.len()` elements of `dst`.
    fn write_host<T: Scalar>(&self, dst: &mut Self::Buf<T>, data: &[T]) -> Result<()>;
    /// Copies `src` into the first `src.len()` elements of `dst`.
    fn copy_buf<T: Scalar>(&self, src: &Self::Buf<T>, dst: &mut Self::Buf<T>) -> Result<()>;
    /// Waits until all work queued on this backend has finished.
    fn synchronize(&self) -> Result<()>;

    /// Records the work that `f` queues into a replayable graph. Backends without graphs return
    /// `Ok(None)` without running `f`; the caller then runs its step directly.
    ///
    /// # Safety
    /// `f` must only queue kernels on this backend: no allocation, no host copy, no
    /// synchronization. The graph holds raw device pointers: every buffer `f` touches must stay
    /// allocated (not dropped, not reallocated) for as long as the graph may be replayed.
    unsafe fn capture_graph(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<Option<Box<dyn ReplayGraph>>>;

    /// Whether some kernel choices are measured on their first eager call (CUDA with
    /// `GemmTuning::Measure`): a caller about to capture a graph should run the step's kernels
    /// once eagerly first, since nothing is measured inside a capture.
    fn measures_kernel_choices(&self) -> bool {
        false
    }

    // ---- elementwise (src/ops/elementwise) ----
    /// x[0..n] = value.
    unsafe fn fill_f32(&self, x: &mut Self::Buf<f32>, value: f32, n: usize) -> Result<()>;
    /// y[r, c] += bias[c] for y: [rows, cols].
    unsafe fn bias_add_f32(
        &self,
        y: &mut Self::Buf<f32>,
        bias: &Self::Buf<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<()>;
    /// y = act(x), n elements.
    unsafe fn activation_fwd_f32(
        &self,
        act: Activation,
        x: &Self::Buf<f32>,
        y: &mut Self::Buf<f32>,
        n: usize,
    ) -> Result<()>;
    /// dx = dy · act'(·), computed from the forward output y.
    unsafe fn activation_bwd_f32(
        &self,
        act: Activation,
        y: &Self::Buf<f32>,
        dy: &Self::Buf<f32>,
        dx: &mut Self::Buf<f32>,
        n: usize,
    ) -> Result<()>;
    /// out[c] = beta·out[c] + Σ_r x[r, c]; beta = 0 does not read out.
    unsafe fn col_sum_f32(
        &self,
        x: &Self::Buf<f32>,
        rows: usize,
        cols: usize,
        beta: f32,
        out: &mut Self::Buf<f32>,
    ) -> Result<()>;
    /// out[0] = Σ x[0..n], in a fixed order (bit-reproducible run to run).
    unsafe fn sum_f32(&self, x: &Self::Buf<f32>, n: usize, out: &mut Self::Buf<f32>) -> Result<()>;

    // ---- losses (src/ops/loss) ----
    /// row_loss[r] = Σ_c (pred − target)².
    unsafe fn mse_fwd_f32(
        &self,
        pred: &Self::Buf<f32>,
        target: &Self::Buf<f32>,
        row_loss: &mut Self::Buf<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<()>;
    /// grad = scale · 2 (pred − target).
    unsafe fn mse_bwd_f32(
        &self,
        pred: &Self::Buf<f32>,
        target: &Self::Buf<f32>,
        scale: f32,
        grad: &mut Self::Buf<f32>,
        n: usize,
    ) -> Result<()>;
    /// row_loss[r] = Σ_c softplus(l) − l·t.
    unsafe fn bce_logits_fwd_f32(
        &self,
        logits: &Self::Buf<f32>,
        target: &Self::Buf<f32>,
        row_loss: &mut Self::Buf<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<()>;
    /// grad = scale · (σ(l) − t).
    unsafe fn bce_logits_bwd_f32(
        &self,
        logits: &Self::Buf<f32>,
        target: &Self::Buf<f32>,
        scale: f32,
        grad: &mut Self::Buf<f32>,
        n: usize,
    ) -> Result<()>;

    // ---- optimizers (src/ops/optim) ----
    /// Advances the device-resident step state [t, 1 − β1^t, 1 − β2^t] (3 elements).
    unsafe fn optim_tick_f32(&self, state: &mut Self::Buf<f32>, beta1: f32, beta2: f32) -> Result<()>;
    /// One Adam/AdamW step over n parameters.
    #[allow(clippy::too_many_arguments)]
    unsafe fn adam_step_f32(
        &self,
        params: &mut Self::Buf<f32>,
        grads: &Self::Buf<f32>,
        m: &mut Self::Buf<f32>,
        v: &mut Self::Buf<f32>,
        state: &Self::Buf<f32>,
        cfg: &AdamConfig,
        n: usize,
    ) -> Result<()>;
    /// One Adam/AdamW step over several tensors: a single launch where the backend can (CUDA:
    /// up to 16 tensors per launch), bit for bit what [`Backend::adam_step_f32`] writes per tensor,
    /// which is what this default does.
    unsafe fn adam_multi_step_f32(
        &self,
        slots: &mut [AdamSlot<'_, Self>],
        state: &Self::Buf<f32>,
        cfg: &AdamConfig,
    ) -> Result<()> {
        for s in slots.iter_mut() {
            // SAFETY: the caller guarantees each slot's buffers hold s.n elements and state 3.
            unsafe { self.adam_step_f32(s.params, s.grads, s.m, s.v, state, cfg, s.n)? };
        }
        Ok(())
    }
    /// One SGD-with-momentum step over n parameters.
    #[allow(clippy::too_many_arguments)]
    unsafe fn sgd_step_f32(
        &self,
        params: &mut Self::Buf<f32>,
        grads: &Self::Buf<f32>,
        velocity: &mut Self::Buf<f32>,
        state: &Self::Buf<f32>,
        cfg: &SgdConfig,
        n: usize,
    ) -> Result<()>;

    // ---- counter-based RNG (src/ops/rng) ----
    /// out[i] = ε(seed, offset, i) for i < n; offset holds 2 u32 (low, high).
    unsafe fn rng_normal_f32(
        &self,
        seed: u64,
        offset: &Self::Buf<u32>,
        out: &mut Self::Buf<f32>,
        n: usize,
    ) -> Result<()>;
    /// offset += 1.
    unsafe fn rng_advance_u32(&self, offset: &mut Self::Buf<u32>) -> Result<()>;

    // ---- reparameterization + KL (src/ops/latent) ----
    /// z, kl_row[rows] and optionally kl_elem from μ, log σ² ([rows, cols]). `kernel` picks the CUDA
    /// version (the CPU ignores it); `ops::latent` passes it resolved (never `Auto`).
    #[allow(clippy::too_many_arguments)]
    unsafe fn reparam_kl_fwd_f32(
        &self,
        cfg: &LatentConfig,
        kernel: LatentKernel,
        offset: &Self::Buf<u32>,
        mu: &Self::Buf<f32>,
        logvar: &Self::Buf<f32>,
        z: &mut Self::Buf<f32>,
        kl_row: &mut Self::Buf<f32>,
        kl_elem: Option<&mut Self::Buf<f32>>,
        rows: usize,
        cols: usize,
    ) -> Result<()>;
    /// dμ, dlog σ² from dz and per-dimension KL weights (kl_weight: [cols]); `kernel` as in
    /// `reparam_kl_fwd_f32`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn reparam_kl_bwd_f32(
        &self,
        cfg: &LatentConfig,
        kernel: LatentKernel,
        offset: &Self::Buf<u32>,
        mu: &Self::Buf<f32>,
        logvar: &Self::Buf<f32>,
        dz: &Self::Buf<f32>,
        kl_weight: &Self::Buf<f32>,
        dmu: &mut Self::Buf<f32>,
        dlogvar: &mut Self::Buf<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<()>;

    /// The VAE objective: KL weights, [recon, KL, loss] stats and their running sums.
    #[allow(clippy::too_many_arguments)]
    unsafe fn vae_objective_f32(
        &self,
        sched: &KlSchedule,
        optim_state: &Self::Buf<f32>,
        recon_row: &Self::Buf<f32>,
        kl_row: &Self::Buf<f32>,
        kl_dim: Option<&Self::Buf<f32>>,
        kl_weight: &mut Self::Buf<f32>,
        stats: &mut Self::Buf<f32>,
        acc: &mut Self::Buf<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<()>;

    // ---- device-side batching (src/ops/batch) ----
    /// out[r, :] = src[index[cursor·rows + r], :], NaN rows for out-of-range positions/indices.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gather_rows_f32(
        &self,
        src: &Self::Buf<f32>,
        index: &Self::Buf<u32>,
        cursor: &Self::Buf<u32>,
        out: &mut Self::Buf<f32>,
        src_rows: usize,
        index_len: usize,
        rows: usize,
        cols: usize,
    ) -> Result<()>;
    /// counter[0] += value.
    unsafe fn counter_add_u32(&self, counter: &mut Self::Buf<u32>, value: u32) -> Result<()>;
    /// out[r, :] = (accumulate ? out[r, :] : 0) + Σ_{t<terms} src[index[t·rows + r], :], summed in
    /// the order t = 0, 1, …; an index past src adds NaN.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gather_sum_rows_f32(
        &self,
        src: &Self::Buf<f32>,
        index: &Self::Buf<u32>,
        out: &mut Self::Buf<f32>,
        src_rows: usize,
        terms: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) -> Result<()>;

    // ---- GEMM (src/ops/gemm) ----
    /// C = α·op(A)·op(B) + β·C, row-major with leading dimensions (see [`GemmSpec`]).
    unsafe fn gemm_f32(
        &self,
        spec: &GemmSpec,
        a: &Self::Buf<f32>,
        b: &Self::Buf<f32>,
        c: &mut Self::Buf<f32>,
        epilogue: &GemmEpilogue<'_, Self>,
    ) -> Result<()>;
    /// The same with bf16 or f16 inputs, f32 accumulation and an f32 C (spec validated for `T`).
    unsafe fn gemm_half<T: HalfFloat>(
        &self,
        spec: &GemmSpec,
        a: &Self::Buf<T>,
        b: &Self::Buf<T>,
        c: &mut Self::Buf<f32>,
        epilogue: &GemmEpilogue<'_, Self>,
    ) -> Result<()>;

    // ==== metric learning: pairwise distance (src/ops/distance) ====
    /// out [n, m] = κ(q_i, r_j) for q [n, d], r [m, d].
    #[allow(clippy::too_many_arguments)]
    unsafe fn pairwise_distance_fwd_f32(
        &self,
        metric: crate::ops::distance::Metric,
        q: &Self::Buf<f32>,
        r: &Self::Buf<f32>,
        out: &mut Self::Buf<f32>,
        n: usize,
        m: usize,
        d: usize,
    ) -> Result<()>;
    /// dq [n, d], dr [m, d] from the upstream gradient g [n, m].
    #[allow(clippy::too_many_arguments)]
    unsafe fn pairwise_distance_bwd_f32(
        &self,
        metric: crate::ops::distance::Metric,
        q: &Self::Buf<f32>,
        r: &Self::Buf<f32>,
        g: &Self::Buf<f32>,
        dq: &mut Self::Buf<f32>,
        dr: &mut Self::Buf<f32>,
        n: usize,
        m: usize,
        d: usize,
    ) -> Result<()>;

    // ---- fused triplet mining + loss (src/ops/mining) ----
    /// Mines and evaluates the triplet loss into the workspace (per-anchor planes, statistics).
    #[allow(clippy::too_many_arguments)]
    unsafe fn triplet_fwd_f32(
        &self,
        p: &crate::ops::mining::TripletProblem,
        q: &Self::Buf<f32>,
        q_labels: &Self::Buf<u32>,
        r: &Self::Buf<f32>,
        r_labels: &Self::Buf<u32>,
        ws: &mut crate::ops::mining::TripletWorkspace<Self>,
    ) -> Result<()>;
    /// Gradient of `p.scale`·loss into dq and dr (`None`: dr is added into dq).
    #[allow(clippy::too_many_arguments)]
    unsafe fn triplet_bwd_f32(
        &self,
        p: &crate::ops::mining::TripletProblem,
        q: &Self::Buf<f32>,
        q_labels: &Self::Buf<u32>,
        r: &Self::Buf<f32>,
        r_labels: &Self::Buf<u32>,
        ws: &mut crate::ops::mining::TripletWorkspace<Self>,
        dq: &mut Self::Buf<f32>,
        dr: Option<&mut Self::Buf<f32>>,
    ) -> Result<()>;

    // ---- exact k-NN (src/ops/knn) ----
    /// out_idx, out_dist [n, k]: the k nearest references of each query, ascending.
    #[allow(clippy::too_many_arguments)]
    unsafe fn knn_f32(
        &self,
        metric: crate::ops::distance::Metric,
        q: &Self::Buf<f32>,
        r: &Self::Buf<f32>,
        out_idx: &mut Self::Buf<u32>,
        out_dist: &mut Self::Buf<f32>,
        n: usize,
        m: usize,
        d: usize,
        k: usize,
        same_set: bool,
    ) -> Result<()>;

    // ---- pair losses: contrastive, siamese cosine head (src/ops/metric_loss) ----
    /// loss[i] = ½y d² + ½(1−y) max(0, m − d)² of the pairs (x1[i], x2[i]).
    #[allow(clippy::too_many_arguments)]
    unsafe fn contrastive_pair_fwd_f32(
        &self,
        margin: f32,
        x1: &Self::Buf<f32>,
        x2: &Self::Buf<f32>,
        y: &Self::Buf<u32>,
        loss: &mut Self::Buf<f32>,
        n: usize,
        d: usize,
    ) -> Result<()>;
    /// dx1 = g·c·(x1 − x2) = −dx2.
    #[allow(clippy::too_many_arguments)]
    unsafe fn contrastive_pair_bwd_f32(
        &self,
        margin: f32,
        x1: &Self::Buf<f32>,
        x2: &Self::Buf<f32>,
        y: &Self::Buf<u32>,
        g: &Self::Buf<f32>,
        dx1: &mut Self::Buf<f32>,
        dx2: &mut Self::Buf<f32>,
        n: usize,
        d: usize,
    ) -> Result<()>;
    /// row_loss[i] = Σ_{j>i} ℓ(x_i, x_j) over the in-batch pairs.
    unsafe fn contrastive_batch_fwd_f32(
        &self,
        margin: f32,
        x: &Self::Buf<f32>,
        labels: &Self::Buf<u32>,
        row_loss: &mut Self::Buf<f32>,
        n: usize,
        d: usize,
    ) -> Result<()>;
    /// dx_i = weight·Σ_{j≠i} c_ij (x_i − x_j).
    #[allow(clippy::too_many_arguments)]
    unsafe fn contrastive_batch_bwd_f32(
        &self,
        margin: f32,
        weight: f32,
        x: &Self::Buf<f32>,
        labels: &Self::Buf<u32>,
        dx: &mut Self::Buf<f32>,
        n: usize,
        d: usize,
    ) -> Result<()>;
    /// logits = scale·cos(x1, x2) + bias, loss = BCE-with-logits per pair.
    #[allow(clippy::too_many_arguments)]
    unsafe fn siamese_cos_fwd_f32(
        &self,
        x1: &Self::Buf<f32>,
        x2: &Self::Buf<f32>,
        y: &Self::Buf<f32>,
        scale: &Self::Buf<f32>,
        bias: &Self::Buf<f32>,
        logits: &mut Self::Buf<f32>,
        loss: &mut Self::Buf<f32>,
        n: usize,
        d: usize,
    ) -> Result<()>;
    /// dx1, dx2, dscale, dbias of Σ g_i·loss_i.
    #[allow(clippy::too_many_arguments)]
    unsafe fn siamese_cos_bwd_f32(
        &self,
        x1: &Self::Buf<f32>,
        x2: &Self::Buf<f32>,
        y: &Self::Buf<f32>,
        g: &Self::Buf<f32>,
        scale: &Self::Buf<f32>,
        bias: &Self::Buf<f32>,
        dx1: &mut Self::Buf<f32>,
        dx2: &mut Self::Buf<f32>,
        dscale: &mut Self::Buf<f32>,
        dbias: &mut Self::Buf<f32>,
        n: usize,
        d: usize,
    ) -> Result<()>;
    // ==== end metric learning ====
}
