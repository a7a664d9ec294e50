//! "Run op X on device d": each op's forward (and backward) on one device, uploads and
//! read-backs included, returning host tensors to compare against the reference's.

use crate::check::TestResult;
use conv_kernels::{Activation, AdamConfig, Conv2dSpec, Device, MatmulSpec, Pool2dSpec, SgdConfig};
use tensor::Tensor;

/// Results of a convolution forward and backward on one device.
pub struct ConvOut {
    /// Output.
    pub y: Tensor,
    /// Input gradient.
    pub grad_x: Tensor,
    /// Weight gradient.
    pub grad_w: Tensor,
    /// Bias gradient (when a bias was given).
    pub grad_b: Option<Tensor>,
}

/// `act(conv2d(x, w, b))` forward (the activation fused in, when given), then every backward
/// given `grad_y`, on `dev`.
pub fn conv2d(
    dev: &Device,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    grad_y: &Tensor,
    spec: &Conv2dSpec,
    act: Option<Activation>,
) -> TestResult<ConvOut> {
    let (xd, wd, gyd) = (dev.upload(x)?, dev.upload(w)?, dev.upload(grad_y)?);
    let bd = b.map(|b| dev.upload(b)).transpose()?;
    let y = dev.conv2d_activation(&xd, &wd, bd.as_ref(), spec, act)?;
    let grads = dev.conv2d_activation_backward(
        &xd,
        &wd,
        &gyd,
        spec,
        act.map(|a| (a, &y)),
        conv_kernels::GradsWanted {
            input: true,
            weight: true,
            bias: b.is_some(),
        },
    )?;
    let grad_x = grads
        .input
        .ok_or("conv2d_backward returned no input gradient")?;
    Ok(ConvOut {
        y: dev.to_host(&y)?,
        grad_x: dev.to_host(&grad_x)?,
        grad_w: dev.to_host(grads.weight.as_ref().ok_or("no weight gradient")?)?,
        grad_b: grads.bias.map(|g| dev.to_host(&g)).transpose()?,
    })
}

/// Results of pooling forward and backward on one device.
pub struct PoolOut {
    /// Output.
    pub y: Tensor,
    /// Arg-max offsets (max pooling only).
    pub argmax: Option<Vec<u32>>,
    /// Input gradient.
    pub grad_x: Tensor,
}

/// Pooling forward, then backward given `grad_y`, on `dev`.
pub fn pool2d(dev: &Device, x: &Tensor, grad_y: &Tensor, spec: &Pool2dSpec) -> TestResult<PoolOut> {
    let xd = dev.upload(x)?;
    let out = dev.pool2d(&xd, spec)?;
    let gx = dev.pool2d_backward(x.dims(), &dev.upload(grad_y)?, out.argmax.as_ref(), spec)?;
    Ok(PoolOut {
        y: dev.to_host(&out.output)?,
        argmax: out.argmax.map(|a| dev.indices_to_host(&a)).transpose()?,
        grad_x: dev.to_host(&gx)?,
    })
}

/// `act(op(a) · op(b) (+ bias))` on `dev` (the activation fused in, when given).
pub fn matmul(
    dev: &Device,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    spec: &MatmulSpec,
    act: Option<Activation>,
) -> TestResult<Tensor> {
    let bias = bias.map(|t| dev.upload(t)).transpose()?;
    let c = dev.matmul_activation(&dev.upload(a)?, &dev.upload(b)?, bias.as_ref(), spec, act)?;
    Ok(dev.to_host(&c)?)
}

/// Results of a linear layer forward and backward on one device.
pub struct LinearOut {
    /// Output.
    pub y: Tensor,
    /// Input gradient.
    pub grad_x: Tensor,
    /// Weight gradient.
    pub grad_w: Tensor,
    /// Bias gradient (when a bias was given).
    pub grad_b: Option<Tensor>,
}

/// `y = act(x · Wᵀ + b)` (the activation fused in, when given), then its backward given
/// `grad_y`, on `dev`.
pub fn linear(
    dev: &Device,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    grad_y: &Tensor,
    act: Option<Activation>,
) -> TestResult<LinearOut> {
    let (xd, wd) = (dev.upload(x)?, dev.upload(w)?);
    let bd = b.map(|b| dev.upload(b)).transpose()?;
    let y = dev.linear_activation(&xd, &wd, bd.as_ref(), act)?;
    let g = dev.linear_activation_backward(
        &xd,
        &wd,
        &dev.upload(grad_y)?,
        act.map(|a| (a, &y)),
        conv_kernels::GradsWanted {
            input: true,
            weight: true,
            bias: b.is_some(),
        },
    )?;
    Ok(LinearOut {
        y: dev.to_host(&y)?,
        grad_x: dev.to_host(g.input.as_ref().ok_or("no input gradient")?)?,
        grad_w: dev.to_host(g.weight.as_ref().ok_or("no weight gradient")?)?,
        grad_b: g.bias.map(|t| dev.to_host(&t)).transpose()?,
    })
}

/// `act(x)` on `dev`.
pub fn activation(dev: &Device, x: &Tensor, act: Activation) -> TestResult<Tensor> {
    let y = dev.activation(&dev.upload(x)?, act)?;
    Ok(dev.to_host(&y)?)
}

/// The activation gradient from a forward output `y` and `grad_y`, on `dev`.
pub fn activation_backward(
    dev: &Device,
    y: &Tensor,
    grad_y: &Tensor,
    act: Activation,
) -> TestResult<Tensor> {
    let gx = dev.activation_backward(&dev.upload(y)?, &dev.upload(grad_y)?, act)?;
    Ok(dev.to_host(&gx)?)
}

/// Results of the fused softmax cross-entropy on one device.
pub struct CrossEntropyOut {
    /// Mean loss.
    pub loss: f32,
    /// Correct predictions.
    pub correct: f32,
    /// Gradient of the mean loss with respect to the logits.
    pub grad: Tensor,
}

/// Fused softmax cross-entropy on `dev`.
pub fn cross_entropy(dev: &Device, logits: &Tensor, labels: &[u32]) -> TestResult<CrossEntropyOut> {
    let out =
        dev.softmax_cross_entropy(&dev.upload(logits)?, &dev.upload_indices(labels)?, true)?;
    Ok(CrossEntropyOut {
        loss: dev.read_scalar(&out.loss)?,
        correct: dev.read_scalar(&out.correct)?,
        grad: dev.to_host(out.grad_logits.as_ref().ok_or("no logits gradient")?)?,
    })
}

/// `grads.len()` SGD steps from `w`; returns the parameter after each step.
pub fn sgd_steps(
    dev: &Device,
    cfg: &SgdConfig,
    w: &Tensor,
    grads: &[Tensor],
) -> TestResult<Vec<Tensor>> {
    let mut p = dev.upload(w)?;
    let mut m = dev.zeros(w.dims())?;
    let mut out = Vec::new();
    for g in grads {
        let mom = (cfg.momentum > 0.0).then_some(&mut m);
        dev.sgd_step(cfg, &mut p, &dev.upload(g)?, mom)?;
        out.push(dev.to_host(&p)?);
    }
    Ok(out)
}

/// `grads.len()` Adam steps from `w` (steps counted from 1); the parameter after each step.
pub fn adam_steps(
    dev: &Device,
    cfg: &AdamConfig,
    w: &Tensor,
    grads: &[Tensor],
) -> TestResult<Vec<Tensor>> {
    let mut p = dev.upload(w)?;
    let mut m = dev.zeros(w.dims())?;
    let mut v = dev.zeros(w.dims())?;
    let mut out = Vec::new();
    for (i, g) in grads.iter().enumerate() {
        dev.adam_step(cfg, i as u32 + 1, &mut p, &dev.upload(g)?, &mut m, &mut v)?;
        out.push(dev.to_host(&p)?);
    }
    Ok(out)
}

/// Results of the small element-wise ops on one device.
pub struct ElementwiseOut {
    /// `a + b`.
    pub add: Tensor,
    /// `a += b` in place.
    pub add_assign: Tensor,
    /// `alpha * a`.
    pub scale: Tensor,
    /// `a * s` with `s` a one-element device tensor holding `alpha`.
    pub scale_by: Tensor,
    /// Sum of `a`.
    pub sum: f32,
    /// `a` filled with `alpha`.
    pub fill: Tensor,
}

/// add, add_assign, scale, scale_by, sum and fill on `dev`.
pub fn elementwise(dev: &Device, a: &Tensor, b: &Tensor, alpha: f32) -> TestResult<ElementwiseOut> {
    let (ad, bd) = (dev.upload(a)?, dev.upload(b)?);
    let add = dev.add(&ad, &bd)?;
    let mut acc = ad.clone();
    dev.add_assign(&mut acc, &bd)?;
    let scale = dev.scale(&ad, alpha)?;
    let scale_by = dev.scale_by(&ad, &dev.full(&[1], alpha)?)?;
    let sum = dev.read_scalar(&dev.sum(&ad)?)?;
    let mut filled = ad.clone();
    dev.fill(&mut filled, alpha)?;
    Ok(ElementwiseOut {
        add: dev.to_host(&add)?,
        add_assign: dev.to_host(&acc)?,
        scale: dev.to_host(&scale)?,
        scale_by: dev.to_host(&scale_by)?,
        sum,
        fill: dev.to_host(&filled)?,
    })
}

/// The per-channel sum of `grad_y` (`[n, c, hw, 1]`) as conv2d's bias gradient, on `dev`, with
/// `x` `[n, 1, hw, 1]` and a 1×1 weight `w` `[c, 1, 1, 1]` (the weight gradient is computed
/// too, the input gradient is not).
pub fn channel_sum(dev: &Device, grad_y: &Tensor, x: &Tensor, w: &Tensor) -> TestResult<Tensor> {
    let g = dev.conv2d_backward(
        &dev.upload(x)?,
        &dev.upload(w)?,
        &dev.upload(grad_y)?,
        &Conv2dSpec::default(),
        conv_kernels::GradsWanted {
            input: false,
            weight: true,
            bias: true,
        },
    )?;
    Ok(dev.to_host(&g.bias.ok_or("no bias gradient")?)?)
}
