//! Element-wise arithmetic (`shaders/elementwise.wgsl`).

use super::context::{Dispatch, GpuContext};
use super::pipeline::Shader;
use super::pool::GpuBuffer;
use super::w;
use crate::error::Result;

static SHADER: Shader = Shader {
    name: "elementwise.wgsl",
    source: include_str!("../../../../shaders/elementwise.wgsl"),
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
pub(crate) fn axpby(
    ctx: &GpuContext,
    a: &GpuBuffer,
    b: &GpuBuffer,
    alpha: f32,
) -> Result<GpuBuffer> {
    let dst = ctx.alloc("add", a.len)?;
    run(ctx, "axpby", a.len, alpha, &[(1, a), (2, b), (3, &dst)])?;
    Ok(dst)
}

/// `acc += alpha * x` in place.
pub(crate) fn axpy_inplace(
    ctx: &GpuContext,
    acc: &GpuBuffer,
    x: &GpuBuffer,
    alpha: f32,
) -> Result<()> {
    run(ctx, "axpy_inplace", acc.len, alpha, &[(1, x), (3, acc)])
}

/// `alpha * x` into a new buffer.
pub(crate) fn scale(ctx: &GpuContext, x: &GpuBuffer, alpha: f32) -> Result<GpuBuffer> {
    let dst = ctx.alloc("scale", x.len)?;
    run(ctx, "scale", x.len, alpha, &[(1, x), (3, &dst)])?;
    Ok(dst)
}

/// `x * s[0]` into a new buffer.
pub(crate) fn scale_by(ctx: &GpuContext, x: &GpuBuffer, s: &GpuBuffer) -> Result<GpuBuffer> {
    let dst = ctx.alloc("scale_by", x.len)?;
    run(ctx, "scale_by", x.len, 0.0, &[(1, x), (2, s), (3, &dst)])?;
    Ok(dst)
}

/// Overwrites `dst` with `value`.
pub(crate) fn fill(ctx: &GpuContext, dst: &GpuBuffer, value: f32) -> Result<()> {
    run(ctx, "fill", dst.len, value, &[(3, dst)])
}
