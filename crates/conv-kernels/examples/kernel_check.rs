//! Many-case kernel check: every op on every requested device against the naive reference,
//! over random shapes, printing the worst absolute and relative error per op and device.
//!
//! Run through `cargo xtask test-kernels [--cases N] [--device cpu|gpu|all]`.

use conv_kernels::{
    Activation, AdamConfig, Conv2dSpec, Device, DeviceTensor, MatmulSpec, Pool2dSpec, PoolKind,
    SgdConfig,
};
use std::collections::BTreeMap;
use std::process::ExitCode;
use tensor::{SeededRng, Tensor};

/// Worst errors seen for one (op, device).
#[derive(Default)]
struct Stats {
    cases: usize,
    max_abs: f32,
    max_rel: f32,
    failures: usize,
}

type Outputs = Vec<Tensor>;

struct Checker<'a> {
    dev: &'a Device,
    stats: BTreeMap<&'static str, Stats>,
    atol: f32,
    rtol: f32,
}

impl Checker<'_> {
    fn record(&mut self, op: &'static str, got: &Outputs, want: &Outputs) {
        let s = self.stats.entry(op).or_default();
        s.cases += 1;
        let mut failed = false;
        for (g, w) in got.iter().zip(want) {
            if g.dims() != w.dims() {
                failed = true;
                continue;
            }
            for (&a, &b) in g.data().iter().zip(w.data()) {
                let abs = (a - b).abs();
                let rel = abs / b.abs().max(1e-6);
                let abs = if abs.is_nan() { f32::INFINITY } else { abs };
                s.max_abs = s.max_abs.max(abs);
                if b.abs() > 1e-3 {
                    s.max_rel = s.max_rel.max(rel);
                }
                if abs > self.atol + self.rtol * b.abs() {
                    failed = true;
                }
            }
        }
        if failed {
            s.failures += 1;
        }
    }
}

fn host(dev: &Device, t: &DeviceTensor) -> Tensor {
    dev.to_host(t).expect("read back")
}

fn run_both(
    dev: &Device,
    f: &dyn Fn(&Device) -> conv_kernels::Result<Vec<DeviceTensor>>,
) -> conv_kernels::Result<(Outputs, Outputs)> {
    let want = f(&Device::Reference)?
        .iter()
        .map(|t| host(&Device::Reference, t))
        .collect();
    let got = f(dev)?.iter().map(|t| host(dev, t)).collect();
    Ok((got, want))
}

fn upload(dev: &Device, t: &Tensor) -> conv_kernels::Result<DeviceTensor> {
    dev.upload(t)
}

fn one_case(c: &mut Checker, rng: &mut SeededRng) -> conv_kernels::Result<()> {
    let dev = c.dev;
    let r =
        |rng: &mut SeededRng, lo: usize, hi: usize| lo + rng.below((hi - lo + 1) as u64) as usize;
    // conv2d forward and backward
    let groups = [1, 2, 4][r(rng, 0, 2)];
    let cin = groups * r(rng, 1, 8 / groups);
    let cout = groups * r(rng, 1, 8 / groups);
    let spec = Conv2dSpec {
        stride: [r(rng, 1, 3), r(rng, 1, 3)],
        padding: [r(rng, 0, 2), r(rng, 0, 2)],
        dilation: [r(rng, 1, 2), r(rng, 1, 2)],
        groups,
    };
    let n = r(rng, 1, 8);
    let (h, w, kh, kw) = (r(rng, 1, 20), r(rng, 1, 20), r(rng, 1, 5), r(rng, 1, 5));
    if spec.out_hw([h, w], [kh, kw]).is_ok() {
        let x = Tensor::randn(&[n, cin, h, w], rng)?;
        let wt = Tensor::randn(&[cout, cin / groups, kh, kw], rng)?;
        let b = Tensor::randn(&[cout], rng)?;
        let [oh, ow] = spec.out_hw([h, w], [kh, kw])?;
        let gy = Tensor::randn(&[n, cout, oh, ow], rng)?;
        let (got, want) = run_both(dev, &|d| {
            let y = d.conv2d(
                &upload(d, &x)?,
                &upload(d, &wt)?,
                Some(&upload(d, &b)?),
                &spec,
            )?;
            Ok(vec![y])
        })?;
        c.record("conv2d", &got, &want);
        let (got, want) = run_both(dev, &|d| {
            let g = d.conv2d_backward(
                &upload(d, &x)?,
                &upload(d, &wt)?,
                &upload(d, &gy)?,
                &spec,
                conv_kernels::GradsWanted {
                    input: true,
                    weight: true,
                    bias: true,
                },
            )?;
            Ok(vec![
                g.input.expect("asked"),
                g.weight.expect("asked"),
                g.bias.expect("asked"),
            ])
        })?;
        c.record("conv2d_backward", &got, &want);
    }
    // pooling
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let k = r(rng, 1, 5);
        let spec = Pool2dSpec::new(kind, k, r(rng, 1, 3), r(rng, 0, k / 2));
        let (h, w) = (r(rng, 1, 20), r(rng, 1, 20));
        let x = Tensor::randn(&[r(rng, 1, 8), r(rng, 1, 8), h, w], rng)?;
        let Ok(g) = spec.check(x.shape()) else {
            continue;
        };
        let gy = Tensor::randn(&g.output_dims(), rng)?;
        let name = spec.op_name();
        let (got, want) = run_both(dev, &|d| {
            let out = d.pool2d(&upload(d, &x)?, &spec)?;
            let gx = d.pool2d_backward(x.dims(), &upload(d, &gy)?, out.argmax.as_ref(), &spec)?;
            Ok(vec![out.output, gx])
        })?;
        c.record(name, &got, &want);
    }
    // matmul with every transpose and bias
    let (m, k, nn) = (r(rng, 1, 70), r(rng, 1, 70), r(rng, 1, 70));
    let spec = MatmulSpec {
        trans_a: rng.below(2) == 1,
        trans_b: rng.below(2) == 1,
    };
    let a = Tensor::randn(&if spec.trans_a { [k, m] } else { [m, k] }, rng)?;
    let b = Tensor::randn(&if spec.trans_b { [nn, k] } else { [k, nn] }, rng)?;
    let bias = Tensor::randn(&[nn], rng)?;
    let (got, want) = run_both(dev, &|d| {
        Ok(vec![d.matmul(
            &upload(d, &a)?,
            &upload(d, &b)?,
            Some(&upload(d, &bias)?),
            &spec,
        )?])
    })?;
    c.record("matmul", &got, &want);
    // activations, at ordinary and extreme magnitudes
    for act in [Activation::Sigmoid, Activation::Relu, Activation::Tanh] {
        let scale = if rng.below(4) == 0 { 1e4 } else { 3.0 };
        let x = Tensor::randn(&[r(rng, 1, 3000)], rng)?.map(|v| v * scale);
        let gy = Tensor::randn(x.dims(), rng)?;
        let (got, want) = run_both(dev, &|d| {
            let y = d.activation(&upload(d, &x)?, act)?;
            let gx = d.activation_backward(&y, &upload(d, &gy)?, act)?;
            Ok(vec![y, gx])
        })?;
        c.record(act.op_name(), &got, &want);
    }
    // softmax cross-entropy
    let (rows, classes) = (r(rng, 1, 300), r(rng, 1, 20));
    let scale = if rng.below(4) == 0 { 1e4 } else { 5.0 };
    let logits = Tensor::randn(&[rows, classes], rng)?.map(|v| v * scale);
    let labels: Vec<u32> = (0..rows)
        .map(|_| rng.below(classes as u64) as u32)
        .collect();
    let (got, want) = run_both(dev, &|d| {
        let out =
            d.softmax_cross_entropy(&upload(d, &logits)?, &d.upload_indices(&labels)?, true)?;
        Ok(vec![out.loss, out.correct, out.grad_logits.expect("asked")])
    })?;
    c.record("softmax_cross_entropy", &got, &want);
    // optimizers
    let len = r(rng, 1, 5000);
    let p = Tensor::randn(&[len], rng)?;
    let g = Tensor::randn(&[len], rng)?;
    let sgd = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 1e-3,
        nesterov: rng.below(2) == 1,
    };
    let (got, want) = run_both(dev, &|d| {
        let mut p = upload(d, &p)?;
        let mut mom = d.zeros(&[len])?;
        for _ in 0..3 {
            d.sgd_step(&sgd, &mut p, &upload(d, &g)?, Some(&mut mom))?;
        }
        Ok(vec![p, mom])
    })?;
    c.record("sgd_step", &got, &want);
    let adam = AdamConfig {
        weight_decay: 1e-2,
        ..AdamConfig::default()
    };
    let (got, want) = run_both(dev, &|d| {
        let (mut p, mut m, mut v) = (upload(d, &p)?, d.zeros(&[len])?, d.zeros(&[len])?);
        for step in 1..=3 {
            d.adam_step(&adam, step, &mut p, &upload(d, &g)?, &mut m, &mut v)?;
        }
        Ok(vec![p, m, v])
    })?;
    c.record("adam_step", &got, &want);
    // reductions and element-wise helpers
    let (got, want) = run_both(dev, &|d| {
        let pd = upload(d, &p)?;
        let gd = upload(d, &g)?;
        Ok(vec![d.sum(&pd)?, d.add(&pd, &gd)?, d.scale(&pd, 0.5)?])
    })?;
    c.record("sum_add_scale", &got, &want);
    Ok(())
}

fn parse_args() -> Result<(usize, Vec<String>), String> {
    let mut cases = 10_000;
    let mut device = "all".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cases" => {
                cases = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--cases needs a positive number")?
            }
            "--device" => device = args.next().ok_or("--device needs cpu, gpu or all")?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let devices = match device.as_str() {
        "all" => vec!["cpu".into(), "gpu".into()],
        "cpu" | "gpu" => vec![device],
        other => return Err(format!("unknown device `{other}` (cpu, gpu or all)")),
    };
    Ok((cases, devices))
}

fn open(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::cpu()),
        _ => Device::gpu().map_err(|e| e.to_string()),
    }
}

fn main() -> ExitCode {
    let (cases, names) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "{:<24} {:<8} {:>8} {:>12} {:>12} {:>8}",
        "op", "device", "cases", "max abs err", "max rel err", "fails"
    );
    let mut any_failed = false;
    for name in names {
        let dev = match open(&name) {
            Ok(d) => d,
            Err(e) => {
                println!("{name}: skipped ({e})");
                continue;
            }
        };
        let mut checker = Checker {
            dev: &dev,
            stats: BTreeMap::new(),
            atol: 1e-4,
            rtol: 1e-3,
        };
        let mut rng = SeededRng::new(0x5eed);
        for i in 0..cases {
            if let Err(e) = one_case(&mut checker, &mut rng) {
                eprintln!("{name}: case {i} failed to run: {e}");
                any_failed = true;
            }
        }
        for (op, s) in &checker.stats {
            any_failed |= s.failures > 0;
            println!(
                "{op:<24} {name:<8} {:>8} {:>12.3e} {:>12.3e} {:>8}",
                s.cases, s.max_abs, s.max_rel, s.failures
            );
        }
    }
    if any_failed {
        println!("some cases exceeded atol 1e-4 + rtol 1e-3");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
