//! Element-wise activations; backward uses the forward output, as the kernels expect.

use crate::error::Result;
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{Activation, Device, DeviceTensor};

impl Var {
    /// Applies `act` element-wise.
    pub fn activation(&self, act: Activation) -> Result<Var> {
        let y = self
            .device()
            .activation(self.value(), act)
            .map_err(op_err(act.op_name(), &[("input", self.shape())]))?;
        let tape = self.tape();
        let backward = tape.tracks(&[self]).then(|| {
            let y = y.clone();
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                Ok(vec![Some(dev.activation_backward(&y, g, act)?)])
            }) as BackwardFn
        });
        Ok(tape.record(&[self], y, backward))
    }

    /// Logistic sigmoid.
    pub fn sigmoid(&self) -> Result<Var> {
        self.activation(Activation::Sigmoid)
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Result<Var> {
        self.activation(Activation::Relu)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Var> {
        self.activation(Activation::Tanh)
    }
}
