//! dropout: the same seed gives the reference's mask on the CPU and the GPU (each its own
//! test), the mask keeps about `1 - p`, backward with the same key is the same mask, a GPU call
//! sends nothing from the host, and bad probabilities are refused.

use conv_kernels::{Device, DropoutSpec, GpuContext, GpuOptions};
use fovea_test_support::cases::proptest_config;
use fovea_test_support::{TestResult, gpu_under_test, test_device};
use proptest::prelude::*;
use std::sync::Arc;
use tensor::{SeededRng, Tensor};

fn same_mask(dev: &Device, len: usize, p: f32, seed: u64) -> TestResult {
    let x = Tensor::randn(&[len], &mut SeededRng::new(seed ^ 1))?;
    let spec = DropoutSpec { p, seed };
    let r = Device::Reference;
    let want = r.dropout(&r.upload(&x)?, &spec)?.to_host()?;
    let got = dev.dropout(&dev.upload(&x)?, &spec)?.to_host()?;
    // Integer arithmetic and one multiply: bit for bit.
    assert_eq!(got.data(), want.data(), "dropout mask");
    Ok(())
}

fn dropout_mask_is_the_reference_mask(dev: &Device) {
    proptest!(proptest_config(), |(len in 0usize..70_000, p in 0f32..=1.0, seed in any::<u64>())| {
        same_mask(dev, len, p, seed).map_err(|e| TestCaseError::fail(e.to_string()))?;
    });
}
test_device!(dropout_mask_is_the_reference_mask: cpu, gpu);

fn dropout_keeps_one_minus_p_and_scales_them(dev: &Device) -> TestResult {
    let ones = dev.upload(&Tensor::full(&[200_000], 1.0)?)?;
    let y = dev
        .dropout(&ones, &DropoutSpec { p: 0.25, seed: 9 })?
        .to_host()?;
    let kept = y.data().iter().filter(|&&v| v != 0.0).count() as f64 / 2e5;
    assert!((kept - 0.75).abs() < 0.005, "kept {kept}");
    assert!(
        y.data()
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6)
    );
    let all = dev
        .dropout(&ones, &DropoutSpec { p: 1.0, seed: 9 })?
        .to_host()?;
    assert!(all.data().iter().all(|&v| v == 0.0));
    let none = dev
        .dropout(&ones, &DropoutSpec { p: 0.0, seed: 9 })?
        .to_host()?;
    assert!(none.data().iter().all(|&v| v == 1.0));
    Ok(())
}
test_device!(dropout_keeps_one_minus_p_and_scales_them);

fn dropout_backward_uses_the_forward_mask(dev: &Device) -> TestResult {
    let mut rng = SeededRng::new(5);
    let (x, gy) = (
        Tensor::randn(&[1000], &mut rng)?,
        Tensor::randn(&[1000], &mut rng)?,
    );
    let spec = DropoutSpec { p: 0.5, seed: 77 };
    let y = dev.dropout(&dev.upload(&x)?, &spec)?.to_host()?;
    let gx = dev.dropout(&dev.upload(&gy)?, &spec)?.to_host()?;
    for i in 0..1000 {
        assert_eq!(y.data()[i] == 0.0, gx.data()[i] == 0.0, "element {i}");
    }
    let other = DropoutSpec { seed: 78, ..spec };
    let z = dev.dropout(&dev.upload(&x)?, &other)?.to_host()?;
    assert_ne!(z.data(), y.data(), "another seed, another mask");
    Ok(())
}
test_device!(dropout_backward_uses_the_forward_mask);

#[test]
fn dropout_on_the_gpu_sends_no_mask_from_the_host() -> TestResult {
    if gpu_under_test().is_none() {
        return Ok(());
    }
    // A context of its own: the shared one's counters also see this binary's other tests.
    let opts = GpuOptions {
        allow_software: true,
        ..GpuOptions::default()
    };
    let dev = Device::Gpu(Arc::new(GpuContext::new(&opts)?));
    let x = dev.upload(&Tensor::full(&[4096], 1.0)?)?;
    let before = dev.transfer_stats();
    let spec = DropoutSpec { p: 0.5, seed: 3 };
    let y = dev.dropout(&x, &spec)?;
    let gx = dev.dropout(&y, &spec)?;
    dev.synchronize()?;
    let after = dev.transfer_stats();
    assert_eq!(
        after.uploads, before.uploads,
        "forward and backward upload nothing"
    );
    assert_eq!(after.downloads, before.downloads);
    drop(gx);
    Ok(())
}

fn dropout_rejects_a_probability_outside_0_1(dev: &Device) -> TestResult {
    let x = dev.upload(&Tensor::zeros(&[4])?)?;
    for p in [-0.1, 1.5, f32::NAN] {
        let err = dev.dropout(&x, &DropoutSpec { p, seed: 0 }).unwrap_err();
        assert!(err.to_string().contains("probability"), "{err}");
    }
    Ok(())
}
test_device!(dropout_rejects_a_probability_outside_0_1);
