//! Loading the chosen dataset (fetched and verified, or a custom IDX directory) for the app.

use crate::cli::DataArgs;
use anyhow::{Context, bail};
use clap::ValueEnum;
use datasets::{Dataset, DatasetSpec, FetchOptions, Split};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which dataset: the value of `--dataset` and of `dataset` in `config.json`.
#[derive(ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Zalando's Fashion-MNIST (the default).
    FashionMnist,
    /// The original handwritten digits.
    Mnist,
    /// Any directory with the four standard IDX files (given by --data-dir).
    Idx,
}

/// Input side the models take.
const SIDE: usize = 28;
/// Classes the models predict.
pub const CLASSES: usize = 10;

/// The training and test splits plus the class names.
pub struct Data {
    /// Training split.
    pub train: Dataset,
    /// Test split.
    pub test: Dataset,
    /// One name per class.
    pub class_names: Vec<String>,
}

/// The workspace-relative default root for cached data (`data/`), or the current directory's.
fn default_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.parent().and_then(Path::parent) {
        Some(ws) if ws.join("Cargo.toml").exists() => ws.join("data"),
        _ => PathBuf::from("data"),
    }
}

fn check_shape(ds: &Dataset, what: &str) -> anyhow::Result<()> {
    if ds.rows() != SIDE || ds.cols() != SIDE {
        bail!(
            "{what}: images are {}×{}, but LeNet takes {SIDE}×{SIDE} images",
            ds.rows(),
            ds.cols()
        );
    }
    if ds.num_classes() > CLASSES {
        bail!(
            "{what}: {} classes, but LeNet predicts {CLASSES}",
            ds.num_classes()
        );
    }
    if ds.is_empty() {
        bail!("{what} is empty");
    }
    Ok(())
}

/// The class names of the dataset `args` names, without loading it.
pub fn class_names(args: &DataArgs) -> Vec<String> {
    let names: &[&str] = match args.dataset {
        DatasetKind::FashionMnist => datasets::FashionMnist::SPEC.class_names,
        DatasetKind::Mnist => datasets::Mnist::SPEC.class_names,
        DatasetKind::Idx => &[],
    };
    if names.is_empty() {
        (0..CLASSES).map(|c| format!("class {c}")).collect()
    } else {
        names.iter().map(|s| s.to_string()).collect()
    }
}

/// Loads both splits of the dataset named by `args`, fetching and verifying when needed.
pub fn load(args: &DataArgs, splits_needed: &[Split]) -> anyhow::Result<Data> {
    let (train, test, class_names) = match args.dataset {
        DatasetKind::Idx => {
            let dir = args
                .data_dir
                .as_deref()
                .context("--dataset idx needs --data-dir DIR holding the four IDX files")?;
            let load = |split| -> anyhow::Result<Dataset> {
                Dataset::from_idx_dir(dir, split, CLASSES)
                    .with_context(|| format!("cannot load the IDX dataset in {}", dir.display()))
            };
            (load(Split::Train)?, load(Split::Test)?, class_names(args))
        }
        kind => {
            let spec: &DatasetSpec = match kind {
                DatasetKind::Mnist => &datasets::Mnist::SPEC,
                _ => &datasets::FashionMnist::SPEC,
            };
            let dir =
                datasets::fetch::resolve_data_dir(spec, args.data_dir.as_deref(), &default_root());
            let opts = FetchOptions::new(spec, dir);
            let load = |split| -> anyhow::Result<Dataset> {
                if splits_needed.contains(&split) || split == Split::Test {
                    Ok(spec.load(&opts, split)?)
                } else {
                    Ok(Dataset::from_parts(
                        Vec::new(),
                        Vec::new(),
                        SIDE,
                        SIDE,
                        CLASSES,
                    )?)
                }
            };
            (load(Split::Train)?, load(Split::Test)?, class_names(args))
        }
    };
    if splits_needed.contains(&Split::Train) {
        check_shape(&train, "the training set")?;
    }
    check_shape(&test, "the test set")?;
    Ok(Data {
        train,
        test,
        class_names,
    })
}

/// The first `n` items of `ds` (for quick runs).
pub fn take_first(ds: &Dataset, n: usize) -> anyhow::Result<Dataset> {
    let n = n.min(ds.len());
    let size = ds.image_size();
    Ok(Dataset::from_parts(
        ds.images()[..n * size].to_vec(),
        ds.labels()[..n].to_vec(),
        ds.rows(),
        ds.cols(),
        ds.num_classes(),
    )?)
}
