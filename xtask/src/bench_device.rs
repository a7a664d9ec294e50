//! `cargo xtask bench-device [--out F] [--steps N] [--epochs E] [--profile P]`: the prepared
//! run for a machine with a GPU (under 5 minutes on one): every model's training step on
//! `--device gpu` (examples/sec, step time, dispatches, submits and bytes each way per step),
//! then a seed LeNet training of `E` epochs (2) on the GPU, all written as JSON with the
//! adapter's name. The dataset must be in `data/` or `$FOVEA_DATA` (a GPU machine may have no
//! network: carry `data/` there).

use crate::ci::workspace_root;
use crate::compare::build_step_rate;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

/// Options of `cargo xtask bench-device`.
#[derive(clap::Args)]
pub struct BenchDeviceArgs {
    /// Where the JSON goes.
    #[arg(long, default_value = "target/bench-device.json")]
    pub out: PathBuf,
    /// Timed training steps per model.
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Epochs of the seed LeNet training run (0: none).
    #[arg(long, default_value_t = 2)]
    pub epochs: u32,
    /// Train on the first N images only (a quick check of this command).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Cargo profile to build with (`release`; `dev` for a quick check of this command).
    #[arg(long, default_value = "release")]
    pub profile: String,
}

/// One `step_rate` line as JSON: `MODEL RATE MS key value ...`.
fn step_line(line: &str) -> Option<Value> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let (model, rate, ms) = (
        t.first()?,
        t.get(1)?.parse::<f64>().ok()?,
        t.get(2)?.parse::<f64>().ok()?,
    );
    let mut v = json!({"model": model, "examples_per_sec": rate, "step_ms": ms});
    for pair in t[3..].chunks(2) {
        if let [key, value] = pair {
            v[key.replace("/step", "_per_step").replace('-', "_")] =
                value.parse::<f64>().ok()?.into();
        }
    }
    Some(v)
}

/// Runs the step benchmarks and the training on the GPU and writes the figures.
pub fn run(a: BenchDeviceArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let step_rate = build_step_rate(&a.profile)?;
    println!("==> step_rate --device gpu --steps {}", a.steps);
    let out = Command::new(&step_rate)
        .args(["--device", "gpu", "--steps", &a.steps.to_string()])
        .output()
        .context("could not start step_rate")?;
    if !out.status.success() {
        bail!(
            "step_rate on the GPU failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let adapter = text
        .lines()
        .find_map(|l| l.strip_prefix("# device "))
        .unwrap_or("unknown")
        .to_string();
    let steps: Vec<Value> = text.lines().filter_map(step_line).collect();
    let mut report = json!({"adapter": adapter, "profile": a.profile, "steps": steps});
    if a.epochs > 0 {
        report["seed_training"] = train_seed(&root, &a)?;
    }
    if let Some(dir) = a.out.parent() {
        std::fs::create_dir_all(root.join(dir))?;
    }
    let path = root.join(&a.out);
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("==> wrote {}", path.display());
    Ok(())
}

/// `lenet train --device gpu --epochs E` (seed LeNet): examples/sec and test accuracy per
/// epoch from its `metrics.csv`, and its per-step GPU counters.
fn train_seed(root: &std::path::Path, a: &BenchDeviceArgs) -> anyhow::Result<Value> {
    let run_dir = root.join("target/bench-device-run");
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("==> lenet train --device gpu --epochs {}", a.epochs);
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "--profile",
            &a.profile,
            "-p",
            "lenet-app",
            "--bin",
            "lenet",
            "--",
        ])
        .args([
            "train",
            "--device",
            "gpu",
            "--epochs",
            &a.epochs.to_string(),
            "--out",
        ])
        .arg(&run_dir)
        .args(a.limit.map(|n| format!("--limit={n}")))
        .output()
        .context("could not start cargo")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        bail!(
            "lenet train on the GPU failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let csv = std::fs::read_to_string(run_dir.join("metrics.csv"))?;
    let epochs: Vec<Value> = csv
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<f64> = l.split(',').filter_map(|v| v.parse().ok()).collect();
            (c.len() >= 5)
                .then(|| json!({"epoch": c[0], "test_acc": c[3], "examples_per_sec": c[4]}))
        })
        .collect();
    let per_step = stdout
        .lines()
        .filter(|l| l.contains("per step on the GPU"))
        .map(str::trim)
        .next_back()
        .unwrap_or_default();
    Ok(json!({"epochs": epochs, "per_step": per_step}))
}
