//! Activations forward and backward (`shaders/activation.wgsl`).

use super::context::{Dispatch, GpuContext};
use super::pipeline::Shader;
use super::pool::GpuBuffer;
use super::{consts, w};
use crate::error::Result;
use crate::spec::Activation;

static SHADER: Shader = Shader {
    name: "activation.wgsl",
    source: include_str!("../../../../shaders/activation.wgsl"),
};

fn spec(act: Activation) -> super::Consts {
    let id = match act {
        Activation::Sigmoid => 0,
        Activation::Relu => 1,
        Activation::Tanh => 2,
    };
    consts(&[("ACT", id)])
}

/// `act(x)` into a new buffer.
pub(crate) fn forward(ctx: &GpuContext, act: Activation, x: &GpuBuffer) -> Result<GpuBuffer> {
    let dst = ctx.alloc(act.op_name(), x.len)?;
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "act_fwd",
        consts: spec(act),
        params: &[w(x.len)],
        bindings: &[(1, x), (3, &dst)],
        invocations: x.len as u64,
        workgroup: 256,
    })?;
    Ok(dst)
}

/// `grad_y * act'(y)` into a new buffer.
pub(crate) fn backward(
    ctx: &GpuContext,
    act: Activation,
    y: &GpuBuffer,
    grad_y: &GpuBuffer,
) -> Result<GpuBuffer> {
    let dst = ctx.alloc(act.op_name(), y.len)?;
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "act_bwd",
        consts: spec(act),
        params: &[w(y.len)],
        bindings: &[(1, y), (2, grad_y), (3, &dst)],
        invocations: y.len as u64,
        workgroup: 256,
    })?;
    Ok(dst)
}
