//! Whole training steps of the CNN models as `lenet train` runs them (`Sequential` + `Tape` +
//! optimizer, loss and correct count read back), at their recipes' batch of 128:
//! `resnet_small` with Nesterov SGD (momentum 0.9, weight decay 5e-4) and `nin_small` with
//! Adam. Throughput is in images ("elem/s" = examples/s). The reference is left out (minutes
//! per step).

use conv_kernels::Device;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fovea_benches::{app_step, bench_devices, recipe};
use std::hint::black_box;
use std::time::Duration;
use tensor::{SeededRng, Tensor};

fn cnn_app_step(c: &mut Criterion) {
    for model_name in ["resnet-small", "nin-small"] {
        let group_name = model_name.replace('-', "_");
        let mut group = c.benchmark_group(format!("{group_name}_app_step [examples/s]"));
        for (name, dev) in bench_devices() {
            if matches!(dev, Device::Reference) {
                continue;
            }
            let mut rng = SeededRng::new(0);
            let (model, mut opt, batch) = recipe(model_name, &dev, &mut rng).expect("model");
            let images = Tensor::randn(&[batch, 1, 28, 28], &mut rng).expect("images");
            let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(name, batch), |b| {
                b.iter(|| {
                    black_box(app_step(&dev, &model, &mut *opt, &images, &labels).expect("step"))
                })
            });
        }
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = cnn_app_step
}
criterion_main!(benches);
