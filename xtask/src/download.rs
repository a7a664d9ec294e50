//! `cargo xtask download [--dataset fashion-mnist|mnist] [--data-dir DIR]`: leaves the four
//! verified files of a dataset in its data directory and says where each came from.

use std::path::{Path, PathBuf};

use clap::Args;
use datasets::{DatasetSpec, FetchOptions, fetch, resolve_data_dir};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `cargo xtask download`.
#[derive(Args, Debug, Clone)]
pub struct DownloadArgs {
    /// The dataset to fetch.
    #[arg(long, default_value = "fashion-mnist", value_parser = ["fashion-mnist", "mnist"])]
    pub dataset: String,
    /// Data root: files go into `DIR/<dataset>`. Defaults to `$FOVEA_DATA`, else `<workspace>/data`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Fetches and verifies every file of the dataset (cache, system directory, then mirrors).
pub fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let spec = DatasetSpec::by_name(&args.dataset)?;
    let dir = resolve_data_dir(
        spec,
        args.data_dir.as_deref(),
        &workspace_root().join("data"),
    );
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:26} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )?
        .progress_chars("=> "),
    );
    let opts = FetchOptions::new(spec, &dir).with_progress(bar.clone());
    let report = fetch(spec, &opts);
    bar.finish_and_clear();
    let report = report?;
    println!(
        "{}: four verified files in {}",
        spec.name,
        report.data_dir.display()
    );
    for file in &report.files {
        for rejected in file
            .rejected
            .iter()
            .filter(|a| !a.reason.ends_with("not present"))
        {
            println!(
                "  {}: skipped {}: {}",
                file.name, rejected.source, rejected.reason
            );
        }
        println!("  {:<24} from {}", file.name, file.source);
    }
    Ok(())
}
