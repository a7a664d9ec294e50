//! Each kernel on LeNet's shapes at batch 256: reference vs the fast backends.
//!
//! Throughput is `Throughput::Elements(flops)`, so criterion's "elem/s" reads as **FLOP/s**
//! (a multiply-add counts two) for conv and fc groups; pooling and activation groups count one
//! per input element (their "elem/s" is elements/s). The reference is timed at batch 16 (too slow
//! for 256; its throughput is per-FLOP, so the figures stay comparable).

use conv_kernels::{Activation, Conv2dSpec, Device, Pool2dSpec, PoolKind};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fovea_benches::{bench_devices, synced};
use std::hint::black_box;
use std::time::Duration;
use tensor::{SeededRng, Tensor};

const BATCH: usize = 256;
const REFERENCE_BATCH: usize = 16;

fn batch_for(dev: &Device) -> usize {
    if matches!(dev, Device::Reference) {
        REFERENCE_BATCH
    } else {
        BATCH
    }
}

fn rand(dev: &Device, dims: &[usize], rng: &mut SeededRng) -> conv_kernels::DeviceTensor {
    dev.upload(&Tensor::randn(dims, rng).expect("shape"))
        .expect("upload")
}

fn conv_benches(c: &mut Criterion) {
    // (name, c_in, c_out, input size, padding)
    for (name, c_in, c_out, hw, pad) in [("conv1", 1, 6, 28, 2), ("conv2", 6, 16, 14, 0)] {
        let spec = Conv2dSpec::new(1, pad);
        let out = hw + 2 * pad - 4;
        // fwd: y = conv(x) + b. bwd_weight: weight and bias gradients (all conv1 needs).
        // bwd_full: input, weight and bias gradients (conv2 in training): twice the FLOPs.
        for pass in ["fwd", "bwd_weight", "bwd_full"] {
            if name == "conv1" && pass == "bwd_full" {
                continue; // the images need no gradient
            }
            let mut group = c.benchmark_group(format!("{name}_{pass} [FLOP/s]"));
            for (dev_name, dev) in bench_devices() {
                let n = batch_for(&dev);
                let mut rng = SeededRng::new(1);
                let x = rand(&dev, &[n, c_in, hw, hw], &mut rng);
                let w = rand(&dev, &[c_out, c_in, 5, 5], &mut rng);
                let b = rand(&dev, &[c_out], &mut rng);
                let gy = rand(&dev, &[n, c_out, out, out], &mut rng);
                let fwd_flops = 2 * (n * c_out * out * out * c_in * 25) as u64;
                let products = if pass == "bwd_full" { 2 } else { 1 };
                group.throughput(Throughput::Elements(products * fwd_flops));
                group.bench_function(BenchmarkId::new(dev_name, n), |bench| match pass {
                    "fwd" => bench.iter(|| {
                        black_box(synced(
                            &dev,
                            dev.conv2d(&x, &w, Some(&b), &spec).expect("conv"),
                        ))
                    }),
                    "bwd_weight" => bench.iter(|| {
                        black_box(synced(
                            &dev,
                            dev.conv2d_backward(
                                &x,
                                &w,
                                &gy,
                                &spec,
                                conv_kernels::GradsWanted {
                                    input: false,
                                    weight: true,
                                    bias: true,
                                },
                            )
                            .expect("conv"),
                        ))
                    }),
                    _ => bench.iter(|| {
                        black_box(synced(
                            &dev,
                            dev.conv2d_backward(
                                &x,
                                &w,
                                &gy,
                                &spec,
                                conv_kernels::GradsWanted {
                                    input: true,
                                    weight: true,
                                    bias: true,
                                },
                            )
                            .expect("conv"),
                        ))
                    }),
                });
            }
            group.finish();
        }
    }
}

fn pool_benches(c: &mut Criterion) {
    let layers = [("pool1", 6, 28), ("pool2", 16, 10)];
    let kinds = [(PoolKind::Avg, "avg"), (PoolKind::Max, "max")];
    for ((name, ch, hw), (kind, kind_name)) in
        layers.into_iter().flat_map(|l| kinds.map(|k| (l, k)))
    {
        let spec = Pool2dSpec::new(kind, 2, 2, 0);
        for pass in ["fwd", "bwd"] {
            let group_name = format!("{kind_name}{name}_{pass} [input elements/s]");
            let mut group = c.benchmark_group(group_name);
            for (dev_name, dev) in bench_devices() {
                let n = batch_for(&dev);
                let mut rng = SeededRng::new(2);
                let x = rand(&dev, &[n, ch, hw, hw], &mut rng);
                let gy = rand(&dev, &[n, ch, hw / 2, hw / 2], &mut rng);
                let argmax = dev.pool2d(&x, &spec).expect("pool").argmax;
                group.throughput(Throughput::Elements((n * ch * hw * hw) as u64));
                group.bench_function(BenchmarkId::new(dev_name, n), |bench| {
                    if pass == "fwd" {
                        bench.iter(|| black_box(synced(&dev, dev.pool2d(&x, &spec).expect("pool"))))
                    } else {
                        bench.iter(|| {
                            black_box(synced(
                                &dev,
                                dev.pool2d_backward(&[n, ch, hw, hw], &gy, argmax.as_ref(), &spec)
                                    .expect("pool"),
                            ))
                        })
                    }
                });
            }
            group.finish();
        }
    }
}

fn fc_benches(c: &mut Criterion) {
    for (name, i, o) in [("fc1", 400, 120), ("fc2", 120, 84), ("fc3", 84, 10)] {
        for pass in ["fwd", "bwd"] {
            let mut group = c.benchmark_group(format!("{name}_{pass} [FLOP/s]"));
            for (dev_name, dev) in bench_devices() {
                let n = batch_for(&dev);
                let mut rng = SeededRng::new(3);
                let x = rand(&dev, &[n, i], &mut rng);
                let w = rand(&dev, &[o, i], &mut rng);
                let b = rand(&dev, &[o], &mut rng);
                let gy = rand(&dev, &[n, o], &mut rng);
                // Forward: one product; backward: input and weight gradients (two products).
                let passes = if pass == "fwd" { 1 } else { 2 };
                group.throughput(Throughput::Elements(passes * 2 * (n * i * o) as u64));
                group.bench_function(BenchmarkId::new(dev_name, n), |bench| {
                    if pass == "fwd" {
                        bench.iter(|| {
                            black_box(synced(&dev, dev.linear(&x, &w, Some(&b)).expect("linear")))
                        })
                    } else {
                        bench.iter(|| {
                            black_box(synced(
                                &dev,
                                dev.linear_backward(
                                    &x,
                                    &w,
                                    &gy,
                                    conv_kernels::GradsWanted {
                                        input: true,
                                        weight: true,
                                        bias: true,
                                    },
                                )
                                .expect("linear"),
                            ))
                        })
                    }
                });
            }
            group.finish();
        }
    }
}

fn activation_benches(c: &mut Criterion) {
    let act = Activation::Sigmoid;
    for pass in ["fwd", "bwd"] {
        let mut group = c.benchmark_group(format!("sigmoid_conv1_{pass} [elements/s]"));
        for (dev_name, dev) in bench_devices() {
            let n = batch_for(&dev);
            let mut rng = SeededRng::new(4);
            let x = rand(&dev, &[n, 6, 28, 28], &mut rng);
            let gy = rand(&dev, &[n, 6, 28, 28], &mut rng);
            group.throughput(Throughput::Elements(x.numel() as u64));
            group.bench_function(BenchmarkId::new(dev_name, n), |bench| {
                if pass == "fwd" {
                    bench.iter(|| black_box(synced(&dev, dev.activation(&x, act).expect("act"))))
                } else {
                    bench.iter(|| {
                        black_box(synced(
                            &dev,
                            dev.activation_backward(&x, &gy, act).expect("act"),
                        ))
                    })
                }
            });
        }
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = conv_benches, pool_benches, fc_benches, activation_benches
}
criterion_main!(benches);
