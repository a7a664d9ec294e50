//! `cargo xtask bench [FILTER]`: run the criterion benchmarks in release.

use crate::ci::workspace_root;
use anyhow::{Context, bail};
use std::process::Command;

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Only benchmarks whose name contains this (criterion's filter).
    pub filter: Option<String>,
}

/// Runs the kernel and training-step benchmarks, then the data-loading one.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for package in ["fovea-benches", "fovea-datasets"] {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(workspace_root())
            .args(["bench", "--package", package, "--"]);
        if let Some(f) = &args.filter {
            cmd.arg(f);
        }
        println!(
            "==> cargo bench -p {package} -- {}",
            args.filter.as_deref().unwrap_or("")
        );
        let status = cmd.status().context("could not start cargo")?;
        if !status.success() {
            bail!("cargo bench -p {package} failed ({status})");
        }
    }
    println!("==> reports: target/criterion/report/index.html");
    Ok(())
}
