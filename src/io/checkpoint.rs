//! Checkpoints as safetensors files holding f32 tensors (little-endian, row-major).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use safetensors::tensor::{Metadata, TensorView};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use crate::error::{Error, Result};

/// One named f32 tensor: `data` is row-major and holds exactly `shape.iter().product()` values.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The key safetensors reserves for the string metadata in its header.
const RESERVED: &str = "__metadata__";

/// Saves `tensors` and the string `metadata` to `path` atomically (temp file + rename): on any
/// error an existing file at `path` is left as it was.
///
/// Errors: an empty, duplicate or reserved (`__metadata__`) name → `InvalidArgument`; a shape whose
/// product is not `data.len()` → `Shape`; a failed write → `Io`.
pub fn save_checkpoint(path: &Path, tensors: &[NamedTensor], metadata: &BTreeMap<String, String>) -> Result<()> {
    const OP: &str = "save_checkpoint";
    let mut names = BTreeSet::new();
    for t in tensors {
        if t.name.is_empty() {
            return Err(Error::invalid(OP, "tensor name is empty"));
        }
        if t.name == RESERVED {
            return Err(Error::invalid(OP, format!("tensor name `{RESERVED}` is reserved by safetensors")));
        }
        if !names.insert(t.name.as_str()) {
            return Err(Error::invalid(OP, format!("tensor name `{}` appears more than once", t.name)));
        }
        let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel != Some(t.data.len()) {
            return Err(Error::shape(
                OP,
                format!("tensor `{}`: shape {:?} does not match {} values", t.name, t.shape, t.data.len()),
            ));
        }
    }

    // Little-endian bytes whatever the host, as the format requires.
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let mut views = Vec::with_capacity(tensors.len());
    for (t, b) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, t.shape.clone(), b)
            .map_err(|e| Error::invalid(OP, format!("tensor `{}`: {e}", t.name)))?;
        views.push((t.name.as_str(), view));
    }
    let info =
        (!metadata.is_empty()).then(|| metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>());
    let file = safetensors::serialize(views, info).map_err(|e| Error::invalid(OP, format!("cannot serialize: {e}")))?;
    super::write_atomic(OP, path, &file)
}

/// Loads a checkpoint written by [`save_checkpoint`] (or any safetensors file of f32 tensors).
/// Tensors come back sorted by name; the metadata map is empty when the file has none.
///
/// Errors: an unreadable file → `Io`; a file that is not valid safetensors, is truncated
/// (offset = file length), or holds a tensor of another dtype → `Format` naming the file.
pub fn load_checkpoint(path: &Path) -> Result<(Vec<NamedTensor>, BTreeMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), offset: 0, source })?;
    let format = |offset: usize, msg: String| Error::Format { path: path.to_path_buf(), offset: offset as u64, msg };
    let len = bytes.len();

    let (header_len, meta): (usize, Metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| match e {
        SafeTensorError::HeaderTooSmall
        | SafeTensorError::InvalidHeaderLength
        | SafeTensorError::MetadataIncompleteBuffer => {
            format(len, format!("not a complete safetensors file ({len} bytes; truncated?): {e}"))
        }
        other => format(0, format!("not a safetensors file: {other}")),
    })?;
    // Tensor data starts after the 8-byte length prefix and the JSON header.
    let data_start = 8 + header_len;

    let infos: BTreeMap<String, _> = meta.tensors().into_iter().collect();
    let mut tensors = Vec::with_capacity(infos.len());
    for (name, info) in infos {
        let (s, e) = info.data_offsets;
        if info.dtype != Dtype::F32 {
            return Err(format(
                data_start + s,
                format!("tensor `{name}` has dtype {}; only F32 is supported", info.dtype),
            ));
        }
        // read_metadata checked the offsets; `get` keeps this panic-free regardless.
        let raw = bytes
            .get(data_start + s..data_start + e)
            .ok_or_else(|| format(len, format!("tensor `{name}` lies outside the file")))?;
        let data: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let numel = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel != Some(data.len()) {
            return Err(format(
                data_start + s,
                format!("tensor `{name}`: shape {:?} does not match its data", info.shape),
            ));
        }
        tensors.push(NamedTensor { name, shape: info.shape.clone(), data });
    }
    let metadata = meta.metadata().as_ref().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    Ok((tensors, metadata.unwrap_or_default()))
}
