//! Mean softmax cross-entropy over a batch, fused with its gradient.

use crate::error::Result;
use crate::tape::{BackwardFn, UnitBackwardFn, Var, op_err};
use conv_kernels::{Device, DeviceTensor, IndexTensor};

/// What [`Var::cross_entropy`] returns.
#[derive(Clone, Debug)]
pub struct CrossEntropy {
    /// The mean loss, a one-element variable to call `backward` on.
    pub loss: Var,
    /// How many rows had the label as their arg-max, a one-element tensor on the device.
    pub correct: DeviceTensor,
}

impl Var {
    /// Mean cross-entropy of these `[n, classes]` logits against `labels` (PyTorch
    /// `F.cross_entropy`, reduction `mean`), with the count of correct predictions.
    pub fn cross_entropy(&self, labels: &IndexTensor) -> Result<CrossEntropy> {
        const OP: &str = "cross_entropy";
        let dev = self.device();
        let labels_shape = tensor::Shape::new(&[labels.len()])?;
        let tape = self.tape();
        // Under `no_grad` (or for untracked logits) no gradient is computed at all.
        let want_grad = tape.tracks(&[self]);
        let out = dev
            .softmax_cross_entropy(self.value(), labels, want_grad)
            .map_err(op_err(
                OP,
                &[("logits", self.shape()), ("labels", &labels_shape)],
            ))?;
        let backward = out.grad_logits.clone().map(|grad| {
            let unit_grad = grad.clone();
            // Scaled by the upstream scalar on the device: nothing is read back. When the loss
            // is the root of `backward()` that scalar is one and the gradient is handed out as
            // it is.
            let scaled = Box::new(move |dev: &Device, g: &DeviceTensor| {
                Ok(vec![Some(dev.scale_by(&grad, g)?)])
            }) as BackwardFn;
            let unit = Box::new(move || vec![Some(unit_grad)]) as UnitBackwardFn;
            (scaled, Some(unit))
        });
        Ok(CrossEntropy {
            loss: tape.record_with_unit(&[self], out.loss, backward),
            correct: out.correct,
        })
    }
}
