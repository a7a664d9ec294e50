//! A convolution with a fused activation followed by pooling, as one op (LeNet's conv → sigmoid
//! → average pool, conv → ReLU → max pool): backward takes the pooling's and the activation's
//! gradients in one pass over each plane (`Device::pool2d_activation_backward`) instead of
//! writing the pooling's gradient out and reading it back.

use crate::conv2d::{ConvInputs, conv_grads};
use crate::error::Result;
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{Activation, Conv2dSpec, Device, DeviceTensor, Pool2dSpec};

impl Var {
    /// `pool(act(conv2d(self, weight, bias)))` as one op: the same values and gradients as the
    /// three ops one after the other ([`Var::conv2d_activation`], then [`Var::pool2d`]).
    pub fn conv2d_activation_pool2d(
        &self,
        weight: &Var,
        bias: Option<&Var>,
        spec: &Conv2dSpec,
        act: Activation,
        pool: &Pool2dSpec,
    ) -> Result<Var> {
        let conv = ConvInputs::new(self, weight, bias)?;
        let dev = self.device();
        let y = dev
            .conv2d_activation(
                self.value(),
                weight.value(),
                bias.map(Var::value),
                spec,
                Some(act),
            )
            .map_err(op_err("conv2d", &conv.shapes))?;
        let pooled = dev
            .pool2d(&y, pool)
            .map_err(op_err(pool.op_name(), &[("input", y.shape())]))?;
        let tape = self.tape();
        let backward = tape.tracks(&conv.inputs).then(|| {
            let (x, w, spec, pool) = (self.value().clone(), weight.value().clone(), *spec, *pool);
            let (wanted, has_bias, argmax) = (conv.wanted(), bias.is_some(), pooled.argmax);
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                let grad_z = dev.pool2d_activation_backward(&y, g, argmax.as_ref(), &pool, act)?;
                let grads = dev.conv2d_backward(&x, &w, &grad_z, &spec, wanted)?;
                Ok(conv_grads(grads, has_bias))
            }) as BackwardFn
        });
        Ok(tape.record(&conv.inputs, pooled.output, backward))
    }
}
