//! `cargo xtask ci`: the checks every submission must pass.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Options of `cargo xtask ci`.
#[derive(clap::Args)]
pub struct CiArgs {
    /// Skip the format and clippy checks (tests only).
    #[arg(long)]
    pub tests_only: bool,
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Whether a Vulkan loader and at least one installable client driver (ICD) are present.
pub fn vulkan_driver_installed() -> bool {
    let loader = [
        "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
        "/usr/lib/aarch64-linux-gnu/libvulkan.so.1",
        "/usr/lib/libvulkan.so.1",
        "/usr/lib64/libvulkan.so.1",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    let icd = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "json"));
    loader && icd
}

fn step(root: &Path, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<()> {
    let shown: Vec<String> = envs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("==> {} cargo {}", shown.join(" "), args.join(" "));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root)
        .status()
        .with_context(|| format!("could not start cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs fmt check, clippy and the tests, printing each command first.
pub fn run(args: CiArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let mut envs: Vec<(&str, &str)> = Vec::new();
    if vulkan_driver_installed() {
        println!("==> a Vulkan driver is installed: GPU tests must run (FOVEA_REQUIRE_GPU=1)");
        envs.push(("FOVEA_REQUIRE_GPU", "1"));
    } else {
        println!("==> no Vulkan driver found: GPU tests will skip with a reason");
    }
    if !args.tests_only {
        step(&root, &["fmt", "--all", "--", "--check"], &[])?;
        step(
            &root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
        step(
            &root,
            &["doc", "--workspace", "--no-deps"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        )?;
    }
    step(&root, &["test", "--workspace"], &envs)?;
    println!("==> all checks passed");
    Ok(())
}
