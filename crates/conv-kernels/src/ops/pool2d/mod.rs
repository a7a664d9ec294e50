//! 2-D max and average pooling (PyTorch `F.max_pool2d` / `F.avg_pool2d`, `ceil_mode=False`,
//! average pooling counting padded zeros), forward and backward, and the backward through an
//! activation before the pooling in one pass (`Device::pool2d_activation_backward`).
//!
//! - [`spec`]: settings and validation into a [`Pool2dGeometry`].
//! - `reference`, `cpu` (`cpu_2x2`: its vector rows of 2×2 windows), `gpu` (host code of
//!   `shaders/pool2d.wgsl`).
//! - Tests: `tests/fast_vs_reference.rs` (the fused activation backward against its parts
//!   too), `tests/finite_differences.rs`, `tests/golden.rs`, `tests/spec_errors.rs`, each per
//!   device.

mod cpu;
mod cpu_2x2;
mod gpu;
mod reference;
pub mod spec;

pub use spec::{Pool2dGeometry, Pool2dSpec, PoolKind};

use crate::device::{DeviceTensor, IndexTensor, same_shape};
use crate::error::{Result, shape_err};
use crate::{Activation, Device};
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
    /// The gradient at the input of `act` when this pooling reads `act`'s output `y`: pooling
    /// backward, then the activation's derivative, in one pass where the backend can.
    fn pool2d_activation_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
        act: Activation,
        y: &DeviceTensor,
    ) -> Result<DeviceTensor>;
}

/// Pooling over host slices whose lengths match the geometry; outputs are overwritten.
pub trait Pool2dHostKernels {
    /// Forward; for max pooling `argmax[i]` receives the flat `h * w + w` offset within the
    /// input plane of the element that won output `i` (for avg pooling `argmax` is empty).
    fn forward(&self, g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]);
    /// Backward into `grad_x`; max pooling routes through `argmax`.
    fn backward(&self, g: &Pool2dGeometry, grad_y: &[f32], argmax: &[u32], grad_x: &mut [f32]);
    /// [`Pool2dHostKernels::backward`] into `grad_z`, times `act`'s derivative taken from its
    /// output `y` (the pooling's input): the two passes one after the other unless a backend
    /// fuses them.
    fn backward_activation(
        &self,
        g: &Pool2dGeometry,
        grad_y: &[f32],
        argmax: &[u32],
        (act, y): (Activation, &[f32]),
        grad_z: &mut [f32],
    ) {
        self.backward(g, grad_y, argmax, grad_z);
        for (d, &yv) in grad_z.iter_mut().zip(y) {
            *d *= act.derivative_from_output(yv);
        }
    }
}

/// The host slice of max pooling's offsets (empty for average pooling).
fn host_argmax<'a>(argmax: Option<&'a IndexTensor>, op: &'static str) -> Result<&'a [u32]> {
    Ok(match argmax {
        Some(a) => a.host(op)?,
        None => &[],
    })
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
        let a = host_argmax(argmax, OP)?;
        let (shape, mut gx) = DeviceTensor::host_output(&g.input_dims())?;
        self.backward(g, grad_y.host(OP)?, a, &mut gx);
        Ok(DeviceTensor::from_host(shape, gx))
    }

    fn pool2d_activation_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
        act: Activation,
        y: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        const OP: &str = "pool2d_activation_backward";
        let a = host_argmax(argmax, OP)?;
        let (shape, mut gz) = DeviceTensor::host_output(&g.input_dims())?;
        self.backward_activation(g, grad_y.host(OP)?, a, (act, y.host(OP)?), &mut gz);
        Ok(DeviceTensor::from_host(shape, gz))
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
        let (g, idx) = check_backward("pool2d_backward", input_dims, grad_y, argmax, spec)?;
        self.backend().pool2d_backward(&g, grad_y, idx)
    }

    /// The gradient at the input of `act` when pooling reads its output `y`, given the
    /// pooling's output gradient: what [`Device::pool2d_backward`] then
    /// [`Device::activation_backward`] compute, in one pass over each plane on the CPU and one
    /// kernel on a GPU (LeNet's conv → sigmoid → average pool, conv → ReLU → max pool).
    pub fn pool2d_activation_backward(
        &self,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
        spec: &Pool2dSpec,
        act: Activation,
    ) -> Result<DeviceTensor> {
        const OP: &str = "pool2d_activation_backward";
        let (g, idx) = check_backward(OP, y.dims(), grad_y, argmax, spec)?;
        self.backend()
            .pool2d_activation_backward(&g, grad_y, idx, act, y)
    }
}

/// Checks a pooling backward's input shape, output gradient and (for max pooling) offsets.
fn check_backward<'a>(
    op: &'static str,
    input_dims: &[usize],
    grad_y: &DeviceTensor,
    argmax: Option<&'a IndexTensor>,
    spec: &Pool2dSpec,
) -> Result<(Pool2dGeometry, Option<&'a IndexTensor>)> {
    let g = spec.check(&Shape::new(input_dims)?)?;
    same_shape(op, "grad_y", &Shape::new(&g.output_dims())?, grad_y.shape())?;
    let idx = match (spec.kind, argmax) {
        (PoolKind::Max, Some(a)) if a.len() == grad_y.numel() => Some(a),
        (PoolKind::Max, a) => {
            return Err(shape_err(
                op,
                "argmax indices",
                grad_y.numel(),
                a.map_or("none".to_string(), |a| a.len().to_string()),
            ));
        }
        (PoolKind::Avg, _) => None,
    };
    Ok((g, idx))
}
