//! Optimizer steps in place (`shaders/adam.wgsl`).

use super::AdamKernels;
use crate::AdamConfig;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::w;
use std::sync::Arc;

static SHADER: Shader = Shader {
    name: "adam.wgsl",
    source: include_str!("../../../shaders/adam.wgsl"),
};

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
    let t = step.min(i32::MAX as u32) as i32;
    let bc1 = 1.0 - f64::from(cfg.beta1).powi(t);
    let bc2 = 1.0 - f64::from(cfg.beta2).powi(t);
    let params = [
        w(param.len),
        0,
        0,
        0,
        cfg.lr.to_bits(),
        0,
        cfg.weight_decay.to_bits(),
        cfg.beta1.to_bits(),
        cfg.beta2.to_bits(),
        cfg.eps.to_bits(),
        (bc1 as f32).to_bits(),
        (bc2.sqrt() as f32).to_bits(),
    ];
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

impl AdamKernels for Arc<GpuContext> {
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
