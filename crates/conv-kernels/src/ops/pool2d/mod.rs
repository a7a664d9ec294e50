//! 2-D max and average pooling (PyTorch `F.max_pool2d` / `F.avg_pool2d`, `ceil_mode=False`,
//! average pooling counting padded zeros), forward and backward.
//!
//! - [`spec`]: settings and validation into a [`Pool2dGeometry`].
//! - `reference`, `cpu` (`cpu_2x2`: its AVX-512 rows of 2×2 windows), `gpu` (host code of
//!   `shaders/pool2d.wgsl`).
//! - Tests: `tests/fast_vs_reference.rs`, `tests/finite_differences.rs`, `tests/golden.rs`,
//!   `tests/spec_errors.rs`, each per device.

mod cpu;
mod cpu_2x2;
mod gpu;
mod reference;
pub mod spec;

pub use spec::{Pool2dGeometry, Pool2dSpec, PoolKind};

use crate::Device;
use crate::device::{DeviceTensor, IndexTensor, same_shape};
use crate::error::{Result, shape_err};
use tensor::Shape;

/// Result of a pooling forward pass.
#[derive(Clone, Debug)]
pub struct PoolOutput {
    /// The pooled tensor.
    pub output: DeviceTensor,
    /// For max pooling, the winning offset per output element (input to backward).
    pub argmax: Option<IndexTensor>,
}

/// Pooling over checked geometries, on one backend's tensors.
pub trait Pool2dKernels {
    /// Pooling forward (with the arg-max offsets for max pooling).
    fn pool2d(&self, g: &Pool2dGeometry, x: &DeviceTensor) -> Result<PoolOutput>;
    /// Pooling backward; max pooling routes through `argmax` (given exactly for max pooling).
    fn pool2d_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
    ) -> Result<DeviceTensor>;
}

/// Pooling over host slices whose lengths match the geometry; outputs are overwritten.
pub trait Pool2dHostKernels {
    /// Forward; for max pooling `argmax[i]` receives the flat `h * w + w` offset within the
    /// input plane of the element that won output `i` (for avg pooling `argmax` is empty).
    fn forward(&self, g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]);
    /// Backward into `grad_x`; max pooling routes through `argmax`.
    fn backward(&self, g: &Pool2dGeometry, grad_y: &[f32], argmax: &[u32], grad_x: &mut [f32]);
}

impl<K: Pool2dHostKernels> Pool2dKernels for K {
    fn pool2d(&self, g: &Pool2dGeometry, x: &DeviceTensor) -> Result<PoolOutput> {
        let op = g.spec.op_name();
        let (shape, mut y) = DeviceTensor::host_output(&g.output_dims())?;
        let mut argmax = match g.spec.kind {
            PoolKind::Max => vec![0u32; y.len()],
            PoolKind::Avg => Vec::new(),
        };
        Pool2dHostKernels::forward(self, g, x.host(op)?, &mut y, &mut argmax);
        Ok(PoolOutput {
            output: DeviceTensor::from_host(shape, y),
            argmax: (g.spec.kind == PoolKind::Max).then(|| IndexTensor::from_host_kernel(argmax)),
        })
    }

    fn pool2d_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
    ) -> Result<DeviceTensor> {
        const OP: &str = "pool2d_backward";
        let a: &[u32] = match argmax {
            Some(a) => a.host(OP)?,
            None => &[],
        };
        let (shape, mut gx) = DeviceTensor::host_output(&g.input_dims())?;
        self.backward(g, grad_y.host(OP)?, a, &mut gx);
        Ok(DeviceTensor::from_host(shape, gx))
    }
}

impl Device {
    /// Max or average pooling.
    pub fn pool2d(&self, x: &DeviceTensor, spec: &Pool2dSpec) -> Result<PoolOutput> {
        let g = spec.check(x.shape())?;
        self.backend().pool2d(&g, x)
    }

    /// Gradient of pooling with respect to its input of shape `input_dims`; max pooling needs
    /// the forward pass's `argmax`.
    pub fn pool2d_backward(
        &self,
        input_dims: &[usize],
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
        spec: &Pool2dSpec,
    ) -> Result<DeviceTensor> {
        const OP: &str = "pool2d_backward";
        let g = spec.check(&Shape::new(input_dims)?)?;
        same_shape(OP, "grad_y", &Shape::new(&g.output_dims())?, grad_y.shape())?;
        let idx = match (spec.kind, argmax) {
            (PoolKind::Max, Some(a)) if a.len() == grad_y.numel() => Some(a),
            (PoolKind::Max, a) => {
                return Err(shape_err(
                    OP,
                    "argmax indices",
                    grad_y.numel(),
                    a.map_or("none".to_string(), |a| a.len().to_string()),
                ));
            }
            (PoolKind::Avg, _) => None,
        };
        self.backend().pool2d_backward(&g, grad_y, idx)
    }
}
