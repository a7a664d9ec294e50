//! Times whole seed-LeNet training steps (forward, backward, SGD, two scalar read-backs) on a
//! device, plus each op of the step on its own. The step is test-support's hand-written one
//! (`fovea_test_support::lenet`), the one the benches time.
//!
//! `cargo run --release -p conv-kernels --example gpu_step -- [batch] [steps] [device]`
//! (device: `gpu` (default), `cpu`, `auto`). With `FOVEA_DEVICE` unset, `gpu` accepts llvmpipe.

use conv_kernels::{Device, DeviceTensor, IndexTensor};
use fovea_test_support::lenet::{Arch, HandNet};
use std::time::Instant;
use tensor::{SeededRng, Tensor};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// CPU time of every thread of this process (ns), from `/proc/self/task/*/schedstat`
/// (0 where unavailable): a contention-independent cost on software adapters.
fn cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Optional per-op timer: synchronizes after each op when enabled.
struct Timer<'a> {
    dev: &'a Device,
    on: bool,
    t: Instant,
    cpu: u64,
    rows: Vec<(String, f64, f64)>,
}

impl Timer<'_> {
    fn lap(&mut self, name: &str) -> conv_kernels::Result<()> {
        if self.on {
            self.dev.synchronize()?;
            let now = Instant::now();
            let cpu = cpu_ns();
            let wall = (now - self.t).as_secs_f64() * 1e3;
            self.rows
                .push((name.to_string(), wall, (cpu - self.cpu) as f64 / 1e6));
            self.t = now;
            self.cpu = cpu;
        }
        Ok(())
    }
}

/// One SGD step (lr 0.9) of the hand-written seed-LeNet step, timed op by op when the timer is
/// on; returns the (loss, correct) device scalars.
fn step(
    net: &mut HandNet,
    x: &DeviceTensor,
    y: &IndexTensor,
    tm: &mut Timer,
) -> Res<(DeviceTensor, DeviceTensor)> {
    tm.t = Instant::now();
    tm.cpu = cpu_ns();
    let out = net.step_timed(x, y, 0.9, &mut |name| tm.lap(name))?;
    Ok((out.loss, out.correct))
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(256);
    let steps: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(10);
    let which = args.get(3).map(String::as_str).unwrap_or("gpu");
    let choice = Device::select(which)?;
    let dev = choice.device;
    println!("device: {} ({})", dev.name(), choice.reason);
    let mut rng = SeededRng::new(1);
    let x = dev.upload(&Tensor::rand_uniform(
        &[batch, 1, 28, 28],
        0.0,
        1.0,
        &mut rng,
    )?)?;
    let labels: Vec<u32> = (0..batch as u32).map(|i| (i * 7) % 10).collect();
    let y = dev.upload_indices(&labels)?;
    let mut net = HandNet::new(&dev, Arch::seed_lenet(), &mut SeededRng::new(0))?;
    let mut tm = Timer {
        dev: &dev,
        on: false,
        t: Instant::now(),
        cpu: 0,
        rows: Vec::new(),
    };
    let t0 = Instant::now();
    let (l, c) = step(&mut net, &x, &y, &mut tm)?;
    let (loss, correct) = (dev.read_scalar(&l)?, dev.read_scalar(&c)?);
    println!(
        "first step (incl. shader compilation): {:.1} ms, loss {loss:.4}, correct {correct}",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let before = (dev.pool_stats(), dev.transfer_stats());
    let t1 = Instant::now();
    for _ in 0..steps {
        let (l, c) = step(&mut net, &x, &y, &mut tm)?;
        let (loss, correct) = (dev.read_scalar(&l)?, dev.read_scalar(&c)?);
        std::hint::black_box((loss, correct));
    }
    let per = t1.elapsed().as_secs_f64() / steps as f64;
    println!(
        "steady state: {:.1} ms/step, {:.0} examples/s (batch {batch}, {steps} steps)",
        per * 1e3,
        batch as f64 / per
    );
    println!("pool before/after: {:?} / {:?}", before.0, dev.pool_stats());
    println!(
        "transfers before/after: {:?} / {:?}",
        before.1,
        dev.transfer_stats()
    );
    tm.on = true;
    let reps = 3;
    let mut sums: Vec<(String, f64, f64)> = Vec::new();
    for _ in 0..reps {
        tm.rows.clear();
        let (l, _) = step(&mut net, &x, &y, &mut tm)?;
        dev.read_scalar(&l)?;
        if sums.is_empty() {
            sums = tm.rows.clone();
        } else {
            for (s, r) in sums.iter_mut().zip(&tm.rows) {
                s.1 += r.1;
                s.2 += r.2;
            }
        }
    }
    println!("per op (synchronized, mean of {reps}): wall ms, process CPU ms");
    let (mut tw, mut tc) = (0.0, 0.0);
    for (name, ms, cpu) in sums {
        println!(
            "  {name:<36} {:8.2} ms {:8.2} cpu-ms",
            ms / reps as f64,
            cpu / reps as f64
        );
        tw += ms / reps as f64;
        tc += cpu / reps as f64;
    }
    println!("  {:<36} {tw:8.2} ms {tc:8.2} cpu-ms", "total");
    Ok(())
}
