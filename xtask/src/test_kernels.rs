//! `cargo xtask test-kernels`: every kernel on every device against the naive reference, with
//! many more random cases than `cargo test` runs, printed as a table of worst errors.

use crate::ci::workspace_root;
use anyhow::{Context, bail};
use std::process::Command;

/// Options of `cargo xtask test-kernels`.
#[derive(clap::Args)]
pub struct TestKernelsArgs {
    /// Random cases per op and device.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: u64,
    /// Devices to check.
    #[arg(long, default_value = "all", value_parser = ["cpu", "gpu", "all"])]
    pub device: String,
}

/// Builds the checker in release and runs it.
pub fn run(args: TestKernelsArgs) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cases = args.cases.to_string();
    let cli = [
        "run",
        "--release",
        "--quiet",
        "--package",
        "conv-kernels",
        "--example",
        "kernel_check",
        "--",
        "--cases",
        &cases,
        "--device",
        &args.device,
    ];
    println!("==> cargo {}", cli.join(" "));
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(cli)
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("kernel check failed ({status})");
    }
    Ok(())
}
