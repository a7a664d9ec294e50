//! A whole seed-LeNet training step (forward, backward, SGD) at batch 256, two ways:
//! - `seed_lenet_app_step`, the headline: the path `lenet train` runs (`nn_layers::lenet::seed`,
//!   a `Sequential` recorded on an `autograd::Tape`, cross-entropy, `Tape::backward`, the `Sgd`
//!   optimizer, the loss and correct count read back), the README's step figure;
//! - `seed_lenet_train_step`, the same step written directly from `Device` ops (no tape), to
//!   show what the layers and the tape cost on top of the kernels.
//!
//! Throughput is in images ("elem/s" = examples/s). The reference runs batch 16.

use conv_kernels::{Device, SgdConfig};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fovea_benches::{app_step, bench_devices};
use fovea_test_support::lenet::{Arch, HandNet};
use nn_layers::Module;
use nn_layers::optim::Sgd;
use std::hint::black_box;
use std::time::Duration;
use tensor::{SeededRng, Tensor};

fn lenet_app_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("seed_lenet_app_step [examples/s]");
    for (name, dev) in bench_devices() {
        let n = if matches!(dev, Device::Reference) {
            16
        } else {
            256
        };
        let mut rng = SeededRng::new(0);
        let model = nn_layers::lenet::seed(&dev, &mut rng).expect("model");
        let mut opt = Sgd::new(&dev, model.named_parameters(), SgdConfig::plain(0.1)).expect("sgd");
        let images = Tensor::randn(&[n, 1, 28, 28], &mut rng).expect("images");
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter(|| black_box(app_step(&dev, &model, &mut opt, &images, &labels).expect("step")))
        });
    }
    group.finish();
}

fn lenet_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("seed_lenet_train_step [examples/s]");
    for (name, dev) in bench_devices() {
        let n = if matches!(dev, conv_kernels::Device::Reference) {
            16
        } else {
            256
        };
        let mut rng = SeededRng::new(0);
        let mut net = HandNet::new(&dev, Arch::seed_lenet(), &mut rng).expect("params");
        let (x, labels) = net.random_batch(n, &mut rng).expect("batch");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter(|| black_box(net.train_step(&x, &labels, 0.1).expect("step")))
        });
    }
    group.finish();
}

/// The training step on the GPU alone at two batch sizes (data already on the device, the loss
/// read back each step): shows how much of a step is fixed per-dispatch cost.
fn gpu_step(c: &mut Criterion) {
    let Some((_, dev)) = bench_devices().into_iter().find(|(n, _)| n == "gpu") else {
        return;
    };
    let mut group = c.benchmark_group("seed_lenet_train_step_gpu [examples/s]");
    for n in [64, 256] {
        let mut rng = SeededRng::new(0);
        let mut net = HandNet::new(&dev, Arch::seed_lenet(), &mut rng).expect("params");
        let (x, labels) = net.random_batch(n, &mut rng).expect("batch");
        net.train_step(&x, &labels, 0.1).expect("warm-up step"); // compiles the pipelines
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("gpu", n), |b| {
            b.iter(|| black_box(net.train_step(&x, &labels, 0.1).expect("step")))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = lenet_app_step, lenet_step, gpu_step
}
criterion_main!(benches);
