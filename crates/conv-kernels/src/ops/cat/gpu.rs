//! Concatenation on the GPU (`shaders/cat.wgsl`): one strided row-copy dispatch per input.

use super::CatKernels;
use super::spec::CatGeometry;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::w;
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "cat.wgsl",
    source: include_str!("../../../shaders/cat.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// `dst[r * d_stride + d_off + j] = src[r * s_stride + s_off + j]` for `r < rows`, `j < len`.
fn copy_rows(
    ctx: &GpuContext,
    rows: usize,
    len: usize,
    src: (&GpuBuffer, usize, usize),
    dst: (&GpuBuffer, usize, usize),
) -> Result<()> {
    let total = rows * len;
    if total == 0 {
        return Ok(());
    }
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "copy_rows",
        consts: Vec::new(),
        params: &[
            w(total),
            w(len),
            w(src.1),
            w(src.2),
            w(dst.1),
            w(dst.2),
            0,
            0,
        ],
        bindings: &[(1, src.0), (2, dst.0)],
        invocations: total as u64,
        workgroup: 256,
    })
}

impl CatKernels for Arc<GpuContext> {
    fn cat(&self, g: &CatGeometry, inputs: &[&DeviceTensor]) -> Result<DeviceTensor> {
        let shape = Shape::new(&g.output_dims)?;
        let out = self.alloc("cat", shape.numel())?;
        let stride = g.output_inner();
        for (i, x) in inputs.iter().enumerate() {
            let src = (x.gpu(self, "cat")?, g.inner[i], 0);
            copy_rows(self, g.outer, g.inner[i], src, (&out, stride, g.offset(i)))?;
        }
        Ok(DeviceTensor::from_gpu(self, shape, out))
    }

    fn cat_backward(&self, g: &CatGeometry, grad_y: &DeviceTensor) -> Result<Vec<DeviceTensor>> {
        const OP: &str = "cat_backward";
        let gy = grad_y.gpu(self, OP)?;
        let stride = g.output_inner();
        (0..g.inner.len())
            .map(|i| {
                let shape = Shape::new(&g.input_dims[i])?;
                let gx = self.alloc(OP, shape.numel())?;
                let dst = (&gx, g.inner[i], 0);
                copy_rows(self, g.outer, g.inner[i], (gy, stride, g.offset(i)), dst)?;
                Ok(DeviceTensor::from_gpu(self, shape, gx))
            })
            .collect()
    }
}
