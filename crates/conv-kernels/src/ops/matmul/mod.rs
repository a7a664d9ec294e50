//! Matrix product with optional transposes and a bias added to every row:
//! `C[m, n] = op(A) · op(B) (+ bias[n])`.
//!
//! - [`spec`]: settings and validation into a [`MatmulGeometry`].
//! - `reference`, `cpu` (the shared GEMM machinery of `cpu/gemm.rs`), `gpu` (host code of
//!   `shaders/matmul.wgsl`), `gpu_tiled` (of `shaders/matmul_tiled.wgsl`, which `gpu` picks
//!   when the context runs tiled kernels).
//! - Tests: `tests/fast_vs_reference.rs`, `tests/spec_errors.rs`, per device; gradients
//!   through [`crate::ops::linear`].

mod cpu;
mod gpu;
mod gpu_tiled;
mod reference;
pub mod spec;

pub use spec::{MatmulGeometry, MatmulSpec};

use crate::device::DeviceTensor;
use crate::error::Result;
use crate::{Activation, Device};

/// Matmul over checked geometries, on one backend's tensors.
pub trait MatmulKernels {
    /// `c = act(op(a) · op(b) (+ bias on every row))`, the activation (when given) fused into
    /// the output's store.
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        act: Option<Activation>,
    ) -> Result<DeviceTensor>;
    /// Two independent products `op(a) · op(b)` (no bias, no activation): a layer's input and
    /// weight gradients, in one launch on a GPU.
    fn matmul_pair(
        &self,
        first: MatmulOperands<'_>,
        second: MatmulOperands<'_>,
    ) -> Result<[DeviceTensor; 2]> {
        Ok([
            self.matmul(first.g, first.a, first.b, None, None)?,
            self.matmul(second.g, second.a, second.b, None, None)?,
        ])
    }
}

/// One product of [`MatmulKernels::matmul_pair`]: its checked geometry and operands.
#[derive(Clone, Copy, Debug)]
pub struct MatmulOperands<'a> {
    /// The checked shapes and transposes.
    pub g: &'a MatmulGeometry,
    /// The left operand.
    pub a: &'a DeviceTensor,
    /// The right operand.
    pub b: &'a DeviceTensor,
}

/// Matmul over host slices whose lengths match the geometry; `c` is overwritten.
pub trait MatmulHostKernels {
    /// `c[m, n] = act(op(a) · op(b) (+ bias[n] on every row))` (no activation when `act` is
    /// `None`).
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        act: Option<Activation>,
        c: &mut [f32],
    );
}

impl<K: MatmulHostKernels> MatmulKernels for K {
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        act: Option<Activation>,
    ) -> Result<DeviceTensor> {
        const OP: &str = "matmul";
        let bb = bias.map(|t| t.host(OP)).transpose()?;
        let (shape, mut c) = DeviceTensor::host_output(&[g.m, g.n])?;
        MatmulHostKernels::matmul(self, g, a.host(OP)?, b.host(OP)?, bb, act, &mut c);
        Ok(DeviceTensor::from_host(shape, c))
    }
}

impl Device {
    /// Matrix product with optional transposes and a bias added to every row.
    pub fn matmul(
        &self,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        spec: &MatmulSpec,
    ) -> Result<DeviceTensor> {
        self.matmul_activation(a, b, bias, spec, None)
    }

    /// `act(op(a) · op(b) (+ bias))` in one kernel: the activation is applied as the product
    /// stores its output; `None` is the plain [`Device::matmul`].
    pub fn matmul_activation(
        &self,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        spec: &MatmulSpec,
        act: Option<Activation>,
    ) -> Result<DeviceTensor> {
        let g = spec.check(a.shape(), b.shape(), bias.map(|t| t.shape()))?;
        MatmulKernels::matmul(self.backend(), &g, a, b, bias, act)
    }
}
