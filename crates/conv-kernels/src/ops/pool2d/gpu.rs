//! Pooling forward and backward (`shaders/pool2d.wgsl`); backward is a gather over the windows
//! covering each input element.

use super::{Pool2dKernels, PoolOutput};
use crate::device::{DeviceTensor, IndexTensor};
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::{consts, w};
use crate::ops::activation::ActivationKernels;
use crate::{Activation, Pool2dGeometry, PoolKind};
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "pool2d.wgsl",
    source: include_str!("../../../shaders/pool2d.wgsl"),
    uniform_bindings: &[],
};

fn spec(g: &Pool2dGeometry) -> crate::gpu::Consts {
    let s = g.spec;
    consts(&[
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
    ])
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
    let argmax = match g.spec.kind {
        PoolKind::Max => {
            let a = ctx.alloc(op, total)?;
            ctx.dispatch(Dispatch {
                shader: &SHADER,
                entry: "max_fwd",
                consts: spec(g),
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
                consts: spec(g),
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

/// Gradient of the input (`argmax` required for max pooling).
fn backward(
    ctx: &GpuContext,
    g: &Pool2dGeometry,
    grad_y: &GpuBuffer,
    argmax: Option<&GpuBuffer>,
) -> Result<GpuBuffer> {
    let total = g.n * g.c * g.h * g.w;
    let gx = ctx.alloc("pool2d_backward", total)?;
    let params = [w(g.n * g.c), w(g.h), w(g.w), w(g.oh), w(g.ow), w(total)];
    let (entry, a) = match (g.spec.kind, argmax) {
        (PoolKind::Max, Some(a)) => ("max_bwd", a),
        _ => ("avg_bwd", grad_y),
    };
    let with_idx = [(4, grad_y), (5, a), (6, &gx)];
    let without = [(4, grad_y), (6, &gx)];
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry,
        consts: spec(g),
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
        let gx = backward(self, g, grad_y.gpu(self, OP)?, a)?;
        Ok(DeviceTensor::from_gpu(
            self,
            Shape::new(&g.input_dims())?,
            gx,
        ))
    }

    /// Two kernels: pooling backward, then the activation's.
    fn pool2d_activation_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
        act: Activation,
        y: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        let gx = self.pool2d_backward(g, grad_y, argmax)?;
        self.activation_backward(act, y, &gx)
    }
}
