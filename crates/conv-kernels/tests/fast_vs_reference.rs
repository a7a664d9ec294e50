//! Property tests: every op, forward and backward, on every device under test against the
//! reference, over random shapes and settings. `PROPTEST_CASES` sets the case count (32 by
//! default). Tolerances are written next to each comparison.

mod common;

use common::*;
use conv_kernels::{
    Activation, AdamConfig, Conv2dSpec, Device, MatmulSpec, Pool2dSpec, PoolKind, SgdConfig,
};
use proptest::prelude::*;
use tensor::{SeededRng, Shape, Tensor};

fn fail(e: Box<dyn std::error::Error + Send + Sync>) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Runs `body` on every device under test.
fn on_devices(body: impl Fn(&Device) -> TestResult) -> Result<(), TestCaseError> {
    for dev in devices_under_test() {
        body(&dev).map_err(fail)?;
    }
    Ok(())
}

#[derive(Clone, Debug)]
struct ConvCase {
    n: usize,
    c_in: usize,
    c_out: usize,
    hw: [usize; 2],
    k: [usize; 2],
    spec: Conv2dSpec,
    bias: bool,
    seed: u64,
}

fn common_divisors(a: usize, b: usize) -> Vec<usize> {
    (1..=a.min(b))
        .filter(|&d| a.is_multiple_of(d) && b.is_multiple_of(d))
        .collect()
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=8, 1usize..=8, 1usize..=8, any::<usize>()),
        ([1usize..=20, 1usize..=20], [1usize..=5, 1usize..=5]),
        (
            [1usize..=3, 1usize..=3],
            [0usize..=2, 0usize..=2],
            [1usize..=2, 1usize..=2],
        ),
        (any::<bool>(), any::<u64>()),
    )
        .prop_map(
            |((n, c_in, c_out, gi), (hw, k), (stride, padding, dilation), (bias, seed))| {
                let divs = common_divisors(c_in, c_out);
                let groups = divs[gi % divs.len()];
                ConvCase {
                    n,
                    c_in,
                    c_out,
                    hw,
                    k,
                    spec: Conv2dSpec {
                        stride,
                        padding,
                        dilation,
                        groups,
                    },
                    bias,
                    seed,
                }
            },
        )
}

/// Groups of one input channel at stride 1 (LeNet's first layer is one), over the edges of the
/// CPU's direct kernel: output rows up to and just past 32 columns, kernels up to 9 wide.
fn single_channel_conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=6, 1usize..=4, 1usize..=3),
        ([1usize..=36, 1usize..=38], [1usize..=9, 1usize..=9]),
        [0usize..=3, 0usize..=3],
        (any::<bool>(), any::<u64>()),
    )
        .prop_map(
            |((n, c_in, mult), (hw, k), padding, (bias, seed))| ConvCase {
                n,
                c_in,
                c_out: c_in * mult,
                hw,
                k,
                spec: Conv2dSpec {
                    stride: [1, 1],
                    padding,
                    dilation: [1, 1],
                    groups: c_in,
                },
                bias,
                seed,
            },
        )
}

fn conv_body(dev: &Device, c: &ConvCase) -> TestResult {
    let x_shape = Shape::new(&[c.n, c.c_in, c.hw[0], c.hw[1]])?;
    let w_dims = [c.c_out, c.c_in / c.spec.groups, c.k[0], c.k[1]];
    let g = c.spec.check(&x_shape, &Shape::new(&w_dims)?, None)?;
    let mut rng = SeededRng::new(c.seed);
    let x = randn(x_shape.dims(), &mut rng);
    let w = randn(&w_dims, &mut rng);
    let b = c.bias.then(|| randn(&[c.c_out], &mut rng));
    let gy = randn(&g.output_dims(), &mut rng);
    let want = conv2d(&Device::Reference, &x, &w, b.as_ref(), &gy, &c.spec)?;
    let got = conv2d(dev, &x, &w, b.as_ref(), &gy, &c.spec)?;
    // f32 GEMM sums (up to 8·25 products for y/grad_x, up to 8·400 for grad_w) against f64
    // sums: rtol 1e-4 plus an absolute 1e-4 of the output's largest magnitude (cancellation).
    let tol = |t: &Tensor| 1e-4 * max_abs(t).max(1.0);
    check_close(dev, "conv2d y", &got.y, &want.y, 1e-4, tol(&want.y))?;
    check_close(
        dev,
        "conv2d grad_x",
        &got.grad_x,
        &want.grad_x,
        1e-4,
        tol(&want.grad_x),
    )?;
    check_close(
        dev,
        "conv2d grad_w",
        &got.grad_w,
        &want.grad_w,
        1e-4,
        tol(&want.grad_w),
    )?;
    if let (Some(gb), Some(wb)) = (&got.grad_b, &want.grad_b) {
        // Sums of up to 8·400 values: same tolerance.
        check_close(dev, "conv2d grad_b", gb, wb, 1e-4, tol(wb))?;
    }
    Ok(())
}

#[derive(Clone, Debug)]
struct PoolCase {
    kind: PoolKind,
    n: usize,
    c: usize,
    hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    pad_frac: [usize; 2],
    seed: u64,
}

fn pool_case() -> impl Strategy<Value = PoolCase> {
    (
        prop_oneof![Just(PoolKind::Max), Just(PoolKind::Avg)],
        (1usize..=8, 1usize..=8),
        [1usize..=20, 1usize..=20],
        [1usize..=5, 1usize..=5],
        [1usize..=3, 1usize..=3],
        [0usize..=2, 0usize..=2],
        any::<u64>(),
    )
        .prop_map(
            |(kind, (n, c), hw, kernel, stride, pad_frac, seed)| PoolCase {
                kind,
                n,
                c,
                hw,
                kernel,
                stride,
                pad_frac,
                seed,
            },
        )
}

fn pool_body(dev: &Device, c: &PoolCase) -> TestResult {
    // Padding 0..=2, kept at most half the kernel (PyTorch's rule, checked by the spec).
    let padding = [0, 1].map(|a| c.pad_frac[a].min(c.kernel[a] / 2));
    let spec = Pool2dSpec {
        kind: c.kind,
        kernel: c.kernel,
        stride: c.stride,
        padding,
    };
    let x_shape = Shape::new(&[c.n, c.c, c.hw[0], c.hw[1]])?;
    let g = spec.check(&x_shape)?;
    let mut rng = SeededRng::new(c.seed);
    let x = randn(x_shape.dims(), &mut rng);
    let gy = randn(&g.output_dims(), &mut rng);
    let want = pool2d(&Device::Reference, &x, &gy, &spec)?;
    let got = pool2d(dev, &x, &gy, &spec)?;
    // Max: the same element wins (exact); avg: up to 25 f32 adds vs f64 (rtol 1e-5, atol 1e-6).
    check_close(dev, "pool2d y", &got.y, &want.y, 1e-5, 1e-6)?;
    if got.argmax != want.argmax {
        return Err(format!("pool2d argmax on {} differs from the reference", dev.name()).into());
    }
    // Overlapping windows add up to 25 contributions per input element.
    check_close(dev, "pool2d grad_x", &got.grad_x, &want.grad_x, 1e-5, 1e-6)?;
    Ok(())
}

fn matmul_body(
    dev: &Device,
    (m, k, n): (usize, usize, usize),
    spec: MatmulSpec,
    bias: bool,
    seed: u64,
) -> TestResult {
    let mut rng = SeededRng::new(seed);
    let a = randn(&if spec.trans_a { [k, m] } else { [m, k] }, &mut rng);
    let b = randn(&if spec.trans_b { [n, k] } else { [k, n] }, &mut rng);
    let bias = bias.then(|| randn(&[n], &mut rng));
    let want = matmul(&Device::Reference, &a, &b, bias.as_ref(), &spec)?;
    let got = matmul(dev, &a, &b, bias.as_ref(), &spec)?;
    // k ≤ 140 f32 products of N(0,1) values against an f64 sum: ~sqrt(k)·1e-7 typical error.
    check_close(
        dev,
        "matmul",
        &got,
        &want,
        1e-4,
        1e-4 * max_abs(&want).max(1.0),
    )
}

fn linear_body(
    dev: &Device,
    (n, i, o): (usize, usize, usize),
    bias: bool,
    seed: u64,
) -> TestResult {
    let mut rng = SeededRng::new(seed);
    let x = randn(&[n, i], &mut rng);
    let w = randn(&[o, i], &mut rng);
    let b = bias.then(|| randn(&[o], &mut rng));
    let gy = randn(&[n, o], &mut rng);
    let want = linear(&Device::Reference, &x, &w, b.as_ref(), &gy)?;
    let got = linear(dev, &x, &w, b.as_ref(), &gy)?;
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
    if let (Some(g), Some(w)) = (&got.grad_b, &want.grad_b) {
        check_close(dev, "linear grad_b", g, w, 1e-4, tol(w))?;
    }
    Ok(())
}

fn activation_body(dev: &Device, act: Activation, len: usize, scale: f32, seed: u64) -> TestResult {
    let mut rng = SeededRng::new(seed);
    let mut x = uniform(&[len], -scale, scale, &mut rng);
    // Always include the extremes and zero.
    for (i, v) in [1e4f32, -1e4, 0.0, 88.5, -88.5].into_iter().enumerate() {
        if i < len {
            x.data_mut()[i] = v;
        }
    }
    let gy = randn(&[len], &mut rng);
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

fn cross_entropy_body(dev: &Device, n: usize, classes: usize, scale: f32, seed: u64) -> TestResult {
    let mut rng = SeededRng::new(seed);
    let logits = uniform(&[n, classes], -scale, scale, &mut rng);
    let labels: Vec<u32> = (0..n).map(|_| rng.below(classes as u64) as u32).collect();
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

fn optimizer_body(
    dev: &Device,
    sgd: Option<SgdConfig>,
    adam: AdamConfig,
    steps: usize,
    seed: u64,
) -> TestResult {
    let mut rng = SeededRng::new(seed);
    let dims = [3, 1 + rng.below(40) as usize];
    let w = randn(&dims, &mut rng);
    let grads: Vec<Tensor> = (0..steps).map(|_| randn(&dims, &mut rng)).collect();
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

fn elementwise_body(dev: &Device, len: usize, alpha: f32, seed: u64) -> TestResult {
    let mut rng = SeededRng::new(seed);
    let a = randn(&[len], &mut rng);
    let b = randn(&[len], &mut rng);
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

fn channel_sum_body(dev: &Device, n: usize, c: usize, hw: usize, seed: u64) -> TestResult {
    // The bias gradient of conv2d (hw > 1) and linear (hw = 1) is the per-channel sum.
    let mut rng = SeededRng::new(seed);
    let gy = randn(&[n, c, hw, 1], &mut rng);
    let x = randn(&[n, 1, hw, 1], &mut rng);
    let w = randn(&[c, 1, 1, 1], &mut rng);
    let spec = Conv2dSpec::default();
    let run = |d: &Device| -> TestResult<Tensor> {
        let g = d.conv2d_backward(
            &d.upload(&x)?,
            &d.upload(&w)?,
            &d.upload(&gy)?,
            &spec,
            conv_kernels::GradsWanted {
                input: false,
                weight: true,
                bias: true,
            },
        )?;
        Ok(d.to_host(&g.bias.ok_or("no bias gradient")?)?)
    };
    let (want, got) = (run(&Device::Reference)?, run(dev)?);
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

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn conv2d_matches_reference(c in conv_case()) {
        let x = Shape::new(&[c.n, c.c_in, c.hw[0], c.hw[1]]).unwrap();
        let w = Shape::new(&[c.c_out, c.c_in / c.spec.groups, c.k[0], c.k[1]]).unwrap();
        // Kernels larger than the padded input are rejected by the spec (tested elsewhere).
        prop_assume!(c.spec.check(&x, &w, None).is_ok());
        on_devices(|d| conv_body(d, &c))?;
    }

    #[test]
    fn conv2d_single_input_channel_matches_reference(c in single_channel_conv_case()) {
        let x = Shape::new(&[c.n, c.c_in, c.hw[0], c.hw[1]]).unwrap();
        let w = Shape::new(&[c.c_out, 1, c.k[0], c.k[1]]).unwrap();
        prop_assume!(c.spec.check(&x, &w, None).is_ok());
        on_devices(|d| conv_body(d, &c))?;
    }

    #[test]
    fn pool2d_matches_reference(c in pool_case()) {
        let padding = [0, 1].map(|a| c.pad_frac[a].min(c.kernel[a] / 2));
        let spec = Pool2dSpec { kind: c.kind, kernel: c.kernel, stride: c.stride, padding };
        prop_assume!(spec.check(&Shape::new(&[c.n, c.c, c.hw[0], c.hw[1]]).unwrap()).is_ok());
        on_devices(|d| pool_body(d, &c))?;
    }

    #[test]
    fn matmul_matches_reference(
        m in 1usize..=140, k in 1usize..=140, n in 1usize..=140,
        trans_a in any::<bool>(), trans_b in any::<bool>(), bias in any::<bool>(), seed in any::<u64>(),
    ) {
        on_devices(|d| matmul_body(d, (m, k, n), MatmulSpec { trans_a, trans_b }, bias, seed))?;
    }

    #[test]
    fn linear_matches_reference(
        n in 1usize..=40, i in 1usize..=100, o in 1usize..=40, bias in any::<bool>(), seed in any::<u64>(),
    ) {
        on_devices(|d| linear_body(d, (n, i, o), bias, seed))?;
    }

    #[test]
    fn activations_match_reference(
        act in prop_oneof![Just(Activation::Sigmoid), Just(Activation::Relu), Just(Activation::Tanh)],
        len in 1usize..=70_000,
        scale in prop_oneof![Just(1.0f32), Just(10.0), Just(100.0), Just(1e4)],
        seed in any::<u64>(),
    ) {
        on_devices(|d| activation_body(d, act, len, scale, seed))?;
    }

    #[test]
    fn cross_entropy_matches_reference(
        n in 1usize..=40, classes in 1usize..=12,
        scale in prop_oneof![Just(1.0f32), Just(30.0), Just(1e4)], seed in any::<u64>(),
    ) {
        on_devices(|d| cross_entropy_body(d, n, classes, scale, seed))?;
    }

    #[test]
    fn sgd_matches_reference(
        lr in 0.0f32..1.0, momentum in prop_oneof![Just(0.0f32), 0.0f32..0.99],
        weight_decay in prop_oneof![Just(0.0f32), 0.0f32..0.1], nesterov in any::<bool>(),
        steps in 1usize..=4, seed in any::<u64>(),
    ) {
        let cfg = SgdConfig { lr, momentum, weight_decay, nesterov: nesterov && momentum > 0.0 };
        on_devices(|d| optimizer_body(d, Some(cfg), AdamConfig::default(), steps, seed))?;
    }

    #[test]
    fn adam_matches_reference(
        lr in 1e-4f32..0.1, beta1 in 0.0f32..0.99, beta2 in 0.9f32..0.9999,
        eps in prop_oneof![Just(1e-8f32), Just(1e-6)], weight_decay in prop_oneof![Just(0.0f32), 0.0f32..0.1],
        steps in 1usize..=5, seed in any::<u64>(),
    ) {
        let cfg = AdamConfig { lr, beta1, beta2, eps, weight_decay };
        on_devices(|d| optimizer_body(d, None, cfg, steps, seed))?;
    }

    #[test]
    fn elementwise_matches_reference(len in 1usize..=100_000, alpha in -3.0f32..3.0, seed in any::<u64>()) {
        on_devices(|d| elementwise_body(d, len, alpha, seed))?;
    }

    #[test]
    fn channel_sum_matches_reference(n in 1usize..=64, c in 1usize..=16, hw in 1usize..=900, seed in any::<u64>()) {
        on_devices(|d| channel_sum_body(d, n, c, hw, seed))?;
    }
}

/// LeNet's own shapes at a real batch size (bigger than the random cases), once.
#[test]
fn lenet_shapes_match_reference() -> TestResult {
    for dev in devices_under_test() {
        for (c_in, c_out, hw, pad) in [(1, 6, 28, 2), (6, 16, 14, 0)] {
            let spec = Conv2dSpec::new(1, pad);
            let mut rng = SeededRng::new(7);
            let x = randn(&[16, c_in, hw, hw], &mut rng);
            let w = randn(&[c_out, c_in, 5, 5], &mut rng);
            let b = randn(&[c_out], &mut rng);
            let o = hw + 2 * pad - 4;
            let gy = randn(&[16, c_out, o, o], &mut rng);
            let want = conv2d(&Device::Reference, &x, &w, Some(&b), &gy, &spec)?;
            let got = conv2d(&dev, &x, &w, Some(&b), &gy, &spec)?;
            // As in the property test, with grad_w summing 16·o² products per element.
            let tol = |t: &Tensor| 1e-4 * max_abs(t).max(1.0);
            check_close(&dev, "lenet conv y", &got.y, &want.y, 1e-4, tol(&want.y))?;
            check_close(
                &dev,
                "lenet conv grad_x",
                &got.grad_x,
                &want.grad_x,
                1e-4,
                tol(&want.grad_x),
            )?;
            check_close(
                &dev,
                "lenet conv grad_w",
                &got.grad_w,
                &want.grad_w,
                1e-4,
                tol(&want.grad_w),
            )?;
        }
    }
    Ok(())
}

/// The same inputs give bit-identical results on repeated runs (no racy reductions).
#[test]
fn results_are_deterministic() -> TestResult {
    for dev in devices_under_test() {
        let mut rng = SeededRng::new(3);
        let x = randn(&[64, 6, 14, 14], &mut rng);
        let w = randn(&[16, 6, 5, 5], &mut rng);
        let gy = randn(&[64, 16, 10, 10], &mut rng);
        let spec = Conv2dSpec::default();
        let a = conv2d(&dev, &x, &w, None, &gy, &spec)?;
        let b = conv2d(&dev, &x, &w, None, &gy, &spec)?;
        for (what, p, q) in [
            ("y", &a.y, &b.y),
            ("grad_x", &a.grad_x, &b.grad_x),
            ("grad_w", &a.grad_w, &b.grad_w),
        ] {
            if p.data() != q.data() {
                return Err(
                    format!("conv2d {what} differs between two runs on {}", dev.name()).into(),
                );
            }
        }
        let big = randn(&[300_001], &mut rng);
        let s1 = dev.read_scalar(&dev.sum(&dev.upload(&big)?)?)?;
        let s2 = dev.read_scalar(&dev.sum(&dev.upload(&big)?)?)?;
        if s1.to_bits() != s2.to_bits() {
            return Err(format!("sum differs between two runs on {}", dev.name()).into());
        }
    }
    Ok(())
}
