//! Safe entry points, one folder per op family: `mod.rs` holds the API (shape and device checks,
//! formula in the docs), `cpu.rs` the reference implementation, `cuda.rs` the typed launchers of
//! the matching `kernels/<family>.cu`.

pub mod batch;
pub mod distance;
pub mod elementwise;
pub mod gemm;
pub mod knn;
pub mod latent;
pub mod loss;
pub mod metric_loss;
pub mod mining;
pub mod optim;
pub mod rng;

pub use distance::Metric;
pub use elementwise::Activation;
pub use gemm::{GemmSpec, Transpose};
pub use latent::{KlSchedule, LatentConfig};
pub use mining::{Miner, SemiHardPolicy, TripletConfig, TripletStats, TripletWorkspace};
pub use optim::{AdamConfig, SgdConfig};

use crate::backend::{Backend, Scalar};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Errors unless the tensor is on the backend's device.
pub(crate) fn on_device<B: Backend, T: Scalar>(op: &'static str, b: &B, t: &Tensor<B, T>) -> Result<()> {
    t.check_device(op, b)
}

/// Errors unless both tensors have the same shape.
pub(crate) fn same_shape<B: Backend, T: Scalar, U: Scalar>(
    op: &'static str,
    x: &Tensor<B, T>,
    y: &Tensor<B, U>,
) -> Result<()> {
    if x.shape() != y.shape() {
        return Err(Error::shape(op, format!("{:?} vs {:?}", x.shape(), y.shape())));
    }
    Ok(())
}

/// Errors unless the tensor has exactly `shape`.
pub(crate) fn expect_shape<B: Backend, T: Scalar>(
    op: &'static str,
    name: &str,
    t: &Tensor<B, T>,
    shape: &[usize],
) -> Result<()> {
    if t.shape() != shape {
        return Err(Error::shape(op, format!("{name} should be {shape:?}, got {:?}", t.shape())));
    }
    Ok(())
}
