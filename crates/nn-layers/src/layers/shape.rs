use crate::error::{Result, invalid};
use crate::module::{Module, resolve_dims};
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
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        resolve_dims("Reshape", &self.dims, input.iter().product())
    }
}
