//! Max and average pooling (PyTorch defaults: `ceil_mode=False`, `count_include_pad=True`).

use crate::error::Result;
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{Device, DeviceTensor, Pool2dSpec, PoolKind};

impl Var {
    /// Pools this `[n, c, h, w]` input.
    pub fn pool2d(&self, spec: &Pool2dSpec) -> Result<Var> {
        let op = spec.op_name();
        let dev = self.device();
        let out = dev
            .pool2d(self.value(), spec)
            .map_err(op_err(op, &[("input", self.shape())]))?;
        let tape = self.tape();
        let backward = tape.tracks(&[self]).then(|| {
            let (dims, spec, argmax) = (self.dims().to_vec(), *spec, out.argmax.clone());
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                Ok(vec![Some(dev.pool2d_backward(
                    &dims,
                    g,
                    argmax.as_ref(),
                    &spec,
                )?)])
            }) as BackwardFn
        });
        Ok(tape.record(&[self], out.output, backward))
    }

    /// Max pooling with a square window (`nn.MaxPool2d(kernel, stride, padding)`).
    pub fn max_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Var> {
        self.pool2d(&Pool2dSpec::new(PoolKind::Max, kernel, stride, padding))
    }

    /// Average pooling with a square window (`nn.AvgPool2d(kernel, stride, padding)`).
    pub fn avg_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Var> {
        self.pool2d(&Pool2dSpec::new(PoolKind::Avg, kernel, stride, padding))
    }
}
