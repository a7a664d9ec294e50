//! Whole training steps of the CNN models as `lenet train` runs them (`Sequential` + `Tape` +
//! optimizer, loss and correct count read back), at their recipes' batch of 128:
//! `resnet_small` with Nesterov SGD (momentum 0.9, weight decay 5e-4) and `nin_small` with
//! Adam. Throughput is in images ("elem/s" = examples/s). The reference is left out (minutes
//! per step).

use conv_kernels::{AdamConfig, Device, SgdConfig};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fovea_benches::{app_step, bench_devices};
use nn_layers::optim::{Adam, Optimizer, Sgd};
use nn_layers::{Module, Sequential, nin, resnet};
use std::hint::black_box;
use std::time::Duration;
use tensor::{SeededRng, Tensor};

const BATCH: usize = 128;

type Build = fn(&Device, &mut SeededRng) -> (Sequential, Box<dyn Optimizer>);

fn resnet_small(dev: &Device, rng: &mut SeededRng) -> (Sequential, Box<dyn Optimizer>) {
    let model = resnet::resnet_small(dev, rng).expect("model");
    let cfg = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: true,
    };
    let opt = Sgd::new(dev, model.named_parameters(), cfg).expect("sgd");
    (model, Box::new(opt))
}

fn nin_small(dev: &Device, rng: &mut SeededRng) -> (Sequential, Box<dyn Optimizer>) {
    let model = nin::nin_small(dev, rng, 0.5).expect("model");
    let cfg = AdamConfig {
        lr: 2e-3,
        ..AdamConfig::default()
    };
    let opt = Adam::new(dev, model.named_parameters(), cfg).expect("adam");
    (model, Box::new(opt))
}

fn cnn_app_step(c: &mut Criterion) {
    let models: [(&str, Build); 2] = [("resnet_small", resnet_small), ("nin_small", nin_small)];
    for (model_name, build) in models {
        let mut group = c.benchmark_group(format!("{model_name}_app_step [examples/s]"));
        for (name, dev) in bench_devices() {
            if matches!(dev, Device::Reference) {
                continue;
            }
            let mut rng = SeededRng::new(0);
            let (model, mut opt) = build(&dev, &mut rng);
            let images = Tensor::randn(&[BATCH, 1, 28, 28], &mut rng).expect("images");
            let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 10).collect();
            group.throughput(Throughput::Elements(BATCH as u64));
            group.bench_function(BenchmarkId::new(name, BATCH), |b| {
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
