//! Matrix product with optional transposes and bias (`shaders/matmul.wgsl`): barrier-free
//! 8 × 8 register blocking.

use super::{MatmulKernels, gpu_tiled};
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::{consts, w};
use crate::ops::activation::gpu::{act_const, with_activation_fns};
use crate::{Activation, GpuKernels, MatmulGeometry};
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "matmul.wgsl",
    source: with_activation_fns!("../../../shaders/matmul.wgsl"),
};

const RM: usize = 8;
const RN: usize = 8;

/// `c = act(op(a) · op(b) (+ bias))`.
fn matmul(
    ctx: &GpuContext,
    g: &MatmulGeometry,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    act: Option<Activation>,
) -> Result<GpuBuffer> {
    let c = ctx.alloc("matmul", g.m * g.n)?;
    let nblk = g.n.div_ceil(RN);
    let total = g.m.div_ceil(RM) * nblk;
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "matmul",
        consts: consts(&[
            ("TA", usize::from(g.spec.trans_a)),
            ("TB", usize::from(g.spec.trans_b)),
            ("RM", RM),
            ("RN", RN),
            act_const(act),
        ]),
        params: &[
            w(g.m),
            w(g.n),
            w(g.k),
            u32::from(bias.is_some()),
            w(nblk),
            w(total),
        ],
        bindings: &[(1, a), (2, b), (3, bias.unwrap_or(a)), (4, &c)],
        invocations: total as u64,
        workgroup: 64,
    })?;
    Ok(c)
}

impl MatmulKernels for Arc<GpuContext> {
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        act: Option<Activation>,
    ) -> Result<DeviceTensor> {
        const OP: &str = "matmul";
        let bb = bias.map(|t| t.gpu(self, OP)).transpose()?;
        let (a, b) = (a.gpu(self, OP)?, b.gpu(self, OP)?);
        let c = match self.kernels() {
            GpuKernels::Tiled => gpu_tiled::matmul(self, g, a, b, bb, act)?,
            _ => matmul(self, g, a, b, bb, act)?,
        };
        Ok(DeviceTensor::from_gpu(self, Shape::new(&[g.m, g.n])?, c))
    }
}
