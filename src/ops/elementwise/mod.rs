//! Elementwise ops for training: fill, bias add, activations forward/backward, column sums (bias
//! gradients) and a deterministic sum. Kernels: `kernels/elementwise.cu`.

pub(crate) mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::{expect_shape, on_device, same_shape};
use crate::backend::Backend;
use crate::error::Result;
use crate::tensor::Tensor;

/// Pointwise activation after a linear layer. Backward is written in terms of the forward output
/// y: ReLU' = [y > 0] (0 at 0, as in PyTorch), σ' = y(1 − y), tanh' = 1 − y².
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    #[default]
    None,
    Relu,
    Sigmoid,
    Tanh,
}

/// x[i] = value for every element.
pub fn fill<B: Backend>(b: &B, x: &mut Tensor<B>, value: f32) -> Result<()> {
    on_device("fill", b, x)?;
    let n = x.numel();
    // SAFETY: a tensor's buffer holds exactly numel elements.
    unsafe { b.fill_f32(x.buf_mut(), value, n) }
}

/// y[r, c] += bias[c], y: [rows, cols], bias: [cols].
pub fn bias_add<B: Backend>(b: &B, y: &mut Tensor<B>, bias: &Tensor<B>) -> Result<()> {
    const OP: &str = "bias_add";
    on_device(OP, b, y)?;
    on_device(OP, b, bias)?;
    let (rows, cols) = y.dims2(OP)?;
    expect_shape(OP, "bias", bias, &[cols])?;
    // SAFETY: y holds rows·cols and bias cols elements (shapes checked above).
    unsafe { b.bias_add_f32(y.buf_mut(), bias.buf(), rows, cols) }
}

/// y = act(x), same shapes.
pub fn activation_fwd<B: Backend>(b: &B, act: Activation, x: &Tensor<B>, y: &mut Tensor<B>) -> Result<()> {
    const OP: &str = "activation_fwd";
    on_device(OP, b, x)?;
    on_device(OP, b, y)?;
    same_shape(OP, x, y)?;
    // SAFETY: x and y hold numel elements each.
    unsafe { b.activation_fwd_f32(act, x.buf(), y.buf_mut(), x.numel()) }
}

/// dx = dy · act'(·), from the forward output y; all three the same shape.
pub fn activation_bwd<B: Backend>(
    b: &B,
    act: Activation,
    y: &Tensor<B>,
    dy: &Tensor<B>,
    dx: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "activation_bwd";
    for t in [y, dy] {
        on_device(OP, b, t)?;
    }
    on_device(OP, b, dx)?;
    same_shape(OP, y, dy)?;
    same_shape(OP, y, dx)?;
    // SAFETY: the three tensors hold numel elements each.
    unsafe { b.activation_bwd_f32(act, y.buf(), dy.buf(), dx.buf_mut(), y.numel()) }
}

/// out[c] = beta·out[c] + Σ_r x[r, c] (the bias gradient); x: [rows, cols], out: [cols].
/// beta = 0 overwrites out without reading it. Summation order is fixed (rows in order).
pub fn col_sum<B: Backend>(b: &B, x: &Tensor<B>, beta: f32, out: &mut Tensor<B>) -> Result<()> {
    const OP: &str = "col_sum";
    on_device(OP, b, x)?;
    on_device(OP, b, out)?;
    let (rows, cols) = x.dims2(OP)?;
    expect_shape(OP, "out", out, &[cols])?;
    // SAFETY: x holds rows·cols and out cols elements.
    unsafe { b.col_sum_f32(x.buf(), rows, cols, beta, out.buf_mut()) }
}

/// out = [Σ x], a one-element tensor, summed in a fixed order (bit-identical run to run).
pub fn sum<B: Backend>(b: &B, x: &Tensor<B>, out: &mut Tensor<B>) -> Result<()> {
    const OP: &str = "sum";
    on_device(OP, b, x)?;
    on_device(OP, b, out)?;
    expect_shape(OP, "out", out, &[1])?;
    // SAFETY: x holds numel elements, out one.
    unsafe { b.sum_f32(x.buf(), x.numel(), out.buf_mut()) }
}
