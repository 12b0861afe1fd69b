//! Files a training run leaves behind: safetensors checkpoints and PNG artefacts (image grids,
//! loss curves, embedding scatter plots). Every file is written atomically: a reader sees either
//! the old file or the complete new one, never a half-written one.

pub mod checkpoint;
pub mod npy;
pub mod png;

pub use checkpoint::{load_checkpoint, save_checkpoint, NamedTensor};
pub use npy::{save_npy_f32, save_projector_tsv};
pub use png::{save_image_grid, save_line_plot, save_scatter, Series};

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes temp files of concurrent writers within one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes a whole file atomically (temp file, fsync, rename): for CSVs and reports.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic("write_file_atomic", path, bytes)
}

/// Writes `bytes` to `path` atomically: temp file in the same directory (so the rename stays on
/// one filesystem), fsync, rename over the target, then fsync the directory (best effort). On
/// failure the temp file is removed and an existing file at `path` is left untouched.
pub(crate) fn write_atomic(op: &'static str, path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name =
        path.file_name().ok_or_else(|| Error::invalid(op, format!("`{}` does not name a file", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = dir.join(tmp_name);

    // create_new: never clobber a file we did not make (and so never delete one either).
    let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|source| Error::Io {
        path: tmp.clone(),
        offset: 0,
        source,
    })?;
    let result = write_synced(&mut file, &tmp, bytes).and_then(|()| {
        drop(file);
        fs::rename(&tmp, path).map_err(|source| Error::Io { path: path.to_path_buf(), offset: 0, source })
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Makes the rename itself durable; directories cannot be opened on every platform.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn write_synced(file: &mut File, tmp: &Path, bytes: &[u8]) -> Result<()> {
    // Chunked so an error can report how far the write got.
    let mut written = 0u64;
    for chunk in bytes.chunks(1 << 20) {
        file.write_all(chunk).map_err(|source| Error::Io { path: tmp.to_path_buf(), offset: written, source })?;
        written += chunk.len() as u64;
    }
    file.sync_all().map_err(|source| Error::Io { path: tmp.to_path_buf(), offset: written, source })
}
