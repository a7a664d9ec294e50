//! Deterministic sums: of all elements ([`Device::sum`]) and per channel over the batch and
//! spatial axes (`channel_sum`, the bias gradient of conv2d and linear).
//!
//! - `reference` (f64), `cpu` (fixed chunks added in order), `gpu` (host code of
//!   `shaders/reduce.wgsl`; its row and outer sums are shared with other ops' GPU code).
//! - Tests: `tests/fast_vs_reference.rs` and the bias gradients of conv2d and linear.

mod cpu;
pub(crate) mod gpu;
mod reference;

use crate::Device;
use crate::device::DeviceTensor;
use crate::error::{Result, shape_err};

/// Sums on one backend's tensors.
pub trait ReduceKernels {
    /// Sum of all elements, as a rank-0 tensor.
    fn sum(&self, x: &DeviceTensor) -> Result<DeviceTensor>;
    /// `out[c] = Σ_n Σ_hw x[n, c, hw]` for `x` of `n * c * hw` elements, as a `[c]` tensor.
    fn channel_sum(&self, n: usize, c: usize, hw: usize, x: &DeviceTensor) -> Result<DeviceTensor>;
}

/// Sums over host slices.
pub trait ReduceHostKernels {
    /// Sum of all elements.
    fn sum(&self, x: &[f32]) -> f32;
    /// `out[c] = Σ_n Σ_hw x[n, c, hw]` (`out` overwritten).
    fn channel_sum(&self, n: usize, c: usize, hw: usize, x: &[f32], out: &mut [f32]);
}

impl<K: ReduceHostKernels> ReduceKernels for K {
    fn sum(&self, x: &DeviceTensor) -> Result<DeviceTensor> {
        let s = ReduceHostKernels::sum(self, x.host("sum")?);
        Ok(DeviceTensor::from_host(tensor::Shape::scalar(), vec![s]))
    }

    fn channel_sum(&self, n: usize, c: usize, hw: usize, x: &DeviceTensor) -> Result<DeviceTensor> {
        if x.numel() != n * c * hw {
            return Err(shape_err("channel_sum", "elements", n * c * hw, x.numel()));
        }
        let (shape, mut out) = DeviceTensor::host_output(&[c])?;
        ReduceHostKernels::channel_sum(self, n, c, hw, x.host("channel_sum")?, &mut out);
        Ok(DeviceTensor::from_host(shape, out))
    }
}

impl Device {
    /// Sum of all elements, as a rank-0 tensor on the device.
    pub fn sum(&self, x: &DeviceTensor) -> Result<DeviceTensor> {
        self.backend().sum(x)
    }

    /// Per-channel sums `[c]` of `x` read as `[n, c, hw]` (the bias gradient of a conv2d, or of
    /// a linear layer with `hw = 1`), summed in a fixed order.
    pub fn channel_sum(&self, x: &DeviceTensor, [n, c, hw]: [usize; 3]) -> Result<DeviceTensor> {
        if x.numel() != n * c * hw {
            return Err(shape_err("channel_sum", "elements", n * c * hw, x.numel()));
        }
        self.backend().channel_sum(n, c, hw, x)
    }
}
