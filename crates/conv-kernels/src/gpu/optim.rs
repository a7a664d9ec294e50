//! Optimizer steps in place (`shaders/optim.wgsl`).

use super::context::{Dispatch, GpuContext};
use super::pipeline::Shader;
use super::pool::GpuBuffer;
use super::w;
use crate::error::Result;
use crate::spec::{AdamConfig, SgdConfig};

static SHADER: Shader = Shader {
    name: "optim.wgsl",
    source: include_str!("../../../../shaders/optim.wgsl"),
};

/// SGD (with momentum when `momentum` is given).
pub(crate) fn sgd(
    ctx: &GpuContext,
    cfg: &SgdConfig,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    momentum: Option<&GpuBuffer>,
) -> Result<()> {
    let params = [
        w(param.len),
        u32::from(cfg.nesterov),
        0,
        0,
        cfg.lr.to_bits(),
        cfg.momentum.to_bits(),
        cfg.weight_decay.to_bits(),
    ];
    let with_m;
    let plain = [(1, param), (2, grad)];
    let (entry, bindings): (_, &[(u32, &GpuBuffer)]) = match momentum {
        Some(m) => {
            with_m = [(1, param), (2, grad), (3, m)];
            ("sgd_momentum", &with_m)
        }
        None => ("sgd_plain", &plain),
    };
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry,
        consts: Vec::new(),
        params: &params,
        bindings,
        invocations: param.len as u64,
        workgroup: 256,
    })
}

/// Adam with bias correction for step `step` (from 1).
pub(crate) fn adam(
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
