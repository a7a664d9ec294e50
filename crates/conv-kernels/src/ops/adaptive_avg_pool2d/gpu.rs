//! Adaptive average pooling on the GPU (`shaders/adaptive_avg_pool2d.wgsl`): one invocation per
//! output element forward, one per input element backward (a gather, no atomics).

use super::AdaptiveAvgPool2dKernels;
use super::spec::AdaptiveAvgPool2dGeometry;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::{consts, w};
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "adaptive_avg_pool2d.wgsl",
    source: include_str!("../../../shaders/adaptive_avg_pool2d.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// Runs `entry` over `total` invocations reading binding 1 and writing binding 2.
fn run(
    ctx: &Arc<GpuContext>,
    g: &AdaptiveAvgPool2dGeometry,
    entry: &'static str,
    src: &DeviceTensor,
    out_dims: [usize; 4],
) -> Result<DeviceTensor> {
    const OP: &str = "adaptive_avg_pool2d";
    let shape = Shape::new(&out_dims)?;
    let total = shape.numel();
    let dst = ctx.alloc(OP, total)?;
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry,
        consts: consts(&[("IH", g.h), ("IW", g.w), ("OH", g.oh), ("OW", g.ow)]),
        params: &[w(total), 0, 0, 0],
        bindings: &[(1, src.gpu(ctx, OP)?), (2, &dst)],
        invocations: total as u64,
        workgroup: 64,
    })?;
    Ok(DeviceTensor::from_gpu(ctx, shape, dst))
}

impl AdaptiveAvgPool2dKernels for Arc<GpuContext> {
    fn adaptive_avg_pool2d(
        &self,
        g: &AdaptiveAvgPool2dGeometry,
        x: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        run(self, g, "forward", x, g.output_dims())
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        g: &AdaptiveAvgPool2dGeometry,
        grad_y: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        run(self, g, "backward", grad_y, g.input_dims())
    }
}
