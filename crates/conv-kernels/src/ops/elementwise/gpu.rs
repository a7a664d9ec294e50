//! Element-wise arithmetic (`shaders/elementwise.wgsl`).

use super::ElementwiseKernels;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::w;
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "elementwise.wgsl",
    source: include_str!("../../../shaders/elementwise.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

fn run(
    ctx: &GpuContext,
    entry: &'static str,
    len: usize,
    alpha: f32,
    bindings: &[(u32, &GpuBuffer)],
) -> Result<()> {
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry,
        consts: Vec::new(),
        params: &[w(len), alpha.to_bits()],
        bindings,
        invocations: len as u64,
        workgroup: 256,
    })
}

/// `a + alpha * b` into a new buffer.
fn axpby(ctx: &GpuContext, a: &GpuBuffer, b: &GpuBuffer, alpha: f32) -> Result<GpuBuffer> {
    let dst = ctx.alloc("add", a.len)?;
    run(ctx, "axpby", a.len, alpha, &[(1, a), (2, b), (3, &dst)])?;
    Ok(dst)
}

/// `acc += alpha * x` in place.
fn axpy_inplace(ctx: &GpuContext, acc: &GpuBuffer, x: &GpuBuffer, alpha: f32) -> Result<()> {
    run(ctx, "axpy_inplace", acc.len, alpha, &[(1, x), (3, acc)])
}

/// `alpha * x` into a new buffer.
fn scale(ctx: &GpuContext, x: &GpuBuffer, alpha: f32) -> Result<GpuBuffer> {
    let dst = ctx.alloc("scale", x.len)?;
    run(ctx, "scale", x.len, alpha, &[(1, x), (3, &dst)])?;
    Ok(dst)
}

/// `x * s[0]` into a new buffer.
fn scale_by(ctx: &GpuContext, x: &GpuBuffer, s: &GpuBuffer) -> Result<GpuBuffer> {
    let dst = ctx.alloc("scale_by", x.len)?;
    run(ctx, "scale_by", x.len, 0.0, &[(1, x), (2, s), (3, &dst)])?;
    Ok(dst)
}

/// Overwrites `dst` with `value`.
fn fill(ctx: &GpuContext, dst: &GpuBuffer, value: f32) -> Result<()> {
    run(ctx, "fill", dst.len, value, &[(3, dst)])
}

impl ElementwiseKernels for Arc<GpuContext> {
    fn add(&self, a: &DeviceTensor, b: &DeviceTensor) -> Result<DeviceTensor> {
        const OP: &str = "add";
        let c = axpby(self, a.gpu(self, OP)?, b.gpu(self, OP)?, 1.0)?;
        Ok(DeviceTensor::from_gpu(self, a.shape().clone(), c))
    }

    fn add_assign(&self, acc: &mut DeviceTensor, x: &DeviceTensor) -> Result<()> {
        const OP: &str = "add_assign";
        let xb = x.gpu(self, OP)?;
        axpy_inplace(self, acc.gpu_mut(self, OP)?, xb, 1.0)
    }

    fn scale(&self, x: &DeviceTensor, alpha: f32) -> Result<DeviceTensor> {
        let y = scale(self, x.gpu(self, "scale")?, alpha)?;
        Ok(DeviceTensor::from_gpu(self, x.shape().clone(), y))
    }

    fn scale_by(&self, x: &DeviceTensor, s: &DeviceTensor) -> Result<DeviceTensor> {
        const OP: &str = "scale_by";
        let y = scale_by(self, x.gpu(self, OP)?, s.gpu(self, OP)?)?;
        Ok(DeviceTensor::from_gpu(self, x.shape().clone(), y))
    }

    fn fill(&self, x: &mut DeviceTensor, value: f32) -> Result<()> {
        fill(self, x.gpu_mut(self, "fill")?, value)
    }

    fn full(&self, dims: &[usize], value: f32) -> Result<DeviceTensor> {
        let shape = Shape::new(dims)?;
        let buf = self.alloc("full", shape.numel())?;
        fill(self, &buf, value)?;
        Ok(DeviceTensor::from_gpu(self, shape, buf))
    }
}
