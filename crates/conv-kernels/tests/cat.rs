//! cat: every device against the reference over random shapes, axes and input counts (forward
//! and the slicing backward, which must round-trip exactly), and its errors.

use conv_kernels::{CatSpec, Device};
use proptest::prelude::*;
use tensor::{SeededRng, Tensor};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn devices() -> Vec<Device> {
    let mut d = vec![Device::Reference, Device::cpu()];
    d.extend(conv_kernels::testing::gpu_under_test());
    d
}

fn round_trip(dims: &[usize], dim: usize, sizes: &[usize], seed: u64) -> TestResult {
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
    let mut want = None;
    for dev in devices() {
        let up: Vec<_> = xs.iter().map(|x| dev.upload(x)).collect::<Result<_, _>>()?;
        let refs: Vec<_> = up.iter().collect();
        let y = dev.cat(&refs, &spec)?;
        let yh = y.to_host()?;
        // Exactly the reference's values (copies only).
        let w = want.get_or_insert_with(|| yh.clone());
        assert_eq!(yh.data(), w.data(), "cat on {}", dev.name());
        assert_eq!(yh.dims()[dim], sizes.iter().sum::<usize>());
        let input_dims: Vec<&[usize]> = xs.iter().map(|x| x.dims()).collect();
        let grads = dev.cat_backward(&input_dims, &y, &spec)?;
        for (g, x) in grads.iter().zip(&xs) {
            assert_eq!(
                g.to_host()?.data(),
                x.data(),
                "cat_backward on {}",
                dev.name()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn cat_matches_reference_and_backward_slices_it(
        dims in prop::collection::vec(1usize..5, 1..5),
        dim_frac in 0usize..8,
        sizes in prop::collection::vec(0usize..4, 1..4),
        seed in any::<u64>(),
    ) {
        let dim = dim_frac % dims.len();
        round_trip(&dims, dim, &sizes, seed).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

#[test]
fn cat_of_channels_of_a_residual_sized_batch() -> TestResult {
    round_trip(&[8, 16, 14, 14], 1, &[16, 32, 8], 4)
}

#[test]
fn cat_rejects_mismatched_shapes() -> TestResult {
    let dev = Device::cpu();
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
