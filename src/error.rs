//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in latentkit. The library returns these; it never panics on bad
/// input, never exits and never prints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Operand shapes do not fit together.
    #[error("{op}: shape mismatch: {msg}")]
    Shape { op: &'static str, msg: String },

    /// A raw buffer is shorter than the sizes passed with it.
    #[error("{op}: buffer `{name}` holds {got} elements but the sizes given need {need}")]
    BufferTooSmall { op: &'static str, name: &'static str, got: usize, need: usize },

    /// A scalar argument is out of its domain (negative learning rate, zero batch size...).
    #[error("{op}: invalid argument: {msg}")]
    InvalidArgument { op: &'static str, msg: String },

    /// Operands live on different devices.
    #[error("{op}: device mismatch: {msg}")]
    DeviceMismatch { op: &'static str, msg: String },

    /// No usable CUDA: feature off, driver library missing, or no such GPU.
    #[error("CUDA is not available: {0}")]
    CudaUnavailable(String),

    /// The embedded kernels do not hold what was asked for (missing symbol, no SASS/PTX for this GPU).
    #[error("CUDA kernels not usable: {0}")]
    KernelsNotBuilt(String),

    /// A kernel launch was rejected or failed.
    #[error("CUDA kernel `{kernel}` failed: {msg}")]
    Launch { kernel: &'static str, msg: String },

    /// Any other CUDA driver failure (allocation, copy, synchronisation, graph capture).
    #[error("CUDA driver error during {context}: {msg}")]
    Cuda { context: &'static str, msg: String },

    /// An I/O failure, with the file and the byte offset where it happened.
    #[error("I/O error on {} at byte offset {offset}: {source}", path.display())]
    Io {
        path: PathBuf,
        offset: u64,
        #[source]
        source: std::io::Error,
    },

    /// A file that is readable but not what it claims to be (wrong magic, truncated, bad header).
    #[error("bad data in {} at byte offset {offset}: {msg}", path.display())]
    Format { path: PathBuf, offset: u64, msg: String },

    /// Training produced a non-finite loss; the last good checkpoint is left untouched.
    #[error("non-finite loss ({value}) at step {step}; training stopped")]
    NonFiniteLoss { step: u64, value: f32 },

    /// An update left a non-finite value in a parameter; the last good checkpoint is left
    /// untouched.
    #[error("non-finite value ({value}) in parameter {name} after step {step}; training stopped")]
    NonFiniteParameter { step: u64, name: String, value: f32 },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }

    pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument { op, msg: msg.into() }
    }
}

/// Checks that a raw buffer of `got` elements covers the `need` elements an op will touch.
pub(crate) fn check_len(op: &'static str, name: &'static str, got: usize, need: usize) -> Result<()> {
    if got < need {
        return Err(Error::BufferTooSmall { op, name, got, need });
    }
    Ok(())
}
