//! Activations forward and backward (`shaders/activation.wgsl`).

use super::ActivationKernels;
use crate::Activation;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::{consts, w};
use std::sync::Arc;

static SHADER: Shader = Shader {
    name: "activation.wgsl",
    source: include_str!("../../../shaders/activation.wgsl"),
};

fn spec(act: Activation) -> crate::gpu::Consts {
    let id = match act {
        Activation::Sigmoid => 0,
        Activation::Relu => 1,
        Activation::Tanh => 2,
    };
    consts(&[("ACT", id)])
}

/// `act(x)` into a new buffer.
fn forward(ctx: &GpuContext, act: Activation, x: &GpuBuffer) -> Result<GpuBuffer> {
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
fn backward(
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

impl ActivationKernels for Arc<GpuContext> {
    fn activation(&self, act: Activation, x: &DeviceTensor) -> Result<DeviceTensor> {
        let y = forward(self, act, x.gpu(self, act.op_name())?)?;
        Ok(DeviceTensor::from_gpu(self, x.shape().clone(), y))
    }

    fn activation_backward(
        &self,
        act: Activation,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        let op = act.op_name();
        let gx = backward(self, act, y.gpu(self, op)?, grad_y.gpu(self, op)?)?;
        Ok(DeviceTensor::from_gpu(self, y.shape().clone(), gx))
    }
}
