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

use crate::Device;
use crate::device::DeviceTensor;
use crate::error::Result;

/// Matmul over checked geometries, on one backend's tensors.
pub trait MatmulKernels {
    /// `c = op(a) · op(b) (+ bias on every row)`.
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bias: Option<&DeviceTensor>,
    ) -> Result<DeviceTensor>;
}

/// Matmul over host slices whose lengths match the geometry; `c` is overwritten.
pub trait MatmulHostKernels {
    /// `c[m, n] = op(a) · op(b) (+ bias[n] on every row)`.
    fn matmul(&self, g: &MatmulGeometry, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32]);
}

impl<K: MatmulHostKernels> MatmulKernels for K {
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bias: Option<&DeviceTensor>,
    ) -> Result<DeviceTensor> {
        const OP: &str = "matmul";
        let bb = bias.map(|t| t.host(OP)).transpose()?;
        let (shape, mut c) = DeviceTensor::host_output(&[g.m, g.n])?;
        MatmulHostKernels::matmul(self, g, a.host(OP)?, b.host(OP)?, bb, &mut c);
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
        let g = spec.check(a.shape(), b.shape(), bias.map(|t| t.shape()))?;
        MatmulKernels::matmul(self.backend(), &g, a, b, bias)
    }
}
