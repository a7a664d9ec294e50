//! One random case of an op on a device against the reference, with the op's tolerance: the
//! bodies shared by the property tests of every kernel variant (`fast_vs_reference`,
//! `tiled_kernels`) and by `cargo xtask test-kernels`.

use crate::cases::{ActivationCase, ConvCase, MatmulCase, PoolCase};
use crate::check::{TestResult, check_close, max_abs};
use crate::ops::{activation, activation_backward, conv2d, matmul, pool2d};
use conv_kernels::{Activation, Device, DeviceTensor, IndexTensor};
use tensor::Tensor;

/// f32 sums against the reference's f64 ones: rtol 1e-4 plus an absolute 1e-4 of the largest
/// magnitude (cancellation).
fn atol(t: &Tensor) -> f32 {
    1e-4 * max_abs(t).max(1.0)
}

/// A convolution case (forward with its fused activation, input, weight and bias gradients)
/// on `dev` against the reference. Tolerance: up to 8·25 products per output and input
/// gradient, up to 8·400 per weight and bias gradient, in f32.
pub fn conv_case_matches_reference(dev: &Device, c: &ConvCase) -> TestResult {
    let t = c.inputs()?;
    let (x, w, b, gy) = (&t.x, &t.w, t.b.as_ref(), &t.grad_y);
    let want = conv2d(&Device::Reference, x, w, b, gy, &c.spec, c.act)?;
    let got = conv2d(dev, x, w, b, gy, &c.spec, c.act)?;
    let what = |part: &str| format!("conv2d {part} {c:?}");
    check_close(dev, &what("y"), &got.y, &want.y, 1e-4, atol(&want.y))?;
    check_close(
        dev,
        &what("grad_x"),
        &got.grad_x,
        &want.grad_x,
        1e-4,
        atol(&want.grad_x),
    )?;
    check_close(
        dev,
        &what("grad_w"),
        &got.grad_w,
        &want.grad_w,
        1e-4,
        atol(&want.grad_w),
    )?;
    match (&got.grad_b, &want.grad_b) {
        (Some(g), Some(r)) => check_close(dev, &what("grad_b"), g, r, 1e-4, atol(r))?,
        (None, None) => {}
        _ => return Err(format!("{}: a bias gradient on one side only", what("grad_b")).into()),
    }
    Ok(())
}

/// A matrix-product case (with its fused activation) on `dev` against the reference: k ≤ 140
/// f32 products of N(0,1) values against an f64 sum, ~sqrt(k)·1e-7 typical error.
pub fn matmul_case_matches_reference(dev: &Device, c: &MatmulCase) -> TestResult {
    let (a, b, bias) = c.inputs();
    let want = matmul(&Device::Reference, &a, &b, bias.as_ref(), &c.spec, c.act)?;
    let got = matmul(dev, &a, &b, bias.as_ref(), &c.spec, c.act)?;
    check_close(
        dev,
        &format!("matmul {c:?}"),
        &got,
        &want,
        1e-4,
        atol(&want),
    )
}

/// An activation case (forward, and backward from the forward output) on `dev` against the
/// reference.
pub fn activation_case_matches_reference(dev: &Device, c: &ActivationCase) -> TestResult {
    let act = c.act;
    // The extremes (±1e4, ±88.5) and zero are always among the inputs.
    let (x, gy) = c.inputs();
    let want = activation(&Device::Reference, &x, act)?;
    let got = activation(dev, &x, act)?;
    // Outputs lie in [-1, 1] (or are x itself for relu): a few ulp of 1 absolute, 1e-5 relative.
    check_close(dev, act.op_name(), &got, &want, 1e-5, 1e-6)?;
    if got.data().iter().any(|v| !v.is_finite()) {
        return Err(format!("{} on {}: non-finite output", act.op_name(), dev.name()).into());
    }
    // Backward from the same forward output: one or two f32 multiplies, so rtol 1e-6.
    let want_gx = activation_backward(&Device::Reference, &want, &gy, act)?;
    let got_gx = activation_backward(dev, &want, &gy, act)?;
    check_close(dev, "activation backward", &got_gx, &want_gx, 1e-6, 1e-7)
}

/// A pooling case (forward with its argmax, and backward) on `dev` against the reference.
pub fn pool_case_matches_reference(dev: &Device, c: &PoolCase) -> TestResult {
    // Padding 0..=2, kept at most half the kernel (PyTorch's rule, checked by the spec).
    let spec = c.spec();
    let (x, gy) = c.inputs()?;
    let want = pool2d(&Device::Reference, &x, &gy, &spec)?;
    let got = pool2d(dev, &x, &gy, &spec)?;
    // Max: the same element wins (exact); avg: up to 25 f32 adds vs f64 (rtol 1e-5, atol 1e-6).
    check_close(dev, "pool2d y", &got.y, &want.y, 1e-5, 1e-6)?;
    if got.argmax != want.argmax {
        return Err(format!("pool2d argmax on {} differs from the reference", dev.name()).into());
    }
    // Overlapping windows add up to 25 contributions per input element.
    check_close(dev, "pool2d grad_x", &got.grad_x, &want.grad_x, 1e-5, 1e-6)
}

/// The fused pooling + activation gradient against its two parts: on the device itself bit for
/// bit (the same operations per element), and against the reference's parts within the
/// pooling's tolerance. `y` is an activation's output, as the op requires.
pub fn pool_activation_case_matches_its_parts(
    dev: &Device,
    c: &PoolCase,
    act: Activation,
) -> TestResult {
    let spec = c.spec();
    let (x, gy) = c.inputs()?;
    let parts = |d: &Device| -> TestResult<(Tensor, DeviceTensor, Option<IndexTensor>)> {
        let y = d.activation(&d.upload(&x)?, act)?;
        let pooled = d.pool2d(&y, &spec)?;
        let gx = d.pool2d_backward(x.dims(), &d.upload(&gy)?, pooled.argmax.as_ref(), &spec)?;
        Ok((
            d.to_host(&d.activation_backward(&y, &gx, act)?)?,
            y,
            pooled.argmax,
        ))
    };
    let (want, _, _) = parts(&Device::Reference)?;
    let (unfused, y, argmax) = parts(dev)?;
    let fused =
        dev.pool2d_activation_backward(&y, &dev.upload(&gy)?, argmax.as_ref(), &spec, act)?;
    let fused = dev.to_host(&fused)?;
    if fused
        .data()
        .iter()
        .map(|v| v.to_bits())
        .ne(unfused.data().iter().map(|v| v.to_bits()))
    {
        return Err(format!(
            "{act:?} after {:?} pool on {}: fused differs from its parts",
            c.kind,
            dev.name()
        )
        .into());
    }
    check_close(dev, "pool2d_activation_backward", &fused, &want, 1e-5, 1e-6)?;
    Ok(())
}
