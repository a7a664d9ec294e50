//! Adaptive average pooling to any output size (PyTorch `F.adaptive_avg_pool2d`), forward and
//! backward; `[1, 1]` is the global average pooling that replaces fully connected layers in
//! NiN and ResNet.
//!
//! - [`spec`]: settings, PyTorch's window rule, validation into an
//!   [`AdaptiveAvgPool2dGeometry`].
//! - `reference`, `cpu`, `gpu` (host code of `shaders/adaptive_avg_pool2d.wgsl`).
//! - Tests: `tests/adaptive_avg_pool2d.rs` (reference, finite differences, errors, golden).

mod cpu;
mod gpu;
mod reference;
pub mod spec;

pub use spec::{AdaptiveAvgPool2dGeometry, AdaptiveAvgPool2dSpec};

use crate::Device;
use crate::device::{DeviceTensor, same_shape};
use crate::error::Result;
use tensor::Shape;

/// Adaptive average pooling over checked geometries, on one backend's tensors.
pub trait AdaptiveAvgPool2dKernels {
    /// Forward: `[n, c, h, w]` to `[n, c, oh, ow]`.
    fn adaptive_avg_pool2d(
        &self,
        g: &AdaptiveAvgPool2dGeometry,
        x: &DeviceTensor,
    ) -> Result<DeviceTensor>;
    /// Gradient of the input from the output's gradient.
    fn adaptive_avg_pool2d_backward(
        &self,
        g: &AdaptiveAvgPool2dGeometry,
        grad_y: &DeviceTensor,
    ) -> Result<DeviceTensor>;
}

/// Adaptive average pooling over host slices matching the geometry (outputs overwritten).
pub trait AdaptiveAvgPool2dHostKernels {
    /// Forward into `y`.
    fn forward(&self, g: &AdaptiveAvgPool2dGeometry, x: &[f32], y: &mut [f32]);
    /// Backward into `grad_x`.
    fn backward(&self, g: &AdaptiveAvgPool2dGeometry, grad_y: &[f32], grad_x: &mut [f32]);
}

impl<K: AdaptiveAvgPool2dHostKernels> AdaptiveAvgPool2dKernels for K {
    fn adaptive_avg_pool2d(
        &self,
        g: &AdaptiveAvgPool2dGeometry,
        x: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        let (shape, mut y) = DeviceTensor::host_output(&g.output_dims())?;
        self.forward(g, x.host("adaptive_avg_pool2d")?, &mut y);
        Ok(DeviceTensor::from_host(shape, y))
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        g: &AdaptiveAvgPool2dGeometry,
        grad_y: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        let (shape, mut gx) = DeviceTensor::host_output(&g.input_dims())?;
        self.backward(g, grad_y.host("adaptive_avg_pool2d_backward")?, &mut gx);
        Ok(DeviceTensor::from_host(shape, gx))
    }
}

impl Device {
    /// Adaptive average pooling of `x` `[n, c, h, w]` to `spec.output_size`.
    pub fn adaptive_avg_pool2d(
        &self,
        x: &DeviceTensor,
        spec: &AdaptiveAvgPool2dSpec,
    ) -> Result<DeviceTensor> {
        let g = spec.check(x.shape())?;
        self.backend().adaptive_avg_pool2d(&g, x)
    }

    /// Gradient of adaptive average pooling with respect to its input of shape `input_dims`.
    pub fn adaptive_avg_pool2d_backward(
        &self,
        input_dims: &[usize],
        grad_y: &DeviceTensor,
        spec: &AdaptiveAvgPool2dSpec,
    ) -> Result<DeviceTensor> {
        let g = spec.check(&Shape::new(input_dims)?)?;
        same_shape(
            "adaptive_avg_pool2d_backward",
            "grad_y",
            &Shape::new(&g.output_dims())?,
            grad_y.shape(),
        )?;
        self.backend().adaptive_avg_pool2d_backward(&g, grad_y)
    }
}
