use crate::error::{Result, invalid};
use crate::module::{Module, ModuleVisitor};
use crate::summary::LayerInfo;
use autograd::Var;

/// Flattens every axis from the second on (`nn.Flatten()`): `[n, ...] -> [n, prod(...)]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        Ok(x.flatten(1)?)
    }
    fn visit(&self, _: &mut dyn ModuleVisitor) {}
    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for Flatten {
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        match input {
            [] => Err(invalid("Flatten", "cannot flatten a rank-0 input")),
            [n, rest @ ..] => Ok(vec![*n, rest.iter().product()]),
        }
    }
}

/// Views the input with new dimensions, at most one of them `-1` (d2l's `Reshape`, i.e.
/// `x.view(-1, 1, 28, 28)`); no copy, no parameters.
#[derive(Clone, Debug)]
pub struct Reshape {
    /// Target dimensions; `-1` is inferred from the element count.
    pub dims: Vec<i64>,
}

impl Reshape {
    /// A reshape to `dims` (one may be `-1`).
    pub fn new(dims: &[i64]) -> Self {
        Self {
            dims: dims.to_vec(),
        }
    }
}

impl Module for Reshape {
    fn kind(&self) -> &'static str {
        "Reshape"
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        let dims = resolve_dims("Reshape", &self.dims, x.value().numel())?;
        Ok(x.reshape(&dims)?)
    }
    fn visit(&self, _: &mut dyn ModuleVisitor) {}
    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for Reshape {
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        resolve_dims("Reshape", &self.dims, input.iter().product())
    }
}

/// Resolves a shape with at most one `-1` against an element count (PyTorch `view`).
fn resolve_dims(what: &'static str, dims: &[i64], numel: usize) -> Result<Vec<usize>> {
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
