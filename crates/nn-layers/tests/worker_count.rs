//! A CPU training step gives the same parameters, bit for bit, whatever the number of worker
//! threads: the kernels' reductions are fixed per shape, so `lenet train` may move its steps
//! between one worker and the whole pool (its worker choice) without changing the run.

use autograd::Tape;
use conv_kernels::{Device, DeviceKind, SgdConfig};
use nn_layers::{Module, Optimizer, Sequential, Sgd, lenet, loss, resnet};
use tensor::{SeededRng, Tensor};

/// The parameters after two SGD steps of `build`'s model on a batch of `batch`, run in a pool
/// of `workers` threads.
fn parameters_after_two_steps(
    build: fn(&Device, &mut SeededRng) -> Sequential,
    batch: usize,
    workers: usize,
) -> Vec<Vec<f32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .unwrap();
    pool.install(|| {
        let dev = Device::of_kind(DeviceKind::Cpu).unwrap().device;
        let mut rng = SeededRng::new(3);
        let net = build(&dev, &mut rng);
        let mut opt = Sgd::new(
            &dev,
            net.named_parameters(),
            SgdConfig {
                momentum: 0.9,
                ..SgdConfig::plain(0.05)
            },
        )
        .unwrap();
        let x = dev
            .upload(&Tensor::randn(&[batch, 1, 28, 28], &mut rng).unwrap())
            .unwrap();
        let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
        let labels = dev.upload_indices(&labels).unwrap();
        for _ in 0..2 {
            let tape = Tape::new(&dev);
            let out = net.forward(&tape.constant(x.clone())).unwrap();
            let grads = loss::cross_entropy(&out, &labels)
                .unwrap()
                .loss
                .backward()
                .unwrap();
            opt.step(&grads).unwrap();
        }
        net.named_parameters()
            .iter()
            .map(|(_, p)| dev.to_host(&p.value()).unwrap().data().to_vec())
            .collect()
    })
}

#[test]
fn a_cpu_step_does_not_depend_on_the_worker_count() {
    let seed: fn(&Device, &mut SeededRng) -> Sequential =
        |d, r| lenet::build(lenet::Variant::Seed, d, r).unwrap();
    let modern: fn(&Device, &mut SeededRng) -> Sequential =
        |d, r| lenet::build(lenet::Variant::Modern, d, r).unwrap();
    let resnet: fn(&Device, &mut SeededRng) -> Sequential =
        |d, r| resnet::resnet_small(d, r).unwrap();
    for (name, build, batch) in [
        ("seed", seed, 64),
        // The app's batch: fc1's products (256 · 400 · 120) split over the pool by `gemm`.
        ("seed at batch 256", seed, 256),
        ("modern", modern, 64),
        ("resnet", resnet, 16),
    ] {
        let one = parameters_after_two_steps(build, batch, 1);
        for workers in [2, 3] {
            assert!(
                one == parameters_after_two_steps(build, batch, workers),
                "{name}: {workers} workers changed the parameters"
            );
        }
    }
}
