//! Device-side batching: the dataset stays resident, an epoch's permutation sits in an index
//! tensor, and a cursor tensor says which batch is next, so a captured training step reads its
//! batch from a fixed address. Kernels: `kernels/batch.cu`.

pub(crate) mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use super::{expect_shape, on_device};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `out[r, :] = src[index[cursor·rows + r], :]` for r < rows. Positions past the index or indices
/// past `src` are not read: those rows come out NaN (the loss check reports them).
pub fn gather_rows<B: Backend>(
    b: &B,
    src: &Tensor<B>,
    index: &Tensor<B, u32>,
    cursor: &Tensor<B, u32>,
    out: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "gather_rows";
    on_device(OP, b, src)?;
    on_device(OP, b, index)?;
    on_device(OP, b, cursor)?;
    on_device(OP, b, out)?;
    let (src_rows, cols) = src.dims2(OP)?;
    let (rows, out_cols) = out.dims2(OP)?;
    if out_cols != cols {
        return Err(Error::shape(OP, format!("out has {out_cols} columns, src {cols}")));
    }
    expect_shape(OP, "cursor", cursor, &[1])?;
    // SAFETY: shapes checked; the kernel bounds-checks the data-dependent positions and indices.
    unsafe {
        b.gather_rows_f32(src.buf(), index.buf(), cursor.buf(), out.buf_mut(), src_rows, index.numel(), rows, cols)
    }
}

/// counter[0] += value (wrapping).
pub fn counter_add<B: Backend>(b: &B, counter: &mut Tensor<B, u32>, value: u32) -> Result<()> {
    on_device("counter_add", b, counter)?;
    expect_shape("counter_add", "counter", counter, &[1])?;
    // SAFETY: counter holds one element.
    unsafe { b.counter_add_u32(counter.buf_mut(), value) }
}
