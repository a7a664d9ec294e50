//! `cargo xtask compare [--rounds N] [--models M] [--python P]`: Fovea against PyTorch, step
//! only, in alternation in the same minutes. Builds `step_rate` (benches/examples) in release,
//! then runs it and `benches/peers/pytorch_step.py` alternately `rounds` times and prints
//! each figure and, per model, the median Fovea / PyTorch ratio. A missing PyTorch is a
//! message, not a failure.

use crate::ci::workspace_root;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// Options of `cargo xtask compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// Alternations of the two (each runs every model once per round).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Comma-separated models (seed, modern, resnet-small, nin-small).
    #[arg(long, default_value = "seed,modern,resnet-small,nin-small")]
    pub models: String,
    /// Training steps timed per model and run.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// The Python that has `torch` (a virtual environment outside the repository).
    #[arg(long, default_value = "/tmp/torch/bin/python")]
    pub python: PathBuf,
    /// Threads for PyTorch (Fovea uses rayon's default, one per core).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Examples/sec per model from one run's `MODEL RATE MS` lines.
fn parse(out: &[u8]) -> BTreeMap<String, f64> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

fn run_capture(cmd: &mut Command, what: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let out = cmd
        .output()
        .with_context(|| format!("could not start {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(parse(&out.stdout))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Builds the `step_rate` example in `profile` (`release`, or `dev` for a quick check) and
/// returns its path.
pub fn build_step_rate(profile: &str) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--profile",
            profile,
            "-p",
            "fovea-benches",
            "--example",
            "step_rate",
        ])
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("building step_rate failed ({status})");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    let dir = if profile == "dev" { "debug" } else { profile };
    Ok(target.join(dir).join("examples/step_rate"))
}

/// Runs the comparison.
pub fn run(a: CompareArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let has_torch = Command::new(&a.python)
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_torch {
        println!(
            "PyTorch not found at {} (python3 -m venv /tmp/torch && /tmp/torch/bin/pip install \
             torch numpy safetensors, or pass --python): nothing compared",
            a.python.display()
        );
        return Ok(());
    }
    let fovea = build_step_rate("release")?;
    let steps = a.steps.to_string();
    let mut ratios: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for round in 1..=a.rounds {
        let f = run_capture(
            Command::new(&fovea).args(["--models", &a.models, "--steps", &steps]),
            "step_rate",
        )?;
        let p = run_capture(
            Command::new(&a.python)
                .arg(root.join("benches/peers/pytorch_step.py"))
                .args(["--models", &a.models, "--steps", &steps])
                .args(["--threads", &a.threads.to_string()]),
            "pytorch_step.py",
        )?;
        for (model, fr) in &f {
            let Some(pr) = p.get(model) else { continue };
            println!(
                "round {round} {model:>13}: Fovea {fr:>8.0} ex/s  PyTorch {pr:>8.0} ex/s  ratio {:.2}",
                fr / pr
            );
            ratios.entry(model.clone()).or_default().push(fr / pr);
        }
    }
    for (model, mut r) in ratios {
        println!(
            "{model:>13}: median Fovea/PyTorch {:.2} over {} rounds",
            median(&mut r),
            r.len()
        );
    }
    Ok(())
}
