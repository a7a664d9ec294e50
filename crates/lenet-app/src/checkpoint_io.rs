//! Locating and loading a run's checkpoint for `eval`, `predict` and `inspect`.

use crate::cli::DataArgs;
use crate::model::{build_model, choose_device, parse_model_name};
use anyhow::Context;
use conv_kernels::Device;
use nn_layers::Sequential;
use nn_layers::checkpoint;
use std::path::{Path, PathBuf};
use tensor::{SeededRng, TensorFile};

/// The checkpoint file inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// `path` itself, or the checkpoint inside it when it is a run directory.
pub fn checkpoint_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_path_buf()
    }
}

/// A model restored from a checkpoint, on the requested device.
pub struct Restored {
    /// The network with its trained parameters.
    pub model: Sequential,
    /// Where it runs.
    pub device: Device,
    /// The checkpoint file read.
    pub path: PathBuf,
}

/// Opens the device, reads which model the checkpoint holds (seed unless it says otherwise,
/// as for a PyTorch state dict) and loads its parameters.
pub fn restore(checkpoint: &Path, data: &DataArgs) -> anyhow::Result<Restored> {
    let path = checkpoint_path(checkpoint);
    let file = TensorFile::open(&path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let model_name = file
        .metadata()
        .get("extra.model")
        .cloned()
        .unwrap_or_else(|| "seed".into());
    let kind = parse_model_name(&model_name)?;
    let (device, _) = choose_device(data.device)?;
    let model = build_model(kind, &device, &mut SeededRng::new(0))?;
    checkpoint::load(&path, &device, &model, None)
        .with_context(|| format!("cannot load checkpoint {}", path.display()))?;
    Ok(Restored {
        model,
        device,
        path,
    })
}
