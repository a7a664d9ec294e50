//! A whole seed-LeNet training step (forward, backward, SGD) at batch 256, built directly from
//! `Device` ops. Throughput is in images ("elem/s" = examples/s). The reference runs batch 16.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fovea_benches::{SeedLenet, bench_devices};
use std::hint::black_box;
use std::time::Duration;
use tensor::SeededRng;

fn lenet_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("seed_lenet_train_step [examples/s]");
    for (name, dev) in bench_devices() {
        let n = if matches!(dev, conv_kernels::Device::Reference) {
            16
        } else {
            256
        };
        let mut rng = SeededRng::new(0);
        let mut net = SeedLenet::new(&dev, &mut rng).expect("params");
        let (x, labels) = SeedLenet::random_batch(&dev, n, &mut rng).expect("batch");
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
        let mut net = SeedLenet::new(&dev, &mut rng).expect("params");
        let (x, labels) = SeedLenet::random_batch(&dev, n, &mut rng).expect("batch");
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
    targets = lenet_step, gpu_step
}
criterion_main!(benches);
