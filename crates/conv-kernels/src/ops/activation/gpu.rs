//! Activations forward and backward (`shaders/activation.wgsl`).

use super::ActivationKernels;
use crate::Activation;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::{consts, w};
use crate::ops::reduce::gpu::sum_outer;
use std::sync::Arc;
use tensor::Shape;

/// `shaders/activation_fn.wgsl` (`act`, `dact`) followed by the shader file at `$path`
/// (relative to an op's `gpu.rs`): the source of every shader that applies activations.
macro_rules! with_activation_fns {
    ($path:literal) => {
        concat!(
            include_str!("../../../shaders/activation_fn.wgsl"),
            include_str!($path)
        )
    };
}
pub(crate) use with_activation_fns;

static SHADER: Shader = Shader {
    name: "activation.wgsl",
    source: with_activation_fns!("../../../shaders/activation.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// The `ACT` specialisation constant of `shaders/activation_fn.wgsl`: which activation `act`
/// applies (`None`: the identity, for kernels whose fused epilogue is off).
pub(crate) fn act_const(act: Option<Activation>) -> (&'static str, usize) {
    let id = match act {
        Some(Activation::Sigmoid) => 0,
        Some(Activation::Relu) => 1,
        Some(Activation::Tanh) => 2,
        None => 3,
    };
    ("ACT", id)
}

fn spec(act: Activation) -> crate::gpu::Consts {
    consts(&[act_const(Some(act))])
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

/// `grad_y * act'(y)` and its per-channel sums over `[n, c, hw]`: one kernel writing the
/// gradient and row sums, then (for `hw > 1`) the sum over the batch, in the order of
/// `reduce`'s channel sum (so the values are the unfused ops', bit for bit).
fn backward_channel_sum(
    ctx: &GpuContext,
    act: Activation,
    y: &GpuBuffer,
    grad_y: &GpuBuffer,
    [n, c, hw]: [usize; 3],
) -> Result<(GpuBuffer, GpuBuffer)> {
    let dst = ctx.alloc(act.op_name(), y.len)?;
    let (entry, rows, row_len, sums_len) = if hw == 1 {
        ("act_bwd_column_sums", n, c, c)
    } else {
        ("act_bwd_row_sums", n * c, hw, n * c)
    };
    let sums = ctx.alloc("channel_sum", sums_len)?;
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry,
        consts: spec(act),
        params: &[w(y.len), w(rows), w(row_len)],
        bindings: &[(1, y), (2, grad_y), (3, &dst), (4, &sums)],
        invocations: sums_len as u64,
        workgroup: 64,
    })?;
    if hw == 1 {
        return Ok((dst, sums));
    }
    Ok((dst, sum_outer(ctx, &sums, n, c, 1.0)?))
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

    fn activation_backward_channel_sum(
        &self,
        act: Activation,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
        nchw: [usize; 3],
    ) -> Result<(DeviceTensor, DeviceTensor)> {
        let op = act.op_name();
        let (gx, sums) =
            backward_channel_sum(self, act, y.gpu(self, op)?, grad_y.gpu(self, op)?, nchw)?;
        Ok((
            DeviceTensor::from_gpu(self, y.shape().clone(), gx),
            DeviceTensor::from_gpu(self, Shape::new(&[nchw[1]])?, sums),
        ))
    }
}
