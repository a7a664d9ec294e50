//! 2-D convolution (PyTorch `F.conv2d`): forward, input gradient, weight gradient.
//!
//! - [`spec`]: settings, the output-size rule and validation into a [`Conv2dGeometry`].
//! - `reference`: the naive oracle (one tap loop in f64 shared by forward and both gradients).
//! - `cpu` (im2col + GEMM), `cpu_direct` (one-input-channel groups such as LeNet's conv1),
//!   `cpu_implicit_gemm` (other convolutions at dilation 1, strided ones over phase planes,
//!   AVX-512; the input gradient at stride 1 only), `cpu_row_input_grad` (that input gradient
//!   over planes of at most 16 columns, AVX-512), `im2col`: the fast CPU kernels.
//! - `gpu`: host code of `shaders/conv2d.wgsl`; `gpu_tiled`: of `shaders/conv2d_tiled.wgsl`,
//!   which `gpu` picks when the context runs tiled kernels.
//! - Tests: `tests/fast_vs_reference.rs` (property tests; `tests/im2col_path.rs` forces
//!   im2col + GEMM where the CPU would take the implicit GEMM), `tests/finite_differences.rs`,
//!   `tests/golden.rs` (PyTorch cases) and `tests/spec_errors.rs`, each per device.

mod cpu;
mod cpu_direct;
mod cpu_implicit_gemm;
mod cpu_row_input_grad;
mod gpu;
mod gpu_tiled;
mod im2col;
mod reference;
pub mod spec;

pub use spec::{Conv2dGeometry, Conv2dSpec};

use crate::Activation;
use crate::Device;
use crate::device::{DeviceTensor, same_shape};
use crate::error::Result;
use crate::ops::GradsWanted;
use tensor::Shape;

/// Gradients of a convolution; each is `None` when it was not asked for (or, for the bias,
/// when the conv has none).
#[derive(Clone, Debug)]
pub struct Conv2dGrads {
    /// Gradient of the input.
    pub input: Option<DeviceTensor>,
    /// Gradient of the weight.
    pub weight: Option<DeviceTensor>,
    /// Gradient of the bias.
    pub bias: Option<DeviceTensor>,
}

/// Conv2d over checked geometries, on one backend's tensors.
pub trait Conv2dKernels {
    /// `y = act(x ⋆ w (+ bias))`, the activation (when given) fused into the output's store.
    fn conv2d(
        &self,
        g: &Conv2dGeometry,
        x: &DeviceTensor,
        w: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        act: Option<Activation>,
    ) -> Result<DeviceTensor>;
    /// Gradient of the input from the output gradient and the weight.
    fn conv2d_backward_input(
        &self,
        g: &Conv2dGeometry,
        grad_y: &DeviceTensor,
        w: &DeviceTensor,
    ) -> Result<DeviceTensor>;
    /// Gradient of the weight from the input and the output gradient.
    fn conv2d_backward_weight(
        &self,
        g: &Conv2dGeometry,
        x: &DeviceTensor,
        grad_y: &DeviceTensor,
    ) -> Result<DeviceTensor>;
    /// Whether [`Conv2dKernels::conv2d_backward_weight_and_bias`] sums the bias gradient in the
    /// weight gradient's pass (on a GPU: launches saved). When it does, a fused activation's
    /// backward leaves the bias to it; otherwise the bias is summed where its gradient is made
    /// (a host backend does it in the activation's backward pass over the same memory).
    fn sums_bias_with_weight_grad(&self) -> bool {
        false
    }
    /// The weight gradient and the bias gradient (`grad_y` summed per output channel) from one
    /// pass, where the backend has such a pass for `g` (on a GPU wherever
    /// [`Conv2dKernels::sums_bias_with_weight_grad`]); `None` where it computes them apart.
    fn conv2d_backward_weight_and_bias(
        &self,
        _g: &Conv2dGeometry,
        _x: &DeviceTensor,
        _grad_y: &DeviceTensor,
    ) -> Option<Result<(DeviceTensor, DeviceTensor)>> {
        None
    }
}

/// Conv2d over host slices whose lengths match the geometry; outputs are overwritten.
pub trait Conv2dHostKernels {
    /// `y = act(x ⋆ w (+ bias))` (no activation when `act` is `None`).
    fn forward(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        act: Option<Activation>,
        y: &mut [f32],
    );
    /// `grad_x` from `grad_y` and the weight.
    fn backward_input(&self, g: &Conv2dGeometry, grad_y: &[f32], w: &[f32], grad_x: &mut [f32]);
    /// `grad_w` from the input and `grad_y`.
    fn backward_weight(&self, g: &Conv2dGeometry, x: &[f32], grad_y: &[f32], grad_w: &mut [f32]);
    /// `grad_w` and the bias gradient `grad_b` (`grad_y` summed per output channel) in one
    /// pass over `grad_y`, where the backend has such a pass for `g`: then `true`; `false`,
    /// with nothing written, where it computes them apart.
    fn backward_weight_and_bias(
        &self,
        _g: &Conv2dGeometry,
        _x: &[f32],
        _grad_y: &[f32],
        _grad_w: &mut [f32],
        _grad_b: &mut [f32],
    ) -> bool {
        false
    }
}

impl<K: Conv2dHostKernels> Conv2dKernels for K {
    fn conv2d(
        &self,
        g: &Conv2dGeometry,
        x: &DeviceTensor,
        w: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        act: Option<Activation>,
    ) -> Result<DeviceTensor> {
        const OP: &str = "conv2d";
        let b = bias.map(|b| b.host(OP)).transpose()?;
        let (shape, mut y) = DeviceTensor::host_output(&g.output_dims())?;
        Conv2dHostKernels::forward(self, g, x.host(OP)?, w.host(OP)?, b, act, &mut y);
        Ok(DeviceTensor::from_host(shape, y))
    }

    fn conv2d_backward_input(
        &self,
        g: &Conv2dGeometry,
        grad_y: &DeviceTensor,
        w: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        const OP: &str = "conv2d_backward_input";
        let (shape, mut gx) = DeviceTensor::host_output(&g.input_dims())?;
        self.backward_input(g, grad_y.host(OP)?, w.host(OP)?, &mut gx);
        Ok(DeviceTensor::from_host(shape, gx))
    }

    fn conv2d_backward_weight(
        &self,
        g: &Conv2dGeometry,
        x: &DeviceTensor,
        grad_y: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        const OP: &str = "conv2d_backward_weight";
        let (shape, mut gw) = DeviceTensor::host_output(&g.weight_dims())?;
        self.backward_weight(g, x.host(OP)?, grad_y.host(OP)?, &mut gw);
        Ok(DeviceTensor::from_host(shape, gw))
    }

    fn conv2d_backward_weight_and_bias(
        &self,
        g: &Conv2dGeometry,
        x: &DeviceTensor,
        grad_y: &DeviceTensor,
    ) -> Option<Result<(DeviceTensor, DeviceTensor)>> {
        const OP: &str = "conv2d_backward_weight";
        let both = || -> Result<Option<(DeviceTensor, DeviceTensor)>> {
            let (x, grad_y) = (x.host(OP)?, grad_y.host(OP)?);
            let (w_shape, mut gw) = DeviceTensor::host_output(&g.weight_dims())?;
            let (b_shape, mut gb) = DeviceTensor::host_output(&[g.c_out])?;
            Ok(self
                .backward_weight_and_bias(g, x, grad_y, &mut gw, &mut gb)
                .then(|| {
                    (
                        DeviceTensor::from_host(w_shape, gw),
                        DeviceTensor::from_host(b_shape, gb),
                    )
                }))
        };
        both().transpose()
    }
}

impl Device {
    /// 2-D convolution (PyTorch `F.conv2d`).
    pub fn conv2d(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        spec: &Conv2dSpec,
    ) -> Result<DeviceTensor> {
        self.conv2d_activation(x, weight, bias, spec, None)
    }

    /// `act(conv2d(x, weight, bias))` in one kernel: the activation is applied as the
    /// convolution stores its output (PyTorch's `act(F.conv2d(...))`, without the intermediate
    /// tensor); `None` is the plain convolution.
    pub fn conv2d_activation(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        spec: &Conv2dSpec,
        act: Option<Activation>,
    ) -> Result<DeviceTensor> {
        let g = spec.check(x.shape(), weight.shape(), bias.map(|b| b.shape()))?;
        self.backend().conv2d(&g, x, weight, bias, act)
    }

    /// The gradients `wanted` of [`Device::conv2d_activation`] given the gradient of its output;
    /// `activation` is the fused activation and that forward output `y` (the derivative is
    /// taken from `y`), `None` for a plain convolution.
    pub fn conv2d_activation_backward(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        spec: &Conv2dSpec,
        activation: Option<(Activation, &DeviceTensor)>,
        wanted: GradsWanted,
    ) -> Result<Conv2dGrads> {
        let bias_with_weight =
            wanted.weight && wanted.bias && self.backend().sums_bias_with_weight_grad();
        let pre = self.pre_activation_grad(grad_y, activation, wanted.bias && !bias_with_weight)?;
        let others = GradsWanted {
            bias: wanted.bias && pre.bias.is_none(),
            ..wanted
        };
        let grad_z = pre.grad.as_ref().unwrap_or(grad_y);
        let grads = self.conv2d_backward(x, weight, grad_z, spec, others)?;
        Ok(Conv2dGrads {
            bias: pre.bias.or(grads.bias),
            ..grads
        })
    }

    /// The gradients `wanted` of a convolution, given its output gradient; the bias gradient
    /// is computed only when `wanted.bias` (the conv's bias is not needed for it).
    pub fn conv2d_backward(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        spec: &Conv2dSpec,
        wanted: GradsWanted,
    ) -> Result<Conv2dGrads> {
        let g = spec.check(x.shape(), weight.shape(), None)?;
        same_shape(
            "conv2d_backward",
            "grad_y",
            &Shape::new(&g.output_dims())?,
            grad_y.shape(),
        )?;
        let b = self.backend();
        let input = wanted
            .input
            .then(|| b.conv2d_backward_input(&g, grad_y, weight))
            .transpose()?;
        if wanted.weight
            && wanted.bias
            && let Some(both) = b.conv2d_backward_weight_and_bias(&g, x, grad_y)
        {
            let (weight, bias) = both?;
            return Ok(Conv2dGrads {
                input,
                weight: Some(weight),
                bias: Some(bias),
            });
        }
        Ok(Conv2dGrads {
            input,
            weight: wanted
                .weight
                .then(|| b.conv2d_backward_weight(&g, x, grad_y))
                .transpose()?,
            bias: wanted
                .bias
                .then(|| b.channel_sum(g.n, g.c_out, g.oh * g.ow, grad_y))
                .transpose()?,
        })
    }
}
