//! Property tests: every op, forward and backward, on the CPU and the GPU (each its own test)
//! against the reference, over random shapes and settings (the strategies of
//! `fovea_test_support::cases`, shared with `cargo xtask test-kernels`). `PROPTEST_CASES` sets
//! the case count (32 by default; 12 for the GPU's conv properties, whose every case compiles
//! new pipelines). Tolerances are written next to each comparison.

use conv_kernels::{
    Activation, AdamTensors, Conv2dSpec, Device, DeviceTensor, MatmulSpec, Pool2dSpec, PoolKind,
    SgdTensors,
};
use fovea_test_support::against_reference::{
    activation_case_matches_reference, conv_case_matches_reference, matmul_case_matches_reference,
    pool_activation_case_matches_its_parts, pool_case_matches_reference,
};
use fovea_test_support::cases::*;
use fovea_test_support::ops::{
    adam_steps, channel_sum, conv2d, cross_entropy, elementwise, linear, pool2d, sgd_steps,
};
use fovea_test_support::{TestResult, check_close, max_abs, randn, test_device};
use proptest::prelude::*;
use tensor::{SeededRng, Tensor};

fn fail(e: Box<dyn std::error::Error + Send + Sync>) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn linear_body(dev: &Device, c: &LinearCase) -> TestResult {
    let t = c.inputs();
    let want = linear(
        &Device::Reference,
        &t.x,
        &t.w,
        t.b.as_ref(),
        &t.grad_y,
        c.act,
    )?;
    let got = linear(dev, &t.x, &t.w, t.b.as_ref(), &t.grad_y, c.act)?;
    // As matmul: f32 GEMM vs f64 dot products.
    let tol = |t: &Tensor| 1e-4 * max_abs(t).max(1.0);
    check_close(dev, "linear y", &got.y, &want.y, 1e-4, tol(&want.y))?;
    check_close(
        dev,
        "linear grad_x",
        &got.grad_x,
        &want.grad_x,
        1e-4,
        tol(&want.grad_x),
    )?;
    check_close(
        dev,
        "linear grad_w",
        &got.grad_w,
        &want.grad_w,
        1e-4,
        tol(&want.grad_w),
    )?;
    match (&got.grad_b, &want.grad_b) {
        (Some(g), Some(w)) => check_close(dev, "linear grad_b", g, w, 1e-4, tol(w))?,
        (None, None) => {}
        _ => return Err(format!("linear grad_b on one side only: {c:?}").into()),
    }
    Ok(())
}

fn cross_entropy_body(dev: &Device, c: &CrossEntropyCase) -> TestResult {
    let (logits, labels) = c.inputs();
    let want = cross_entropy(&Device::Reference, &logits, &labels)?;
    let got = cross_entropy(dev, &logits, &labels)?;
    // Loss: f32 log-sum-exp vs f64, relative 1e-5 of |loss| plus 1e-5 (loss can reach ~2e4).
    if (got.loss - want.loss).abs() > 1e-5 + 1e-5 * want.loss.abs() || !got.loss.is_finite() {
        return Err(format!(
            "loss on {}: got {}, want {}",
            dev.name(),
            got.loss,
            want.loss
        )
        .into());
    }
    if got.correct != want.correct {
        return Err(format!(
            "correct on {}: got {}, want {}",
            dev.name(),
            got.correct,
            want.correct
        )
        .into());
    }
    // Gradient entries are (p - onehot)/n with p in [0, 1]: absolute 1e-6.
    check_close(dev, "cross-entropy grad", &got.grad, &want.grad, 1e-5, 1e-6)
}

fn optimizer_body(dev: &Device, c: &OptimizerCase) -> TestResult {
    let (sgd, adam) = (c.sgd, c.adam);
    let (w, grads) = c.inputs();
    let (want, got) = match &sgd {
        Some(cfg) => (
            sgd_steps(&Device::Reference, cfg, &w, &grads)?,
            sgd_steps(dev, cfg, &w, &grads)?,
        ),
        None => (
            adam_steps(&Device::Reference, &adam, &w, &grads)?,
            adam_steps(dev, &adam, &w, &grads)?,
        ),
    };
    for (s, (g, w)) in got.iter().zip(&want).enumerate() {
        // A few f32 operations per step (Adam's division in f32 rather than f64): 1e-5.
        check_close(
            dev,
            &format!("optimizer step {s} ({sgd:?} / {adam:?})"),
            g,
            w,
            1e-5,
            1e-5,
        )?;
    }
    Ok(())
}

fn elementwise_body(dev: &Device, c: &ElementwiseCase) -> TestResult {
    let alpha = c.alpha;
    let (a, b) = c.inputs();
    let want = elementwise(&Device::Reference, &a, &b, alpha)?;
    let got = elementwise(dev, &a, &b, alpha)?;
    // One f32 operation per element: exact up to 1 ulp.
    check_close(dev, "add", &got.add, &want.add, 1e-6, 0.0)?;
    check_close(
        dev,
        "add_assign",
        &got.add_assign,
        &want.add_assign,
        1e-6,
        0.0,
    )?;
    check_close(dev, "scale", &got.scale, &want.scale, 1e-6, 0.0)?;
    check_close(dev, "scale_by", &got.scale_by, &want.scale_by, 1e-6, 0.0)?;
    check_close(dev, "fill", &got.fill, &want.fill, 0.0, 0.0)?;
    // Sum of `len` N(0,1) values in f32 lanes vs f64: |error| ≲ 1e-6 · Σ|a|.
    let bound = 1e-6 * a.data().iter().map(|v| v.abs()).sum::<f32>() + 1e-6;
    if (got.sum - want.sum).abs() > bound {
        return Err(format!("sum on {}: got {}, want {}", dev.name(), got.sum, want.sum).into());
    }
    Ok(())
}

fn channel_sum_body(dev: &Device, c: &ChannelSumCase) -> TestResult {
    // The bias gradient of conv2d (hw > 1) and linear (hw = 1) is the per-channel sum.
    let (n, hw) = (c.n, c.hw);
    let (gy, x, w) = c.inputs();
    let want = channel_sum(&Device::Reference, &gy, &x, &w)?;
    let got = channel_sum(dev, &gy, &x, &w)?;
    // Sums of n·hw N(0,1) values: absolute 1e-6 · n·hw.
    check_close(
        dev,
        "channel_sum",
        &got,
        &want,
        1e-5,
        1e-6 * (n * hw) as f32,
    )
}

// One property per op, each run on the CPU and on the GPU as its own test (comparing the
// reference with itself would prove nothing). Invalid shapes never reach the bodies: the
// strategies yield only cases the spec accepts (the rejections are tested in spec_errors).

fn conv2d_matches_reference(dev: &Device) {
    proptest!(proptest_config_compiling(dev), |(c in conv_case())| {
        conv_case_matches_reference(dev, &c).map_err(fail)?;
    });
}
test_device!(conv2d_matches_reference: cpu, gpu);

fn conv2d_single_input_channel_matches_reference(dev: &Device) {
    proptest!(proptest_config_compiling(dev), |(c in single_channel_conv_case())| {
        conv_case_matches_reference(dev, &c).map_err(fail)?;
    });
}
test_device!(conv2d_single_input_channel_matches_reference: cpu, gpu);

fn conv2d_stride_one_matches_reference(dev: &Device) {
    proptest!(proptest_config_compiling(dev), |(c in stride_one_conv_case())| {
        conv_case_matches_reference(dev, &c).map_err(fail)?;
    });
}
test_device!(conv2d_stride_one_matches_reference: cpu, gpu);

fn conv2d_strided_matches_reference(dev: &Device) {
    proptest!(proptest_config_compiling(dev), |(c in strided_conv_case())| {
        conv_case_matches_reference(dev, &c).map_err(fail)?;
    });
}
test_device!(conv2d_strided_matches_reference: cpu, gpu);

/// The convolutions of the shipped models at their real sizes (LeNet's conv2, resnet-small's
/// 3×3 convs at 28×28, 14×14 and 7×7 and its strided 3×3 and 1×1 ones, NiN's 1×1 and 5×5
/// ones), beyond the random cases' 20×20.
fn conv2d_at_the_models_shapes_matches_reference(dev: &Device) -> TestResult {
    let cases = [
        (6, 16, [14, 14], 5, 0, 1),
        (16, 16, [28, 28], 3, 1, 1),
        (32, 32, [14, 14], 3, 1, 1),
        (64, 64, [7, 7], 3, 1, 1),
        (32, 32, [28, 28], 1, 0, 1),
        (1, 32, [28, 28], 5, 2, 1),
        (16, 32, [28, 28], 3, 1, 2),
        (32, 64, [14, 14], 3, 1, 2),
        (16, 32, [28, 28], 1, 0, 2),
    ];
    for (seed, (c_in, c_out, hw, k, pad, stride)) in cases.into_iter().enumerate() {
        let case = ConvCase {
            n: 3,
            c_in,
            c_out,
            hw,
            k: [k, k],
            spec: Conv2dSpec {
                stride: [stride, stride],
                padding: [pad, pad],
                dilation: [1, 1],
                groups: 1,
            },
            bias: true,
            act: None,
            seed: seed as u64,
        };
        conv_case_matches_reference(dev, &case)?;
    }
    Ok(())
}
test_device!(conv2d_at_the_models_shapes_matches_reference: cpu, gpu);

fn pool2d_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(c in pool_case())| {
        pool_case_matches_reference(dev, &c).map_err(fail)?;
    });
}
test_device!(pool2d_matches_reference: cpu, gpu);

fn pool2d_activation_backward_matches_its_parts(dev: &Device) {
    let acts = prop_oneof![
        Just(Activation::Sigmoid),
        Just(Activation::Relu),
        Just(Activation::Tanh)
    ];
    proptest!(proptest_config(), |(c in pool_case(), act in acts)| {
        pool_activation_case_matches_its_parts(dev, &c, act).map_err(fail)?;
    });
}
test_device!(pool2d_activation_backward_matches_its_parts: reference, cpu, gpu);

/// LeNet's pooling layers at a real batch size, plain and through the activation before them:
/// rows of 28 (a multiple of 4: the GPU's kernels that take four elements at a time) and of 10.
fn lenet_pool_shapes_match_reference(dev: &Device) -> TestResult {
    for (c, act) in lenet_pool_cases(16) {
        pool_case_matches_reference(dev, &c)?;
        pool_activation_case_matches_its_parts(dev, &c, act)?;
    }
    Ok(())
}
test_device!(lenet_pool_shapes_match_reference: cpu, gpu);

/// Bad input to the fused gradient is an error naming the op, not a panic.
#[test]
fn pool2d_activation_backward_refuses_bad_input() -> TestResult {
    let dev = Device::Reference;
    let mut rng = SeededRng::new(3);
    let y = dev.upload(&randn(&[2, 3, 8, 8], &mut rng))?;
    let max = Pool2dSpec::new(PoolKind::Max, 2, 2, 0);
    let gy = dev.upload(&randn(&[2, 3, 4, 4], &mut rng))?;
    let no_argmax = dev.pool2d_activation_backward(&y, &gy, None, &max, Activation::Relu);
    let wrong_grad = dev.upload(&randn(&[2, 3, 5, 4], &mut rng))?;
    let avg = Pool2dSpec::new(PoolKind::Avg, 2, 2, 0);
    let bad_shape =
        dev.pool2d_activation_backward(&y, &wrong_grad, None, &avg, Activation::Sigmoid);
    for (what, r) in [("no argmax", no_argmax), ("grad_y shape", bad_shape)] {
        let e = r.err().ok_or_else(|| format!("{what}: accepted"))?;
        if !e.to_string().contains("pool2d_activation_backward") {
            return Err(format!("{what}: the error does not name the op: {e}").into());
        }
    }
    Ok(())
}

/// Unpadded windows (2×2 at stride 2, the CPU's row kernels; 3×3 at strides 2 and 1 and 2×3 at
/// stride (1, 3), its row-at-a-time selects) over rows of every width up to 40 (one and several
/// 16-lane steps, widths with dropped columns), with NaNs and ties: the same maxima and the same
/// winning offsets as the reference (first maximum in scan order, NaN propagates), and both means.
fn pool2d_unpadded_rows_with_nans_and_ties_match_reference(dev: &Device) -> TestResult {
    let mut rng = SeededRng::new(7);
    let windows = [
        ([2, 2], [2, 2]),
        ([3, 3], [2, 2]),
        ([3, 3], [1, 1]),
        ([2, 3], [1, 3]),
    ];
    let cases = (2..=40).flat_map(|w| windows.map(|k| (w, k)));
    for (w, (kernel, stride)) in cases.filter(|&(w, (k, _))| k[1] <= w) {
        let (n, c, h) = (2, 2, 5);
        let mut x = randn(&[n, c, h, w], &mut rng);
        for (i, v) in x.data_mut().iter_mut().enumerate() {
            match i % 7 {
                0 => *v = f32::NAN,
                3 | 4 => *v = 0.5, // equal values inside some windows
                _ => {}
            }
        }
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let spec = Pool2dSpec {
                kind,
                kernel,
                stride,
                padding: [0, 0],
            };
            let out = |i: usize| (if i == 0 { h } else { w } - kernel[i]) / stride[i] + 1;
            let gy = randn(&[n, c, out(0), out(1)], &mut rng);
            let want = pool2d(&Device::Reference, &x, &gy, &spec)?;
            let got = pool2d(dev, &x, &gy, &spec)?;
            let same = |a: &Tensor, b: &Tensor| {
                a.data().iter().zip(b.data()).all(|(p, q)| {
                    p.is_nan() && q.is_nan() || (p - q).abs() <= 1e-6 * q.abs().max(1.0)
                })
            };
            if !same(&got.y, &want.y) || got.argmax != want.argmax {
                return Err(format!(
                    "{kind:?} pool {kernel:?}/{stride:?}, width {w}, on {}: differs from the \
                     reference",
                    dev.name()
                )
                .into());
            }
            if !same(&got.grad_x, &want.grad_x) {
                let name = dev.name();
                return Err(
                    format!("{kind:?} pool {kernel:?} gradient, width {w}, on {name}").into(),
                );
            }
        }
    }
    Ok(())
}
test_device!(pool2d_unpadded_rows_with_nans_and_ties_match_reference: cpu);

fn matmul_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(c in matmul_case())| {
        matmul_case_matches_reference(dev, &c).map_err(fail)?;
    });
}
test_device!(matmul_matches_reference: cpu, gpu);

fn linear_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(c in linear_case())| {
        linear_body(dev, &c).map_err(fail)?;
    });
}
test_device!(linear_matches_reference: cpu, gpu);

fn activations_match_reference(dev: &Device) {
    proptest!(proptest_config(), |(c in activation_case())| {
        activation_case_matches_reference(dev, &c).map_err(fail)?;
    });
}
test_device!(activations_match_reference: cpu, gpu);

/// The fused activation gradient + bias sum (one kernel on a GPU) gives exactly the two ops
/// run one after the other on the same device, for conv-like (`hw > 1`) and linear-like
/// (`hw = 1`) layouts.
fn activation_backward_channel_sum_equals_the_two_ops(dev: &Device) -> TestResult {
    let mut rng = SeededRng::new(21);
    for (act, nchw) in [
        (Activation::Sigmoid, [5, 3, 49]),
        (Activation::Relu, [7, 4, 1]),
        (Activation::Tanh, [1, 70, 1]),
        (Activation::Relu, [3, 2, 10]),
    ] {
        let len: usize = nchw.iter().product();
        let y = dev.activation(&dev.upload(&randn(&[len], &mut rng))?, act)?;
        let gy = dev.upload(&randn(&[len], &mut rng))?;
        let (gx, sums) = dev.activation_backward_channel_sum(&y, &gy, act, nchw)?;
        let want_gx = dev.activation_backward(&y, &gy, act)?;
        let want_sums = dev.channel_sum(&want_gx, nchw)?;
        for (what, got, want) in [("grad", &gx, &want_gx), ("sums", &sums, &want_sums)] {
            let (got, want) = (dev.to_host(got)?, dev.to_host(want)?);
            if got.data() != want.data() {
                return Err(format!("{act:?} {nchw:?}: {what} differ on {}", dev.name()).into());
            }
        }
    }
    Ok(())
}
test_device!(activation_backward_channel_sum_equals_the_two_ops: reference, cpu, gpu);

fn cross_entropy_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(c in cross_entropy_case())| {
        cross_entropy_body(dev, &c).map_err(fail)?;
    });
}
test_device!(cross_entropy_matches_reference: cpu, gpu);

fn sgd_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(c in sgd_case())| {
        optimizer_body(dev, &c).map_err(fail)?;
    });
}
test_device!(sgd_matches_reference: cpu, gpu);

/// One parameter of a multi-tensor optimizer test: its value, its gradient and `N`
/// zero-started state buffers (SGD's momentum, Adam's two moments).
struct Slot<const N: usize> {
    param: DeviceTensor,
    grad: DeviceTensor,
    state: [DeviceTensor; N],
}

/// `steps` updates by `update` (given the step number, from 1) of random parameters and
/// gradients of `sizes` drawn from `seed`: the parameters and state buffers after them.
fn update_many<const N: usize>(
    dev: &Device,
    sizes: &[usize],
    seed: u64,
    steps: u32,
    mut update: impl FnMut(u32, &mut [Slot<N>]) -> TestResult,
) -> TestResult<Vec<Tensor>> {
    let mut rng = SeededRng::new(seed);
    let mut slots = Vec::new();
    for &n in sizes {
        let param = dev.upload(&randn(&[n], &mut rng))?;
        let grad = dev.upload(&randn(&[n], &mut rng))?;
        let state = (0..N)
            .map(|_| dev.zeros(&[n]))
            .collect::<Result<Vec<_>, _>>()?;
        let state = <[DeviceTensor; N]>::try_from(state).map_err(|_| "N state buffers")?;
        slots.push(Slot { param, grad, state });
    }
    for step in 1..=steps {
        update(step, &mut slots)?;
    }
    let mut out = Vec::new();
    for s in &slots {
        for t in std::iter::once(&s.param).chain(&s.state) {
            out.push(dev.to_host(t)?);
        }
    }
    Ok(out)
}

/// Checks that updating tensors of `sizes` one at a time (`one`) and all at once (`all`),
/// `steps` times each, leaves the same bits in every parameter and state buffer; `what`
/// names the settings in the error.
fn many_tensors_agree<const N: usize>(
    dev: &Device,
    sizes: &[usize],
    seed: u64,
    steps: u32,
    what: &str,
    one: impl FnMut(u32, &mut [Slot<N>]) -> TestResult,
    all: impl FnMut(u32, &mut [Slot<N>]) -> TestResult,
) -> TestResult {
    let one = update_many(dev, sizes, seed, steps, one)?;
    let all = update_many(dev, sizes, seed, steps, all)?;
    for (i, (a, b)) in one.iter().zip(&all).enumerate() {
        if a.data() != b.data() {
            let (t, buf) = (i / (N + 1), i % (N + 1));
            return Err(format!(
                "tensor {t} (buffer {buf}: 0 is the parameter) of {sizes:?} differs after \
                 {steps} steps ({what})"
            )
            .into());
        }
    }
    Ok(())
}

/// Tensor sizes for the multi-tensor tests: 1 to 23 tensors (a GPU launches one kernel per
/// ten SGD or seven Adam tensors), full and partial groups included.
fn many_sizes() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..=700, 1..=23)
}

/// `sgd_steps` over 1 to 23 tensors equals one `sgd_step` per tensor on the same device, bit
/// for bit, momentum buffers included (two steps).
fn sgd_steps_over_many_tensors_equal_one_at_a_time(dev: &Device) {
    proptest!(proptest_config(), |(c in sgd_case(), sizes in many_sizes())| {
        let cfg = c.sgd.expect("an SGD case");
        let one = |_, slots: &mut [Slot<1>]| -> TestResult {
            for s in slots {
                let [m] = &mut s.state;
                let m = (cfg.momentum > 0.0).then_some(m);
                dev.sgd_step(&cfg, &mut s.param, &s.grad, m)?;
            }
            Ok(())
        };
        let all = |_, slots: &mut [Slot<1>]| -> TestResult {
            let mut steps: Vec<SgdTensors<'_>> = slots
                .iter_mut()
                .map(|s| {
                    let [m] = &mut s.state;
                    SgdTensors {
                        param: &mut s.param,
                        grad: &s.grad,
                        momentum: Some(m),
                    }
                })
                .collect();
            Ok(dev.sgd_steps(&cfg, &mut steps)?)
        };
        many_tensors_agree(dev, &sizes, c.seed, 2, &format!("{cfg:?}"), one, all)
            .map_err(fail)?;
    });
}
test_device!(sgd_steps_over_many_tensors_equal_one_at_a_time: cpu, gpu);

/// `adam_steps` over 1 to 23 tensors equals one `adam_step` per tensor on the same device,
/// bit for bit, both moments included (two or three steps, so the bias corrections change).
fn adam_steps_over_many_tensors_equal_one_at_a_time(dev: &Device) {
    proptest!(proptest_config(), |(c in adam_case(), sizes in many_sizes(), steps in 2u32..=3)| {
        let cfg = c.adam;
        let one = |step, slots: &mut [Slot<2>]| -> TestResult {
            for s in slots {
                let [m, v] = &mut s.state;
                dev.adam_step(&cfg, step, &mut s.param, &s.grad, m, v)?;
            }
            Ok(())
        };
        let all = |step, slots: &mut [Slot<2>]| -> TestResult {
            let mut tensors: Vec<AdamTensors<'_>> = slots
                .iter_mut()
                .map(|s| {
                    let [m, v] = &mut s.state;
                    AdamTensors {
                        param: &mut s.param,
                        grad: &s.grad,
                        m,
                        v,
                    }
                })
                .collect();
            Ok(dev.adam_steps(&cfg, step, &mut tensors)?)
        };
        many_tensors_agree(dev, &sizes, c.seed, steps, &format!("{cfg:?}"), one, all)
            .map_err(fail)?;
    });
}
test_device!(adam_steps_over_many_tensors_equal_one_at_a_time: cpu, gpu);

fn adam_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(c in adam_case())| {
        optimizer_body(dev, &c).map_err(fail)?;
    });
}
test_device!(adam_matches_reference: cpu, gpu);

fn elementwise_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(c in elementwise_case())| {
        elementwise_body(dev, &c).map_err(fail)?;
    });
}
test_device!(elementwise_matches_reference: cpu, gpu);

fn channel_sum_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(c in channel_sum_case())| {
        channel_sum_body(dev, &c).map_err(fail)?;
    });
}
test_device!(channel_sum_matches_reference: cpu, gpu);

/// LeNet's own shapes at a real batch size (bigger than the random cases), once.
fn lenet_shapes_match_reference(dev: &Device) -> TestResult {
    for (c_in, c_out, hw, pad) in [(1, 6, 28, 2), (6, 16, 14, 0)] {
        let spec = Conv2dSpec::new(1, pad);
        let mut rng = SeededRng::new(7);
        let x = randn(&[16, c_in, hw, hw], &mut rng);
        let w = randn(&[c_out, c_in, 5, 5], &mut rng);
        let b = randn(&[c_out], &mut rng);
        let o = hw + 2 * pad - 4;
        let gy = randn(&[16, c_out, o, o], &mut rng);
        // With the sigmoid LeNet fuses into both layers.
        let act = Some(Activation::Sigmoid);
        let want = conv2d(&Device::Reference, &x, &w, Some(&b), &gy, &spec, act)?;
        let got = conv2d(dev, &x, &w, Some(&b), &gy, &spec, act)?;
        // As in the property test, with grad_w summing 16·o² products per element.
        let tol = |t: &Tensor| 1e-4 * max_abs(t).max(1.0);
        check_close(dev, "lenet conv y", &got.y, &want.y, 1e-4, tol(&want.y))?;
        check_close(
            dev,
            "lenet conv grad_x",
            &got.grad_x,
            &want.grad_x,
            1e-4,
            tol(&want.grad_x),
        )?;
        check_close(
            dev,
            "lenet conv grad_w",
            &got.grad_w,
            &want.grad_w,
            1e-4,
            tol(&want.grad_w),
        )?;
    }
    Ok(())
}
test_device!(lenet_shapes_match_reference: cpu, gpu);

/// Products as big as LeNet's fc1 (256 × 400 × 120: past the size where the GPU's flat matmul
/// switches to 8 × 16 blocks), with every transpose and with edges not a multiple of 16, and
/// fc1 as a linear layer (its backward is one launch of two products on a GPU).
fn lenet_fc_shapes_match_reference(dev: &Device) -> TestResult {
    for (i, mkn) in [(256, 400, 120), (130, 300, 131)].into_iter().enumerate() {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let c = MatmulCase {
                mkn,
                spec: MatmulSpec { trans_a, trans_b },
                bias: !trans_a,
                act: trans_b.then_some(Activation::Sigmoid),
                seed: i as u64,
            };
            matmul_case_matches_reference(dev, &c)?;
        }
    }
    let fc1 = LinearCase {
        nio: (256, 400, 120),
        bias: true,
        act: Some(Activation::Sigmoid),
        seed: 3,
    };
    linear_body(dev, &fc1)
}
test_device!(lenet_fc_shapes_match_reference: cpu, gpu);

/// The same inputs give bit-identical results on repeated runs (no racy reductions).
fn results_are_deterministic(dev: &Device) -> TestResult {
    let mut rng = SeededRng::new(3);
    let x = randn(&[64, 6, 14, 14], &mut rng);
    let w = randn(&[16, 6, 5, 5], &mut rng);
    let gy = randn(&[64, 16, 10, 10], &mut rng);
    let spec = Conv2dSpec::default();
    let a = conv2d(dev, &x, &w, None, &gy, &spec, None)?;
    let b = conv2d(dev, &x, &w, None, &gy, &spec, None)?;
    for (what, p, q) in [
        ("y", &a.y, &b.y),
        ("grad_x", &a.grad_x, &b.grad_x),
        ("grad_w", &a.grad_w, &b.grad_w),
    ] {
        if p.data() != q.data() {
            return Err(format!("conv2d {what} differs between two runs on {}", dev.name()).into());
        }
    }
    let big = randn(&[300_001], &mut rng);
    let s1 = dev.read_scalar(&dev.sum(&dev.upload(&big)?)?)?;
    let s2 = dev.read_scalar(&dev.sum(&dev.upload(&big)?)?)?;
    if s1.to_bits() != s2.to_bits() {
        return Err(format!("sum differs between two runs on {}", dev.name()).into());
    }
    Ok(())
}
test_device!(results_are_deterministic: cpu, gpu);
