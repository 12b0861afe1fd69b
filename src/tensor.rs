//! An owned, contiguous, row-major tensor on one backend.

use std::fmt;

use crate::backend::{Backend, DType, Scalar};
use crate::device::Device;
use crate::error::{Error, Result};

/// Owned storage plus shape. Invariant: the buffer is on the tensor's device and holds at least
/// `shape.iter().product()` elements (exactly that many, except that an empty tensor may hold one
/// unused element on a backend that can't allocate zero bytes), whose bytes fit `isize::MAX`;
/// which is what lets [`crate::ops`] hand buffers to kernels after checking shapes and devices
/// only. Nothing public can replace or resize the buffer but the unsafe
/// [`Tensor::buf_mut_unchecked`].
pub struct Tensor<B: Backend, T: Scalar = f32> {
    buf: B::Buf<T>,
    shape: Vec<usize>,
    device: Device,
}

impl<B: Backend, T: Scalar> fmt::Debug for Tensor<B, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{:?}>{:?} on {}", T::DTYPE, self.shape, self.device)
    }
}

/// The element count of `shape`, whose bytes must fit an allocation (isize::MAX).
fn numel<T>(op: &'static str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n.checked_mul(std::mem::size_of::<T>()).is_some_and(|bytes| bytes <= isize::MAX as usize))
        .ok_or_else(|| {
            Error::shape(op, format!("{shape:?} of {} overflows the address space", std::any::type_name::<T>()))
        })
}

impl<B: Backend, T: Scalar> Tensor<B, T> {
    /// A zero-filled tensor.
    pub fn zeros(backend: &B, shape: &[usize]) -> Result<Self> {
        let n = numel::<T>("Tensor::zeros", shape)?;
        Ok(Self { buf: backend.zeros(n)?, shape: shape.to_vec(), device: backend.device() })
    }

    /// A tensor holding `data` (row-major) with the given shape.
    pub fn from_slice(backend: &B, shape: &[usize], data: &[T]) -> Result<Self> {
        let n = numel::<T>("Tensor::from_slice", shape)?;
        if n != data.len() {
            return Err(Error::shape(
                "Tensor::from_slice",
                format!("shape {shape:?} needs {n} elements, got {}", data.len()),
            ));
        }
        Ok(Self { buf: backend.upload(data)?, shape: shape.to_vec(), device: backend.device() })
    }

    /// Copies the contents to the host.
    pub fn to_vec(&self, backend: &B) -> Result<Vec<T>> {
        self.check_device("Tensor::to_vec", backend)?;
        let mut v = backend.download(&self.buf)?;
        v.truncate(self.numel());
        Ok(v)
    }

    /// Overwrites the contents from the host; `data` must have exactly `numel` elements.
    pub fn copy_from_slice(&mut self, backend: &B, data: &[T]) -> Result<()> {
        self.check_device("Tensor::copy_from_slice", backend)?;
        if data.len() != self.numel() {
            return Err(Error::shape(
                "Tensor::copy_from_slice",
                format!("tensor {:?} has {} elements, got {}", self.shape, self.numel(), data.len()),
            ));
        }
        backend.write_host(&mut self.buf, data)
    }

    /// Copies another tensor of the same shape into this one.
    pub fn copy_from(&mut self, backend: &B, src: &Self) -> Result<()> {
        self.check_device("Tensor::copy_from", backend)?;
        src.check_device("Tensor::copy_from", backend)?;
        if src.shape != self.shape {
            return Err(Error::shape("Tensor::copy_from", format!("{:?} vs {:?}", src.shape, self.shape)));
        }
        backend.copy_buf(&src.buf, &mut self.buf)
    }

    /// Same data, new shape with the same number of elements.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        let n = numel::<T>("Tensor::reshape", shape)?;
        if n != self.numel() {
            return Err(Error::shape(
                "Tensor::reshape",
                format!("{:?} -> {shape:?} changes the element count", self.shape),
            ));
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn dtype(&self) -> DType {
        T::DTYPE
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The raw buffer (at least `numel` elements; see the type's invariant).
    pub fn buf(&self) -> &B::Buf<T> {
        &self.buf
    }

    /// The raw buffer, mutable, for the crate's ops (which never replace or resize it).
    pub(crate) fn buf_mut(&mut self) -> &mut B::Buf<T> {
        &mut self.buf
    }

    /// The raw buffer, mutable: for the entry points that take buffers (e.g.
    /// [`crate::ops::gemm::gemm`], which checks their lengths and devices itself).
    ///
    /// # Safety
    /// The buffer must stay this tensor's: not replaced, resized, cleared or swapped with another
    /// buffer. The ops hand a tensor's buffer to kernels after checking its shape and device
    /// only, so a shorter buffer or one on another GPU would be written out of bounds.
    pub unsafe fn buf_mut_unchecked(&mut self) -> &mut B::Buf<T> {
        &mut self.buf
    }

    /// (rows, cols) of a 2-D tensor; a 1-D tensor of n is (1, n).
    pub fn dims2(&self, op: &'static str) -> Result<(usize, usize)> {
        match self.shape[..] {
            [n] => Ok((1, n)),
            [r, c] => Ok((r, c)),
            _ => Err(Error::shape(op, format!("expected a matrix, got shape {:?}", self.shape))),
        }
    }

    /// Errors unless the tensor lives on the backend's device.
    pub fn check_device(&self, op: &'static str, backend: &B) -> Result<()> {
        if self.device != backend.device() {
            return Err(Error::DeviceMismatch {
                op,
                msg: format!("tensor on {}, backend on {}", self.device, backend.device()),
            });
        }
        Ok(())
    }
}
