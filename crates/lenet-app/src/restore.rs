//! Loading a trained model from a checkpoint for `eval`, `predict` and `inspect`: Fovea's own
//! checkpoints (which name their model and input normalisation) and bare PyTorch `state_dict`s
//! saved with `safetensors.torch.save_file` (for which `--model` names the model, and the
//! model's default normalisation applies).

use crate::cli::DataArgs;
use crate::config::NormalizeSpec;
use crate::device::choose_device;
use crate::models::{ModelKind, Net};
use crate::run_dir::checkpoint_path;
use anyhow::{Context, bail};
use clap::ValueEnum;
use conv_kernels::Device;
use nn_layers::checkpoint;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tensor::{SeededRng, TensorFile};

/// The checkpoint metadata entry (`extra.` prefix in the file) naming the input normalisation.
pub const NORMALIZE_KEY: &str = "normalize";

/// A model restored from a checkpoint, on the requested device, in evaluation mode.
pub struct Restored {
    /// The network with its trained parameters.
    pub model: Net,
    /// Where it runs.
    pub device: Device,
    /// The checkpoint file read.
    pub path: PathBuf,
    /// The input normalisation the model was trained with.
    pub normalize: Option<NormalizeSpec>,
}

/// Opens the device, finds which model the checkpoint holds and loads it.
///
/// A Fovea checkpoint names its model (`extra.model`; `--model`, when given, must agree) and
/// its normalisation (`extra.normalize`; absent in checkpoints from before normalisation, which
/// had none). A file without that metadata is a bare `state_dict`: `--model` says which model
/// (seed when not given, as before) and that model's default normalisation applies. When the
/// tensors do not fit, the error names every missing, unexpected and mis-shaped key, and, when
/// the file is another registered model's state_dict, which `--model` it needs.
pub fn restore(
    checkpoint: &Path,
    model: Option<ModelKind>,
    data: &DataArgs,
) -> anyhow::Result<Restored> {
    let path = checkpoint_path(checkpoint);
    let file = TensorFile::open(&path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let (kind, normalize) = stored_model(&file, model)?;
    let (device, _) = choose_device(data.device)?;
    let mut net = kind.build(&device, &mut SeededRng::new(0))?;
    if let Err(e) = checkpoint::load_file(&file, &device, net.module(), None) {
        let names: BTreeSet<String> = file
            .names()
            .into_iter()
            .filter(|n| !n.starts_with("optim."))
            .map(str::to_string)
            .collect();
        let hint = match matching_model(&names) {
            Some(other) if other != kind => format!(
                " (its tensors are a `{}` model's: pass --model {0})",
                other.name()
            ),
            _ => String::new(),
        };
        return Err(anyhow::Error::new(e).context(format!(
            "cannot load checkpoint {} as a `{}` model{hint}",
            path.display(),
            kind.name()
        )));
    }
    net.eval();
    Ok(Restored {
        model: net,
        device,
        path,
        normalize,
    })
}

/// Which model a checkpoint holds and the normalisation it was trained with, from its
/// metadata (see [`restore`]); `asked` is `--model`, which must agree with a Fovea checkpoint
/// and names the model of a bare `state_dict`.
pub fn stored_model(
    file: &TensorFile,
    asked: Option<ModelKind>,
) -> anyhow::Result<(ModelKind, Option<NormalizeSpec>)> {
    let path = file.path();
    let meta = file.metadata();
    Ok(match meta.get("extra.model") {
        Some(name) => {
            let stored = ModelKind::from_name(name)
                .with_context(|| format!("checkpoint {}", path.display()))?;
            if let Some(asked) = asked
                && asked != stored
            {
                bail!(
                    "checkpoint {} holds a `{}` model, not the `{}` given with --model",
                    path.display(),
                    stored.name(),
                    asked.name()
                );
            }
            let normalize = match meta.get(&format!("extra.{NORMALIZE_KEY}")) {
                Some(v) => NormalizeSpec::parse(v).map_err(|e| {
                    anyhow::anyhow!(
                        "checkpoint {}: metadata `extra.{NORMALIZE_KEY}` {e}",
                        path.display()
                    )
                })?,
                None => None,
            };
            (stored, normalize)
        }
        None => {
            let kind = asked.unwrap_or(ModelKind::Seed);
            (kind, kind.spec().recipe.normalize)
        }
    })
}

/// The registered model whose parameter and buffer names are exactly `names`, if any.
fn matching_model(names: &BTreeSet<String>) -> Option<ModelKind> {
    ModelKind::value_variants().iter().copied().find(|k| {
        k.build(&Device::Reference, &mut SeededRng::new(0))
            .is_ok_and(|net| {
                let m = net.module();
                let own: BTreeSet<String> = m
                    .named_parameters()
                    .into_iter()
                    .map(|(n, _)| n)
                    .chain(m.named_buffers().into_iter().map(|(n, _)| n))
                    .collect();
                own == *names
            })
    })
}
