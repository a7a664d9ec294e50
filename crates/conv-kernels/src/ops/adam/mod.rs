//! One in-place Adam step (PyTorch `torch.optim.Adam`: L2 weight decay, bias correction).
//!
//! - [`spec`]: the [`AdamConfig`] settings and their validation.
//! - `reference`, `cpu`, `gpu` (host code of `shaders/adam.wgsl`).
//! - Tests: `tests/fast_vs_reference.rs`, `tests/golden.rs`, `tests/spec_errors.rs`.

mod cpu;
mod gpu;
mod reference;
pub mod spec;

pub use spec::AdamConfig;

use crate::Device;
use crate::device::{DeviceTensor, same_shape};
use crate::error::{Result, spec_err};

/// One parameter's tensors in [`Device::adam_steps`].
#[derive(Debug)]
pub struct AdamTensors<'a> {
    /// The parameter, updated in place.
    pub param: &'a mut DeviceTensor,
    /// Its gradient.
    pub grad: &'a DeviceTensor,
    /// Its zero-started first moment.
    pub m: &'a mut DeviceTensor,
    /// Its zero-started second moment.
    pub v: &'a mut DeviceTensor,
}

/// Adam on one backend's tensors.
pub trait AdamKernels {
    /// The same step on several parameters (checked as [`AdamKernels::adam_step`]'s); a GPU
    /// launches one kernel per few tensors instead of one each.
    fn adam_steps(&self, cfg: &AdamConfig, step: u32, steps: &mut [AdamTensors<'_>]) -> Result<()>;

    /// One step in place (`step` counts from 1); `m` and `v` are the moments.
    fn adam_step(
        &self,
        cfg: &AdamConfig,
        step: u32,
        param: &mut DeviceTensor,
        grad: &DeviceTensor,
        m: &mut DeviceTensor,
        v: &mut DeviceTensor,
    ) -> Result<()>;
}

/// Adam over host slices of equal length.
pub trait AdamHostKernels {
    /// One step in place; `step` counts from 1 (for bias correction).
    fn adam_step(
        &self,
        cfg: &AdamConfig,
        step: u32,
        param: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    );
}

impl<K: AdamHostKernels> AdamKernels for K {
    fn adam_steps(&self, cfg: &AdamConfig, step: u32, steps: &mut [AdamTensors<'_>]) -> Result<()> {
        for s in steps {
            AdamKernels::adam_step(self, cfg, step, s.param, s.grad, s.m, s.v)?;
        }
        Ok(())
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
        let gs = grad.host(OP)?;
        let (ms, vs) = (m.host_mut(OP)?, v.host_mut(OP)?);
        AdamHostKernels::adam_step(self, cfg, step, param.host_mut(OP)?, gs, ms, vs);
        Ok(())
    }
}

impl Device {
    /// One in-place Adam step (`step` counts from 1); `m` and `v` are zero-started moments.
    pub fn adam_step(
        &self,
        cfg: &AdamConfig,
        step: u32,
        param: &mut DeviceTensor,
        grad: &DeviceTensor,
        m: &mut DeviceTensor,
        v: &mut DeviceTensor,
    ) -> Result<()> {
        check_step(cfg, step)?;
        check_shapes(param, grad, m, v)?;
        self.backend().adam_step(cfg, step, param, grad, m, v)
    }

    /// The same in-place Adam step (same `step`, same bias corrections) on several
    /// parameters, each checked as [`Device::adam_step`]'s: an optimizer's whole update in a
    /// few GPU launches instead of one per parameter.
    pub fn adam_steps(
        &self,
        cfg: &AdamConfig,
        step: u32,
        steps: &mut [AdamTensors<'_>],
    ) -> Result<()> {
        check_step(cfg, step)?;
        for s in steps.iter() {
            check_shapes(s.param, s.grad, s.m, s.v)?;
        }
        self.backend().adam_steps(cfg, step, steps)
    }
}

/// Rejects invalid settings and step 0 (steps count from 1).
fn check_step(cfg: &AdamConfig, step: u32) -> Result<()> {
    cfg.check()?;
    if step == 0 {
        return Err(spec_err("adam_step", "step counts from 1"));
    }
    Ok(())
}

/// Checks that the gradient and both moments have the parameter's shape.
fn check_shapes(
    param: &DeviceTensor,
    grad: &DeviceTensor,
    m: &DeviceTensor,
    v: &DeviceTensor,
) -> Result<()> {
    for (what, t) in [("grad", grad), ("m", m), ("v", v)] {
        same_shape("adam_step", what, param.shape(), t.shape())?;
    }
    Ok(())
}
