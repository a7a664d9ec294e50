//! Every backward op of the reference against central differences of its forward op.
//!
//! For an op `y = f(x)` the scalar loss is `L = Σ y·r` with fixed random `r`, computed in f64
//! from the reference's f32 outputs; `∂L/∂x_i ≈ (L(x + εe_i) − L(x − εe_i)) / 2ε` with
//! ε = 1e-2: conv, pooling and linear are linear in each input, so central differences are
//! exact up to rounding; for the activations and cross-entropy the truncation error is
//! ε²/6·|f'''| ≲ 1e-4 (times |x|³ when conv2d and linear fuse an activation). The f32 rounding of `y` (~6e-8·|y| per element) is divided by 2ε, which
//! a larger ε keeps far below the tolerance.
//! Tolerance: |analytic − numeric| ≤ 2e-3 + 2e-3·|numeric|.

use conv_kernels::{Activation, Conv2dSpec, Device, Pool2dSpec, PoolKind};
use fovea_test_support::ops::{
    activation, activation_backward, conv2d, cross_entropy, linear, pool2d,
};
use fovea_test_support::{TestResult, randn, uniform};
use tensor::{SeededRng, Tensor};

const EPS: f32 = 1e-2;
const RTOL: f64 = 2e-3;
const ATOL: f64 = 2e-3;

fn dot(y: &Tensor, r: &Tensor) -> f64 {
    y.data()
        .iter()
        .zip(r.data())
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

/// Compares `analytic` with central differences of `loss` around `x`.
fn check_gradient(
    what: &str,
    x: &Tensor,
    analytic: &Tensor,
    loss: impl Fn(&Tensor) -> TestResult<f64>,
) -> TestResult {
    for i in 0..x.numel() {
        let mut plus = x.clone();
        plus.data_mut()[i] += EPS;
        let mut minus = x.clone();
        minus.data_mut()[i] -= EPS;
        // The actual step taken in f32 (x ± ε is rounded).
        let h = plus.data()[i] as f64 - minus.data()[i] as f64;
        let numeric = (loss(&plus)? - loss(&minus)?) / h;
        let got = analytic.data()[i] as f64;
        if (got - numeric).abs() > ATOL + RTOL * numeric.abs() {
            return Err(
                format!("{what}[{i}]: backward gives {got}, central difference {numeric}").into(),
            );
        }
    }
    Ok(())
}

#[test]
fn conv2d_backward_matches_finite_differences() -> TestResult {
    let dev = Device::Reference;
    let specs = [
        (Conv2dSpec::new(1, 1), 2, 2),
        (
            Conv2dSpec {
                stride: [2, 1],
                padding: [1, 2],
                dilation: [2, 1],
                groups: 1,
            },
            2,
            3,
        ),
        (
            Conv2dSpec {
                groups: 2,
                ..Conv2dSpec::new(1, 0)
            },
            4,
            2,
        ),
    ];
    // Plain, and with the smooth activations fused in (ReLU's kink is no place for
    // finite differences).
    let acts = [None, Some(Activation::Sigmoid), Some(Activation::Tanh)];
    for ((spec, c_in, c_out), act) in specs.into_iter().flat_map(|s| acts.map(|a| (s, a))) {
        let mut rng = SeededRng::new(11);
        let x = randn(&[2, c_in, 5, 6], &mut rng);
        let w = randn(&[c_out, c_in / spec.groups, 3, 2], &mut rng);
        let b = randn(&[c_out], &mut rng);
        let forward = |x: &Tensor, w: &Tensor, b: &Tensor| -> TestResult<Tensor> {
            let y = dev.conv2d_activation(
                &dev.upload(x)?,
                &dev.upload(w)?,
                Some(&dev.upload(b)?),
                &spec,
                act,
            )?;
            Ok(dev.to_host(&y)?)
        };
        let r = randn(forward(&x, &w, &b)?.dims(), &mut rng);
        let out = conv2d(&dev, &x, &w, Some(&b), &r, &spec, act)?;
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| -> TestResult<f64> {
            Ok(dot(&forward(x, w, b)?, &r))
        };
        check_gradient("conv2d grad_x", &x, &out.grad_x, |x| loss(x, &w, &b))?;
        check_gradient("conv2d grad_w", &w, &out.grad_w, |w| loss(&x, w, &b))?;
        let gb = out.grad_b.ok_or("no bias gradient")?;
        check_gradient("conv2d grad_b", &b, &gb, |b| loss(&x, &w, b))?;
    }
    Ok(())
}

#[test]
fn pool2d_backward_matches_finite_differences() -> TestResult {
    let dev = Device::Reference;
    let mut rng = SeededRng::new(5);
    // Distinct values at least 0.05 apart, so ±ε never changes which element is the maximum.
    let mut values: Vec<f32> = (0..2 * 3 * 7 * 6).map(|i| i as f32 * 0.05).collect();
    rng.shuffle(&mut values);
    let x = Tensor::from_vec(&[2, 3, 7, 6], values)?;
    for spec in [
        Pool2dSpec::new(PoolKind::Max, 2, 2, 0),
        Pool2dSpec::new(PoolKind::Max, 3, 2, 1),
        Pool2dSpec::new(PoolKind::Avg, 2, 2, 0),
        Pool2dSpec::new(PoolKind::Avg, 3, 2, 1),
        Pool2dSpec {
            kind: PoolKind::Avg,
            kernel: [3, 2],
            stride: [1, 3],
            padding: [1, 0],
        },
    ] {
        let y = dev.to_host(&dev.pool2d(&dev.upload(&x)?, &spec)?.output)?;
        let r = randn(y.dims(), &mut rng);
        let out = pool2d(&dev, &x, &r, &spec)?;
        check_gradient(&format!("{spec:?} grad_x"), &x, &out.grad_x, |x| {
            Ok(dot(
                &dev.to_host(&dev.pool2d(&dev.upload(x)?, &spec)?.output)?,
                &r,
            ))
        })?;
    }
    Ok(())
}

#[test]
fn linear_backward_matches_finite_differences() -> TestResult {
    let dev = Device::Reference;
    // Plain, and with the smooth activations fused in.
    for act in [None, Some(Activation::Sigmoid), Some(Activation::Tanh)] {
        let mut rng = SeededRng::new(9);
        let x = randn(&[3, 7], &mut rng);
        let w = randn(&[4, 7], &mut rng);
        let b = randn(&[4], &mut rng);
        let r = randn(&[3, 4], &mut rng);
        let out = linear(&dev, &x, &w, Some(&b), &r, act)?;
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| -> TestResult<f64> {
            let (x, w, b) = (dev.upload(x)?, dev.upload(w)?, dev.upload(b)?);
            let y = dev.linear_activation(&x, &w, Some(&b), act)?;
            Ok(dot(&dev.to_host(&y)?, &r))
        };
        check_gradient("linear grad_x", &x, &out.grad_x, |x| loss(x, &w, &b))?;
        check_gradient("linear grad_w", &w, &out.grad_w, |w| loss(&x, w, &b))?;
        let gb = out.grad_b.ok_or("no bias gradient")?;
        check_gradient("linear grad_b", &b, &gb, |b| loss(&x, &w, b))?;
    }
    Ok(())
}

#[test]
fn activation_backward_matches_finite_differences() -> TestResult {
    let dev = Device::Reference;
    let mut rng = SeededRng::new(2);
    // Keep |x| ≥ 0.1 so relu's kink is never inside [x − ε, x + ε].
    let x = uniform(&[40], 0.1, 4.0, &mut rng).zip_map(
        &uniform(&[40], -1.0, 1.0, &mut rng),
        |v, s| {
            if s < 0.0 { -v } else { v }
        },
    )?;
    let r = randn(&[40], &mut rng);
    for act in [Activation::Sigmoid, Activation::Relu, Activation::Tanh] {
        let y = activation(&dev, &x, act)?;
        let gx = activation_backward(&dev, &y, &r, act)?;
        check_gradient(act.op_name(), &x, &gx, |x| {
            Ok(dot(&activation(&dev, x, act)?, &r))
        })?;
    }
    Ok(())
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() -> TestResult {
    let dev = Device::Reference;
    let mut rng = SeededRng::new(4);
    let logits = randn(&[5, 7], &mut rng).map(|v| 3.0 * v);
    let labels = [0u32, 6, 3, 3, 1];
    let out = cross_entropy(&dev, &logits, &labels)?;
    // The loss is already a scalar (the mean over the batch).
    check_gradient("cross-entropy grad", &logits, &out.grad, |l| {
        Ok(cross_entropy(&dev, l, &labels)?.loss as f64)
    })
}
