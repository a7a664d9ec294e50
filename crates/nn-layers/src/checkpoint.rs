//! Checkpoints: model parameters under PyTorch `state_dict` names, optimizer state and the
//! training position, in one safetensors file.
//!
//! Layout: every parameter under its own name (`1.weight`, ...), optimizer state under
//! `optim.<param>.<buffer>` (`optim.1.weight.momentum_buffer`, `optim.1.weight.exp_avg`, ...),
//! and string metadata: `format`, `epoch`, `step`, `rng.seed`, `rng.word_pos`, `optim.kind`,
//! `optim.<key>` (Adam's `optim.step`), `module_rng.<name>.seed|word_pos` (dropout) and
//! `extra.<key>`. Files are written atomically (temporary file, fsync, rename), as F32 or F16;
//! either loads. A PyTorch `safetensors.torch.save_file(net.state_dict(), ...)` file has just the
//! parameters, and loads as a checkpoint at epoch 0.

use crate::error::{Mismatches, NnError, Result};
use crate::module::Module;
use crate::optim::Optimizer;
use conv_kernels::{Device, DeviceTensor};
use std::collections::BTreeMap;
use std::path::Path;
pub use tensor::FloatStorage;
use tensor::{NamedTensors, RngState, TensorFile};

/// The value of the `format` metadata entry Fovea writes.
pub const FORMAT: &str = "fovea-checkpoint/1";

const OPTIM_PREFIX: &str = "optim.";

/// Where training stands: enough to resume exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrainingState {
    /// Completed epochs.
    pub epoch: u64,
    /// Completed optimizer steps.
    pub step: u64,
    /// The training RNG (data shuffling), if any.
    pub rng: Option<RngState>,
    /// Free-form entries (the application's settings, metrics...).
    pub extra: BTreeMap<String, String>,
}

/// Writes `model`'s parameters, `optimizer`'s state and `state` to `path`, atomically, storing
/// floats as `storage` (F32, or F16 to halve the size).
pub fn save(
    path: impl AsRef<Path>,
    device: &Device,
    model: &dyn Module,
    optimizer: Option<&dyn Optimizer>,
    state: &TrainingState,
    storage: FloatStorage,
) -> Result<()> {
    let mut out = NamedTensors::new();
    for (name, p) in model.named_parameters() {
        out.insert_float(name, &device.to_host(&p.value())?, storage)?;
    }
    out.set_metadata("format", FORMAT);
    out.set_metadata("epoch", state.epoch.to_string());
    out.set_metadata("step", state.step.to_string());
    if let Some(rng) = state.rng {
        out.set_metadata("rng.seed", rng.seed.to_string());
        out.set_metadata("rng.word_pos", rng.word_pos.to_string());
    }
    for (name, rng) in model.rng_states() {
        out.set_metadata(format!("module_rng.{name}.seed"), rng.seed.to_string());
        out.set_metadata(
            format!("module_rng.{name}.word_pos"),
            rng.word_pos.to_string(),
        );
    }
    for (k, v) in &state.extra {
        out.set_metadata(format!("extra.{k}"), v.clone());
    }
    if let Some(opt) = optimizer {
        out.set_metadata("optim.kind", opt.kind());
        for (k, v) in opt.state_metadata() {
            out.set_metadata(format!("{OPTIM_PREFIX}{k}"), v);
        }
        for (name, t) in opt.state_tensors() {
            out.insert_float(
                format!("{OPTIM_PREFIX}{name}"),
                &device.to_host(&t)?,
                storage,
            )?;
        }
    }
    out.write(path)?;
    Ok(())
}

/// Loads `path` into `model` (and `optimizer`'s state when given), returning the training
/// position. Every tensor name, shape and dtype is checked first and all problems come back in
/// one [`NnError::StateMismatch`]; nothing changes unless everything matches. Without an
/// optimizer, `optim.*` tensors in the file are ignored.
pub fn load(
    path: impl AsRef<Path>,
    device: &Device,
    model: &dyn Module,
    optimizer: Option<&mut dyn Optimizer>,
) -> Result<TrainingState> {
    let path = path.as_ref();
    let file = TensorFile::open(path)?;
    let meta = file.metadata();
    let bad = |key: &str, value: &str, reason: String| NnError::BadMetadata {
        path: path.to_path_buf(),
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };

    let params = model.named_parameters();
    let mut expected: Vec<(String, Vec<usize>)> =
        params.iter().map(|(n, p)| (n.clone(), p.dims())).collect();
    if let Some(opt) = &optimizer {
        if let Some(kind) = meta.get("optim.kind")
            && kind != opt.kind()
        {
            return Err(bad(
                "optim.kind",
                kind,
                format!(
                    "the checkpoint's optimizer is not the `{}` given",
                    opt.kind()
                ),
            ));
        }
        expected.extend(
            opt.state_tensors()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIM_PREFIX}{n}"), t.dims().to_vec())),
        );
    }

    let mut mismatches = Mismatches::default();
    for (name, dims) in &expected {
        if !file.contains(name) {
            mismatches.missing.push(name.clone());
            continue;
        }
        let dtype = file.dtype(name)?;
        if dtype != "F32" && dtype != "F16" {
            mismatches.wrong_dtype.push((name.clone(), dtype));
        } else if file.dims(name)? != dims.as_slice() {
            mismatches
                .misshaped
                .push((name.clone(), dims.clone(), file.dims(name)?.to_vec()));
        }
    }
    for name in file.names() {
        let known = expected.iter().any(|(n, _)| n == name);
        let ignored = optimizer.is_none() && name.starts_with(OPTIM_PREFIX);
        if !known && !ignored {
            mismatches.unexpected.push(name.to_string());
        }
    }
    if !mismatches.is_empty() {
        return Err(NnError::StateMismatch {
            source_name: path.display().to_string(),
            mismatches,
        });
    }

    // Metadata before any change, so a bad entry leaves the model untouched.
    let num = |key: &str| -> Result<Option<u128>> {
        meta.get(key)
            .map(|v| v.parse::<u128>().map_err(|e| bad(key, v, e.to_string())))
            .transpose()
    };
    let to_u64 = |key: &str, v: Option<u128>| -> Result<u64> {
        v.map_or(Ok(0), |v| {
            u64::try_from(v).map_err(|e| bad(key, &v.to_string(), e.to_string()))
        })
    };
    let rng_at = |prefix: &str| -> Result<Option<RngState>> {
        let (sk, wk) = (format!("{prefix}seed"), format!("{prefix}word_pos"));
        match (num(&sk)?, num(&wk)?) {
            (Some(seed), Some(word_pos)) => Ok(Some(RngState {
                seed: to_u64(&sk, Some(seed))?,
                word_pos,
            })),
            (None, None) => Ok(None),
            _ => Err(bad(&sk, "", format!("`{sk}` and `{wk}` go together"))),
        }
    };
    let state = TrainingState {
        epoch: to_u64("epoch", num("epoch")?)?,
        step: to_u64("step", num("step")?)?,
        rng: rng_at("rng.")?,
        extra: meta
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("extra.").map(|k| (k.to_string(), v.clone())))
            .collect(),
    };
    let mut module_rngs = Vec::new();
    for (name, _) in model.rng_states() {
        if let Some(s) = rng_at(&format!("module_rng.{name}."))? {
            module_rngs.push((name, s));
        }
    }

    let mut values = BTreeMap::new();
    for (name, _) in &expected {
        values.insert(name.clone(), device.upload_owned(file.tensor(name)?)?);
    }
    if let Some(opt) = optimizer {
        let tensors: BTreeMap<String, DeviceTensor> = values
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix(OPTIM_PREFIX)
                    .map(|n| (n.to_string(), t.clone()))
            })
            .collect();
        let opt_meta: BTreeMap<String, String> = meta
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(OPTIM_PREFIX)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        opt.load_state(&tensors, &opt_meta)?;
    }
    for (name, p) in &params {
        p.set(values[name].clone())?;
    }
    for (name, s) in module_rngs {
        model.set_rng_state(&name, s);
    }
    Ok(state)
}
