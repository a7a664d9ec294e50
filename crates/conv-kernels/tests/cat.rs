//! cat: the CPU and the GPU (each its own test) against the reference over random shapes, axes
//! and input counts (forward and the slicing backward, which must round-trip exactly), the
//! golden cases on every device, and its errors.

use conv_kernels::{CatSpec, Device};
use fovea_test_support::cases::proptest_config;
use fovea_test_support::{TestResult, golden, test_device};
use proptest::prelude::*;
use tensor::{SeededRng, Tensor};

/// Joins random tensors on `dev`: exactly the reference's values, and backward gives back
/// exactly the inputs.
fn round_trip(dev: &Device, dims: &[usize], dim: usize, sizes: &[usize], seed: u64) -> TestResult {
    let mut rng = SeededRng::new(seed);
    let xs: Vec<Tensor> = sizes
        .iter()
        .map(|&s| {
            let mut d = dims.to_vec();
            d[dim] = s;
            Tensor::randn(&d, &mut rng)
        })
        .collect::<Result<_, _>>()?;
    let spec = CatSpec { dim };
    let join = |dev: &Device| -> TestResult<_> {
        let up: Vec<_> = xs.iter().map(|x| dev.upload(x)).collect::<Result<_, _>>()?;
        Ok(dev.cat(&up.iter().collect::<Vec<_>>(), &spec)?)
    };
    let want = join(&Device::Reference)?.to_host()?;
    let y = join(dev)?;
    // Copies only: exactly the reference's values.
    assert_eq!(y.to_host()?.data(), want.data(), "cat");
    assert_eq!(want.dims()[dim], sizes.iter().sum::<usize>());
    let input_dims: Vec<&[usize]> = xs.iter().map(|x| x.dims()).collect();
    let grads = dev.cat_backward(&input_dims, &y, &spec)?;
    for (g, x) in grads.iter().zip(&xs) {
        assert_eq!(g.to_host()?.data(), x.data(), "cat_backward");
    }
    Ok(())
}

fn cat_matches_reference_and_backward_slices_it(dev: &Device) {
    proptest!(proptest_config(), |(
        dims in prop::collection::vec(1usize..5, 1..5),
        dim_frac in 0usize..8,
        sizes in prop::collection::vec(0usize..4, 1..4),
        seed in any::<u64>(),
    )| {
        let dim = dim_frac % dims.len();
        round_trip(dev, &dims, dim, &sizes, seed).map_err(|e| TestCaseError::fail(e.to_string()))?;
    });
}
test_device!(cat_matches_reference_and_backward_slices_it: cpu, gpu);

fn cat_of_channels_of_a_residual_sized_batch(dev: &Device) -> TestResult {
    round_trip(dev, &[8, 16, 14, 14], 1, &[16, 32, 8], 4)
}
test_device!(cat_of_channels_of_a_residual_sized_batch: cpu, gpu);

/// Every golden `cat` case: `x.0`, `x.1`, ... joined along `dim`, and `grad_x.I`.
fn golden_cat(dev: &Device) -> TestResult {
    golden::replay(dev, "cat", |dev, case| -> TestResult {
        let spec = CatSpec {
            dim: case.param_usize("dim")?,
        };
        let xs = (0..case.param_usize("count")?)
            .map(|i| Ok(dev.upload(case.tensor(&format!("x.{i}"))?)?))
            .collect::<TestResult<Vec<_>>>()?;
        let y = dev.cat(&xs.iter().collect::<Vec<_>>(), &spec)?;
        case.compare("y", &y.to_host()?)?;
        let dims: Vec<&[usize]> = xs.iter().map(|x| x.dims()).collect();
        let grads = dev.cat_backward(&dims, &dev.upload(case.tensor("grad_y")?)?, &spec)?;
        for (i, g) in grads.iter().enumerate() {
            case.compare(&format!("grad_x.{i}"), &g.to_host()?)?;
        }
        Ok(())
    })
}
test_device!(golden_cat);

fn cat_rejects_mismatched_shapes(dev: &Device) -> TestResult {
    let a = dev.upload(&Tensor::zeros(&[2, 3, 4, 4])?)?;
    let b = dev.upload(&Tensor::zeros(&[2, 3, 4, 5])?)?;
    let err = dev.cat(&[&a, &b], &CatSpec::CHANNELS).unwrap_err();
    assert!(err.to_string().contains("tensor 1"), "{err}");
    let err = dev.cat(&[], &CatSpec::CHANNELS).unwrap_err();
    assert!(err.to_string().contains("at least one"), "{err}");
    let err = dev.cat(&[&a], &CatSpec { dim: 4 }).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    Ok(())
}
test_device!(cat_rejects_mismatched_shapes);
