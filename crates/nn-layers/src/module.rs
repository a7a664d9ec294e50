//! The [`Module`] trait every layer implements, and per-layer summaries.

use crate::error::{NnError, Result, invalid};
use autograd::{Param, Var};
use conv_kernels::Device;
use std::collections::BTreeMap;
use tensor::{RngState, Tensor};

/// A layer or a model: a forward pass over [`Var`]s plus named parameters.
pub trait Module {
    /// The layer's kind as PyTorch names it (`Conv2d`, `Linear`, `Sigmoid`, ...).
    fn kind(&self) -> &'static str;

    /// Runs the layer on `x`, recording on `x`'s tape.
    fn forward(&self, x: &Var) -> Result<Var>;

    /// The trainable parameters, named as in a PyTorch `state_dict` (`weight`, `1.bias`, ...).
    fn named_parameters(&self) -> Vec<(String, Param)> {
        Vec::new()
    }

    /// Switches between training (the default) and evaluation behaviour (dropout).
    fn set_training(&mut self, _training: bool) {}

    /// The output dimensions for an input of `input` dimensions (no computation).
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>>;

    /// Forward FLOPs for an input of `input` dimensions: multiply-adds count two, element-wise
    /// ops (bias, activation, pooling window) one per element touched.
    fn flops(&self, _input: &[usize]) -> Result<u64> {
        Ok(0)
    }

    /// The sliding window of a conv or pool layer (for the output-size formula), else `None`.
    fn window(&self) -> Option<Window> {
        None
    }

    /// The random-number generators the layer owns (dropout), by name, for checkpoints.
    fn rng_states(&self) -> Vec<(String, RngState)> {
        Vec::new()
    }

    /// Restores a generator saved by [`Module::rng_states`]; false when `name` is not one.
    fn set_rng_state(&self, _name: &str, _state: RngState) -> bool {
        false
    }

    /// Training mode on (PyTorch `train()`).
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Training mode off (PyTorch `eval()`).
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Total number of trainable values.
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, p)| p.numel()).sum()
    }

    /// The parameters copied to the host, by name (PyTorch `state_dict()`).
    fn state_dict(&self, device: &Device) -> Result<BTreeMap<String, Tensor>> {
        self.named_parameters()
            .into_iter()
            .map(|(n, p)| Ok((n, device.to_host(&p.value())?)))
            .collect()
    }

    /// Loads every parameter from `tensors` (PyTorch `load_state_dict(strict=True)`): all
    /// missing, unexpected and mis-shaped names are reported in one error, and nothing is
    /// changed unless everything matches.
    fn load_state_dict(&self, device: &Device, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        let params = self.named_parameters();
        let mut mismatches = crate::error::Mismatches::default();
        for (name, p) in &params {
            match tensors.get(name) {
                None => mismatches.missing.push(name.clone()),
                Some(t) if t.dims() != p.dims().as_slice() => {
                    mismatches
                        .misshaped
                        .push((name.clone(), p.dims(), t.dims().to_vec()))
                }
                Some(_) => {}
            }
        }
        for name in tensors.keys() {
            if !params.iter().any(|(n, _)| n == name) {
                mismatches.unexpected.push(name.clone());
            }
        }
        if !mismatches.is_empty() {
            return Err(NnError::StateMismatch {
                source_name: "state dict".into(),
                mismatches,
            });
        }
        for (name, p) in &params {
            p.set(device.upload(&tensors[name])?)?;
        }
        Ok(())
    }
}

/// One row of a model summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSummary {
    /// The child's name (`"0"`, `"1"`, ...), the prefix of its parameter names.
    pub name: String,
    /// The layer kind (`Conv2d`, ...).
    pub kind: &'static str,
    /// Output dimensions for the summarised input.
    pub output_dims: Vec<usize>,
    /// Trainable values in this layer.
    pub params: usize,
    /// Forward FLOPs for the summarised input (see [`Module::flops`]).
    pub flops: u64,
    /// The conv or pool window, when the layer has one.
    pub window: Option<Window>,
}

/// A conv or pool layer's window settings, each as `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Kernel size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Zeros added on each side.
    pub padding: [usize; 2],
    /// Spacing between kernel taps (1 for pools).
    pub dilation: [usize; 2],
}

/// Resolves a shape with at most one `-1` against an element count (PyTorch `view`).
pub(crate) fn resolve_dims(what: &'static str, dims: &[i64], numel: usize) -> Result<Vec<usize>> {
    let mut unknown = None;
    let mut known = 1usize;
    for (i, &d) in dims.iter().enumerate() {
        match d {
            -1 if unknown.is_none() => unknown = Some(i),
            -1 => return Err(invalid(what, format!("more than one -1 in {dims:?}"))),
            d if d < 0 => return Err(invalid(what, format!("negative size {d} in {dims:?}"))),
            d => known = known.saturating_mul(d as usize),
        }
    }
    let mut out: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
    match unknown {
        Some(i) if known > 0 && numel.is_multiple_of(known) => out[i] = numel / known,
        None if known == numel => {}
        _ => {
            return Err(invalid(
                what,
                format!("cannot view {numel} elements as {dims:?}"),
            ));
        }
    }
    Ok(out)
}
