//! Checkpoints: model parameters and buffers under PyTorch `state_dict` names, optimizer state
//! and the training position, in one safetensors file.
//!
//! Layout: every parameter and buffer under its own name (`1.weight`, `bn1.running_mean`,
//! ...; int64 buffers such as `bn1.num_batches_tracked` as `I64` scalars of shape `[]`, as
//! PyTorch saves them), optimizer state under
//! `optim.<param>.<buffer>` (`optim.1.weight.momentum_buffer`, `optim.1.weight.exp_avg`, ...),
//! and string metadata: `format`, `epoch`, `step`, `rng.seed`, `rng.word_pos`, `optim.kind`,
//! `optim.<key>` (Adam's `optim.step`), `module_rng.<name>.seed|word_pos` (dropout) and
//! `extra.<key>`. Files are written atomically (temporary file, fsync, rename), as F32 or F16;
//! either loads. A PyTorch `safetensors.torch.save_file(net.state_dict(), ...)` file has just the
//! parameters and buffers, and loads as a checkpoint at epoch 0; a missing or extra buffer is
//! reported by name, like a parameter.

use crate::buffer::BufferKind;
use crate::error::{Mismatches, NnError, Result};
use crate::module::{LoadValue, Module, StateEntry, named_state};
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

/// Writes `model`'s parameters and buffers, `optimizer`'s state and `state` to `path`, atomically, storing
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
    for (name, entry) in named_state(model)? {
        match entry {
            StateEntry::Param(p) => {
                out.insert_float(name, &device.to_host(&p.value())?, storage)?
            }
            StateEntry::Buffer(b) => match b.kind() {
                BufferKind::F32 => {
                    out.insert_float(name, &device.to_host(&b.tensor()?)?, storage)?
                }
                BufferKind::I64 => out.insert_i64(name, &[], &[b.get_i64()?])?,
            },
        }
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

/// Loads `path` into `model`'s parameters, buffers and generators (and `optimizer`'s state
/// when given), returning the training position. Every tensor name, shape and dtype is checked first and all problems come back in
/// one [`NnError::StateMismatch`]; nothing changes unless everything matches. Without an
/// optimizer, `optim.*` tensors in the file are ignored.
pub fn load(
    path: impl AsRef<Path>,
    device: &Device,
    model: &dyn Module,
    optimizer: Option<&mut dyn Optimizer>,
) -> Result<TrainingState> {
    load_file(&TensorFile::open(path)?, device, model, optimizer)
}

/// [`load`] from a safetensors file already read and validated (e.g. held in memory with
/// [`TensorFile::from_bytes`]): the same checks, the same all-or-nothing update.
pub fn load_file(
    file: &TensorFile,
    device: &Device,
    model: &dyn Module,
    optimizer: Option<&mut dyn Optimizer>,
) -> Result<TrainingState> {
    let path = file.path();
    let meta = file.metadata();
    let bad = |key: &str, value: &str, reason: String| NnError::BadMetadata {
        path: path.to_path_buf(),
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };

    let entries = named_state(model)?;
    let mut expected: Vec<(String, BufferKind, Vec<usize>)> = entries
        .iter()
        .map(|(n, e)| (n.clone(), e.kind(), e.dims()))
        .collect();
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
        expected.extend(opt.state_tensors().into_iter().map(|(n, t)| {
            (
                format!("{OPTIM_PREFIX}{n}"),
                BufferKind::F32,
                t.dims().to_vec(),
            )
        }));
    }

    let mut mismatches = Mismatches::default();
    for (name, kind, dims) in &expected {
        if !file.contains(name) {
            mismatches.missing.push(name.clone());
            continue;
        }
        let dtype = file.dtype(name)?;
        let (fits, want) = match kind {
            BufferKind::F32 => (dtype == "F32" || dtype == "F16", "F32 or F16"),
            BufferKind::I64 => (dtype == "I64", "I64"),
        };
        if !fits {
            mismatches
                .wrong_dtype
                .push((name.clone(), dtype, want.to_string()));
        } else if file.dims(name)? != dims.as_slice() {
            mismatches
                .misshaped
                .push((name.clone(), dims.clone(), file.dims(name)?.to_vec()));
        }
    }
    for name in file.names() {
        let known = expected.iter().any(|(n, _, _)| n == name);
        let ignored = optimizer.is_none() && name.starts_with(OPTIM_PREFIX);
        if !known && !ignored {
            mismatches.unexpected.push(name.to_string());
        }
    }
    if !mismatches.is_empty() {
        return Err(NnError::StateMismatch {
            source_name: path.display().to_string(),
            mismatches: Box::new(mismatches),
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

    // Read and upload everything before changing anything.
    let mut model_values = Vec::with_capacity(entries.len());
    for (name, entry) in &entries {
        model_values.push(match entry.kind() {
            BufferKind::F32 => LoadValue::F32(device.upload_owned(file.tensor(name)?)?),
            BufferKind::I64 => match file.i64(name)?.1.as_slice() {
                [v] => LoadValue::I64(*v),
                other => {
                    return Err(crate::error::invalid(
                        "checkpoint",
                        format!("{name}: an int64 buffer holds one value, found {other:?}"),
                    ));
                }
            },
        });
    }
    if let Some(opt) = optimizer {
        let mut tensors = BTreeMap::<String, DeviceTensor>::new();
        for (name, _, _) in &expected {
            if let Some(short) = name.strip_prefix(OPTIM_PREFIX)
                && !entries.iter().any(|(n, _)| n == name)
            {
                tensors.insert(short.to_string(), device.upload_owned(file.tensor(name)?)?);
            }
        }
        let opt_meta: BTreeMap<String, String> = meta
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(OPTIM_PREFIX)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        opt.load_state(&tensors, &opt_meta)?;
    }
    for ((_, entry), value) in entries.iter().zip(model_values) {
        entry.store(value)?;
    }
    for (name, s) in module_rngs {
        model.set_rng_state(&name, s);
    }
    Ok(state)
}
