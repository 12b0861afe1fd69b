//! The CPU backend: the numerical specification of every kernel (`src/ops/*/cpu.rs`), and a usable
//! training path (GEMM through `matrixmultiply`).

use super::{Backend, Scalar};
use crate::device::Device;
use crate::error::{check_len, Error, Result};
use crate::ops::gemm::GemmEpilogue;
use crate::ops::latent::LatentKernel;
use crate::ops::{batch::cpu as batch, latent::cpu as latent, rng::cpu as rng};
use crate::ops::{elementwise::cpu as ew, gemm::cpu as gemm, loss::cpu as loss, optim::cpu as optim};
use crate::ops::{Activation, AdamConfig, GemmSpec, KlSchedule, LatentConfig, SgdConfig};

/// The CPU reference backend. Buffers are `Vec<T>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    pub fn new() -> Self {
        CpuBackend
    }
}

impl Backend for CpuBackend {
    type Buf<T: Scalar> = Vec<T>;

    fn device(&self) -> Device {
        Device::Cpu
    }

    fn buf_len<T: Scalar>(buf: &Vec<T>) -> usize {
        buf.len()
    }

    fn buf_device<T: Scalar>(_buf: &Vec<T>) -> Device {
        Device::Cpu
    }

    fn zeros<T: Scalar>(&self, len: usize) -> Result<Vec<T>> {
        host_vec("CpuBackend::zeros", len, T::default())
    }

    fn upload<T: Scalar>(&self, data: &[T]) -> Result<Vec<T>> {
        Ok(data.to_vec())
    }

    fn download<T: Scalar>(&self, buf: &Vec<T>) -> Result<Vec<T>> {
        Ok(buf.clone())
    }

    fn write_host<T: Scalar>(&self, dst: &mut Vec<T>, data: &[T]) -> Result<()> {
        check_len("write_host", "dst", dst.len(), data.len())?;
        dst[..data.len()].copy_from_slice(data);
        Ok(())
    }

    fn copy_buf<T: Scalar>(&self, src: &Vec<T>, dst: &mut Vec<T>) -> Result<()> {
        self.write_host(dst, src)
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    unsafe fn capture_graph(&self, _f: &mut dyn FnMut() -> Result<()>) -> Result<Option<Box<dyn super::ReplayGraph>>> {
        Ok(None)
    }

    unsafe fn fill_f32(&self, x: &mut Vec<f32>, value: f32, n: usize) -> Result<()> {
        ew::fill(&mut x[..n], value);
        Ok(())
    }

    unsafe fn bias_add_f32(&self, y: &mut Vec<f32>, bias: &Vec<f32>, rows: usize, cols: usize) -> Result<()> {
        if cols > 0 {
            ew::bias_add(&mut y[..rows * cols], &bias[..cols], cols);
        }
        Ok(())
    }

    unsafe fn activation_fwd_f32(&self, act: Activation, x: &Vec<f32>, y: &mut Vec<f32>, n: usize) -> Result<()> {
        ew::activation_fwd(act, &x[..n], &mut y[..n]);
        Ok(())
    }

    unsafe fn activation_bwd_f32(
        &self,
        act: Activation,
        y: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
        n: usize,
    ) -> Result<()> {
        ew::activation_bwd(act, &y[..n], &dy[..n], &mut dx[..n]);
        Ok(())
    }

    unsafe fn col_sum_f32(&self, x: &Vec<f32>, rows: usize, cols: usize, beta: f32, out: &mut Vec<f32>) -> Result<()> {
        ew::col_sum(&x[..rows * cols], rows, cols, beta, &mut out[..cols]);
        Ok(())
    }

    unsafe fn sum_f32(&self, x: &Vec<f32>, n: usize, out: &mut Vec<f32>) -> Result<()> {
        out[0] = ew::sum(&x[..n]);
        Ok(())
    }

    unsafe fn mse_fwd_f32(
        &self,
        pred: &Vec<f32>,
        target: &Vec<f32>,
        row_loss: &mut Vec<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<()> {
        if cols == 0 {
            row_loss[..rows].fill(0.0);
        } else {
            loss::mse_fwd(&pred[..rows * cols], &target[..rows * cols], &mut row_loss[..rows], cols);
        }
        Ok(())
    }

    unsafe fn mse_bwd_f32(
        &self,
        pred: &Vec<f32>,
        target: &Vec<f32>,
        scale: f32,
        grad: &mut Vec<f32>,
        n: usize,
    ) -> Result<()> {
        loss::mse_bwd(&pred[..n], &target[..n], scale, &mut grad[..n]);
        Ok(())
    }

    unsafe fn bce_logits_fwd_f32(
        &self,
        logits: &Vec<f32>,
        target: &Vec<f32>,
        row_loss: &mut Vec<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<()> {
        if cols == 0 {
            row_loss[..rows].fill(0.0);
        } else {
            loss::bce_logits_fwd(&logits[..rows * cols], &target[..rows * cols], &mut row_loss[..rows], cols);
        }
        Ok(())
    }

    unsafe fn bce_logits_bwd_f32(
        &self,
        logits: &Vec<f32>,
        target: &Vec<f32>,
        scale: f32,
        grad: &mut Vec<f32>,
        n: usize,
    ) -> Result<()> {
        loss::bce_logits_bwd(&logits[..n], &target[..n], scale, &mut grad[..n]);
        Ok(())
    }

    unsafe fn optim_tick_f32(&self, state: &mut Vec<f32>, beta1: f32, beta2: f32) -> Result<()> {
        optim::optim_tick(&mut state[..3], beta1, beta2);
        Ok(())
    }

    unsafe fn adam_step_f32(
        &self,
        params: &mut Vec<f32>,
        grads: &Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
        state: &Vec<f32>,
        cfg: &AdamConfig,
        n: usize,
    ) -> Result<()> {
        optim::adam_step(&mut params[..n], &grads[..n], &mut m[..n], &mut v[..n], &state[..3], cfg);
        Ok(())
    }

    unsafe fn sgd_step_f32(
        &self,
        params: &mut Vec<f32>,
        grads: &Vec<f32>,
        velocity: &mut Vec<f32>,
        state: &Vec<f32>,
        cfg: &SgdConfig,
        n: usize,
    ) -> Result<()> {
        optim::sgd_step(&mut params[..n], &grads[..n], &mut velocity[..n], &state[..3], cfg);
        Ok(())
    }

    unsafe fn rng_normal_f32(&self, seed: u64, offset: &Vec<u32>, out: &mut Vec<f32>, n: usize) -> Result<()> {
        rng::normal_fill(seed, rng::load_offset(offset), &mut out[..n]);
        Ok(())
    }

    unsafe fn rng_advance_u32(&self, offset: &mut Vec<u32>) -> Result<()> {
        rng::advance(&mut offset[..2]);
        Ok(())
    }

    unsafe fn reparam_kl_fwd_f32(
        &self,
        cfg: &LatentConfig,
        _kernel: LatentKernel, // one CPU implementation: the kernel versions agree with it
        offset: &Vec<u32>,
        mu: &Vec<f32>,
        logvar: &Vec<f32>,
        z: &mut Vec<f32>,
        kl_row: &mut Vec<f32>,
        kl_elem: Option<&mut Vec<f32>>,
        rows: usize,
        cols: usize,
    ) -> Result<()> {
        let n = rows * cols;
        let kl_elem = kl_elem.map(|k| &mut k[..n]);
        latent::reparam_kl_fwd(
            cfg,
            rng::load_offset(offset),
            &mu[..n],
            &logvar[..n],
            &mut z[..n],
            &mut kl_row[..rows],
            kl_elem,
            cols,
        );
        Ok(())
    }

    unsafe fn reparam_kl_bwd_f32(
        &self,
        cfg: &LatentConfig,
        _kernel: LatentKernel, // one CPU implementation: the kernel versions agree with it
        offset: &Vec<u32>,
        mu: &Vec<f32>,
        logvar: &Vec<f32>,
        dz: &Vec<f32>,
        kl_weight: &Vec<f32>,
        dmu: &mut Vec<f32>,
        dlogvar: &mut Vec<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<()> {
        let n = rows * cols;
        if cols > 0 {
            let off = rng::load_offset(offset);
            latent::reparam_kl_bwd(
                cfg,
                off,
                &mu[..n],
                &logvar[..n],
                &dz[..n],
                &kl_weight[..cols],
                &mut dmu[..n],
                &mut dlogvar[..n],
            );
        }
        Ok(())
    }

    unsafe fn vae_objective_f32(
        &self,
        sched: &KlSchedule,
        optim_state: &Vec<f32>,
        recon_row: &Vec<f32>,
        kl_row: &Vec<f32>,
        kl_dim: Option<&Vec<f32>>,
        kl_weight: &mut Vec<f32>,
        stats: &mut Vec<f32>,
        acc: &mut Vec<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<()> {
        let kl_dim = kl_dim.map(|k| &k[..cols]);
        latent::vae_objective(
            sched,
            &optim_state[..3],
            &recon_row[..rows],
            &kl_row[..rows],
            kl_dim,
            &mut kl_weight[..cols],
            &mut stats[..3],
            &mut acc[..3],
        );
        Ok(())
    }

    unsafe fn gather_rows_f32(
        &self,
        src: &Vec<f32>,
        index: &Vec<u32>,
        cursor: &Vec<u32>,
        out: &mut Vec<f32>,
        src_rows: usize,
        index_len: usize,
        rows: usize,
        cols: usize,
    ) -> Result<()> {
        batch::gather_rows(
            &src[..src_rows * cols],
            &index[..index_len],
            cursor[0],
            &mut out[..rows * cols],
            src_rows,
            cols,
        );
        Ok(())
    }

    unsafe fn gather_sum_rows_f32(
        &self,
        src: &Vec<f32>,
        index: &Vec<u32>,
        out: &mut Vec<f32>,
        src_rows: usize,
        terms: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) -> Result<()> {
        batch::gather_sum_rows(
            &src[..src_rows * cols],
            &index[..terms * rows],
            &mut out[..rows * cols],
            src_rows,
            cols,
            accumulate,
        );
        Ok(())
    }

    unsafe fn counter_add_u32(&self, counter: &mut Vec<u32>, value: u32) -> Result<()> {
        batch::counter_add(&mut counter[..1], value);
        Ok(())
    }

    unsafe fn gemm_f32(
        &self,
        spec: &GemmSpec,
        a: &Vec<f32>,
        b: &Vec<f32>,
        c: &mut Vec<f32>,
        epilogue: &GemmEpilogue<'_, Self>,
    ) -> Result<()> {
        match spec.math {
            crate::ops::gemm::GemmMath::F32 => gemm::gemm_fast(spec, a, b, c)?,
            crate::ops::gemm::GemmMath::Tf32 => {
                let (a, b) = (gemm::round_tf32_all(a), gemm::round_tf32_all(b));
                gemm::gemm_fast(spec, &a, &b, c)?
            }
        }
        gemm::apply_epilogue_of(spec, c, epilogue);
        Ok(())
    }

    unsafe fn gemm_half<T: crate::ops::gemm::HalfFloat>(
        &self,
        spec: &GemmSpec,
        a: &Vec<T>,
        b: &Vec<T>,
        c: &mut Vec<f32>,
        epilogue: &GemmEpilogue<'_, Self>,
    ) -> Result<()> {
        // Widening is exact, and so are the products of two widened halves in f32.
        let widen = |v: &Vec<T>| v.iter().map(|x| x.to_f32()).collect::<Vec<f32>>();
        gemm::gemm_fast(spec, &widen(a), &widen(b), c)?;
        gemm::apply_epilogue_of(spec, c, epilogue);
        Ok(())
    }

    // ==== metric learning: pairwise distance (src/ops/distance) ====
    unsafe fn pairwise_distance_fwd_f32(
        &self,
        metric: crate::ops::distance::Metric,
        q: &Vec<f32>,
        r: &Vec<f32>,
        out: &mut Vec<f32>,
        n: usize,
        m: usize,
        d: usize,
    ) -> Result<()> {
        crate::ops::distance::cpu::pairwise_fwd(metric, &q[..n * d], &r[..m * d], &mut out[..n * m], d);
        Ok(())
    }

    unsafe fn pairwise_distance_bwd_f32(
        &self,
        metric: crate::ops::distance::Metric,
        q: &Vec<f32>,
        r: &Vec<f32>,
        g: &Vec<f32>,
        dq: &mut Vec<f32>,
        dr: &mut Vec<f32>,
        n: usize,
        m: usize,
        d: usize,
    ) -> Result<()> {
        crate::ops::distance::cpu::pairwise_bwd(
            metric,
            &q[..n * d],
            &r[..m * d],
            &g[..n * m],
            &mut dq[..n * d],
            &mut dr[..m * d],
            d,
        );
        Ok(())
    }

    // ---- fused triplet mining + loss (src/ops/mining) ----
    unsafe fn triplet_fwd_f32(
        &self,
        p: &crate::ops::mining::TripletProblem,
        q: &Vec<f32>,
        q_labels: &Vec<u32>,
        r: &Vec<f32>,
        r_labels: &Vec<u32>,
        ws: &mut crate::ops::mining::TripletWorkspace<Self>,
    ) -> Result<()> {
        let (n, m, d) = (p.n, p.m, p.d);
        crate::ops::mining::cpu::triplet_fwd(
            p,
            &q[..n * d],
            &q_labels[..n],
            &r[..m * d],
            &r_labels[..m],
            ws.anchor_u32.buf_mut(),
            ws.anchor_f32.buf_mut(),
            ws.stats.buf_mut(),
        );
        Ok(())
    }

    unsafe fn triplet_bwd_f32(
        &self,
        p: &crate::ops::mining::TripletProblem,
        q: &Vec<f32>,
        q_labels: &Vec<u32>,
        r: &Vec<f32>,
        r_labels: &Vec<u32>,
        ws: &mut crate::ops::mining::TripletWorkspace<Self>,
        dq: &mut Vec<f32>,
        dr: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        let (n, m, d) = (p.n, p.m, p.d);
        crate::ops::mining::cpu::triplet_bwd(
            p,
            &q[..n * d],
            &q_labels[..n],
            &r[..m * d],
            &r_labels[..m],
            ws.stats.buf(),
            &mut dq[..n * d],
            dr.map(|t| &mut t[..m * d]),
        );
        Ok(())
    }

    // ---- exact k-NN (src/ops/knn) ----
    unsafe fn knn_f32(
        &self,
        metric: crate::ops::distance::Metric,
        q: &Vec<f32>,
        r: &Vec<f32>,
        out_idx: &mut Vec<u32>,
        out_dist: &mut Vec<f32>,
        n: usize,
        m: usize,
        d: usize,
        k: usize,
        same_set: bool,
    ) -> Result<()> {
        crate::ops::knn::cpu::knn(
            metric,
            &q[..n * d],
            &r[..m * d],
            d,
            k,
            same_set,
            &mut out_idx[..n * k],
            &mut out_dist[..n * k],
        );
        Ok(())
    }

    // ---- pair losses: contrastive, siamese cosine head (src/ops/metric_loss) ----

    unsafe fn contrastive_pair_fwd_f32(
        &self,
        margin: f32,
        x1: &Vec<f32>,
        x2: &Vec<f32>,
        y: &Vec<u32>,
        loss: &mut Vec<f32>,
        n: usize,
        d: usize,
    ) -> Result<()> {
        crate::ops::metric_loss::cpu::contrastive_pair_fwd(
            margin,
            &x1[..n * d],
            &x2[..n * d],
            &y[..n],
            &mut loss[..n],
            d,
        );
        Ok(())
    }

    unsafe fn contrastive_pair_bwd_f32(
        &self,
        margin: f32,
        x1: &Vec<f32>,
        x2: &Vec<f32>,
        y: &Vec<u32>,
        g: &Vec<f32>,
        dx1: &mut Vec<f32>,
        dx2: &mut Vec<f32>,
        n: usize,
        d: usize,
    ) -> Result<()> {
        crate::ops::metric_loss::cpu::contrastive_pair_bwd(
            margin,
            &x1[..n * d],
            &x2[..n * d],
            &y[..n],
            &g[..n],
            &mut dx1[..n * d],
            &mut dx2[..n * d],
            d,
        );
        Ok(())
    }

    unsafe fn contrastive_batch_fwd_f32(
        &self,
        margin: f32,
        x: &Vec<f32>,
        labels: &Vec<u32>,
        row_loss: &mut Vec<f32>,
        n: usize,
        d: usize,
    ) -> Result<()> {
        crate::ops::metric_loss::cpu::contrastive_batch_fwd(margin, &x[..n * d], &labels[..n], &mut row_loss[..n], d);
        Ok(())
    }

    unsafe fn contrastive_batch_bwd_f32(
        &self,
        margin: f32,
        weight: f32,
        x: &Vec<f32>,
        labels: &Vec<u32>,
        dx: &mut Vec<f32>,
        n: usize,
        d: usize,
    ) -> Result<()> {
        crate::ops::metric_loss::cpu::contrastive_batch_bwd(
            margin,
            weight,
            &x[..n * d],
            &labels[..n],
            &mut dx[..n * d],
            d,
        );
        Ok(())
    }

    unsafe fn siamese_cos_fwd_f32(
        &self,
        x1: &Vec<f32>,
        x2: &Vec<f32>,
        y: &Vec<f32>,
        scale: &Vec<f32>,
        bias: &Vec<f32>,
        logits: &mut Vec<f32>,
        loss: &mut Vec<f32>,
        n: usize,
        d: usize,
    ) -> Result<()> {
        crate::ops::metric_loss::cpu::siamese_cos_fwd(
            &x1[..n * d],
            &x2[..n * d],
            &y[..n],
            scale[0],
            bias[0],
            &mut logits[..n],
            &mut loss[..n],
            d,
        );
        Ok(())
    }

    unsafe fn siamese_cos_bwd_f32(
        &self,
        x1: &Vec<f32>,
        x2: &Vec<f32>,
        y: &Vec<f32>,
        g: &Vec<f32>,
        scale: &Vec<f32>,
        bias: &Vec<f32>,
        dx1: &mut Vec<f32>,
        dx2: &mut Vec<f32>,
        dscale: &mut Vec<f32>,
        dbias: &mut Vec<f32>,
        n: usize,
        d: usize,
    ) -> Result<()> {
        let (ds, db) = crate::ops::metric_loss::cpu::siamese_cos_bwd(
            &x1[..n * d],
            &x2[..n * d],
            &y[..n],
            &g[..n],
            scale[0],
            bias[0],
            &mut dx1[..n * d],
            &mut dx2[..n * d],
            d,
        );
        dscale[0] = ds;
        dbias[0] = db;
        Ok(())
    }
    // ==== end metric learning ====
}

/// `len` copies of `value` in a host vector, reserved first: a size the allocator refuses is an
/// error, not an abort (one it grants on an overcommitting host may still fail as it is filled).
pub(crate) fn host_vec<T: Clone>(op: &'static str, len: usize, value: T) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|e| Error::invalid(op, format!("{len} elements of {}: {e}", std::any::type_name::<T>())))?;
    v.resize(len, value);
    Ok(v)
}
