//! Dropout with its mask drawn on the device from a seed (see `conv_kernels::DropoutSpec`):
//! the backward pass applies the same mask to the gradient by reusing the seed.

use crate::error::Result;
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{Device, DeviceTensor, DropoutSpec};

impl Var {
    /// Zeroes each element with probability `spec.p` and scales the rest by `1 / (1 - p)`,
    /// with the mask keyed by `spec.seed`.
    pub fn dropout(&self, spec: &DropoutSpec) -> Result<Var> {
        const OP: &str = "dropout";
        let y = self
            .device()
            .dropout(self.value(), spec)
            .map_err(op_err(OP, &[("input", self.shape())]))?;
        let tape = self.tape();
        let backward = tape.tracks(&[self]).then(|| {
            let spec = *spec;
            Box::new(move |dev: &Device, g: &DeviceTensor| Ok(vec![Some(dev.dropout(g, &spec)?)]))
                as BackwardFn
        });
        Ok(tape.record(&[self], y, backward))
    }
}
