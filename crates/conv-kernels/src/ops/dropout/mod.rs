//! Dropout with its mask drawn where the data lives: a counter-based generator (an integer
//! hash of the call's key and the element's index) gives every backend the same mask for the
//! same seed, and a GPU step sends no mask from the host. Backward is the same op with the
//! same key applied to the output's gradient.
//!
//! - [`spec`]: settings, the generator, validation.
//! - `reference`, `cpu`, `gpu` (host code of `shaders/dropout.wgsl`).
//! - Tests: `tests/dropout.rs` (reference, equal masks across devices, errors).

mod cpu;
mod gpu;
mod reference;
pub mod spec;

pub use spec::DropoutSpec;

use crate::Device;
use crate::device::DeviceTensor;
use crate::error::Result;

/// Dropout on one backend's tensors.
pub trait DropoutKernels {
    /// `x` with the mask of `spec` applied (kept elements scaled by `1 / (1 - p)`).
    fn dropout(&self, spec: &DropoutSpec, x: &DeviceTensor) -> Result<DeviceTensor>;
}

/// Dropout over host slices of equal length.
pub trait DropoutHostKernels {
    /// `y[i] = keeps(i) ? x[i] * scale : 0`.
    fn dropout(&self, spec: &DropoutSpec, x: &[f32], y: &mut [f32]);
}

impl<K: DropoutHostKernels> DropoutKernels for K {
    fn dropout(&self, spec: &DropoutSpec, x: &DeviceTensor) -> Result<DeviceTensor> {
        let (shape, mut y) = DeviceTensor::host_output(x.dims())?;
        DropoutHostKernels::dropout(self, spec, x.host("dropout")?, &mut y);
        Ok(DeviceTensor::from_host(shape, y))
    }
}

impl Device {
    /// Dropout of `x` with the mask keyed by `spec.seed`. The backward pass is the same call
    /// on the output's gradient with the same `spec`.
    pub fn dropout(&self, x: &DeviceTensor, spec: &DropoutSpec) -> Result<DeviceTensor> {
        spec.check()?;
        if x.numel() > u32::MAX as usize {
            return Err(crate::error::shape_err(
                "dropout",
                "elements",
                "at most 2^32",
                x.numel(),
            ));
        }
        self.backend().dropout(spec, x)
    }
}
