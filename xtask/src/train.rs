//! `cargo xtask train [ARGS]`: build the `lenet` binary in release and run `lenet train ARGS`.
//!
//! `lenet train` fetches and verifies the dataset itself when it is not cached yet.

use crate::ci::workspace_root;
use anyhow::{Context, bail};
use std::process::Command;

/// Options of `cargo xtask train`: everything is passed through to `lenet train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Arguments for `lenet train` (see `lenet train --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Builds in release and runs the training command, forwarding its exit status.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args([
            "run",
            "--release",
            "--quiet",
            "--package",
            "lenet-app",
            "--bin",
            "lenet",
            "--",
            "train",
        ])
        .args(&args.args);
    println!(
        "==> cargo run --release -p lenet-app -- train {}",
        args.args.join(" ")
    );
    let status = cmd.status().context("could not start cargo")?;
    if !status.success() {
        bail!("lenet train failed ({status})");
    }
    Ok(())
}
