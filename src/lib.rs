//! # latentkit
//!
//! Hand-written CUDA training kernels (GEMM, fused VAE reparameterization, batched Gaussian KL,
//! pairwise distance with triplet mining) wrapped by safe Rust that trains variational
//! autoencoders and siamese / metric-learning networks. Every kernel has a CPU twin that is its
//! numerical reference, so everything also runs, and is tested, without a GPU.
//!
//! - [`backend::Backend`] is the seam: [`CpuBackend`] (the specification) and [`CudaBackend`]
//!   (feature `cuda`; without it, or without a driver or GPU, its constructor returns an error).
//! - [`Tensor`] is owned, contiguous, row-major storage on one backend.
//! - [`ops`] is the safe kernel API, one module per op family.
//! - [`nn`], [`data`] and [`train`] build models, read MNIST and run training loops on any backend.
//!
//! The library never panics on bad input, never exits and never prints: every failure is an
//! [`Error`].

// The docs write math with indices (`y[r, c]`, `out[0]`), which rustdoc would take for links.
#![allow(rustdoc::broken_intra_doc_links)]

pub mod backend;
pub mod bench;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod io;
pub mod nn;
pub mod ops;
pub mod rng;
pub mod tensor;
pub mod train;

pub use backend::{Backend, CpuBackend, CudaBackend, DType, Scalar};
pub use device::Device;
pub use error::{Error, Result};
pub use tensor::Tensor;
