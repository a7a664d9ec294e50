//! 2-D batch normalisation (PyTorch `F.batch_norm`): the running statistics are the caller's
//! (a layer's buffers), updated in place in training mode. `batch_norm2d_residual` adds a
//! residual before the activation in the same pass (ResNet's block output).

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
            let wanted = wanted(self, weight, bias);
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                let grads = dev.batch_norm2d_backward(&x, &w, g, &saved, &spec, wanted)?;
                Ok(vec![grads.input, grads.weight, grads.bias])
            }) as BackwardFn
        });
        Ok(tape.record(&inputs, out.output, backward))
    }

    /// `act(batch_norm2d(self) + residual)` with `act` the spec's activation (a residual
    /// block's `relu(bn2(conv2(y)) + shortcut)`), computed in one pass over the output;
    /// `residual` has this input's shape and receives the gradient that reaches the sum.
    pub fn batch_norm2d_residual(
        &self,
        weight: &Var,
        bias: &Var,
        running_mean: &mut DeviceTensor,
        running_var: &mut DeviceTensor,
        residual: &Var,
        spec: &BatchNorm2dSpec,
    ) -> Result<Var> {
        const OP: &str = "batch_norm2d_residual";
        let inputs = [self, weight, bias, residual];
        self.check_tapes(OP, &inputs[1..])?;
        let shapes = [
            ("input", self.shape()),
            ("weight", weight.shape()),
            ("bias", bias.shape()),
            ("residual", residual.shape()),
        ];
        let out = self
            .device()
            .batch_norm2d_residual(
                self.value(),
                weight.value(),
                bias.value(),
                running_mean,
                running_var,
                residual.value(),
                spec,
            )
            .map_err(op_err(OP, &shapes))?;
        let tape = self.tape();
        let backward = tape.tracks(&inputs).then(|| {
            let (x, w, y, saved) = (
                self.value().clone(),
                weight.value().clone(),
                out.output.clone(),
                out.saved,
            );
            let wanted = wanted(self, weight, bias);
            let (act, plain) = (
                spec.activation,
                BatchNorm2dSpec {
                    activation: None,
                    ..*spec
                },
            );
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                // The gradient reaching the sum: both the batch norm's and the residual's.
                let g = match act {
                    Some(a) => dev.activation_backward(&y, g, a)?,
                    None => g.clone(),
                };
                let grads = dev.batch_norm2d_backward(&x, &w, &g, &saved, &plain, wanted)?;
                Ok(vec![grads.input, grads.weight, grads.bias, Some(g)])
            }) as BackwardFn
        });
        Ok(tape.record(&inputs, out.output, backward))
    }
}

/// The gradients a batch-norm backward pass computes: those of the inputs that need one.
fn wanted(x: &Var, weight: &Var, bias: &Var) -> GradsWanted {
    GradsWanted {
        input: x.requires_grad(),
        weight: weight.requires_grad(),
        bias: bias.requires_grad(),
    }
}
