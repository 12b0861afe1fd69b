//! Embedding exports: NumPy `.npy` (format 1.0, little-endian f32, C order) and the tab-separated
//! vectors + metadata pair that embedding projectors read. Written atomically.

use std::fmt::Write as _;
use std::path::Path;

use super::write_atomic;
use crate::error::{Error, Result};

/// Writes `data` (row-major, `shape`) as a `.npy` file readable by `numpy.load`.
pub fn save_npy_f32(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    const OP: &str = "save_npy_f32";
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n != Some(data.len()) {
        return Err(Error::shape(OP, format!("shape {shape:?} does not hold {} values", data.len())));
    }
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64
    // and ended by a newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| Error::invalid(OP, "header too long"))?;
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * data.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(OP, path, &bytes)
}

/// Writes `vectors_path` (one row per line, tab-separated values) and `metadata_path` (a header
/// line `label`, then one label per row), the pair TensorBoard's embedding projector loads.
pub fn save_projector_tsv(
    vectors_path: &Path,
    metadata_path: &Path,
    data: &[f32],
    dim: usize,
    labels: &[u32],
) -> Result<()> {
    const OP: &str = "save_projector_tsv";
    if dim == 0 || labels.len().checked_mul(dim) != Some(data.len()) {
        return Err(Error::shape(OP, format!("{} values for {} labels of dimension {dim}", data.len(), labels.len())));
    }
    let mut vectors = String::with_capacity(data.len() * 10);
    for row in data.chunks_exact(dim) {
        for (i, v) in row.iter().enumerate() {
            let _ = write!(vectors, "{}{v}", if i == 0 { "" } else { "\t" });
        }
        vectors.push('\n');
    }
    let mut meta = String::from("label\n");
    for l in labels {
        let _ = writeln!(meta, "{l}");
    }
    write_atomic(OP, vectors_path, vectors.as_bytes())?;
    write_atomic(OP, metadata_path, meta.as_bytes())
}
