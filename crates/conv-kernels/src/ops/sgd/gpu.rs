//! Optimizer steps in place (`shaders/sgd.wgsl`).

use super::SgdKernels;
use crate::SgdConfig;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::w;
use std::sync::Arc;

static SHADER: Shader = Shader {
    name: "sgd.wgsl",
    source: include_str!("../../../shaders/sgd.wgsl"),
};

/// SGD (with momentum when `momentum` is given).
fn sgd(
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

impl SgdKernels for Arc<GpuContext> {
    fn sgd_step(
        &self,
        cfg: &SgdConfig,
        param: &mut DeviceTensor,
        grad: &DeviceTensor,
        momentum: Option<&mut DeviceTensor>,
    ) -> Result<()> {
        const OP: &str = "sgd_step";
        let gb = grad.gpu(self, OP)?;
        let mb = momentum.map(|m| m.gpu_mut(self, OP)).transpose()?;
        let pb = param.gpu_mut(self, OP)?;
        sgd(self, cfg, pb, gb, mb)
    }
}
