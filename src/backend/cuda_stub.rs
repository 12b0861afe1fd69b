//! The CUDA backend of a build without feature `cuda`: the type exists so callers need no `cfg`,
//! and constructing it returns an error saying how to get the real one.

use std::marker::PhantomData;

use super::{Backend, Scalar};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::gemm::{GemmKernel, GemmTuneKey, GemmTuneRecord, GemmTuning};
use crate::ops::latent::LatentKernel;
use crate::ops::{Activation, AdamConfig, GemmSpec, KlSchedule, LatentConfig, SgdConfig};

#[derive(Clone, Copy, Debug)]
enum Never {}

/// Placeholder for the CUDA backend; it can't be constructed in this build.
#[derive(Clone, Debug)]
pub struct CudaBackend {
    never: Never,
}

/// Placeholder buffer type; no value of it can exist.
pub struct NoBuffer<T>(Never, PhantomData<T>);

impl CudaBackend {
    /// Always fails: this build has no CUDA support.
    pub fn new(_ordinal: usize) -> Result<Self> {
        Err(Error::CudaUnavailable(
            "latentkit was built without the `cuda` feature; rebuild with `--features cuda` \
             (see README: scripts/install-cuda-toolchain.sh provides nvcc)"
                .into(),
        ))
    }

    /// The GPU's name.
    pub fn name(&self) -> Result<String> {
        match self.never {}
    }

    /// Kernels launched so far.
    pub fn launches(&self) -> u64 {
        match self.never {}
    }

    /// Number of streaming multiprocessors.
    pub fn sm_count(&self) -> usize {
        match self.never {}
    }

    /// Whether the Hopper GEMM kernels run here: never without the `cuda` feature.
    pub fn supports_wgmma(&self) -> bool {
        match self.never {}
    }

    /// How `GemmKernel::Auto` picks a kernel (see the CUDA build's docs).
    pub fn set_gemm_tuning(&self, _mode: GemmTuning) {
        match self.never {}
    }

    pub fn gemm_tuning(&self) -> GemmTuning {
        match self.never {}
    }

    /// Versions that GEMM measuring leaves out (see the CUDA build's docs).
    pub fn exclude_gemm_kernels(&self, _kernels: &[GemmKernel]) {
        match self.never {}
    }

    /// The measured GEMM choices so far.
    pub fn gemm_tuning_report(&self) -> Vec<GemmTuneRecord> {
        match self.never {}
    }

    /// Sets the GEMM tuning mode and loads a tuning file.
    pub fn begin_gemm_tuning(
        &self,
        _mode: Option<GemmTuning>,
        _file: Option<&std::path::Path>,
        _exclude: &[GemmKernel],
    ) -> Result<usize> {
        match self.never {}
    }

    /// The measured or loaded GEMM choice for one key.
    pub fn gemm_tuning_record(&self, _key: &GemmTuneKey) -> Option<GemmTuneRecord> {
        match self.never {}
    }

    /// Forgets the measured GEMM choices.
    pub fn clear_gemm_tuning(&self) {
        match self.never {}
    }

    /// Saves the measured GEMM choices.
    pub fn save_gemm_tuning(&self, _path: &std::path::Path) -> Result<()> {
        match self.never {}
    }

    /// Loads saved GEMM choices.
    pub fn load_gemm_tuning(&self, _path: &std::path::Path) -> Result<usize> {
        match self.never {}
    }

    /// Loads saved GEMM choices when the file exists.
    pub fn load_gemm_tuning_if_present(&self, _path: &std::path::Path) -> Result<usize> {
        match self.never {}
    }

    /// The shipped GEMM tuning table for this GPU.
    pub fn builtin_gemm_table(&self) -> Option<&'static str> {
        match self.never {}
    }
}

impl Backend for CudaBackend {
    type Buf<T: Scalar> = NoBuffer<T>;

    fn device(&self) -> Device {
        match self.never {}
    }
    fn buf_len<T: Scalar>(buf: &NoBuffer<T>) -> usize {
        match buf.0 {}
    }
    fn buf_device<T: Scalar>(buf: &NoBuffer<T>) -> Device {
        match buf.0 {}
    }
    fn zeros<T: Scalar>(&self, _len: usize) -> Result<NoBuffer<T>> {
        match self.never {}
    }
    fn upload<T: Scalar>(&self, _data: &[T]) -> Result<NoBuffer<T>> {
        match self.never {}
    }
    fn download<T: Scalar>(&self, _buf: &NoBuffer<T>) -> Result<Vec<T>> {
        match self.never {}
    }
    fn write_host<T: Scalar>(&self, _dst: &mut NoBuffer<T>, _data: &[T]) -> Result<()> {
        match self.never {}
    }
    fn copy_buf<T: Scalar>(&self, _src: &NoBuffer<T>, _dst: &mut NoBuffer<T>) -> Result<()> {
        match self.never {}
    }
    fn synchronize(&self) -> Result<()> {
        match self.never {}
    }
    unsafe fn capture_graph(&self, _f: &mut dyn FnMut() -> Result<()>) -> Result<Option<Box<dyn super::ReplayGraph>>> {
        match self.never {}
    }
    unsafe fn fill_f32(&self, _x: &mut NoBuffer<f32>, _value: f32, _n: usize) -> Result<()> {
        match self.never {}
    }
    unsafe fn bias_add_f32(
        &self,
        _y: &mut NoBuffer<f32>,
        _bias: &NoBuffer<f32>,
        _rows: usize,
        _cols: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn activation_fwd_f32(
        &self,
        _act: Activation,
        _x: &NoBuffer<f32>,
        _y: &mut NoBuffer<f32>,
        _n: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn activation_bwd_f32(
        &self,
        _act: Activation,
        _y: &NoBuffer<f32>,
        _dy: &NoBuffer<f32>,
        _dx: &mut NoBuffer<f32>,
        _n: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn col_sum_f32(
        &self,
        _x: &NoBuffer<f32>,
        _rows: usize,
        _cols: usize,
        _beta: f32,
        _out: &mut NoBuffer<f32>,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn sum_f32(&self, _x: &NoBuffer<f32>, _n: usize, _out: &mut NoBuffer<f32>) -> Result<()> {
        match self.never {}
    }
    unsafe fn mse_fwd_f32(
        &self,
        _pred: &NoBuffer<f32>,
        _target: &NoBuffer<f32>,
        _row_loss: &mut NoBuffer<f32>,
        _rows: usize,
        _cols: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn mse_bwd_f32(
        &self,
        _pred: &NoBuffer<f32>,
        _target: &NoBuffer<f32>,
        _scale: f32,
        _grad: &mut NoBuffer<f32>,
        _n: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn bce_logits_fwd_f32(
        &self,
        _logits: &NoBuffer<f32>,
        _target: &NoBuffer<f32>,
        _row_loss: &mut NoBuffer<f32>,
        _rows: usize,
        _cols: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn bce_logits_bwd_f32(
        &self,
        _logits: &NoBuffer<f32>,
        _target: &NoBuffer<f32>,
        _scale: f32,
        _grad: &mut NoBuffer<f32>,
        _n: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn optim_tick_f32(&self, _state: &mut NoBuffer<f32>, _beta1: f32, _beta2: f32) -> Result<()> {
        match self.never {}
    }
    unsafe fn adam_step_f32(
        &self,
        _params: &mut NoBuffer<f32>,
        _grads: &NoBuffer<f32>,
        _m: &mut NoBuffer<f32>,
        _v: &mut NoBuffer<f32>,
        _state: &NoBuffer<f32>,
        _cfg: &AdamConfig,
        _n: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn sgd_step_f32(
        &self,
        _params: &mut NoBuffer<f32>,
        _grads: &NoBuffer<f32>,
        _velocity: &mut NoBuffer<f32>,
        _state: &NoBuffer<f32>,
        _cfg: &SgdConfig,
        _n: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn rng_normal_f32(
        &self,
        _seed: u64,
        _offset: &NoBuffer<u32>,
        _out: &mut NoBuffer<f32>,
        _n: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn rng_advance_u32(&self, _offset: &mut NoBuffer<u32>) -> Result<()> {
        match self.never {}
    }
    unsafe fn reparam_kl_fwd_f32(
        &self,
        _cfg: &LatentConfig,
        _kernel: LatentKernel,
        _offset: &NoBuffer<u32>,
        _mu: &NoBuffer<f32>,
        _logvar: &NoBuffer<f32>,
        _z: &mut NoBuffer<f32>,
        _kl_row: &mut NoBuffer<f32>,
        _kl_elem: Option<&mut NoBuffer<f32>>,
        _rows: usize,
        _cols: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn reparam_kl_bwd_f32(
        &self,
        _cfg: &LatentConfig,
        _kernel: LatentKernel,
        _offset: &NoBuffer<u32>,
        _mu: &NoBuffer<f32>,
        _logvar: &NoBuffer<f32>,
        _dz: &NoBuffer<f32>,
        _kl_weight: &NoBuffer<f32>,
        _dmu: &mut NoBuffer<f32>,
        _dlogvar: &mut NoBuffer<f32>,
        _rows: usize,
        _cols: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn vae_objective_f32(
        &self,
        _sched: &KlSchedule,
        _optim_state: &NoBuffer<f32>,
        _recon_row: &NoBuffer<f32>,
        _kl_row: &NoBuffer<f32>,
        _kl_dim: Option<&NoBuffer<f32>>,
        _kl_weight: &mut NoBuffer<f32>,
        _stats: &mut NoBuffer<f32>,
        _acc: &mut NoBuffer<f32>,
        _rows: usize,
        _cols: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn gather_rows_f32(
        &self,
        _src: &NoBuffer<f32>,
        _index: &NoBuffer<u32>,
        _cursor: &NoBuffer<u32>,
        _out: &mut NoBuffer<f32>,
        _src_rows: usize,
        _index_len: usize,
        _rows: usize,
        _cols: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn gather_sum_rows_f32(
        &self,
        _src: &NoBuffer<f32>,
        _index: &NoBuffer<u32>,
        _out: &mut NoBuffer<f32>,
        _src_rows: usize,
        _terms: usize,
        _rows: usize,
        _cols: usize,
        _accumulate: bool,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn counter_add_u32(&self, _counter: &mut NoBuffer<u32>, _value: u32) -> Result<()> {
        match self.never {}
    }
    unsafe fn gemm_f32(
        &self,
        _spec: &GemmSpec,
        _a: &NoBuffer<f32>,
        _b: &NoBuffer<f32>,
        _c: &mut NoBuffer<f32>,
        _epilogue: &crate::ops::gemm::GemmEpilogue<'_, Self>,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn gemm_half<T: crate::ops::gemm::HalfFloat>(
        &self,
        _spec: &GemmSpec,
        _a: &NoBuffer<T>,
        _b: &NoBuffer<T>,
        _c: &mut NoBuffer<f32>,
        _epilogue: &crate::ops::gemm::GemmEpilogue<'_, Self>,
    ) -> Result<()> {
        match self.never {}
    }

    // ==== metric learning: pairwise distance (src/ops/distance) ====
    unsafe fn pairwise_distance_fwd_f32(
        &self,
        _metric: crate::ops::distance::Metric,
        _q: &NoBuffer<f32>,
        _r: &NoBuffer<f32>,
        _out: &mut NoBuffer<f32>,
        _n: usize,
        _m: usize,
        _d: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn pairwise_distance_bwd_f32(
        &self,
        _metric: crate::ops::distance::Metric,
        _q: &NoBuffer<f32>,
        _r: &NoBuffer<f32>,
        _g: &NoBuffer<f32>,
        _dq: &mut NoBuffer<f32>,
        _dr: &mut NoBuffer<f32>,
        _n: usize,
        _m: usize,
        _d: usize,
    ) -> Result<()> {
        match self.never {}
    }

    // ---- fused triplet mining + loss (src/ops/mining) ----
    unsafe fn triplet_fwd_f32(
        &self,
        _p: &crate::ops::mining::TripletProblem,
        _q: &NoBuffer<f32>,
        _q_labels: &NoBuffer<u32>,
        _r: &NoBuffer<f32>,
        _r_labels: &NoBuffer<u32>,
        _ws: &mut crate::ops::mining::TripletWorkspace<Self>,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn triplet_bwd_f32(
        &self,
        _p: &crate::ops::mining::TripletProblem,
        _q: &NoBuffer<f32>,
        _q_labels: &NoBuffer<u32>,
        _r: &NoBuffer<f32>,
        _r_labels: &NoBuffer<u32>,
        _ws: &mut crate::ops::mining::TripletWorkspace<Self>,
        _dq: &mut NoBuffer<f32>,
        _dr: Option<&mut NoBuffer<f32>>,
    ) -> Result<()> {
        match self.never {}
    }

    // ---- exact k-NN (src/ops/knn) ----
    unsafe fn knn_f32(
        &self,
        _metric: crate::ops::distance::Metric,
        _q: &NoBuffer<f32>,
        _r: &NoBuffer<f32>,
        _out_idx: &mut NoBuffer<u32>,
        _out_dist: &mut NoBuffer<f32>,
        _n: usize,
        _m: usize,
        _d: usize,
        _k: usize,
        _same_set: bool,
    ) -> Result<()> {
        match self.never {}
    }

    // ---- pair losses: contrastive, siamese cosine head (src/ops/metric_loss) ----
    unsafe fn contrastive_pair_fwd_f32(
        &self,
        _margin: f32,
        _x1: &NoBuffer<f32>,
        _x2: &NoBuffer<f32>,
        _y: &NoBuffer<u32>,
        _loss: &mut NoBuffer<f32>,
        _n: usize,
        _d: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn contrastive_pair_bwd_f32(
        &self,
        _margin: f32,
        _x1: &NoBuffer<f32>,
        _x2: &NoBuffer<f32>,
        _y: &NoBuffer<u32>,
        _g: &NoBuffer<f32>,
        _dx1: &mut NoBuffer<f32>,
        _dx2: &mut NoBuffer<f32>,
        _n: usize,
        _d: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn contrastive_batch_fwd_f32(
        &self,
        _margin: f32,
        _x: &NoBuffer<f32>,
        _labels: &NoBuffer<u32>,
        _row_loss: &mut NoBuffer<f32>,
        _n: usize,
        _d: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn contrastive_batch_bwd_f32(
        &self,
        _margin: f32,
        _weight: f32,
        _x: &NoBuffer<f32>,
        _labels: &NoBuffer<u32>,
        _dx: &mut NoBuffer<f32>,
        _n: usize,
        _d: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn siamese_cos_fwd_f32(
        &self,
        _x1: &NoBuffer<f32>,
        _x2: &NoBuffer<f32>,
        _y: &NoBuffer<f32>,
        _scale: &NoBuffer<f32>,
        _bias: &NoBuffer<f32>,
        _logits: &mut NoBuffer<f32>,
        _loss: &mut NoBuffer<f32>,
        _n: usize,
        _d: usize,
    ) -> Result<()> {
        match self.never {}
    }
    unsafe fn siamese_cos_bwd_f32(
        &self,
        _x1: &NoBuffer<f32>,
        _x2: &NoBuffer<f32>,
        _y: &NoBuffer<f32>,
        _g: &NoBuffer<f32>,
        _scale: &NoBuffer<f32>,
        _bias: &NoBuffer<f32>,
        _dx1: &mut NoBuffer<f32>,
        _dx2: &mut NoBuffer<f32>,
        _dscale: &mut NoBuffer<f32>,
        _dbias: &mut NoBuffer<f32>,
        _n: usize,
        _d: usize,
    ) -> Result<()> {
        match self.never {}
    }
    // ==== end metric learning ====
}
