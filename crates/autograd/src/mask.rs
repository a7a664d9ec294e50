//! Masked scaling `y = x ⊙ [mask > 0] · scale`: the core of dropout.
//!
//! The device API has no element-wise product, so this runs ReLU's backward kernel, which is
//! exactly `grad · [y > 0]`, with the mask in the role of `y`. It stays on the device.

use crate::error::{AutogradError, Result};
use crate::tape::{BackwardFn, Var};
use conv_kernels::{Activation, Device, DeviceTensor};

fn masked(dev: &Device, x: &DeviceTensor, mask: &DeviceTensor, scale: f32) -> Result<DeviceTensor> {
    let kept = dev.activation_backward(mask, x, Activation::Relu)?;
    Ok(if scale == 1.0 {
        kept
    } else {
        dev.scale(&kept, scale)?
    })
}

impl Var {
    /// Keeps the elements where `mask` is positive, multiplied by `scale`, and zeroes the rest.
    pub fn masked_scale(&self, mask: &DeviceTensor, scale: f32) -> Result<Var> {
        if mask.shape() != self.shape() {
            return Err(AutogradError::ShapeMismatch {
                op: "masked_scale",
                what: "shapes must be equal".into(),
                left_name: "input",
                left: self.shape().to_string(),
                right_name: "mask",
                right: mask.shape().to_string(),
            });
        }
        let dev = self.device();
        let y = masked(&dev, self.value(), mask, scale)?;
        let tape = self.tape();
        let backward = tape.tracks(&[self]).then(|| {
            let mask = mask.clone();
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                Ok(vec![Some(masked(dev, g, &mask, scale)?)])
            }) as BackwardFn
        });
        Ok(tape.record(&[self], y, backward))
    }
}
