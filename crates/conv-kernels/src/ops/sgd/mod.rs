//! One in-place SGD step (PyTorch `torch.optim.SGD`: dampening 0, optional Nesterov momentum,
//! L2 weight decay).
//!
//! - [`spec`]: the [`SgdConfig`] settings and their validation.
//! - `reference`, `cpu`, `gpu` (host code of `shaders/sgd.wgsl`).
//! - Tests: `tests/fast_vs_reference.rs`, `tests/golden.rs`, `tests/spec_errors.rs`.

mod cpu;
mod gpu;
mod reference;
pub mod spec;

pub use spec::SgdConfig;

use crate::Device;
use crate::device::{DeviceTensor, same_shape};
use crate::error::{Result, shape_err};

/// SGD on one backend's tensors.
pub trait SgdKernels {
    /// One step in place; `momentum` is given exactly when `cfg.momentum > 0`.
    fn sgd_step(
        &self,
        cfg: &SgdConfig,
        param: &mut DeviceTensor,
        grad: &DeviceTensor,
        momentum: Option<&mut DeviceTensor>,
    ) -> Result<()>;
}

/// SGD over host slices of equal length.
pub trait SgdHostKernels {
    /// One step in place; `momentum` is empty when `cfg.momentum == 0`, else the zero-started
    /// buffer.
    fn sgd_step(&self, cfg: &SgdConfig, param: &mut [f32], grad: &[f32], momentum: &mut [f32]);
}

impl<K: SgdHostKernels> SgdKernels for K {
    fn sgd_step(
        &self,
        cfg: &SgdConfig,
        param: &mut DeviceTensor,
        grad: &DeviceTensor,
        momentum: Option<&mut DeviceTensor>,
    ) -> Result<()> {
        const OP: &str = "sgd_step";
        let gs = grad.host(OP)?;
        let mut none = [];
        let buf: &mut [f32] = match momentum {
            Some(m) => m.host_mut(OP)?,
            None => &mut none,
        };
        SgdHostKernels::sgd_step(self, cfg, param.host_mut(OP)?, gs, buf);
        Ok(())
    }
}

impl Device {
    /// One in-place SGD step; `momentum` must be given (zero-started, same shape) when
    /// `cfg.momentum > 0`.
    pub fn sgd_step(
        &self,
        cfg: &SgdConfig,
        param: &mut DeviceTensor,
        grad: &DeviceTensor,
        momentum: Option<&mut DeviceTensor>,
    ) -> Result<()> {
        const OP: &str = "sgd_step";
        cfg.check()?;
        same_shape(OP, "grad", param.shape(), grad.shape())?;
        let momentum = match (cfg.momentum > 0.0, momentum) {
            (true, Some(m)) => {
                same_shape(OP, "momentum buffer", param.shape(), m.shape())?;
                Some(m)
            }
            (true, None) => {
                return Err(shape_err(OP, "momentum buffer", param.shape(), "none"));
            }
            (false, _) => None,
        };
        self.backend().sgd_step(cfg, param, grad, momentum)
    }
}
