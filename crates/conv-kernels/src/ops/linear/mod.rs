//! The fully connected layer `y = x · Wᵀ + b` (PyTorch `F.linear`) and its gradients, composed
//! from [`crate::ops::matmul`] and [`crate::ops::reduce`]'s channel sum: no kernels of its own.
//! Tests: `tests/fast_vs_reference.rs`, `tests/finite_differences.rs`, `tests/golden.rs`.

use crate::device::DeviceTensor;
use crate::error::Result;
use crate::ops::GradsWanted;
use crate::ops::matmul::MatmulOperands;
use crate::{Activation, Device, MatmulSpec};

/// Gradients of a linear layer; each is `None` when not asked for (or, for the bias, when the
/// layer has none).
#[derive(Clone, Debug)]
pub struct LinearGrads {
    /// Gradient of the input.
    pub input: Option<DeviceTensor>,
    /// Gradient of the weight.
    pub weight: Option<DeviceTensor>,
    /// Gradient of the bias.
    pub bias: Option<DeviceTensor>,
}

impl Device {
    /// `y = x · Wᵀ + b` with `x [n, in]`, `W [out, in]`, `b [out]` (PyTorch `F.linear`).
    pub fn linear(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: Option<&DeviceTensor>,
    ) -> Result<DeviceTensor> {
        self.linear_activation(x, weight, bias, None)
    }

    /// `act(x · Wᵀ + b)` in one kernel: the activation is applied as the product stores its
    /// output; `None` is the plain [`Device::linear`].
    pub fn linear_activation(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        act: Option<Activation>,
    ) -> Result<DeviceTensor> {
        let spec = MatmulSpec {
            trans_a: false,
            trans_b: true,
        };
        self.matmul_activation(x, weight, bias, &spec, act)
    }

    /// The gradients `wanted` of [`Device::linear_activation`] given the gradient of its output;
    /// `activation` is the fused activation and that forward output `y` (the derivative is
    /// taken from `y`), `None` for a plain linear layer.
    pub fn linear_activation_backward(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        activation: Option<(Activation, &DeviceTensor)>,
        wanted: GradsWanted,
    ) -> Result<LinearGrads> {
        let pre = self.pre_activation_grad(grad_y, activation, wanted.bias)?;
        let others = GradsWanted {
            bias: wanted.bias && pre.bias.is_none(),
            ..wanted
        };
        let grad_z = pre.grad.as_ref().unwrap_or(grad_y);
        let grads = self.linear_backward(x, weight, grad_z, others)?;
        Ok(LinearGrads {
            bias: pre.bias.or(grads.bias),
            ..grads
        })
    }

    /// The gradients `wanted` of [`Device::linear`] given its output gradient.
    pub fn linear_backward(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        wanted: GradsWanted,
    ) -> Result<LinearGrads> {
        // The shapes are those of the input-gradient product `grad_y · W`, checked whether or
        // not that gradient is wanted (the error names `matmul`, the product that failed).
        let input_spec = MatmulSpec::default();
        let gi = input_spec.check(grad_y.shape(), weight.shape(), None)?;
        let gd = grad_y.dims();
        // grad_x[n, in] = grad_y[n, out] · W[out, in]; grad_W[out, in] = grad_yᵀ · x.
        let weight_spec = MatmulSpec {
            trans_a: true,
            trans_b: false,
        };
        let b = self.backend();
        let (input, weight) = match (wanted.input, wanted.weight) {
            (true, true) => {
                let gw = weight_spec.check(grad_y.shape(), x.shape(), None)?;
                let of_input = MatmulOperands {
                    g: &gi,
                    a: grad_y,
                    b: weight,
                };
                let of_weight = MatmulOperands {
                    g: &gw,
                    a: grad_y,
                    b: x,
                };
                let [gx, gw] = b.matmul_pair(of_input, of_weight)?;
                (Some(gx), Some(gw))
            }
            (want_input, want_weight) => (
                want_input
                    .then(|| self.matmul(grad_y, weight, None, &input_spec))
                    .transpose()?,
                want_weight
                    .then(|| self.matmul(grad_y, x, None, &weight_spec))
                    .transpose()?,
            ),
        };
        Ok(LinearGrads {
            input,
            weight,
            bias: wanted
                .bias
                .then(|| b.channel_sum(gd[0], gd[1], 1, grad_y))
                .transpose()?,
        })
    }
}
