//! 2-D batch normalisation (PyTorch `F.batch_norm`): the running statistics are the caller's
//! (a layer's buffers), updated in place in training mode.

use crate::error::Result;
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{BatchNorm2dSpec, Device, DeviceTensor, GradsWanted};

impl Var {
    /// Normalises this `[n, c, h, w]` input per channel, then scales by `weight` and shifts by
    /// `bias` (both `[c]`); training mode (`spec.training`) uses the batch's statistics and
    /// updates `running_mean` / `running_var`, eval mode uses them.
    pub fn batch_norm2d(
        &self,
        weight: &Var,
        bias: &Var,
        running_mean: &mut DeviceTensor,
        running_var: &mut DeviceTensor,
        spec: &BatchNorm2dSpec,
    ) -> Result<Var> {
        const OP: &str = "batch_norm2d";
        let inputs = [self, weight, bias];
        self.check_tapes(OP, &inputs[1..])?;
        let shapes = [
            ("input", self.shape()),
            ("weight", weight.shape()),
            ("bias", bias.shape()),
        ];
        let out = self
            .device()
            .batch_norm2d(
                self.value(),
                weight.value(),
                bias.value(),
                running_mean,
                running_var,
                spec,
            )
            .map_err(op_err(OP, &shapes))?;
        let tape = self.tape();
        let backward = tape.tracks(&inputs).then(|| {
            let (x, w, saved, spec) = (
                self.value().clone(),
                weight.value().clone(),
                out.saved,
                *spec,
            );
            let wanted = GradsWanted {
                input: self.requires_grad(),
                weight: weight.requires_grad(),
                bias: bias.requires_grad(),
            };
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                let grads = dev.batch_norm2d_backward(&x, &w, g, &saved, &spec, wanted)?;
                Ok(vec![grads.input, grads.weight, grads.bias])
            }) as BackwardFn
        });
        Ok(tape.record(&inputs, out.output, backward))
    }
}
