//! Deterministic sums (`shaders/reduce.wgsl`): contiguous row sums and sums over a leading axis
//! (also used by conv2d's weight gradient and cross-entropy's row results). A sum over the
//! leading axis of rows of a multiple of four reads whole vec4s, through textures where the
//! context reads operands so.

use super::ReduceKernels;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::texture_operands::read_consts;
use crate::gpu::w;
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "reduce.wgsl",
    source: include_str!("../../../shaders/reduce.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[5],
};

/// How a sum over the leading axis reads `x`: the entry point (`scalar` or its vec4 form), its
/// constants, where `x` is bound and how many invocations run.
struct OuterLaunch {
    entry: &'static str,
    consts: Vec<(&'static str, usize)>,
    x_binding: u32,
    invocations: usize,
}

impl OuterLaunch {
    /// Whole vec4s (from storage or a texture) when rows are a multiple of four long, else
    /// one value per load.
    fn of(
        ctx: &GpuContext,
        x: &GpuBuffer,
        len: usize,
        scalar: &'static str,
        vec4: &'static str,
    ) -> Self {
        if len.is_multiple_of(4) {
            let textures = ctx.reads_through_textures(&[x]);
            OuterLaunch {
                entry: vec4,
                consts: read_consts(textures).to_vec(),
                x_binding: if textures { 5 } else { 4 },
                invocations: len / 4,
            }
        } else {
            OuterLaunch {
                entry: scalar,
                consts: Vec::new(),
                x_binding: 1,
                invocations: len,
            }
        }
    }
}

/// `dst[r] = scale * Σ x[offset + r*len .. offset + min((r+1)*len, total)]` for `r < rows`.
pub(crate) fn sum_inner(
    ctx: &GpuContext,
    x: &GpuBuffer,
    offset: usize,
    total: usize,
    len: usize,
    scale: f32,
) -> Result<GpuBuffer> {
    let rows = total.div_ceil(len.max(1)).max(1);
    let dst = ctx.alloc("sum", rows)?;
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "sum_inner",
        consts: Vec::new(),
        params: &[w(rows), w(len), w(total), w(offset), scale.to_bits()],
        bindings: &[(1, x), (2, &dst)],
        invocations: rows as u64,
        workgroup: 64,
    })?;
    Ok(dst)
}

/// `dst[i] = scale * Σ_a x[a*len + i]` for `i < len`, `a < rows`.
pub(crate) fn sum_outer(
    ctx: &GpuContext,
    x: &GpuBuffer,
    rows: usize,
    len: usize,
    scale: f32,
) -> Result<GpuBuffer> {
    let dst = ctx.alloc("sum", len)?;
    let launch = OuterLaunch::of(ctx, x, len, "sum_outer", "sum_outer4");
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: launch.entry,
        consts: launch.consts,
        params: &[w(rows), w(len), 0, 0, scale.to_bits()],
        bindings: &[(launch.x_binding, x), (2, &dst)],
        invocations: launch.invocations as u64,
        workgroup: 64,
    })?;
    Ok(dst)
}

/// [`sum_outer`] (scale 1) written to two buffers: elements `..split` and `split..len` (a
/// weight gradient and its bias gradient summed over chunks by one launch).
pub(crate) fn sum_outer_split(
    ctx: &GpuContext,
    x: &GpuBuffer,
    rows: usize,
    len: usize,
    split: usize,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let (head, tail) = (ctx.alloc("sum", split)?, ctx.alloc("sum", len - split)?);
    let launch = OuterLaunch::of(ctx, x, len, "sum_outer_split", "sum_outer_split4");
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: launch.entry,
        consts: launch.consts,
        params: &[w(rows), w(len), 0, w(split), 1.0f32.to_bits()],
        bindings: &[(launch.x_binding, x), (2, &head), (3, &tail)],
        invocations: launch.invocations as u64,
        workgroup: 64,
    })?;
    Ok((head, tail))
}

/// Sum of all `len` elements into a one-element buffer (tree of 1024-wide row sums).
fn sum_all(ctx: &GpuContext, x: &GpuBuffer, len: usize) -> Result<GpuBuffer> {
    const CHUNK: usize = 1024;
    let mut cur = sum_inner(ctx, x, 0, len, CHUNK, 1.0)?;
    let mut n = len.div_ceil(CHUNK).max(1);
    while n > 1 {
        cur = sum_inner(ctx, &cur, 0, n, CHUNK, 1.0)?;
        n = n.div_ceil(CHUNK);
    }
    Ok(cur)
}

/// `out[c] = Σ_n Σ_hw x[n, c, hw]`: row sums over `hw`, then a sum over the batch.
fn channel_sum(
    ctx: &GpuContext,
    n: usize,
    c: usize,
    hw: usize,
    x: &GpuBuffer,
) -> Result<GpuBuffer> {
    if hw == 1 {
        return sum_outer(ctx, x, n, c, 1.0);
    }
    let rows = sum_inner(ctx, x, 0, n * c * hw, hw, 1.0)?;
    sum_outer(ctx, &rows, n, c, 1.0)
}

impl ReduceKernels for Arc<GpuContext> {
    fn sum(&self, x: &DeviceTensor) -> Result<DeviceTensor> {
        let s = sum_all(self, x.gpu(self, "sum")?, x.numel())?;
        Ok(DeviceTensor::from_gpu(self, Shape::scalar(), s))
    }

    fn channel_sum(&self, n: usize, c: usize, hw: usize, x: &DeviceTensor) -> Result<DeviceTensor> {
        let s = channel_sum(self, n, c, hw, x.gpu(self, "channel_sum")?)?;
        Ok(DeviceTensor::from_gpu(self, Shape::new(&[c])?, s))
    }
}
