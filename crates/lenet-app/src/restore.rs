//! Loading a trained model from a checkpoint for `eval`, `predict` and `inspect`.

use crate::cli::DataArgs;
use crate::device::choose_device;
use crate::models::{ModelKind, Net};
use crate::run_dir::checkpoint_path;
use anyhow::Context;
use conv_kernels::Device;
use nn_layers::checkpoint;
use std::path::{Path, PathBuf};
use tensor::{SeededRng, TensorFile};

/// A model restored from a checkpoint, on the requested device, in evaluation mode.
pub struct Restored {
    /// The network with its trained parameters.
    pub model: Net,
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
    let kind = match file.metadata().get("extra.model") {
        Some(name) => {
            ModelKind::from_name(name).with_context(|| format!("checkpoint {}", path.display()))?
        }
        None => ModelKind::Seed,
    };
    let (device, _) = choose_device(data.device)?;
    let mut model = kind.build(&device, &mut SeededRng::new(0))?;
    checkpoint::load(&path, &device, model.module(), None)
        .with_context(|| format!("cannot load checkpoint {}", path.display()))?;
    model.eval();
    Ok(Restored {
        model,
        device,
        path,
    })
}
