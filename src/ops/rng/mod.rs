//! Counter-based Gaussian noise, bit-identical on CPU and CUDA: Philox4x32-10 keyed by a seed,
//! with counter (element / 4, step offset), and Box–Muller with our own correctly-rounded-op
//! polynomials for ln, sin and cos (see `kernels/philox.cuh`). The step offset lives in a device
//! tensor of two u32 (low, high) and is advanced by [`advance`], so a captured CUDA graph draws
//! fresh noise every replay. Kernels: `kernels/rng.cu`.

pub mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::{expect_shape, on_device};
use crate::backend::Backend;
use crate::error::Result;
use crate::tensor::Tensor;

/// Elements of an RNG offset tensor (u32 low, u32 high).
pub const OFFSET_LEN: usize = 2;

/// A fresh offset tensor holding `offset`.
pub fn offset_tensor<B: Backend>(b: &B, offset: u64) -> Result<Tensor<B, u32>> {
    Tensor::from_slice(b, &[OFFSET_LEN], &[offset as u32, (offset >> 32) as u32])
}

/// out[i] = ε(seed, offset, i), standard normal.
pub fn normal<B: Backend>(b: &B, seed: u64, offset: &Tensor<B, u32>, out: &mut Tensor<B>) -> Result<()> {
    on_device("rng_normal", b, offset)?;
    on_device("rng_normal", b, out)?;
    expect_shape("rng_normal", "offset", offset, &[OFFSET_LEN])?;
    let n = out.numel();
    // SAFETY: offset holds 2 elements, out numel.
    unsafe { b.rng_normal_f32(seed, offset.buf(), out.buf_mut(), n) }
}

/// offset += 1 on the device.
pub fn advance<B: Backend>(b: &B, offset: &mut Tensor<B, u32>) -> Result<()> {
    on_device("rng_advance", b, offset)?;
    expect_shape("rng_advance", "offset", offset, &[OFFSET_LEN])?;
    // SAFETY: offset holds 2 elements.
    unsafe { b.rng_advance_u32(offset.buf_mut()) }
}
