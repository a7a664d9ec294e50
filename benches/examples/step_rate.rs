//! Step-only training throughput of Fovea's models, printed in the format of
//! `benches/peers/pytorch_step.py` (`MODEL examples/sec STEP_MS` per line, then the GPU's
//! dispatches, submits and bytes each way per step, zero on the CPU), so that
//! `cargo xtask compare` can run the two in alternation. Each model trains as its `lenet train`
//! recipe does (optimizer and batch size) on random 1×28×28 inputs: data loading is not timed.
//!
//! ```text
//! cargo run --release -p fovea-benches --example step_rate -- [--models seed,modern,resnet-small,nin-small]
//!     [--steps 20] [--device cpu|gpu] [--unfused]
//! ```
//!
//! With `FOVEA_GPU_PROFILE=1` a GPU run also prints each kernel's wall time per step, largest
//! first (every launch then waits for its own submission: the step itself runs slower).
//!
//! `--unfused` runs every layer on its own (`Sequential::forward_unfused`: no activation fused
//! into the conv or linear layer before it), to measure what fusion gains.

use anyhow::{Context, bail};
use autograd::Var;
use conv_kernels::{Device, DeviceKind};
use fovea_benches::{app_step, recipe};
use nn_layers::{Module, ModuleVisitor, Sequential};
use std::time::Instant;
use tensor::{SeededRng, Tensor};

fn main() -> anyhow::Result<()> {
    let mut models = "seed,modern,resnet-small,nin-small".to_string();
    let (mut steps, mut device, mut unfused) = (20usize, DeviceKind::Cpu, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--models" => models = value()?,
            "--steps" => steps = value()?.parse().context("--steps")?,
            "--device" => device = value()?.parse()?,
            "--unfused" => unfused = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    let dev = Device::of_kind(device)?.device;
    println!("# device {}", dev.name());
    for name in models.split(',') {
        let mut rng = SeededRng::new(0);
        let (model, mut opt, batch) = recipe(name, &dev, &mut rng)?;
        let model: Box<dyn Module> = if unfused {
            Box::new(Unfused(model))
        } else {
            Box::new(model)
        };
        let images = Tensor::randn(&[batch, 1, 28, 28], &mut rng)?;
        let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
        for _ in 0..3 {
            app_step(&dev, &*model, &mut *opt, &images, &labels)?;
        }
        let (commands, transfers) = (dev.command_stats(), dev.transfer_stats());
        let kernels_before = dev.dispatches_by_kernel();
        let times_before = dev.kernel_times();
        let start = Instant::now();
        for _ in 0..steps {
            app_step(&dev, &*model, &mut *opt, &images, &labels)?;
        }
        let secs = start.elapsed().as_secs_f64();
        let rate = (batch * steps) as f64 / secs;
        let per_step = |after: u64, before: u64| (after - before) as f64 / steps as f64;
        let (c, t) = (dev.command_stats(), dev.transfer_stats());
        println!(
            "{name} {rate:.0} {:.2} dispatches/step {:.0} submits/step {:.1} \
             upload-bytes/step {:.0} download-bytes/step {:.0}",
            1000.0 * secs / steps as f64,
            per_step(c.dispatches, commands.dispatches),
            per_step(c.submits, commands.submits),
            per_step(t.upload_bytes, transfers.upload_bytes),
            per_step(t.download_bytes, transfers.download_bytes),
        );
        print_dispatches_by_kernel(&kernels_before, &dev.dispatches_by_kernel(), steps);
        let times = dev
            .kernel_times()
            .per_step_since(&times_before, steps as u64);
        if !times.kernels.is_empty() {
            println!("# kernel ms per step (profiled, {times})");
        }
    }
    Ok(())
}

/// `# kernels per step: conv_fwd 2, matmul 9, ...`: where a step's dispatches go (GPU only).
fn print_dispatches_by_kernel(
    before: &[(&'static str, u64)],
    after: &[(&'static str, u64)],
    steps: usize,
) {
    // Each kernel's growth (the tallies are sorted by name, as the device gives them); kernels
    // that did not grow are left out.
    let list: Vec<String> = after
        .iter()
        .map(|(k, now)| {
            let old = before.iter().find(|(b, _)| b == k).map_or(0, |(_, v)| *v);
            (k, (now - old) as f64 / steps as f64)
        })
        .filter(|(_, n)| *n > 0.0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if !list.is_empty() {
        println!("# kernels per step: {}", list.join(", "));
    }
}

/// A model run without fusion: each child of the `Sequential` on its own.
struct Unfused(Sequential);

impl Module for Unfused {
    fn kind(&self) -> &'static str {
        "Unfused"
    }
    fn forward(&self, x: &Var) -> nn_layers::Result<Var> {
        self.0.forward_unfused(x)
    }
    fn visit(&self, v: &mut dyn ModuleVisitor) {
        self.0.visit(v)
    }
}
