//! Times whole seed-LeNet training steps (forward, backward, SGD, two scalar read-backs) on a
//! device, plus each op of the step on its own.
//!
//! `cargo run --release -p conv-kernels --example gpu_step -- [batch] [steps] [device]`
//! (device: `gpu` (default), `cpu`, `auto`). With `FOVEA_DEVICE` unset, `gpu` accepts llvmpipe.

use conv_kernels::{
    Activation, Conv2dSpec, Device, DeviceTensor, IndexTensor, Pool2dSpec, PoolKind, SgdConfig,
};
use std::time::Instant;
use tensor::{SeededRng, Tensor};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The d2l LeNet parameters: conv1, conv2, fc1, fc2, fc3 (weight, bias each).
struct Lenet {
    p: Vec<DeviceTensor>,
}

const SHAPES: [&[usize]; 10] = [
    &[6, 1, 5, 5],
    &[6],
    &[16, 6, 5, 5],
    &[16],
    &[120, 400],
    &[120],
    &[84, 120],
    &[84],
    &[10, 84],
    &[10],
];

impl Lenet {
    fn new(dev: &Device, seed: u64) -> Res<Self> {
        let mut rng = SeededRng::new(seed);
        let mut p = Vec::new();
        for s in SHAPES {
            let fan_in: usize = s[1..].iter().product::<usize>().max(1);
            let bound = 1.0 / (fan_in as f32).sqrt();
            let t = Tensor::rand_uniform(s, -bound, bound, &mut rng)?;
            p.push(dev.upload(&t)?);
        }
        Ok(Self { p })
    }
}

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
    rows: Vec<(&'static str, f64, f64)>,
}

impl Timer<'_> {
    fn lap(&mut self, name: &'static str) -> Res<()> {
        if self.on {
            self.dev.synchronize()?;
            let now = Instant::now();
            let cpu = cpu_ns();
            let wall = (now - self.t).as_secs_f64() * 1e3;
            self.rows.push((name, wall, (cpu - self.cpu) as f64 / 1e6));
            self.t = now;
            self.cpu = cpu;
        }
        Ok(())
    }
}

/// One SGD step; returns (loss, correct) device scalars.
fn step(
    dev: &Device,
    net: &mut Lenet,
    x: &DeviceTensor,
    y: &IndexTensor,
    tm: &mut Timer,
) -> Res<(DeviceTensor, DeviceTensor)> {
    let sig = Activation::Sigmoid;
    let pool = Pool2dSpec::new(PoolKind::Avg, 2, 2, 0);
    let n = x.dims()[0];
    let p = &net.p;
    tm.t = Instant::now();
    tm.cpu = cpu_ns();
    let a1 = dev.conv2d(x, &p[0], Some(&p[1]), &Conv2dSpec::new(1, 2))?;
    tm.lap("conv1 fwd [n,1,28,28]*[6,1,5,5]")?;
    let s1 = dev.activation(&a1, sig)?;
    tm.lap("sigmoid fwd [n,6,28,28]")?;
    let q1 = dev.pool2d(&s1, &pool)?.output;
    tm.lap("avgpool fwd [n,6,28,28]")?;
    let a2 = dev.conv2d(&q1, &p[2], Some(&p[3]), &Conv2dSpec::new(1, 0))?;
    tm.lap("conv2 fwd [n,6,14,14]*[16,6,5,5]")?;
    let s2 = dev.activation(&a2, sig)?;
    tm.lap("sigmoid fwd [n,16,10,10]")?;
    let q2 = dev.pool2d(&s2, &pool)?.output;
    tm.lap("avgpool fwd [n,16,10,10]")?;
    let f = q2.reshape(&[n, 400])?;
    let h1 = dev.activation(&dev.linear(&f, &p[4], Some(&p[5]))?, sig)?;
    let h2 = dev.activation(&dev.linear(&h1, &p[6], Some(&p[7]))?, sig)?;
    let logits = dev.linear(&h2, &p[8], Some(&p[9]))?;
    tm.lap("fc1-3 fwd + sigmoid")?;
    let ce = dev.softmax_cross_entropy(&logits, y, true)?;
    tm.lap("softmax CE")?;
    let g3 = dev.linear_backward(
        &h2,
        &p[8],
        ce.grad_logits.as_ref().ok_or("no logits gradient")?,
        conv_kernels::GradsWanted {
            input: true,
            weight: true,
            bias: true,
        },
    )?;
    let g2 = dev.linear_backward(
        &h1,
        &p[6],
        &dev.activation_backward(&h2, g3.input.as_ref().ok_or("no input gradient")?, sig)?,
        conv_kernels::GradsWanted {
            input: true,
            weight: true,
            bias: true,
        },
    )?;
    let g1 = dev.linear_backward(
        &f,
        &p[4],
        &dev.activation_backward(&h1, g2.input.as_ref().ok_or("no input gradient")?, sig)?,
        conv_kernels::GradsWanted {
            input: true,
            weight: true,
            bias: true,
        },
    )?;
    tm.lap("fc3-1 bwd")?;
    let gq2 = g1
        .input
        .as_ref()
        .ok_or("no input gradient")?
        .reshape(&[n, 16, 5, 5])?;
    let gs2 = dev.pool2d_backward(s2.dims(), &gq2, None, &pool)?;
    tm.lap("avgpool bwd [n,16,10,10]")?;
    let ga2 = dev.activation_backward(&s2, &gs2, sig)?;
    tm.lap("sigmoid bwd [n,16,10,10]")?;
    let c2 = dev.conv2d_backward(
        &q1,
        &p[2],
        &ga2,
        &Conv2dSpec::new(1, 0),
        conv_kernels::GradsWanted {
            input: true,
            weight: true,
            bias: true,
        },
    )?;
    tm.lap("conv2 bwd (input+weight+bias)")?;
    let gq1 = c2.input.ok_or("no input grad")?;
    let gs1 = dev.pool2d_backward(s1.dims(), &gq1, None, &pool)?;
    tm.lap("avgpool bwd [n,6,28,28]")?;
    let ga1 = dev.activation_backward(&s1, &gs1, sig)?;
    tm.lap("sigmoid bwd [n,6,28,28]")?;
    let c1 = dev.conv2d_backward(
        x,
        &p[0],
        &ga1,
        &Conv2dSpec::new(1, 2),
        conv_kernels::GradsWanted {
            input: false,
            weight: true,
            bias: true,
        },
    )?;
    tm.lap("conv1 bwd (weight+bias)")?;
    let grads = [
        c1.weight.ok_or("no weight gradient")?,
        c1.bias.ok_or("bias")?,
        c2.weight.ok_or("no weight gradient")?,
        c2.bias.ok_or("bias")?,
        g1.weight.ok_or("no weight gradient")?,
        g1.bias.ok_or("bias")?,
        g2.weight.ok_or("no weight gradient")?,
        g2.bias.ok_or("bias")?,
        g3.weight.ok_or("no weight gradient")?,
        g3.bias.ok_or("bias")?,
    ];
    let cfg = SgdConfig::plain(0.9);
    for (param, g) in net.p.iter_mut().zip(&grads) {
        dev.sgd_step(&cfg, param, g, None)?;
    }
    tm.lap("sgd x10")?;
    Ok((ce.loss, ce.correct))
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
    let mut net = Lenet::new(&dev, 0)?;
    let mut tm = Timer {
        dev: &dev,
        on: false,
        t: Instant::now(),
        cpu: 0,
        rows: Vec::new(),
    };
    let t0 = Instant::now();
    let (l, c) = step(&dev, &mut net, &x, &y, &mut tm)?;
    let (loss, correct) = (dev.read_scalar(&l)?, dev.read_scalar(&c)?);
    println!(
        "first step (incl. shader compilation): {:.1} ms, loss {loss:.4}, correct {correct}",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let before = (dev.pool_stats(), dev.transfer_stats());
    let t1 = Instant::now();
    for _ in 0..steps {
        let (l, c) = step(&dev, &mut net, &x, &y, &mut tm)?;
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
    let mut sums: Vec<(&'static str, f64, f64)> = Vec::new();
    for _ in 0..reps {
        tm.rows.clear();
        let (l, _) = step(&dev, &mut net, &x, &y, &mut tm)?;
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
