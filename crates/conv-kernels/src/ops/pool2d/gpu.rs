//! Pooling forward and backward (`shaders/pool2d.wgsl`); backward is a gather over the windows
//! covering each input element.

use super::{Pool2dKernels, PoolOutput};
use crate::device::{DeviceTensor, IndexTensor};
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::texture_operands::read_consts;
use crate::gpu::{consts, w};
use crate::ops::activation::gpu::{act_const, with_activation_fns};
use crate::{Activation, Pool2dGeometry, PoolKind};
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "pool2d.wgsl",
    source: with_activation_fns!("../../../shaders/pool2d.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[13, 14, 15],
};

/// The pooling's constants; `act` is the activation backward multiplies through (none for
/// the forward and plain backward); `textures`: the vector kernels read through textures.
fn spec(g: &Pool2dGeometry, act: Option<Activation>, textures: bool) -> crate::gpu::Consts {
    let s = g.spec;
    let vw = row_vector(g);
    let mut c = consts(&[
        ("KH", s.kernel[0]),
        ("KW", s.kernel[1]),
        ("SH", s.stride[0]),
        ("SW", s.stride[1]),
        ("PH", s.padding[0]),
        ("PW", s.padding[1]),
        ("IH", g.h),
        ("IW", g.w),
        ("OH", g.oh),
        ("OW", g.ow),
        ("NWIN", vw.map_or(1, |vw| vw / s.kernel[1])),
        ("VW", vw.unwrap_or(4)),
        ("V4", usize::from(vw == Some(4))),
        ("V2", usize::from(vw == Some(2))),
        ("MAXP", usize::from(s.kind == PoolKind::Max)),
        act_const(act),
    ]);
    c.extend(read_consts(textures));
    c
}

/// Whether rows can be taken `vw` elements at a time: non-overlapping, unpadded windows whose
/// width divides `vw`, rows a multiple of `vw`.
fn rows_in_vectors(g: &Pool2dGeometry, vw: usize) -> bool {
    let s = g.spec;
    s.stride == s.kernel
        && s.padding == [0, 0]
        && vw.is_multiple_of(s.kernel[1])
        && g.w.is_multiple_of(vw)
}

/// The elements of a row the forward (`pool_fwd_rows`) and backward (`pool_bwd_rows`) take at
/// a time: 4 where [`rows_in_vectors`] allows, else 2 where rows are pairs (seed LeNet's
/// pool2, 10 wide: on llvmpipe both pooling backwards of a profiled seed step against its conv
/// weight gradients, alternating, 0.33-0.36 -> 0.26-0.28; its forward 2.4 -> 0.6 ms), else
/// none (one element per invocation).
fn row_vector(g: &Pool2dGeometry) -> Option<usize> {
    [4, 2].into_iter().find(|&vw| rows_in_vectors(g, vw))
}

/// Pooled output and, for max pooling, the arg-max offsets.
fn forward(
    ctx: &GpuContext,
    g: &Pool2dGeometry,
    x: &GpuBuffer,
) -> Result<(GpuBuffer, Option<GpuBuffer>)> {
    let op = g.spec.op_name();
    let total = g.n * g.c * g.oh * g.ow;
    let y = ctx.alloc(op, total)?;
    let params = [w(g.n * g.c), w(g.h), w(g.w), w(g.oh), w(g.ow), w(total)];
    if let Some(vw) = row_vector(g) {
        let max = g.spec.kind == PoolKind::Max;
        // Average pooling writes no offsets, but the slot is bound: one unused word then.
        let offsets = ctx.alloc(op, if max { total } else { 1 })?;
        let mut params = params;
        params[5] = w(g.n * g.c * g.oh * (g.w / vw));
        let textures = ctx.reads_through_textures(&[x]);
        let x_at = match (textures, vw) {
            (true, _) => 13,
            (false, 4) => 10,
            _ => 16,
        };
        ctx.dispatch(Dispatch {
            shader: &SHADER,
            entry: "pool_fwd_rows",
            consts: spec(g, None, textures),
            params: &params,
            bindings: &[(x_at, x), (2, &y), (3, &offsets)],
            invocations: u64::from(params[5]),
            workgroup: 64,
        })?;
        return Ok((y, max.then_some(offsets)));
    }
    let argmax = match g.spec.kind {
        PoolKind::Max => {
            let a = ctx.alloc(op, total)?;
            ctx.dispatch(Dispatch {
                shader: &SHADER,
                entry: "max_fwd",
                consts: spec(g, None, false),
                params: &params,
                bindings: &[(1, x), (2, &y), (3, &a)],
                invocations: total as u64,
                workgroup: 64,
            })?;
            Some(a)
        }
        PoolKind::Avg => {
            ctx.dispatch(Dispatch {
                shader: &SHADER,
                entry: "avg_fwd",
                consts: spec(g, None, false),
                params: &params,
                bindings: &[(1, x), (2, &y)],
                invocations: total as u64,
                workgroup: 64,
            })?;
            None
        }
    };
    Ok((y, argmax))
}

/// Gradient of the input (`argmax` required for max pooling); with `through`, the gradient at
/// the input of that activation, given its output (the pooling's input), in the same pass.
fn backward(
    ctx: &GpuContext,
    g: &Pool2dGeometry,
    grad_y: &GpuBuffer,
    argmax: Option<&GpuBuffer>,
    through: Option<(Activation, &GpuBuffer)>,
) -> Result<GpuBuffer> {
    let total = g.n * g.c * g.h * g.w;
    let gx = ctx.alloc("pool2d_backward", total)?;
    let params = [w(g.n * g.c), w(g.h), w(g.w), w(g.oh), w(g.ow), w(total)];
    let (entry, a) = match (g.spec.kind, argmax) {
        (PoolKind::Max, Some(a)) => ("max_bwd", a),
        _ => ("avg_bwd", grad_y),
    };
    let act_y = through.map_or(grad_y, |(_, y)| y);
    if let Some(vw) = row_vector(g) {
        let mut params = params;
        params[5] = w(total / vw);
        let textures = ctx.reads_through_textures(&[grad_y, act_y]);
        let (gx_at, act_at) = match (vw, textures) {
            (_, true) => (if vw == 4 { 8 } else { 11 }, 14),
            (4, false) => (8, 9),
            _ => (11, 12),
        };
        ctx.dispatch(Dispatch {
            shader: &SHADER,
            entry: "pool_bwd_rows",
            consts: spec(g, through.map(|(act, _)| act), textures),
            params: &params,
            // Average pooling binds grad_y in the unread arg-max slot.
            bindings: &[
                (if textures { 15 } else { 4 }, grad_y),
                (5, a),
                (gx_at, &gx),
                (act_at, act_y),
            ],
            invocations: (total / vw) as u64,
            workgroup: 64,
        })?;
        return Ok(gx);
    }
    let with_idx = [(4, grad_y), (5, a), (6, &gx), (7, act_y)];
    let without = [(4, grad_y), (6, &gx), (7, act_y)];
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry,
        consts: spec(g, through.map(|(act, _)| act), false),
        params: &params,
        bindings: if entry == "max_bwd" {
            &with_idx
        } else {
            &without
        },
        invocations: total as u64,
        workgroup: 64,
    })?;
    Ok(gx)
}

impl Pool2dKernels for Arc<GpuContext> {
    fn pool2d(&self, g: &Pool2dGeometry, x: &DeviceTensor) -> Result<PoolOutput> {
        let shape = Shape::new(&g.output_dims())?;
        let len = shape.numel();
        let (y, a) = forward(self, g, x.gpu(self, g.spec.op_name())?)?;
        Ok(PoolOutput {
            output: DeviceTensor::from_gpu(self, shape, y),
            argmax: a.map(|a| IndexTensor::from_gpu(self, len, None, a)),
        })
    }

    fn pool2d_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
    ) -> Result<DeviceTensor> {
        const OP: &str = "pool2d_backward";
        let a = argmax.map(|a| a.gpu(self, OP)).transpose()?;
        let gx = backward(self, g, grad_y.gpu(self, OP)?, a, None)?;
        Ok(DeviceTensor::from_gpu(
            self,
            Shape::new(&g.input_dims())?,
            gx,
        ))
    }

    /// One kernel: the pooling's gradient times the activation's derivative (llvmpipe, seed
    /// LeNet: the two layers' 3.8 + 3.3 and 1.5 + 1.3 ms of two kernels become one each).
    fn pool2d_activation_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
        act: Activation,
        y: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        const OP: &str = "pool2d_activation_backward";
        let a = argmax.map(|a| a.gpu(self, OP)).transpose()?;
        let y = y.gpu(self, OP)?;
        let gz = backward(self, g, grad_y.gpu(self, OP)?, a, Some((act, y)))?;
        Ok(DeviceTensor::from_gpu(
            self,
            Shape::new(&g.input_dims())?,
            gz,
        ))
    }
}
