//! adaptive_avg_pool2d: the CPU and the GPU (each its own test) against the reference over
//! random shapes and output sizes, the golden cases on every device, the reference's backward
//! against finite differences (the op is linear, so central differences are exact up to
//! rounding), and its errors.

use conv_kernels::{AdaptiveAvgPool2dSpec, Device};
use fovea_test_support::cases::proptest_config;
use fovea_test_support::{TestResult, check_close, golden, test_device};
use proptest::prelude::*;
use tensor::{SeededRng, Tensor};

/// Forward and backward on `dev`, as host tensors.
fn run(
    dev: &Device,
    x: &Tensor,
    gy: &Tensor,
    spec: &AdaptiveAvgPool2dSpec,
) -> TestResult<(Tensor, Tensor)> {
    let y = dev.adaptive_avg_pool2d(&dev.upload(x)?, spec)?;
    let gx = dev.adaptive_avg_pool2d_backward(x.dims(), &dev.upload(gy)?, spec)?;
    Ok((y.to_host()?, gx.to_host()?))
}

fn matches_reference(dev: &Device, dims: [usize; 4], out: [usize; 2], seed: u64) -> TestResult {
    let mut rng = SeededRng::new(seed);
    let x = Tensor::randn(&dims, &mut rng)?;
    let gy = Tensor::randn(&[dims[0], dims[1], out[0], out[1]], &mut rng)?;
    let spec = AdaptiveAvgPool2dSpec::new(out[0], out[1]);
    let (y0, gx0) = run(&Device::Reference, &x, &gy, &spec)?;
    let (y, gx) = run(dev, &x, &gy, &spec)?;
    // f32 window sums (at most 784 terms) against f64 ones.
    check_close(dev, "adaptive_avg_pool2d y", &y, &y0, 1e-5, 1e-6)?;
    check_close(dev, "adaptive_avg_pool2d grad_x", &gx, &gx0, 1e-5, 1e-6)
}

fn adaptive_avg_pool2d_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(
        n in 1usize..4, c in 1usize..6, h in 1usize..12, w in 1usize..12,
        oh in 1usize..8, ow in 1usize..8, seed in any::<u64>(),
    )| {
        matches_reference(dev, [n, c, h, w], [oh, ow], seed)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    });
}
test_device!(adaptive_avg_pool2d_matches_reference: cpu, gpu);

fn global_average_pooling_of_large_planes_matches_reference(dev: &Device) -> TestResult {
    matches_reference(dev, [3, 5, 28, 28], [1, 1], 1)?;
    matches_reference(dev, [2, 64, 7, 7], [1, 1], 2)
}
test_device!(global_average_pooling_of_large_planes_matches_reference: cpu, gpu);

/// Every golden `adaptive_avg_pool2d` case, forward and backward.
fn golden_adaptive_avg_pool2d(dev: &Device) -> TestResult {
    golden::replay(dev, "adaptive_avg_pool2d", |dev, case| -> TestResult {
        let [oh, ow] = case.param_usize2("output_size")?;
        let spec = AdaptiveAvgPool2dSpec::new(oh, ow);
        let (y, gx) = run(dev, case.tensor("x")?, case.tensor("grad_y")?, &spec)?;
        case.compare("y", &y)?;
        case.compare("grad_x", &gx)?;
        Ok(())
    })
}
test_device!(golden_adaptive_avg_pool2d);

#[test]
fn adaptive_avg_pool2d_backward_matches_finite_differences() -> TestResult {
    let dev = Device::Reference;
    let mut rng = SeededRng::new(3);
    for (hw, out) in [([5, 7], [3, 2]), ([4, 4], [1, 1]), ([3, 2], [5, 4])] {
        let x = Tensor::randn(&[2, 2, hw[0], hw[1]], &mut rng)?;
        let r = Tensor::randn(&[2, 2, out[0], out[1]], &mut rng)?;
        let spec = AdaptiveAvgPool2dSpec::new(out[0], out[1]);
        let (_, gx) = run(&dev, &x, &r, &spec)?;
        let loss = |x: &Tensor| -> TestResult<f64> {
            let y = dev.adaptive_avg_pool2d(&dev.upload(x)?, &spec)?.to_host()?;
            Ok(y.data()
                .iter()
                .zip(r.data())
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum())
        };
        for i in 0..x.numel() {
            let (mut p, mut m) = (x.clone(), x.clone());
            p.data_mut()[i] += 1e-2;
            m.data_mut()[i] -= 1e-2;
            let h = f64::from(p.data()[i]) - f64::from(m.data()[i]);
            let numeric = (loss(&p)? - loss(&m)?) / h;
            let got = f64::from(gx.data()[i]);
            assert!(
                (got - numeric).abs() <= 2e-3 + 2e-3 * numeric.abs(),
                "{hw:?}->{out:?} [{i}]: {got} vs {numeric}"
            );
        }
    }
    Ok(())
}

fn adaptive_avg_pool2d_rejects_bad_settings_and_shapes(dev: &Device) -> TestResult {
    let x = dev.upload(&Tensor::zeros(&[1, 2, 4, 4])?)?;
    let err = dev
        .adaptive_avg_pool2d(&x, &AdaptiveAvgPool2dSpec::new(0, 1))
        .unwrap_err();
    assert!(
        err.to_string().contains("output size must be positive"),
        "{err}"
    );
    let flat = dev.upload(&Tensor::zeros(&[2, 4])?)?;
    let err = dev
        .adaptive_avg_pool2d(&flat, &AdaptiveAvgPool2dSpec::GLOBAL)
        .unwrap_err();
    assert!(err.to_string().contains("rank 4"), "{err}");
    let gy = dev.upload(&Tensor::zeros(&[1, 2, 2, 2])?)?;
    let err = dev
        .adaptive_avg_pool2d_backward(&[1, 2, 4, 4], &gy, &AdaptiveAvgPool2dSpec::GLOBAL)
        .unwrap_err();
    assert!(err.to_string().contains("grad_y"), "{err}");
    Ok(())
}
test_device!(adaptive_avg_pool2d_rejects_bad_settings_and_shapes);
