//! Many-case kernel check: every op on every requested device against the naive reference,
//! over random shapes, printing the worst absolute and relative error per op and device. The
//! cases come from the property tests' strategies (`fovea_test_support::cases`), drawn from a
//! fixed seed.
//!
//! Run through `cargo xtask test-kernels [--cases N] [--device cpu|gpu|all]`.

use conv_kernels::Device;
use fovea_test_support::cases::*;
use fovea_test_support::{TestResult, ops};
use std::collections::BTreeMap;
use std::process::ExitCode;
use tensor::Tensor;

/// Worst errors seen for one (op, device).
#[derive(Default)]
struct Stats {
    cases: usize,
    max_abs: f32,
    max_rel: f32,
    failures: usize,
}

struct Checker<'a> {
    dev: &'a Device,
    stats: BTreeMap<&'static str, Stats>,
    atol: f32,
    rtol: f32,
}

impl Checker<'_> {
    /// Records a case of `op` under the checker's tolerance.
    fn record(&mut self, op: &'static str, got: &[Tensor], want: &[Tensor]) {
        self.record_within(op, got, want, self.rtol, self.atol);
    }

    /// Records a case of `op` whose error grows with its size, under its own tolerance.
    fn record_within(
        &mut self,
        op: &'static str,
        got: &[Tensor],
        want: &[Tensor],
        rtol: f32,
        atol: f32,
    ) {
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
                if abs > atol + rtol * b.abs() {
                    failed = true;
                }
            }
        }
        if failed {
            s.failures += 1;
        }
    }
}

/// Runs `f` on `dev` and on the reference: `(got, want)`.
fn run_both<T>(dev: &Device, f: impl Fn(&Device) -> TestResult<T>) -> TestResult<(T, T)> {
    Ok((f(dev)?, f(&Device::Reference)?))
}

/// A one-element tensor holding `v`.
fn scalar(v: f32) -> Tensor {
    Tensor::from_vec(&[1], vec![v]).expect("one element")
}

/// One random case of every op (drawn from the property tests' strategies), on `c.dev` and
/// the reference.
fn one_case(c: &mut Checker, s: &mut Sampler) -> TestResult {
    let dev = c.dev;
    // conv2d forward and backward: general, one input channel per group, stride 1, strided
    for (fwd, bwd, case) in [
        ("conv2d", "conv2d_backward", s.draw(&conv_case())?),
        (
            "conv2d_1ch",
            "conv2d_1ch_backward",
            s.draw(&single_channel_conv_case())?,
        ),
        (
            "conv2d_stride1",
            "conv2d_stride1_backward",
            s.draw(&stride_one_conv_case())?,
        ),
        (
            "conv2d_strided",
            "conv2d_strided_backward",
            s.draw(&strided_conv_case())?,
        ),
    ] {
        let t = case.inputs()?;
        let (got, want) = run_both(dev, |d| {
            ops::conv2d(d, &t.x, &t.w, t.b.as_ref(), &t.grad_y, &case.spec, case.act)
        })?;
        let split = |o: ops::ConvOut| {
            let grads = [vec![o.grad_x, o.grad_w], o.grad_b.into_iter().collect()].concat();
            ([o.y], grads)
        };
        let ((got_y, got_grads), (want_y, want_grads)) = (split(got), split(want));
        c.record(fwd, &got_y, &want_y);
        c.record(bwd, &got_grads, &want_grads);
    }
    // pooling
    let case = s.draw(&pool_case())?;
    let spec = case.spec();
    let (x, gy) = case.inputs()?;
    let (got, want) = run_both(dev, |d| ops::pool2d(d, &x, &gy, &spec))?;
    c.record(spec.op_name(), &[got.y, got.grad_x], &[want.y, want.grad_x]);
    // matmul with every transpose and bias; linear forward and backward
    let case = s.draw(&matmul_case())?;
    let (a, b, bias) = case.inputs();
    let (got, want) = run_both(dev, |d| {
        ops::matmul(d, &a, &b, bias.as_ref(), &case.spec, case.act)
    })?;
    c.record("matmul", &[got], &[want]);
    let t = s.draw(&linear_case())?.inputs();
    let (got, want) = run_both(dev, |d| {
        ops::linear(d, &t.x, &t.w, t.b.as_ref(), &t.grad_y, case.act)
    })?;
    let all = |o: ops::LinearOut| {
        [
            vec![o.y, o.grad_x, o.grad_w],
            o.grad_b.into_iter().collect(),
        ]
        .concat()
    };
    c.record("linear", &all(got), &all(want));
    // activations, at ordinary and extreme magnitudes
    let case = s.draw(&activation_case())?;
    let (x, gy) = case.inputs();
    let (got, want) = run_both(dev, |d| {
        let y = ops::activation(d, &x, case.act)?;
        let gx = ops::activation_backward(d, &y, &gy, case.act)?;
        Ok([y, gx])
    })?;
    c.record(case.act.op_name(), &got, &want);
    // softmax cross-entropy
    let (logits, labels) = s.draw(&cross_entropy_case())?.inputs();
    let (got, want) = run_both(dev, |d| ops::cross_entropy(d, &logits, &labels))?;
    let all = |o: ops::CrossEntropyOut| [scalar(o.loss), scalar(o.correct), o.grad];
    c.record("softmax_cross_entropy", &all(got), &all(want));
    // optimizers: the parameter after every step
    for (name, case) in [
        ("sgd_step", s.draw(&sgd_case())?),
        ("adam_step", s.draw(&adam_case())?),
    ] {
        let (w, grads) = case.inputs();
        let (got, want) = run_both(dev, |d| match &case.sgd {
            Some(cfg) => ops::sgd_steps(d, cfg, &w, &grads),
            None => ops::adam_steps(d, &case.adam, &w, &grads),
        })?;
        c.record(name, &got, &want);
    }
    // element-wise helpers and reductions
    let case = s.draw(&elementwise_case())?;
    let (a, b) = case.inputs();
    let (got, want) = run_both(dev, |d| ops::elementwise(d, &a, &b, case.alpha))?;
    let all = |o: &ops::ElementwiseOut| {
        [&o.add, &o.add_assign, &o.scale, &o.scale_by, &o.fill].map(Tensor::clone)
    };
    c.record("elementwise", &all(&got), &all(&want));
    // Sums of `len` values in f32 lanes vs f64: |error| ≲ 1e-6 · Σ|a| (as the property test).
    let bound = 1e-6 * a.data().iter().map(|v| v.abs()).sum::<f32>() + 1e-6;
    c.record_within("sum", &[scalar(got.sum)], &[scalar(want.sum)], 0.0, bound);
    // Per-channel sums of n·hw values (conv2d's bias gradient): absolute 1e-6 · n·hw.
    let case = s.draw(&channel_sum_case())?;
    let (gy, x, w) = case.inputs();
    let (got, want) = run_both(dev, |d| ops::channel_sum(d, &gy, &x, &w))?;
    let atol = 1e-6 * (case.n * case.hw) as f32;
    c.record_within("channel_sum", &[got], &[want], 1e-5, atol);
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
        let mut sampler = Sampler::new(0x5eed);
        for i in 0..cases {
            if let Err(e) = one_case(&mut checker, &mut sampler) {
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
