//! Optimizer steps in place (`shaders/sgd.wgsl`).

use super::{SgdKernels, SgdTensors};
use crate::SgdConfig;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::multi_tensor::{GroupLaunch, group_bindings};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::w;
use std::sync::Arc;

static SHADER: Shader = Shader {
    name: "sgd.wgsl",
    source: concat!(
        "alias E = f32;\n",
        include_str!("../../../shaders/sgd.wgsl")
    ),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// The same kernels over vec4s, for multi-tensor launches whose buffers all bind whole vec4s.
static SHADER_VEC4: Shader = Shader {
    name: "sgd.wgsl (vec4)",
    source: concat!(
        "alias E = vec4<f32>;\n",
        include_str!("../../../shaders/sgd.wgsl")
    ),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// Tensors one `sgd_*_multi` launch steps (`param0u` … `param9u` in sgd.wgsl).
const GROUP: usize = 10;

/// The shader's parameter block: `len`, the settings, then `ends` (the multi-tensor entries'
/// index ranges).
fn params(cfg: &SgdConfig, len: usize, ends: [u32; GROUP]) -> [u32; 16] {
    let mut block = [0; 16];
    block[..5].copy_from_slice(&[
        w(len),
        u32::from(cfg.nesterov),
        cfg.lr.to_bits(),
        cfg.momentum.to_bits(),
        cfg.weight_decay.to_bits(),
    ]);
    block[5..5 + GROUP].copy_from_slice(&ends);
    block
}

/// SGD (with momentum when `momentum` is given).
fn sgd(
    ctx: &GpuContext,
    cfg: &SgdConfig,
    param: &GpuBuffer,
    grad: &GpuBuffer,
    momentum: Option<&GpuBuffer>,
) -> Result<()> {
    let params = params(cfg, param.len, [0; GROUP]);
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

/// One launch stepping up to [`GROUP`] parameters; unused slots are bound to the first
/// tensor's buffers and get empty index ranges.
fn sgd_group(ctx: &GpuContext, cfg: &SgdConfig, group: &mut [SgdTensors<'_>]) -> Result<()> {
    const OP: &str = "sgd_steps";
    let mut tensors = Vec::with_capacity(GROUP);
    for s in group.iter_mut() {
        let grad = s.grad.gpu(ctx, OP)?;
        let momentum = s
            .momentum
            .as_deref_mut()
            .map(|m| m.gpu_mut(ctx, OP))
            .transpose()?;
        let mut buffers = vec![s.param.gpu_mut(ctx, OP)?, grad];
        buffers.extend(momentum);
        tensors.push(buffers);
    }
    // vec4s where every buffer's binding reaches its last elements in whole vec4s.
    let vec4 = tensors.iter().flatten().all(|b| b.binds_whole_vec4s());
    let (shader, unit) = if vec4 {
        (&SHADER_VEC4, 4)
    } else {
        (&SHADER, 1)
    };
    // Three bindings per slot (parameter, gradient, momentum buffer) in sgd.wgsl.
    let Some(GroupLaunch {
        bindings,
        ends,
        total: end,
    }) = group_bindings(&tensors, 3, unit)
    else {
        return Ok(());
    };
    let params = params(cfg, end, ends);
    let entry = if cfg.momentum > 0.0 {
        "sgd_momentum_multi"
    } else {
        "sgd_plain_multi"
    };
    ctx.dispatch(Dispatch {
        shader,
        entry,
        consts: Vec::new(),
        params: &params,
        bindings: &bindings,
        invocations: end as u64,
        workgroup: 256,
    })
}

impl SgdKernels for Arc<GpuContext> {
    fn sgd_steps(&self, cfg: &SgdConfig, steps: &mut [SgdTensors<'_>]) -> Result<()> {
        // Three buffers per tensor with momentum, two without.
        let per_tensor = if cfg.momentum > 0.0 { 3 } else { 2 };
        if self.max_storage_buffers() < per_tensor * GROUP as u32 {
            for s in steps {
                self.sgd_step(cfg, s.param, s.grad, s.momentum.as_deref_mut())?;
            }
            return Ok(());
        }
        steps
            .chunks_mut(GROUP)
            .try_for_each(|group| sgd_group(self, cfg, group))
    }

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
