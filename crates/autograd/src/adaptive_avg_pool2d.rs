//! Adaptive average pooling (PyTorch `F.adaptive_avg_pool2d`); `[1, 1]` is global average
//! pooling.

use crate::error::Result;
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{AdaptiveAvgPool2dSpec, Device, DeviceTensor};

impl Var {
    /// Averages this `[n, c, h, w]` input over PyTorch's adaptive windows to
    /// `[n, c, oh, ow]`.
    pub fn adaptive_avg_pool2d(&self, spec: &AdaptiveAvgPool2dSpec) -> Result<Var> {
        const OP: &str = "adaptive_avg_pool2d";
        let y = self
            .device()
            .adaptive_avg_pool2d(self.value(), spec)
            .map_err(op_err(OP, &[("input", self.shape())]))?;
        let tape = self.tape();
        let backward = tape.tracks(&[self]).then(|| {
            let (dims, spec) = (self.dims().to_vec(), *spec);
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                Ok(vec![Some(
                    dev.adaptive_avg_pool2d_backward(&dims, g, &spec)?,
                )])
            }) as BackwardFn
        });
        Ok(tape.record(&[self], y, backward))
    }

    /// Global average pooling: `[n, c, h, w]` to `[n, c, 1, 1]`.
    pub fn global_avg_pool2d(&self) -> Result<Var> {
        self.adaptive_avg_pool2d(&AdaptiveAvgPool2dSpec::GLOBAL)
    }
}
