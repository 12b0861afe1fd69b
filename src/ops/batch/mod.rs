//! Device-side batching: the dataset stays resident, an epoch's permutation sits in an index
//! tensor, and a cursor tensor says which batch is next, so a captured training step reads its
//! batch from a fixed address. [`gather_sum_rows`] is a scatter-add written as a gather (each
//! output row lists the rows it sums), so it needs no atomics and sums in a fixed order.
//! Kernels: `kernels/batch.cu`.

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

/// `out[r, :] = Σ_t src[index[t, r], :]` for index `[terms, rows]`, added to `out` when
/// `accumulate` (else written): a scatter-add written as a gather (each output row lists the
/// source rows it sums), so it needs no atomics and sums in the order t = 0, 1, … in f32: the same
/// sums on every backend. An index past `src` makes its row NaN (the loss check reports it).
pub fn gather_sum_rows<B: Backend>(
    b: &B,
    src: &Tensor<B>,
    index: &Tensor<B, u32>,
    accumulate: bool,
    out: &mut Tensor<B>,
) -> Result<()> {
    const OP: &str = "gather_sum_rows";
    on_device(OP, b, src)?;
    on_device(OP, b, index)?;
    on_device(OP, b, out)?;
    let (src_rows, cols) = src.dims2(OP)?;
    let (rows, out_cols) = out.dims2(OP)?;
    let (terms, index_rows) = index.dims2(OP)?;
    if out_cols != cols || index_rows != rows {
        return Err(Error::shape(
            OP,
            format!("src [{src_rows}, {cols}], index [{terms}, {index_rows}] and out [{rows}, {out_cols}] do not fit"),
        ));
    }
    // SAFETY: shapes checked; the kernel bounds-checks the indices.
    unsafe { b.gather_sum_rows_f32(src.buf(), index.buf(), out.buf_mut(), src_rows, terms, rows, cols, accumulate) }
}

/// counter[0] += value (wrapping).
pub fn counter_add<B: Backend>(b: &B, counter: &mut Tensor<B, u32>, value: u32) -> Result<()> {
    on_device("counter_add", b, counter)?;
    expect_shape("counter_add", "counter", counter, &[1])?;
    // SAFETY: counter holds one element.
    unsafe { b.counter_add_u32(counter.buf_mut(), value) }
}
