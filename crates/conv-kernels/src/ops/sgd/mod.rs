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

/// One parameter's tensors in [`Device::sgd_steps`].
#[derive(Debug)]
pub struct SgdTensors<'a> {
    /// The parameter, updated in place.
    pub param: &'a mut DeviceTensor,
    /// Its gradient.
    pub grad: &'a DeviceTensor,
    /// Its zero-started momentum buffer, given exactly when the config has momentum.
    pub momentum: Option<&'a mut DeviceTensor>,
}

/// SGD on one backend's tensors.
pub trait SgdKernels {
    /// The same step on several parameters (checked as [`SgdKernels::sgd_step`]'s); a GPU
    /// launches one kernel per few tensors instead of one each.
    fn sgd_steps(&self, cfg: &SgdConfig, steps: &mut [SgdTensors<'_>]) -> Result<()>;

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
    fn sgd_steps(&self, cfg: &SgdConfig, steps: &mut [SgdTensors<'_>]) -> Result<()> {
        for s in steps {
            SgdKernels::sgd_step(self, cfg, s.param, s.grad, s.momentum.as_deref_mut())?;
        }
        Ok(())
    }

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
        cfg.check()?;
        let momentum = checked_momentum(cfg, param, grad, momentum)?;
        self.backend().sgd_step(cfg, param, grad, momentum)
    }

    /// The same in-place SGD step on several parameters, each checked as
    /// [`Device::sgd_step`]'s (momentum buffers ignored when the config has none): an
    /// optimizer's whole update in a few GPU launches instead of one per parameter.
    pub fn sgd_steps(&self, cfg: &SgdConfig, steps: &mut [SgdTensors<'_>]) -> Result<()> {
        cfg.check()?;
        for s in steps.iter_mut() {
            let momentum = checked_momentum(cfg, s.param, s.grad, s.momentum.take())?;
            s.momentum = momentum;
        }
        self.backend().sgd_steps(cfg, steps)
    }
}

/// The momentum buffer a step of `param` uses: the given one, checked, when the config has
/// momentum (an error when missing); none otherwise. Checks the gradient's shape too.
fn checked_momentum<'a>(
    cfg: &SgdConfig,
    param: &DeviceTensor,
    grad: &DeviceTensor,
    momentum: Option<&'a mut DeviceTensor>,
) -> Result<Option<&'a mut DeviceTensor>> {
    const OP: &str = "sgd_step";
    same_shape(OP, "grad", param.shape(), grad.shape())?;
    match (cfg.momentum > 0.0, momentum) {
        (true, Some(m)) => {
            same_shape(OP, "momentum buffer", param.shape(), m.shape())?;
            Ok(Some(m))
        }
        (true, None) => Err(shape_err(OP, "momentum buffer", param.shape(), "none")),
        (false, _) => Ok(None),
    }
}
