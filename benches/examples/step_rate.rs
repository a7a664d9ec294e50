//! Step-only training throughput of Fovea's models, printed in the format of
//! `benches/peers/pytorch_step.py` (`MODEL examples/sec STEP_MS` per line), so that
//! `cargo xtask compare` can run the two in alternation. Each model trains as its `lenet train`
//! recipe does (optimizer and batch size) on random 1×28×28 inputs: data loading is not timed.
//!
//! ```text
//! cargo run --release -p fovea-benches --example step_rate -- [--models seed,modern,resnet-small,nin-small]
//!     [--steps 20] [--device cpu|gpu]
//! ```

use anyhow::{Context, bail};
use conv_kernels::{AdamConfig, Device, DeviceKind, SgdConfig};
use fovea_benches::app_step;
use nn_layers::optim::{Adam, Optimizer, Sgd};
use nn_layers::{Module, Sequential, lenet, nin, resnet};
use std::time::Instant;
use tensor::{SeededRng, Tensor};

/// A model, its optimizer and its batch size, as the app's recipe has them.
fn recipe(
    name: &str,
    dev: &Device,
    rng: &mut SeededRng,
) -> anyhow::Result<(Sequential, Box<dyn Optimizer>, usize)> {
    let sgd = |m: &Sequential, cfg| -> anyhow::Result<Box<dyn Optimizer>> {
        Ok(Box::new(Sgd::new(dev, m.named_parameters(), cfg)?))
    };
    let adam = |m: &Sequential, lr| -> anyhow::Result<Box<dyn Optimizer>> {
        let cfg = AdamConfig {
            lr,
            ..AdamConfig::default()
        };
        Ok(Box::new(Adam::new(dev, m.named_parameters(), cfg)?))
    };
    Ok(match name {
        "seed" => {
            let m = lenet::seed(dev, rng)?;
            let o = sgd(&m, SgdConfig::plain(0.9))?;
            (m, o, 256)
        }
        "modern" => {
            let m = lenet::modern(dev, rng)?;
            let o = adam(&m, 4e-3)?;
            (m, o, 256)
        }
        "resnet-small" => {
            let m = resnet::resnet_small(dev, rng)?;
            let cfg = SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 5e-4,
                nesterov: true,
            };
            let o = sgd(&m, cfg)?;
            (m, o, 128)
        }
        "nin-small" => {
            let m = nin::nin_small(dev, rng, 0.5)?;
            let o = adam(&m, 2e-3)?;
            (m, o, 128)
        }
        other => bail!("unknown model {other:?} (expected seed, modern, resnet-small, nin-small)"),
    })
}

fn main() -> anyhow::Result<()> {
    let mut models = "seed,modern,resnet-small,nin-small".to_string();
    let (mut steps, mut device) = (20usize, DeviceKind::Cpu);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--models" => models = value()?,
            "--steps" => steps = value()?.parse().context("--steps")?,
            "--device" => device = value()?.parse()?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    let dev = Device::of_kind(device)?.device;
    for name in models.split(',') {
        let mut rng = SeededRng::new(0);
        let (model, mut opt, batch) = recipe(name, &dev, &mut rng)?;
        let images = Tensor::randn(&[batch, 1, 28, 28], &mut rng)?;
        let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
        for _ in 0..3 {
            app_step(&dev, &model, &mut *opt, &images, &labels)?;
        }
        let start = Instant::now();
        for _ in 0..steps {
            app_step(&dev, &model, &mut *opt, &images, &labels)?;
        }
        let secs = start.elapsed().as_secs_f64();
        let rate = (batch * steps) as f64 / secs;
        println!("{name} {rate:.0} {:.2}", 1000.0 * secs / steps as f64);
    }
    Ok(())
}
