//! 2-D convolution (PyTorch `F.conv2d`) with an optional fused bias and activation.

use crate::error::Result;
use crate::tape::{Var, op_err};
use conv_kernels::{Activation, Conv2dSpec};

impl Var {
    /// Convolves this `[n, c_in, h, w]` input with `weight` `[c_out, c_in/groups, kh, kw]`
    /// and adds `bias` `[c_out]` when given.
    pub fn conv2d(&self, weight: &Var, bias: Option<&Var>, spec: &Conv2dSpec) -> Result<Var> {
        self.conv2d_activation(weight, bias, spec, None)
    }

    /// `act(conv2d(self, weight, bias))` as one op: the activation is fused into the
    /// convolution's output (no intermediate tensor) and its derivative into the backward
    /// pass; `None` is [`Var::conv2d`].
    pub fn conv2d_activation(
        &self,
        weight: &Var,
        bias: Option<&Var>,
        spec: &Conv2dSpec,
        act: Option<Activation>,
    ) -> Result<Var> {
        const OP: &str = "conv2d";
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        self.check_tapes(OP, &inputs)?;
        let dev = self.device();
        let mut shapes = vec![("input", self.shape()), ("weight", weight.shape())];
        if let Some(b) = bias {
            shapes.push(("bias", b.shape()));
        }
        let y = dev
            .conv2d_activation(
                self.value(),
                weight.value(),
                bias.map(Var::value),
                spec,
                act,
            )
            .map_err(op_err(OP, &shapes))?;
        let tape = self.tape();
        let backward = tape.tracks(&inputs).then(|| {
            let (x, w, spec) = (self.value().clone(), weight.value().clone(), *spec);
            // The output is kept only when the activation's derivative needs it.
            let out = act.map(|a| (a, y.clone()));
            // Only the gradients of tracked inputs are computed (burn's pattern).
            let wanted = conv_kernels::GradsWanted {
                input: self.requires_grad(),
                weight: weight.requires_grad(),
                bias: bias.is_some_and(Var::requires_grad),
            };
            let has_bias = bias.is_some();
            Box::new(
                move |dev: &conv_kernels::Device, g: &conv_kernels::DeviceTensor| {
                    let activation = out.as_ref().map(|(a, y)| (*a, y));
                    let grads =
                        dev.conv2d_activation_backward(&x, &w, g, &spec, activation, wanted)?;
                    let mut out = vec![grads.input, grads.weight];
                    if has_bias {
                        out.push(grads.bias);
                    }
                    Ok(out)
                },
            ) as crate::tape::BackwardFn
        });
        Ok(tape.record(&inputs, y, backward))
    }
}
