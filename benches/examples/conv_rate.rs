//! GFLOP/s of each pass (forward, input gradient, weight + bias gradient) of resnet-small's
//! convolutions on the CPU at its training batch (128), and the sum of those passes over one
//! training step (each shape counted as often as the model runs it). The step benchmarks
//! (`step_rate`) are too noisy on a shared machine to see a change to one kernel; this times
//! the kernels alone.
//!
//! ```text
//! cargo run --release -p fovea-benches --example conv_rate -- [--reps 10]
//! ```

use anyhow::{Context, bail};
use conv_kernels::{Conv2dSpec, Device, DeviceTensor, GradsWanted};
use std::time::Instant;
use tensor::{SeededRng, Tensor};

const BATCH: usize = 128;

/// resnet-small's convolutions (`shared/golden-cnn/models.py`) as `(per step, c_in, c_out,
/// input size, kernel, stride, padding)`, the stem's single input channel left out (the direct
/// kernel, as LeNet's conv1).
const SHAPES: [(f64, usize, usize, usize, usize, usize, usize); 7] = [
    (4.0, 16, 16, 28, 3, 1, 1),
    (3.0, 32, 32, 14, 3, 1, 1),
    (3.0, 64, 64, 7, 3, 1, 1),
    (1.0, 16, 32, 28, 3, 2, 1),
    (1.0, 32, 64, 14, 3, 2, 1),
    (1.0, 16, 32, 28, 1, 2, 0),
    (1.0, 32, 64, 14, 1, 2, 0),
];

fn main() -> anyhow::Result<()> {
    let mut reps = 10usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().context("--reps needs a value")?.parse()?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    let dev = Device::cpu();
    let mut rng = SeededRng::new(0);
    let mut step_ms = 0.0;
    println!("# {}, batch {BATCH}, {reps} repetitions each", dev.name());
    for (per_step, c_in, c_out, hw, k, stride, pad) in SHAPES {
        let upload = |dims: &[usize], rng: &mut SeededRng| -> anyhow::Result<DeviceTensor> {
            Ok(dev.upload(&Tensor::randn(dims, rng)?)?)
        };
        let x = upload(&[BATCH, c_in, hw, hw], &mut rng)?;
        let w = upload(&[c_out, c_in, k, k], &mut rng)?;
        let b = upload(&[c_out], &mut rng)?;
        let spec = Conv2dSpec::new(stride, pad);
        let y = dev.conv2d(&x, &w, Some(&b), &spec)?;
        let flops = 2.0 * (y.numel() * c_in * k * k) as f64;
        // Milliseconds per call, after one call to warm caches and scratch buffers.
        let time = |f: &dyn Fn() -> anyhow::Result<()>| -> anyhow::Result<f64> {
            f()?;
            let start = Instant::now();
            for _ in 0..reps {
                f()?;
            }
            Ok(start.elapsed().as_secs_f64() * 1e3 / reps as f64)
        };
        let backward = |wanted: GradsWanted| -> anyhow::Result<()> {
            dev.conv2d_backward(&x, &w, &y, &spec, wanted)?;
            Ok(())
        };
        let fwd = time(&|| Ok(dev.conv2d(&x, &w, Some(&b), &spec).map(drop)?))?;
        let input = time(&|| {
            backward(GradsWanted {
                input: true,
                weight: false,
                bias: false,
            })
        })?;
        let weight = time(&|| {
            backward(GradsWanted {
                input: false,
                weight: true,
                bias: true,
            })
        })?;
        let rate = |ms: f64| flops / ms / 1e6;
        println!(
            "{:>2}->{:<2} {:>2}x{:<2} k{} s{}: forward {fwd:.2} ms ({:.0} GFLOP/s), input grad \
             {input:.2} ms ({:.0}), weight grad {weight:.2} ms ({:.0})",
            c_in,
            c_out,
            hw,
            hw,
            k,
            stride,
            rate(fwd),
            rate(input),
            rate(weight),
        );
        step_ms += per_step * (fwd + input + weight);
    }
    println!("conv passes of one resnet-small step: {step_ms:.2} ms");
    Ok(())
}
