//! Reshape and flatten: new dimensions over the same storage, no copy.

use crate::error::{AutogradError, Result};
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{Device, DeviceTensor};

impl Var {
    /// The same elements viewed as `dims` (same element count).
    pub fn reshape(&self, dims: &[usize]) -> Result<Var> {
        let y = self
            .value()
            .reshape(dims)
            .map_err(op_err("reshape", &[("input", self.shape())]))?;
        let tape = self.tape();
        let backward = tape.tracks(&[self]).then(|| {
            let from = self.dims().to_vec();
            Box::new(move |_: &Device, g: &DeviceTensor| Ok(vec![Some(g.reshape(&from)?)]))
                as BackwardFn
        });
        Ok(tape.record(&[self], y, backward))
    }

    /// Flattens every axis from `start_dim` on into one (`torch.flatten(x, start_dim)`).
    pub fn flatten(&self, start_dim: usize) -> Result<Var> {
        let d = self.dims();
        if start_dim >= d.len().max(1) {
            return Err(AutogradError::Invalid {
                op: "flatten",
                reason: format!(
                    "start_dim {start_dim} out of range for shape {}",
                    self.shape()
                ),
            });
        }
        let mut dims = d[..start_dim].to_vec();
        dims.push(d[start_dim..].iter().product());
        self.reshape(&dims)
    }
}
