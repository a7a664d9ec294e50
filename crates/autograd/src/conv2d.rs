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
        let conv = ConvInputs::new(self, weight, bias)?;
        let y = self
            .device()
            .conv2d_activation(
                self.value(),
                weight.value(),
                bias.map(Var::value),
                spec,
                act,
            )
            .map_err(op_err(OP, &conv.shapes))?;
        let tape = self.tape();
        let backward = tape.tracks(&conv.inputs).then(|| {
            let (x, w, spec) = (self.value().clone(), weight.value().clone(), *spec);
            // The output is kept only when the activation's derivative needs it.
            let out = act.map(|a| (a, y.clone()));
            let (wanted, has_bias) = (conv.wanted(), bias.is_some());
            Box::new(
                move |dev: &conv_kernels::Device, g: &conv_kernels::DeviceTensor| {
                    let activation = out.as_ref().map(|(a, y)| (*a, y));
                    let grads =
                        dev.conv2d_activation_backward(&x, &w, g, &spec, activation, wanted)?;
                    Ok(conv_grads(grads, has_bias))
                },
            ) as crate::tape::BackwardFn
        });
        Ok(tape.record(&conv.inputs, y, backward))
    }
}

const OP: &str = "conv2d";

/// A convolution's inputs (tapes checked), their shapes for error reports, and which of them
/// want gradients: what every op ending in a convolution starts with.
pub(crate) struct ConvInputs<'a> {
    /// Input, weight, then bias when given.
    pub inputs: Vec<&'a Var>,
    /// Their names and shapes.
    pub shapes: Vec<(&'static str, &'a tensor::Shape)>,
}

impl<'a> ConvInputs<'a> {
    /// Collects and checks the inputs of a convolution.
    pub fn new(x: &'a Var, weight: &'a Var, bias: Option<&'a Var>) -> Result<Self> {
        let mut inputs = vec![x, weight];
        inputs.extend(bias);
        x.check_tapes(OP, &inputs)?;
        let mut shapes = vec![("input", x.shape()), ("weight", weight.shape())];
        if let Some(b) = bias {
            shapes.push(("bias", b.shape()));
        }
        Ok(Self { inputs, shapes })
    }

    /// Only the gradients of tracked inputs are computed (burn's pattern).
    pub fn wanted(&self) -> conv_kernels::GradsWanted {
        conv_kernels::GradsWanted {
            input: self.inputs[0].requires_grad(),
            weight: self.inputs[1].requires_grad(),
            bias: self.inputs.get(2).is_some_and(|b| b.requires_grad()),
        }
    }
}

/// A convolution's gradients in the order of its inputs (the bias's only when it has one).
pub(crate) fn conv_grads(
    grads: conv_kernels::Conv2dGrads,
    has_bias: bool,
) -> Vec<Option<conv_kernels::DeviceTensor>> {
    let mut out = vec![grads.input, grads.weight];
    if has_bias {
        out.push(grads.bias);
    }
    out
}
