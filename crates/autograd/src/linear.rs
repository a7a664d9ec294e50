//! Fully connected layer `y = x · Wᵀ + b` (PyTorch `F.linear`).

use crate::error::{AutogradError, Result};
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{Activation, Device, DeviceTensor};

impl Var {
    /// `x · Wᵀ + b` for this `[n, in]` input, `weight` `[out, in]` and `bias` `[out]`.
    pub fn linear(&self, weight: &Var, bias: Option<&Var>) -> Result<Var> {
        self.linear_activation(weight, bias, None)
    }

    /// `act(linear(self, weight, bias))` as one op: the activation is fused into the product's
    /// output and its derivative into the backward pass; `None` is [`Var::linear`].
    pub fn linear_activation(
        &self,
        weight: &Var,
        bias: Option<&Var>,
        act: Option<Activation>,
    ) -> Result<Var> {
        const OP: &str = "linear";
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        self.check_tapes(OP, &inputs)?;
        let (xd, wd) = (self.dims(), weight.dims());
        if xd.len() != 2 || wd.len() != 2 || xd[1] != wd[1] {
            return Err(AutogradError::ShapeMismatch {
                op: OP,
                what: "expected input [n, in] and weight [out, in]".into(),
                left_name: "input",
                left: self.shape().to_string(),
                right_name: "weight",
                right: weight.shape().to_string(),
            });
        }
        let mut shapes = vec![("input", self.shape()), ("weight", weight.shape())];
        if let Some(b) = bias {
            shapes.push(("bias", b.shape()));
        }
        let dev = self.device();
        let y = dev
            .linear_activation(self.value(), weight.value(), bias.map(Var::value), act)
            .map_err(op_err(OP, &shapes))?;
        let tape = self.tape();
        let backward = tape.tracks(&inputs).then(|| {
            let (x, w) = (self.value().clone(), weight.value().clone());
            // The output is kept only when the activation's derivative needs it.
            let out = act.map(|a| (a, y.clone()));
            // Only the gradients of tracked inputs are computed (burn's pattern).
            let wanted = conv_kernels::GradsWanted {
                input: self.requires_grad(),
                weight: weight.requires_grad(),
                bias: bias.is_some_and(Var::requires_grad),
            };
            let has_bias = bias.is_some();
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                let activation = out.as_ref().map(|(a, y)| (*a, y));
                let grads = dev.linear_activation_backward(&x, &w, g, activation, wanted)?;
                let mut out = vec![grads.input, grads.weight];
                if has_bias {
                    out.push(grads.bias);
                }
                Ok(out)
            }) as BackwardFn
        });
        Ok(tape.record(&inputs, y, backward))
    }
}
