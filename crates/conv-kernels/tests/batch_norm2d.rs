//! batch_norm2d: the CPU and the GPU (each its own test) against the reference (training and eval, forward, running
//! statistics and every gradient, with and without a fused activation) over random shapes, the fused activation against
//! batch norm then the activation, the golden cases on every device, the reference's backward against finite
//! differences, nearly constant channels, and its errors.

use conv_kernels::{Activation, BatchNorm2dSpec, Device, GradsWanted};
use fovea_test_support::cases::{proptest_config, smooth_fused_activation};
use fovea_test_support::{TestResult, golden, test_device};
use proptest::prelude::*;
use tensor::{SeededRng, Tensor};

/// Everything one forward and backward produce, on the host.
struct BnOut {
    y: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    grad_x: Tensor,
    grad_w: Tensor,
    grad_b: Tensor,
}

struct BnCase {
    x: Tensor,
    w: Tensor,
    b: Tensor,
    rm: Tensor,
    rv: Tensor,
    gy: Tensor,
}

impl BnCase {
    fn random(dims: [usize; 4], offset: f32, spread: f32, seed: u64) -> TestResult<Self> {
        let mut rng = SeededRng::new(seed);
        let c = dims[1];
        let mut x = Tensor::randn(&dims, &mut rng)?;
        for v in x.data_mut() {
            *v = offset + spread * *v;
        }
        Ok(BnCase {
            x,
            w: Tensor::rand_uniform(&[c], 0.5, 1.5, &mut rng)?,
            b: Tensor::randn(&[c], &mut rng)?,
            rm: Tensor::randn(&[c], &mut rng)?,
            rv: Tensor::rand_uniform(&[c], 0.5, 2.0, &mut rng)?,
            gy: Tensor::randn(&dims, &mut rng)?,
        })
    }

    fn run(&self, dev: &Device, spec: &BatchNorm2dSpec) -> TestResult<BnOut> {
        let x = dev.upload(&self.x)?;
        let w = dev.upload(&self.w)?;
        let (mut rm, mut rv) = (dev.upload(&self.rm)?, dev.upload(&self.rv)?);
        let out = dev.batch_norm2d(&x, &w, &dev.upload(&self.b)?, &mut rm, &mut rv, spec)?;
        let g = dev.batch_norm2d_backward(
            &x,
            &w,
            &dev.upload(&self.gy)?,
            &out.saved,
            spec,
            GradsWanted::ALL,
        )?;
        Ok(BnOut {
            y: out.output.to_host()?,
            running_mean: rm.to_host()?,
            running_var: rv.to_host()?,
            grad_x: g.input.ok_or("no grad_x")?.to_host()?,
            grad_w: g.weight.ok_or("no grad_w")?.to_host()?,
            grad_b: g.bias.ok_or("no grad_b")?.to_host()?,
        })
    }
}

fn matches_reference(
    dev: &Device,
    case: &BnCase,
    spec: &BatchNorm2dSpec,
    rtol: f32,
    atol: f32,
) -> TestResult {
    let want = case.run(&Device::Reference, spec)?;
    let got = case.run(dev, spec)?;
    let pairs = [
        ("y", &got.y, &want.y),
        ("running_mean", &got.running_mean, &want.running_mean),
        ("running_var", &got.running_var, &want.running_var),
        ("grad_x", &got.grad_x, &want.grad_x),
        ("grad_weight", &got.grad_w, &want.grad_w),
        ("grad_bias", &got.grad_b, &want.grad_b),
    ];
    for (what, g, w) in pairs {
        // f32 sums over up to n·h·w terms against f64 ones: atol scaled to the tensor.
        let scale = w.data().iter().fold(1f32, |m, v| m.max(v.abs()));
        g.allclose(w, rtol, atol * scale)
            .map_err(|m| format!("{what} (training {}): {m}", spec.training))?;
    }
    Ok(())
}

fn batch_norm2d_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(
        n in 1usize..5, c in 1usize..9, h in 1usize..9, w in 1usize..9,
        training in any::<bool>(), seed in any::<u64>(), activation in smooth_fused_activation(),
    )| {
        prop_assume!(!training || n * h * w > 1);
        let case = BnCase::random([n, c, h, w], 0.5, 2.0, seed).unwrap();
        let spec = BatchNorm2dSpec { training, activation, ..BatchNorm2dSpec::default() };
        matches_reference(dev, &case, &spec, 1e-3, 1e-4)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    });
}
test_device!(batch_norm2d_matches_reference: cpu, gpu);

fn batch_norm2d_of_a_resnet_sized_batch_matches_reference(dev: &Device) -> TestResult {
    let case = BnCase::random([32, 16, 28, 28], 0.3, 1.0, 11)?;
    matches_reference(dev, &case, &BatchNorm2dSpec::default(), 1e-3, 1e-4)
}
test_device!(batch_norm2d_of_a_resnet_sized_batch_matches_reference: cpu, gpu);

fn nearly_constant_channels_stay_finite_and_agree(dev: &Device) -> TestResult {
    // Values 100 ± 1e-3: a one-pass E[x²] - E[x]² variance would cancel to garbage or a
    // negative number; two passes keep it.
    let case = BnCase::random([4, 3, 5, 5], 100.0, 1e-3, 12)?;
    let spec = BatchNorm2dSpec::default();
    let want = case.run(&Device::Reference, &spec)?;
    let got = case.run(dev, &spec)?;
    let finite = got
        .y
        .data()
        .iter()
        .chain(got.grad_x.data())
        .all(|v| v.is_finite());
    assert!(finite, "y and grad_x are finite");
    assert!(got.running_var.data().iter().all(|&v| v > 0.0));
    got.y
        .allclose(&want.y, 2e-2, 2e-2)
        .map_err(|m| format!("y: {m}"))?;
    Ok(())
}
test_device!(nearly_constant_channels_stay_finite_and_agree: cpu, gpu);

/// Every golden `batch_norm2d` case (training and eval): output, running statistics, and the
/// gradients from the case's `grad_y`.
fn golden_batch_norm2d(dev: &Device) -> TestResult {
    golden::replay(dev, "batch_norm2d", |dev, case| -> TestResult {
        let spec = BatchNorm2dSpec {
            eps: case.param_f64("eps")? as f32,
            momentum: case.param_f64("momentum")? as f32,
            training: case.param_bool("training")?,
            activation: None,
        };
        let bn = BnCase {
            x: case.tensor("x")?.clone(),
            w: case.tensor("weight")?.clone(),
            b: case.tensor("bias")?.clone(),
            rm: case.tensor("running_mean")?.clone(),
            rv: case.tensor("running_var")?.clone(),
            gy: case.tensor("grad_y")?.clone(),
        };
        let out = bn.run(dev, &spec)?;
        case.compare("y", &out.y)?;
        case.compare("grad_x", &out.grad_x)?;
        case.compare("grad_weight", &out.grad_w)?;
        case.compare("grad_bias", &out.grad_b)?;
        if spec.training {
            case.compare("running_mean_out", &out.running_mean)?;
            case.compare("running_var_out", &out.running_var)?;
        } else {
            // Eval leaves the running statistics alone.
            assert_eq!(out.running_mean.data(), bn.rm.data());
            assert_eq!(out.running_var.data(), bn.rv.data());
        }
        Ok(())
    })
}
test_device!(golden_batch_norm2d);

#[test]
fn batch_norm2d_backward_matches_finite_differences() -> TestResult {
    let dev = Device::Reference;
    for training in [true, false] {
        let case = BnCase::random([3, 2, 3, 2], 0.2, 1.5, 13 + training as u64)?;
        let spec = BatchNorm2dSpec {
            training,
            ..BatchNorm2dSpec::default()
        };
        let out = case.run(&dev, &spec)?;
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| -> TestResult<f64> {
            let (mut rm, mut rv) = (dev.upload(&case.rm)?, dev.upload(&case.rv)?);
            let y = dev.batch_norm2d(
                &dev.upload(x)?,
                &dev.upload(w)?,
                &dev.upload(b)?,
                &mut rm,
                &mut rv,
                &spec,
            )?;
            let y = y.output.to_host()?;
            Ok(y.data()
                .iter()
                .zip(case.gy.data())
                .map(|(&a, &r)| f64::from(a) * f64::from(r))
                .sum())
        };
        let check = |what: &str,
                     t: &Tensor,
                     analytic: &Tensor,
                     f: &dyn Fn(&Tensor) -> TestResult<f64>|
         -> TestResult {
            for i in 0..t.numel() {
                let (mut p, mut m) = (t.clone(), t.clone());
                p.data_mut()[i] += 1e-2;
                m.data_mut()[i] -= 1e-2;
                let h = f64::from(p.data()[i]) - f64::from(m.data()[i]);
                let numeric = (f(&p)? - f(&m)?) / h;
                let got = f64::from(analytic.data()[i]);
                if (got - numeric).abs() > 5e-3 + 5e-3 * numeric.abs() {
                    return Err(
                        format!("{what}[{i}] (training {training}): {got} vs {numeric}").into(),
                    );
                }
            }
            Ok(())
        };
        check("grad_x", &case.x, &out.grad_x, &|x| {
            loss(x, &case.w, &case.b)
        })?;
        check("grad_weight", &case.w, &out.grad_w, &|w| {
            loss(&case.x, w, &case.b)
        })?;
        check("grad_bias", &case.b, &out.grad_b, &|b| {
            loss(&case.x, &case.w, b)
        })?;
    }
    Ok(())
}

fn only_the_wanted_gradients_are_computed(dev: &Device) -> TestResult {
    let case = BnCase::random([2, 3, 4, 4], 0.0, 1.0, 14)?;
    let spec = BatchNorm2dSpec::default();
    let x = dev.upload(&case.x)?;
    let w = dev.upload(&case.w)?;
    let (mut rm, mut rv) = (dev.upload(&case.rm)?, dev.upload(&case.rv)?);
    let out = dev.batch_norm2d(&x, &w, &dev.upload(&case.b)?, &mut rm, &mut rv, &spec)?;
    let wanted = GradsWanted {
        input: true,
        weight: false,
        bias: false,
    };
    let gy = dev.upload(&case.gy)?;
    let g = dev.batch_norm2d_backward(&x, &w, &gy, &out.saved, &spec, wanted)?;
    assert!(g.input.is_some() && g.weight.is_none() && g.bias.is_none());
    Ok(())
}
test_device!(only_the_wanted_gradients_are_computed);

fn batch_norm2d_refuses_one_value_per_channel_in_training_and_bad_shapes(
    dev: &Device,
) -> TestResult {
    let c3 = dev.upload(&Tensor::full(&[3], 1.0)?)?;
    let (mut rm, mut rv) = (c3.clone(), c3.clone());
    let x = dev.upload(&Tensor::zeros(&[1, 3, 1, 1])?)?;
    let spec = BatchNorm2dSpec::default();
    let err = dev
        .batch_norm2d(&x, &c3, &c3, &mut rm, &mut rv, &spec)
        .unwrap_err();
    assert!(
        err.to_string().contains("more than 1 value per channel"),
        "{err}"
    );
    let eval = BatchNorm2dSpec {
        training: false,
        ..spec
    };
    dev.batch_norm2d(&x, &c3, &c3, &mut rm, &mut rv, &eval)?;
    let x4 = dev.upload(&Tensor::zeros(&[2, 4, 2, 2])?)?;
    let err = dev
        .batch_norm2d(&x4, &c3, &c3, &mut rm, &mut rv, &spec)
        .unwrap_err();
    assert!(err.to_string().contains("weight"), "{err}");
    let bad = BatchNorm2dSpec {
        momentum: 2.0,
        ..spec
    };
    let err = dev
        .batch_norm2d(&x, &c3, &c3, &mut rm, &mut rv, &bad)
        .unwrap_err();
    assert!(err.to_string().contains("momentum"), "{err}");
    Ok(())
}
test_device!(batch_norm2d_refuses_one_value_per_channel_in_training_and_bad_shapes);

/// Batch norm with an activation fused into it against batch norm, then the activation, on the
/// same device: the same output and gradients bit for bit (the same operations per element),
/// ReLU's kink included.
fn fused_activation_equals_batch_norm_then_activation(dev: &Device) -> TestResult {
    let case = BnCase::random([3, 4, 5, 6], 0.1, 1.0, 21)?;
    for act in [Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
        for training in [true, false] {
            let plain = BatchNorm2dSpec {
                training,
                ..BatchNorm2dSpec::default()
            };
            let fused = case.run(
                dev,
                &BatchNorm2dSpec {
                    activation: Some(act),
                    ..plain
                },
            )?;
            // The two ops one after the other.
            let x = dev.upload(&case.x)?;
            let w = dev.upload(&case.w)?;
            let (mut rm, mut rv) = (dev.upload(&case.rm)?, dev.upload(&case.rv)?);
            let out = dev.batch_norm2d(&x, &w, &dev.upload(&case.b)?, &mut rm, &mut rv, &plain)?;
            let y = dev.activation(&out.output, act)?;
            let g = dev.activation_backward(&y, &dev.upload(&case.gy)?, act)?;
            let grads =
                dev.batch_norm2d_backward(&x, &w, &g, &out.saved, &plain, GradsWanted::ALL)?;
            let what = format!("{act:?}, training {training}");
            assert_eq!(fused.y.data(), y.to_host()?.data(), "y, {what}");
            assert_eq!(
                fused.running_var.data(),
                rv.to_host()?.data(),
                "running_var, {what}"
            );
            let grad_x = grads.input.ok_or("no grad_x")?.to_host()?;
            assert_eq!(fused.grad_x.data(), grad_x.data(), "grad_x, {what}");
            let grad_w = grads.weight.ok_or("no grad_w")?.to_host()?;
            assert_eq!(fused.grad_w.data(), grad_w.data(), "grad_weight, {what}");
        }
    }
    Ok(())
}
test_device!(fused_activation_equals_batch_norm_then_activation);

/// A backward pass told of a fused activation needs the forward's saved output: without it,
/// an error naming the op, not a panic.
fn fused_activation_backward_without_the_saved_output_is_an_error(dev: &Device) -> TestResult {
    let case = BnCase::random([2, 3, 2, 2], 0.0, 1.0, 22)?;
    let spec = BatchNorm2dSpec {
        activation: Some(Activation::Relu),
        ..BatchNorm2dSpec::default()
    };
    let x = dev.upload(&case.x)?;
    let w = dev.upload(&case.w)?;
    let (mut rm, mut rv) = (dev.upload(&case.rm)?, dev.upload(&case.rv)?);
    let mut out = dev.batch_norm2d(&x, &w, &dev.upload(&case.b)?, &mut rm, &mut rv, &spec)?;
    out.saved.output = None;
    let err = dev
        .batch_norm2d_backward(
            &x,
            &w,
            &dev.upload(&case.gy)?,
            &out.saved,
            &spec,
            GradsWanted::ALL,
        )
        .unwrap_err();
    assert!(err.to_string().contains("batch_norm2d_backward"), "{err}");
    assert!(err.to_string().contains("saved"), "{err}");
    Ok(())
}
test_device!(fused_activation_backward_without_the_saved_output_is_an_error);

/// `batch_norm2d_residual` is batch norm, then the residual added, then the activation: equal
/// to the three ops one after the other (bit for bit on the host backends, where the same
/// operations run in the same order), training and eval, with and without an activation; the
/// running statistics are updated as by plain batch norm.
fn residual_fused_equals_batch_norm_add_then_activation(dev: &Device) -> TestResult {
    let case = BnCase::random([3, 4, 5, 6], 0.1, 1.0, 41)?;
    let residual = Tensor::randn(&[3, 4, 5, 6], &mut SeededRng::new(42))?;
    for act in [None, Some(Activation::Relu), Some(Activation::Tanh)] {
        for training in [true, false] {
            let spec = BatchNorm2dSpec {
                training,
                activation: act,
                ..BatchNorm2dSpec::default()
            };
            let plain = BatchNorm2dSpec {
                activation: None,
                ..spec
            };
            let (x, w, b, r) = (
                dev.upload(&case.x)?,
                dev.upload(&case.w)?,
                dev.upload(&case.b)?,
                dev.upload(&residual)?,
            );
            let (mut rm, mut rv) = (dev.upload(&case.rm)?, dev.upload(&case.rv)?);
            let fused = dev.batch_norm2d_residual(&x, &w, &b, &mut rm, &mut rv, &r, &spec)?;
            let (mut rm2, mut rv2) = (dev.upload(&case.rm)?, dev.upload(&case.rv)?);
            let parts = dev.batch_norm2d(&x, &w, &b, &mut rm2, &mut rv2, &plain)?;
            let mut expected = dev.add(&parts.output, &r)?;
            if let Some(a) = act {
                expected = dev.activation(&expected, a)?;
            }
            let what = format!("{act:?}, training {training}");
            let (got, want) = (fused.output.to_host()?, expected.to_host()?);
            if dev.is_gpu() {
                for (g, e) in got.data().iter().zip(want.data()) {
                    assert!(
                        (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "{what}: {g} vs {e}"
                    );
                }
            } else {
                assert_eq!(got.data(), want.data(), "y, {what}");
            }
            assert_eq!(
                rv.to_host()?.data(),
                rv2.to_host()?.data(),
                "running_var, {what}"
            );
            // The saved state feeds the plain backward (the activation's derivative is the
            // caller's): no ReLU gate to recompute without the residual.
            assert!(fused.saved.shift.is_none(), "{what}");
        }
    }
    Ok(())
}
test_device!(residual_fused_equals_batch_norm_add_then_activation);

/// A residual of another shape is an error naming the op, not a panic.
fn residual_of_another_shape_is_an_error(dev: &Device) -> TestResult {
    let case = BnCase::random([2, 3, 2, 2], 0.0, 1.0, 43)?;
    let (x, w, b) = (
        dev.upload(&case.x)?,
        dev.upload(&case.w)?,
        dev.upload(&case.b)?,
    );
    let r = dev.upload(&Tensor::zeros(&[2, 3, 2, 3])?)?;
    let (mut rm, mut rv) = (dev.upload(&case.rm)?, dev.upload(&case.rv)?);
    let spec = BatchNorm2dSpec::default();
    let err = dev
        .batch_norm2d_residual(&x, &w, &b, &mut rm, &mut rv, &r, &spec)
        .unwrap_err();
    assert!(err.to_string().contains("batch_norm2d_residual"), "{err}");
    assert!(err.to_string().contains("residual"), "{err}");
    Ok(())
}
test_device!(residual_of_another_shape_is_an_error);
