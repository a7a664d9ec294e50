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

/// Adam on one backend's tensors.
pub trait AdamKernels {
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
        const OP: &str = "adam_step";
        cfg.check()?;
        if step == 0 {
            return Err(spec_err(OP, "step counts from 1"));
        }
        for (what, t) in [("grad", grad), ("m", &*m), ("v", &*v)] {
            same_shape(OP, what, param.shape(), t.shape())?;
        }
        self.backend().adam_step(cfg, step, param, grad, m, v)
    }
}
