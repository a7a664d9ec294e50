//! Optimizer steps in place (`shaders/adam.wgsl`).

use super::{AdamKernels, AdamTensors};
use crate::AdamConfig;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::multi_tensor::{GroupLaunch, group_bindings};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::w;
use std::sync::Arc;

static SHADER: Shader = Shader {
    name: "adam.wgsl",
    source: include_str!("../../../shaders/adam.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// Tensors one `adam_multi` launch steps (`param0u` … `param6u` in adam.wgsl).
const GROUP: usize = 7;

/// The shader's parameter block: `len`, the settings and the bias corrections of step `step`
/// (from 1), then `ends` (the multi-tensor entry's index ranges).
fn params(cfg: &AdamConfig, step: u32, len: u32, ends: [u32; GROUP]) -> [u32; 16] {
    let t = step.min(i32::MAX as u32) as i32;
    let bc1 = 1.0 - f64::from(cfg.beta1).powi(t);
    let bc2 = 1.0 - f64::from(cfg.beta2).powi(t);
    let mut block = [0; 16];
    block[..8].copy_from_slice(&[
        len,
        cfg.lr.to_bits(),
        cfg.weight_decay.to_bits(),
        cfg.beta1.to_bits(),
        cfg.beta2.to_bits(),
        cfg.eps.to_bits(),
        (bc1 as f32).to_bits(),
        (bc2.sqrt() as f32).to_bits(),
    ]);
    block[8..8 + GROUP].copy_from_slice(&ends);
    block
}

/// Adam with bias correction for step `step` (from 1).
fn adam(
    ctx: &GpuContext,
    cfg: &AdamConfig,
    step: u32,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    m: &GpuBuffer,
    v: &GpuBuffer,
) -> Result<()> {
    let params = params(cfg, step, w(param.len), [0; GROUP]);
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "adam",
        consts: Vec::new(),
        params: &params,
        bindings: &[(1, param), (2, grad), (3, m), (4, v)],
        invocations: param.len as u64,
        workgroup: 256,
    })
}

/// Storage buffers one tensor binds: parameter, gradient and both moments.
const BUFFERS_PER_TENSOR: usize = 4;

/// One launch stepping up to [`GROUP`] parameters; unused slots are bound to the first
/// tensor's buffers and get empty index ranges.
fn adam_group(
    ctx: &GpuContext,
    cfg: &AdamConfig,
    step: u32,
    group: &mut [AdamTensors<'_>],
) -> Result<()> {
    const OP: &str = "adam_steps";
    let mut tensors = Vec::with_capacity(GROUP);
    for s in group.iter_mut() {
        let grad = s.grad.gpu(ctx, OP)?;
        let m = s.m.gpu_mut(ctx, OP)?;
        let v = s.v.gpu_mut(ctx, OP)?;
        tensors.push(vec![s.param.gpu_mut(ctx, OP)?, grad, m, v]);
    }
    let Some(GroupLaunch {
        bindings,
        ends,
        total: end,
    }) = group_bindings(&tensors, BUFFERS_PER_TENSOR as u32, 1)
    else {
        return Ok(());
    };
    let params = params(cfg, step, w(end), ends);
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "adam_multi",
        consts: Vec::new(),
        params: &params,
        bindings: &bindings,
        invocations: end as u64,
        workgroup: 256,
    })
}

impl AdamKernels for Arc<GpuContext> {
    fn adam_steps(&self, cfg: &AdamConfig, step: u32, steps: &mut [AdamTensors<'_>]) -> Result<()> {
        if self.max_storage_buffers() < (BUFFERS_PER_TENSOR * GROUP) as u32 {
            for s in steps {
                self.adam_step(cfg, step, s.param, s.grad, s.m, s.v)?;
            }
            return Ok(());
        }
        steps
            .chunks_mut(GROUP)
            .try_for_each(|group| adam_group(self, cfg, step, group))
    }

    fn adam_step(
        &self,
        cfg: &AdamConfig,
        step: u32,
        param: &mut DeviceTensor,
        grad: &DeviceTensor,
        m: &mut DeviceTensor,
        v: &mut DeviceTensor,
    ) -> Result<()> {
        const OP: &str = "adam_step";
        let gb = grad.gpu(self, OP)?;
        let mb = m.gpu_mut(self, OP)?;
        let vb = v.gpu_mut(self, OP)?;
        let pb = param.gpu_mut(self, OP)?;
        adam(self, cfg, step, pb, gb, mb, vb)
    }
}
