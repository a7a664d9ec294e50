//! 2-D batch normalisation (PyTorch `nn.BatchNorm2d` with `affine=True`,
//! `track_running_stats=True`): training mode normalises with the batch mean and biased
//! variance over `(n, h, w)` and updates the running mean and *unbiased* running variance with
//! `momentum`; eval mode normalises with the running statistics. Backward gives the input,
//! weight and bias gradients of either mode.
//!
//! Variances are taken in two passes (mean first, then squared deviations), so a channel whose
//! values are nearly constant gets a variance near zero, never a negative one.
//!
//! - [`spec`]: settings and validation into a [`BatchNorm2dGeometry`].
//! - `reference` (f64), `cpu`, `gpu` (host code of `shaders/batch_norm2d.wgsl`).
//! - Tests: `tests/batch_norm2d.rs` (reference, finite differences, errors, golden).

mod cpu;
mod gpu;
mod reference;
pub mod spec;

pub use spec::{BatchNorm2dGeometry, BatchNorm2dSpec};

use crate::device::{DeviceTensor, same_shape};
use crate::error::{Result, spec_err};
use crate::{Activation, Device, GradsWanted};
use tensor::Shape;

/// What a forward pass keeps for its backward pass: per-channel mean and `1 / sqrt(var + eps)`
/// of the statistics it normalised with (the batch's in training, the running ones in eval),
/// and the output when an activation was fused into it.
#[derive(Clone, Debug)]
pub struct BatchNormSaved {
    /// The mean each channel was centred with, `[c]`.
    pub mean: DeviceTensor,
    /// The reciprocal standard deviation each channel was scaled by, `[c]`.
    pub invstd: DeviceTensor,
    /// The activated output (shared with [`BatchNormOutput::output`]) when the spec fuses an
    /// activation: its derivative is taken from it. Set by [`Device::batch_norm2d`]; backends
    /// leave it `None`.
    pub output: Option<DeviceTensor>,
    /// The shift (the layer's bias, `[c]`) the output was made with when the spec fuses a ReLU:
    /// with it a host backend recomputes where the ReLU passed its input, `(x − mean) · weight
    /// · invstd + shift > 0`, bit for bit as the forward pass did, instead of a pass over the
    /// output. Set by [`Device::batch_norm2d`]; backends leave it `None`.
    pub shift: Option<DeviceTensor>,
}

/// The result of a batch-norm forward pass.
#[derive(Clone, Debug)]
pub struct BatchNormOutput {
    /// The normalised, scaled and shifted tensor.
    pub output: DeviceTensor,
    /// What the backward pass needs.
    pub saved: BatchNormSaved,
}

/// The gradients a batch-norm backward pass was asked for.
#[derive(Clone, Debug)]
pub struct BatchNormGrads {
    /// Gradient of the input.
    pub input: Option<DeviceTensor>,
    /// Gradient of the per-channel weight (`Σ grad_y * x̂`).
    pub weight: Option<DeviceTensor>,
    /// Gradient of the per-channel bias (`Σ grad_y`).
    pub bias: Option<DeviceTensor>,
}

/// Batch norm over checked geometries, on one backend's tensors.
pub trait BatchNorm2dKernels {
    /// Forward, `residual` (same shape as `x`) added before the fused activation when given;
    /// in training mode the running statistics are updated in place.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm2d(
        &self,
        g: &BatchNorm2dGeometry,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: &DeviceTensor,
        running_mean: &mut DeviceTensor,
        running_var: &mut DeviceTensor,
        residual: Option<&DeviceTensor>,
    ) -> Result<BatchNormOutput>;
    /// Backward from the forward pass's input and saved statistics.
    fn batch_norm2d_backward(
        &self,
        g: &BatchNorm2dGeometry,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        saved: &BatchNormSaved,
        wanted: GradsWanted,
    ) -> Result<BatchNormGrads>;
    /// Backward of batch norm with a fused ReLU whose gate (where the forward output was
    /// positive) the backend folds into its own passes, recomputed from `x` and `shift`:
    /// `Some` from backends that do (host ones: one pass over the output and a written
    /// gradient fewer), `None` from the others, whose caller then takes the ReLU's derivative
    /// from the saved output first.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm2d_relu_backward(
        &self,
        _g: &BatchNorm2dGeometry,
        _x: &DeviceTensor,
        _weight: &DeviceTensor,
        _grad_y: &DeviceTensor,
        _saved: &BatchNormSaved,
        _shift: &DeviceTensor,
        _wanted: GradsWanted,
    ) -> Result<Option<BatchNormGrads>> {
        Ok(None)
    }
}

/// Where a fused ReLU passed the gradient: element `x` of channel `c` counts when
/// `(x − mean[c]) · scale[c] + shift[c] > 0`, the forward pass's pre-activation value computed
/// by the same operations (so the same bits).
#[derive(Clone, Copy, Debug)]
pub struct ReluGate<'a> {
    /// Per-channel scale, `weight · invstd`.
    pub scale: &'a [f32],
    /// Per-channel shift, the layer's bias.
    pub shift: &'a [f32],
}

impl ReluGate<'_> {
    /// Whether the ReLU passed element `v` of channel `ch` (centred by `mean`).
    #[inline(always)]
    pub fn passes(&self, ch: usize, v: f32, mean: f32) -> bool {
        self.channel(ch).passes(v, mean)
    }

    /// The gate of channel `ch` alone, for a loop over its values.
    pub(crate) fn channel(&self, ch: usize) -> ChannelGate {
        ChannelGate {
            scale: self.scale[ch],
            shift: self.shift[ch],
        }
    }
}

/// One channel's [`ReluGate`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChannelGate {
    scale: f32,
    shift: f32,
}

impl ChannelGate {
    /// Whether the ReLU passed `v` (centred by `mean`): the forward pass's pre-activation
    /// value `(v − mean) · scale + shift`, by the same operations, is positive.
    #[inline(always)]
    pub(crate) fn passes(self, v: f32, mean: f32) -> bool {
        (v - mean) * self.scale + self.shift > 0.0
    }

    /// `d` where `gate` passed `v`, else zero; `d` without a gate.
    #[inline(always)]
    pub(crate) fn apply(gate: Option<Self>, v: f32, mean: f32, d: f32) -> f32 {
        match gate {
            Some(g) if !g.passes(v, mean) => 0.0,
            _ => d,
        }
    }

    /// Its scale and shift, for vector code that tests the same condition.
    pub(crate) fn scale_shift(self) -> [f32; 2] {
        [self.scale, self.shift]
    }
}

/// Batch norm over host slices: the passes over the `n * c * h * w` elements. The per-channel
/// arithmetic between them (`1 / sqrt(var + eps)`, running averages, gradient coefficients) is
/// shared by every host backend.
pub trait BatchNorm2dHostKernels {
    /// Per-channel mean and biased variance (two passes).
    fn channel_stats(&self, g: &BatchNorm2dGeometry, x: &[f32], mean: &mut [f32], var: &mut [f32]);
    /// `y = act((x - mean[c]) * scale[c] + bias[c] (+ residual))`, `act` the spec's fused
    /// activation (the identity without one), `residual` (as long as `x`) added when given.
    #[allow(clippy::too_many_arguments)]
    fn normalize(
        &self,
        g: &BatchNorm2dGeometry,
        x: &[f32],
        mean: &[f32],
        scale: &[f32],
        bias: &[f32],
        residual: Option<&[f32]>,
        y: &mut [f32],
    );
    /// Per-channel `Σ grad_y` and `Σ grad_y * (x - mean) * invstd`, `grad_y` taken as zero
    /// where `gate` (a fused ReLU) did not pass.
    #[allow(clippy::too_many_arguments)]
    fn backward_sums(
        &self,
        g: &BatchNorm2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        mean: &[f32],
        invstd: &[f32],
        gate: Option<ReluGate<'_>>,
        sum_gy: &mut [f32],
        sum_gy_xhat: &mut [f32],
    );
    /// `grad_x = a[c] * grad_y + b[c] * (x - mean[c]) + k[c]` with `coef = [a; b; k]`
    /// (see [`backward_coefficients`]), `grad_y` taken as zero where `gate` did not pass.
    #[allow(clippy::too_many_arguments)]
    fn backward_input(
        &self,
        g: &BatchNorm2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        mean: &[f32],
        gate: Option<ReluGate<'_>>,
        coef: &[f32],
        grad_x: &mut [f32],
    );
}

/// The coefficients `[a; b; k]` (`3 * c` values) of the input gradient
/// `a * grad_y + b * (x - mean) + k`. Training (`m = n * h * w` values per channel):
/// `a = w * invstd`, `b = -a * invstd * Σ(grad_y * x̂) / m`, `k = -a * Σ grad_y / m`;
/// eval: the statistics are constants, so `b = k = 0`.
pub fn backward_coefficients(
    g: &BatchNorm2dGeometry,
    weight: &[f32],
    invstd: &[f32],
    sum_gy: &[f32],
    sum_gy_xhat: &[f32],
) -> Vec<f32> {
    let c = g.c;
    let m = g.per_channel() as f32;
    let mut coef = vec![0f32; 3 * c];
    for ch in 0..c {
        let a = weight[ch] * invstd[ch];
        coef[ch] = a;
        if g.spec.training {
            coef[c + ch] = -a * invstd[ch] * sum_gy_xhat[ch] / m;
            coef[2 * c + ch] = -a * sum_gy[ch] / m;
        }
    }
    coef
}

/// `1 / sqrt(var + eps)`, as every backend computes it.
pub fn inverse_std(var: f32, eps: f32) -> f32 {
    1.0 / (var + eps).sqrt()
}

/// `running = (1 - momentum) * running + momentum * batch`, the variance made unbiased first.
fn update_running(
    g: &BatchNorm2dGeometry,
    rm: &mut [f32],
    rv: &mut [f32],
    mean: &[f32],
    var: &[f32],
) {
    let m = g.spec.momentum;
    let unbias = g.per_channel() as f32 / (g.per_channel() - 1) as f32;
    for ch in 0..g.c {
        rm[ch] = (1.0 - m) * rm[ch] + m * mean[ch];
        rv[ch] = (1.0 - m) * rv[ch] + m * var[ch] * unbias;
    }
}

fn host_vec(c: usize, data: Vec<f32>) -> Result<DeviceTensor> {
    Ok(DeviceTensor::from_host(Shape::new(&[c])?, data))
}

impl<K: BatchNorm2dHostKernels> BatchNorm2dKernels for K {
    fn batch_norm2d(
        &self,
        g: &BatchNorm2dGeometry,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: &DeviceTensor,
        running_mean: &mut DeviceTensor,
        running_var: &mut DeviceTensor,
        residual: Option<&DeviceTensor>,
    ) -> Result<BatchNormOutput> {
        const OP: &str = "batch_norm2d";
        let xs = x.host(OP)?;
        let residual = residual.map(|r| r.host(OP)).transpose()?;
        let (mean, var) = if g.spec.training {
            let (mut mean, mut var) = (vec![0f32; g.c], vec![0f32; g.c]);
            self.channel_stats(g, xs, &mut mean, &mut var);
            let rm = running_mean.host_mut(OP)?;
            update_running(g, rm, running_var.host_mut(OP)?, &mean, &var);
            (mean, var)
        } else {
            (
                running_mean.host(OP)?.to_vec(),
                running_var.host(OP)?.to_vec(),
            )
        };
        let invstd: Vec<f32> = var.iter().map(|&v| inverse_std(v, g.spec.eps)).collect();
        let scale: Vec<f32> = weight
            .host(OP)?
            .iter()
            .zip(&invstd)
            .map(|(w, i)| w * i)
            .collect();
        let (shape, mut y) = DeviceTensor::host_output(x.dims())?;
        self.normalize(g, xs, &mean, &scale, bias.host(OP)?, residual, &mut y);
        Ok(BatchNormOutput {
            output: DeviceTensor::from_host(shape, y),
            saved: BatchNormSaved {
                mean: host_vec(g.c, mean)?,
                invstd: host_vec(g.c, invstd)?,
                output: None,
                shift: None,
            },
        })
    }

    fn batch_norm2d_backward(
        &self,
        g: &BatchNorm2dGeometry,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        saved: &BatchNormSaved,
        wanted: GradsWanted,
    ) -> Result<BatchNormGrads> {
        host_backward(self, g, x, weight, grad_y, saved, None, wanted)
    }

    fn batch_norm2d_relu_backward(
        &self,
        g: &BatchNorm2dGeometry,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        saved: &BatchNormSaved,
        shift: &DeviceTensor,
        wanted: GradsWanted,
    ) -> Result<Option<BatchNormGrads>> {
        host_backward(self, g, x, weight, grad_y, saved, Some(shift), wanted).map(Some)
    }
}

/// The backward passes over host slices, through a fused ReLU's gate when `shift` is given.
#[allow(clippy::too_many_arguments)]
fn host_backward<K: BatchNorm2dHostKernels>(
    k: &K,
    g: &BatchNorm2dGeometry,
    x: &DeviceTensor,
    weight: &DeviceTensor,
    grad_y: &DeviceTensor,
    saved: &BatchNormSaved,
    shift: Option<&DeviceTensor>,
    wanted: GradsWanted,
) -> Result<BatchNormGrads> {
    const OP: &str = "batch_norm2d_backward";
    let (xs, gy, w) = (x.host(OP)?, grad_y.host(OP)?, weight.host(OP)?);
    let (mean, invstd) = (saved.mean.host(OP)?, saved.invstd.host(OP)?);
    // The forward pass's scale, by the same operation.
    let scale: Vec<f32> = w.iter().zip(invstd).map(|(w, i)| w * i).collect();
    let gate = match shift {
        Some(s) => Some(ReluGate {
            scale: &scale,
            shift: s.host(OP)?,
        }),
        None => None,
    };
    let (mut sg, mut sgx) = (vec![0f32; g.c], vec![0f32; g.c]);
    if g.spec.training || wanted.weight || wanted.bias {
        k.backward_sums(g, xs, gy, mean, invstd, gate, &mut sg, &mut sgx);
    }
    let input = if wanted.input {
        let coef = backward_coefficients(g, w, invstd, &sg, &sgx);
        let (shape, mut gx) = DeviceTensor::host_output(x.dims())?;
        k.backward_input(g, xs, gy, mean, gate, &coef, &mut gx);
        Some(DeviceTensor::from_host(shape, gx))
    } else {
        None
    };
    Ok(BatchNormGrads {
        input,
        weight: wanted.weight.then(|| host_vec(g.c, sgx)).transpose()?,
        bias: wanted.bias.then(|| host_vec(g.c, sg)).transpose()?,
    })
}

impl Device {
    /// Batch normalisation of `x` `[n, c, h, w]` with per-channel `weight` and `bias`, then the
    /// spec's fused activation if it has one; in training mode (`spec.training`) the running
    /// statistics are updated in place.
    pub fn batch_norm2d(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: &DeviceTensor,
        running_mean: &mut DeviceTensor,
        running_var: &mut DeviceTensor,
        spec: &BatchNorm2dSpec,
    ) -> Result<BatchNormOutput> {
        self.batch_norm2d_inner(x, weight, bias, running_mean, running_var, None, spec)
    }

    /// `act(batch_norm2d(x) + residual)` in one pass over the output (a residual block's
    /// `relu(bn2(conv2(y)) + shortcut)`: the normalised values, their sum with the shortcut and
    /// the activation are never stored apart); `residual` has `x`'s shape. Its backward is
    /// [`Device::batch_norm2d_backward`] with the activation's derivative taken first: the
    /// residual's gradient is that pre-activation gradient.
    #[allow(clippy::too_many_arguments)] // batch norm's six operands and the residual
    pub fn batch_norm2d_residual(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: &DeviceTensor,
        running_mean: &mut DeviceTensor,
        running_var: &mut DeviceTensor,
        residual: &DeviceTensor,
        spec: &BatchNorm2dSpec,
    ) -> Result<BatchNormOutput> {
        same_shape(
            "batch_norm2d_residual",
            "residual",
            x.shape(),
            residual.shape(),
        )?;
        self.batch_norm2d_inner(
            x,
            weight,
            bias,
            running_mean,
            running_var,
            Some(residual),
            spec,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn batch_norm2d_inner(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: &DeviceTensor,
        running_mean: &mut DeviceTensor,
        running_var: &mut DeviceTensor,
        residual: Option<&DeviceTensor>,
        spec: &BatchNorm2dSpec,
    ) -> Result<BatchNormOutput> {
        let g = spec.check(
            x.shape(),
            &[
                ("weight", weight.shape()),
                ("bias", bias.shape()),
                ("running_mean", running_mean.shape()),
                ("running_var", running_var.shape()),
            ],
        )?;
        let mut out = self.backend().batch_norm2d(
            &g,
            x,
            weight,
            bias,
            running_mean,
            running_var,
            residual,
        )?;
        out.saved.output = spec.activation.map(|_| out.output.clone());
        // The ReLU's gate can be recomputed from `x` alone only without a residual.
        out.saved.shift =
            (spec.activation == Some(Activation::Relu) && residual.is_none()).then(|| bias.clone());
        Ok(out)
    }

    /// Gradients of batch norm (and of its fused activation, whose derivative is taken from the
    /// saved output first) from the forward pass's input, weight and saved statistics,
    /// computing only those in `wanted`.
    pub fn batch_norm2d_backward(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        saved: &BatchNormSaved,
        spec: &BatchNorm2dSpec,
        wanted: GradsWanted,
    ) -> Result<BatchNormGrads> {
        let g = spec.check(
            x.shape(),
            &[
                ("weight", weight.shape()),
                ("saved mean", saved.mean.shape()),
                ("saved invstd", saved.invstd.shape()),
            ],
        )?;
        const OP: &str = "batch_norm2d_backward";
        same_shape(OP, "grad_y", x.shape(), grad_y.shape())?;
        let activation = match spec.activation {
            None => None,
            Some(act) => {
                let y = saved.output.as_ref().ok_or_else(|| {
                    spec_err(
                        OP,
                        format!(
                            "the spec fuses {} but the saved state has no output: pass the \
                             forward pass's spec and saved state",
                            act.op_name()
                        ),
                    )
                })?;
                same_shape(OP, "saved output", x.shape(), y.shape())?;
                Some((act, y))
            }
        };
        if let (Some((Activation::Relu, _)), Some(shift)) = (activation, &saved.shift) {
            same_shape(OP, "saved shift", weight.shape(), shift.shape())?;
            let fused = self
                .backend()
                .batch_norm2d_relu_backward(&g, x, weight, grad_y, saved, shift, wanted)?;
            if let Some(grads) = fused {
                return Ok(grads);
            }
        }
        // The activation's derivative first, as for conv and linear layers.
        let pre = self.pre_activation_grad(grad_y, activation, false)?;
        let grad_y = pre.grad.as_ref().unwrap_or(grad_y);
        self.backend()
            .batch_norm2d_backward(&g, x, weight, grad_y, saved, wanted)
    }
}
