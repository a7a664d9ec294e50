//! Element-wise activations (sigmoid, ReLU, tanh), forward and backward; the backward takes the
//! derivative from the forward *output*.
//!
//! - [`spec`]: the [`Activation`] functions and their scalar definitions (the reference).
//! - `cpu` (a vectorised branch-free `exp`), `gpu` (host code of `shaders/activation.wgsl`).
//! - Tests: `tests/fast_vs_reference.rs`, `tests/finite_differences.rs`, `tests/golden.rs`.

pub(crate) mod cpu;
pub(crate) mod gpu;
mod reference;
pub mod spec;

pub use spec::Activation;

use crate::Device;
use crate::device::{DeviceTensor, same_shape};
use crate::error::{Result, shape_err};
use crate::ops::reduce::ReduceKernels;

/// What the backward of a layer with an activation fused after it starts from
/// ([`Device::pre_activation_grad`]).
pub(crate) struct PreActivationGrad {
    /// The gradient before the activation; `None` without an activation (the output gradient
    /// itself).
    pub(crate) grad: Option<DeviceTensor>,
    /// The layer's bias gradient, when it was asked for and came with the activation's.
    pub(crate) bias: Option<DeviceTensor>,
}

/// Activations on one backend's tensors.
pub trait ActivationKernels {
    /// `y = act(x)`.
    fn activation(&self, act: Activation, x: &DeviceTensor) -> Result<DeviceTensor>;
    /// `grad_x = grad_y * act'(x)` from the forward output `y` (same shapes).
    fn activation_backward(
        &self,
        act: Activation,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
    ) -> Result<DeviceTensor>;

    /// [`ActivationKernels::activation_backward`] and the per-channel sum of its result over
    /// `y`'s `[n, c, hw]` layout (the bias gradient of the conv2d or linear layer the
    /// activation is fused into), in one pass where the backend can: `(grad_x, sums [c])`,
    /// the same values as the two ops run one after the other.
    fn activation_backward_channel_sum(
        &self,
        act: Activation,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
        nchw: [usize; 3],
    ) -> Result<(DeviceTensor, DeviceTensor)>;
}

/// Activations over host slices of equal length; outputs are overwritten.
pub trait ActivationHostKernels {
    /// `y = act(x)` element-wise.
    fn forward(&self, act: Activation, x: &[f32], y: &mut [f32]);
    /// `grad_x = grad_y * act'(x)`, the derivative taken from the forward output `y`.
    fn backward(&self, act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]);
}

impl<K: ActivationHostKernels + ReduceKernels> ActivationKernels for K {
    fn activation(&self, act: Activation, x: &DeviceTensor) -> Result<DeviceTensor> {
        let xs = x.host(act.op_name())?;
        let (shape, mut y) = DeviceTensor::host_output(x.dims())?;
        ActivationHostKernels::forward(self, act, xs, &mut y);
        Ok(DeviceTensor::from_host(shape, y))
    }

    fn activation_backward(
        &self,
        act: Activation,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        let op = act.op_name();
        let (shape, mut gx) = DeviceTensor::host_output(y.dims())?;
        ActivationHostKernels::backward(self, act, y.host(op)?, grad_y.host(op)?, &mut gx);
        Ok(DeviceTensor::from_host(shape, gx))
    }

    /// On the host the two passes stay separate (the sum reads a tensor still in cache).
    fn activation_backward_channel_sum(
        &self,
        act: Activation,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
        [n, c, hw]: [usize; 3],
    ) -> Result<(DeviceTensor, DeviceTensor)> {
        let gx = self.activation_backward(act, y, grad_y)?;
        let sums = self.channel_sum(n, c, hw, &gx)?;
        Ok((gx, sums))
    }
}

impl Device {
    /// Element-wise activation.
    pub fn activation(&self, x: &DeviceTensor, act: Activation) -> Result<DeviceTensor> {
        self.backend().activation(act, x)
    }

    /// Gradient of an activation from its forward output `y` and the output gradient.
    pub fn activation_backward(
        &self,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
        act: Activation,
    ) -> Result<DeviceTensor> {
        same_shape(act.op_name(), "grad_y", y.shape(), grad_y.shape())?;
        self.backend().activation_backward(act, y, grad_y)
    }

    /// The start of the backward of a conv2d or linear layer with `activation` (the
    /// activation and the layer's output `y`, `[n, c, ...]`) fused after it: the gradient before
    /// the activation and, when `want_bias`, the layer's bias gradient summed with it (one
    /// kernel on a GPU).
    pub(crate) fn pre_activation_grad(
        &self,
        grad_y: &DeviceTensor,
        activation: Option<(Activation, &DeviceTensor)>,
        want_bias: bool,
    ) -> Result<PreActivationGrad> {
        let Some((act, y)) = activation else {
            return Ok(PreActivationGrad {
                grad: None,
                bias: None,
            });
        };
        let dims = y.dims();
        let (Some(&n), Some(&c)) = (dims.first(), dims.get(1)) else {
            return Err(shape_err(
                act.op_name(),
                "layer output",
                "[n, c, ...]",
                y.shape(),
            ));
        };
        if !want_bias {
            let grad = self.activation_backward(y, grad_y, act)?;
            return Ok(PreActivationGrad {
                grad: Some(grad),
                bias: None,
            });
        }
        let hw = dims[2..].iter().product();
        let (grad, bias) = self.activation_backward_channel_sum(y, grad_y, act, [n, c, hw])?;
        Ok(PreActivationGrad {
            grad: Some(grad),
            bias: Some(bias),
        })
    }

    /// The activation's gradient (as [`Device::activation_backward`]) and its per-channel sum
    /// over `y` read as `[n, c, hw]`: `(grad_x, sums [c])`, the bias gradient of the layer the
    /// activation is fused into, from one kernel on a GPU.
    pub fn activation_backward_channel_sum(
        &self,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
        act: Activation,
        nchw: [usize; 3],
    ) -> Result<(DeviceTensor, DeviceTensor)> {
        let op = act.op_name();
        same_shape(op, "grad_y", y.shape(), grad_y.shape())?;
        if nchw.iter().product::<usize>() != y.numel() {
            return Err(shape_err(
                op,
                "[n, c, hw] layout",
                y.shape(),
                format!("{nchw:?}"),
            ));
        }
        self.backend()
            .activation_backward_channel_sum(act, y, grad_y, nchw)
    }
}
