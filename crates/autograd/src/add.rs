//! Element-wise sum and scaling by a constant.

use crate::error::{AutogradError, Result};
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{Device, DeviceTensor};

impl Var {
    /// `self + other`, element-wise; both must have the same shape.
    pub fn add(&self, other: &Var) -> Result<Var> {
        const OP: &str = "add";
        self.check_tapes(OP, &[other])?;
        if self.shape() != other.shape() {
            return Err(AutogradError::ShapeMismatch {
                op: OP,
                what: "shapes must be equal".into(),
                left_name: "left",
                left: self.shape().to_string(),
                right_name: "right",
                right: other.shape().to_string(),
            });
        }
        let y = self
            .device()
            .add(self.value(), other.value())
            .map_err(op_err(
                OP,
                &[("left", self.shape()), ("right", other.shape())],
            ))?;
        let tape = self.tape();
        let backward = tape.tracks(&[self, other]).then(|| {
            Box::new(move |_: &Device, g: &DeviceTensor| Ok(vec![Some(g.clone()), Some(g.clone())]))
                as BackwardFn
        });
        Ok(tape.record(&[self, other], y, backward))
    }

    /// `alpha * self`.
    pub fn scale(&self, alpha: f32) -> Result<Var> {
        let y = self.device().scale(self.value(), alpha)?;
        let tape = self.tape();
        let backward = tape.tracks(&[self]).then(|| {
            Box::new(move |dev: &Device, g: &DeviceTensor| Ok(vec![Some(dev.scale(g, alpha)?)]))
                as BackwardFn
        });
        Ok(tape.record(&[self], y, backward))
    }
}
