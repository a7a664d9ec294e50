//! Element-wise arithmetic on same-shaped tensors: `add` (the residual connection), in-place
//! `add_assign` (gradient accumulation), `scale`, `scale_by` a device scalar, `fill`, and the
//! constant tensors `full` / `zeros`.
//!
//! - `reference`, `cpu`, `gpu` (host code of `shaders/elementwise.wgsl`).
//! - Tests: `tests/fast_vs_reference.rs` and the autograd tests of accumulation.

mod cpu;
mod gpu;
mod reference;

use crate::Device;
use crate::device::{DeviceTensor, same_shape};
use crate::error::{Result, shape_err};

/// Element-wise ops on one backend's tensors (shapes already checked).
pub trait ElementwiseKernels {
    /// `a + b`.
    fn add(&self, a: &DeviceTensor, b: &DeviceTensor) -> Result<DeviceTensor>;
    /// `acc += x` in place.
    fn add_assign(&self, acc: &mut DeviceTensor, x: &DeviceTensor) -> Result<()>;
    /// `alpha * x`.
    fn scale(&self, x: &DeviceTensor, alpha: f32) -> Result<DeviceTensor>;
    /// `x * s` with `s` a one-element tensor on the device.
    fn scale_by(&self, x: &DeviceTensor, s: &DeviceTensor) -> Result<DeviceTensor>;
    /// Overwrites every element with `value`.
    fn fill(&self, x: &mut DeviceTensor, value: f32) -> Result<()>;
    /// A new tensor of `dims` filled with `value`.
    fn full(&self, dims: &[usize], value: f32) -> Result<DeviceTensor>;
}

/// Element-wise updates over host slices of equal length.
pub trait ElementwiseHostKernels {
    /// `out = a + b` into a fresh output.
    fn add_into(&self, a: &[f32], b: &[f32], out: &mut [f32]);
    /// `y += alpha * x`.
    fn axpy(&self, alpha: f32, x: &[f32], y: &mut [f32]);
    /// `x *= alpha`.
    fn scale_in_place(&self, alpha: f32, x: &mut [f32]);
}

impl<K: ElementwiseHostKernels> ElementwiseKernels for K {
    fn add(&self, a: &DeviceTensor, b: &DeviceTensor) -> Result<DeviceTensor> {
        const OP: &str = "add";
        // One pass into a new tensor: `a` is usually shared (a layer's saved output), and
        // copying it before adding in place cost a second pass.
        let (shape, mut out) = DeviceTensor::host_output(a.dims())?;
        self.add_into(a.host(OP)?, b.host(OP)?, &mut out);
        Ok(DeviceTensor::from_host(shape, out))
    }

    fn add_assign(&self, acc: &mut DeviceTensor, x: &DeviceTensor) -> Result<()> {
        const OP: &str = "add_assign";
        if acc.is_shared() {
            // The sum into a new tensor in one pass, rather than copying the shared buffer
            // (what writing it in place needs) and then adding: a residual block hands the
            // same gradient to both of its branches.
            *acc = ElementwiseKernels::add(self, acc, x)?;
            return Ok(());
        }
        self.axpy(1.0, x.host(OP)?, acc.host_mut(OP)?);
        Ok(())
    }

    fn scale(&self, x: &DeviceTensor, alpha: f32) -> Result<DeviceTensor> {
        let mut out = x.clone();
        self.scale_in_place(alpha, out.host_mut("scale")?);
        Ok(out)
    }

    fn scale_by(&self, x: &DeviceTensor, s: &DeviceTensor) -> Result<DeviceTensor> {
        let alpha = s.host("scale_by")?[0];
        ElementwiseKernels::scale(self, x, alpha)
    }

    fn fill(&self, x: &mut DeviceTensor, value: f32) -> Result<()> {
        x.host_mut("fill")?.fill(value);
        Ok(())
    }

    fn full(&self, dims: &[usize], value: f32) -> Result<DeviceTensor> {
        let (shape, mut data) = DeviceTensor::host_output(dims)?;
        data.fill(value);
        Ok(DeviceTensor::from_host(shape, data))
    }
}

impl Device {
    /// `a + b` element-wise (same shapes).
    pub fn add(&self, a: &DeviceTensor, b: &DeviceTensor) -> Result<DeviceTensor> {
        same_shape("add", "b", a.shape(), b.shape())?;
        self.backend().add(a, b)
    }

    /// `acc += x` in place (gradient accumulation).
    pub fn add_assign(&self, acc: &mut DeviceTensor, x: &DeviceTensor) -> Result<()> {
        same_shape("add_assign", "x", acc.shape(), x.shape())?;
        self.backend().add_assign(acc, x)
    }

    /// `alpha * x`.
    pub fn scale(&self, x: &DeviceTensor, alpha: f32) -> Result<DeviceTensor> {
        self.backend().scale(x, alpha)
    }

    /// `x * s` where `s` is a one-element tensor on the device (no read-back on the GPU).
    pub fn scale_by(&self, x: &DeviceTensor, s: &DeviceTensor) -> Result<DeviceTensor> {
        if s.numel() != 1 {
            return Err(shape_err("scale_by", "scalar", "one element", s.shape()));
        }
        self.backend().scale_by(x, s)
    }

    /// Overwrites every element with `value`.
    pub fn fill(&self, x: &mut DeviceTensor, value: f32) -> Result<()> {
        self.backend().fill(x, value)
    }

    /// A tensor filled with `value`.
    pub fn full(&self, dims: &[usize], value: f32) -> Result<DeviceTensor> {
        self.backend().full(dims, value)
    }

    /// A tensor of zeros.
    pub fn zeros(&self, dims: &[usize]) -> Result<DeviceTensor> {
        self.full(dims, 0.0)
    }
}
