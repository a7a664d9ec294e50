//! Concatenation along an axis (PyTorch `torch.cat`; channels for DenseNet- and
//! Inception-style blocks) and its backward, which slices the output's gradient back into one
//! gradient per input.
//!
//! - [`spec`]: settings and validation into a [`CatGeometry`] of rows.
//! - `reference`, `cpu`, `gpu` (host code of `shaders/cat.wgsl`); all are one strided row copy.
//! - Tests: `tests/cat.rs` (reference, errors, golden).

mod cpu;
mod gpu;
mod reference;
pub mod spec;

pub use spec::{CatGeometry, CatSpec};

use crate::Device;
use crate::device::{DeviceTensor, same_shape};
use crate::error::Result;
use tensor::Shape;

/// Concatenation over checked geometries, on one backend's tensors.
pub trait CatKernels {
    /// The inputs joined along the geometry's axis.
    fn cat(&self, g: &CatGeometry, inputs: &[&DeviceTensor]) -> Result<DeviceTensor>;
    /// The output's gradient cut back into one gradient per input.
    fn cat_backward(&self, g: &CatGeometry, grad_y: &DeviceTensor) -> Result<Vec<DeviceTensor>>;
}

/// The one host primitive of concatenation: a strided row copy. `src` and `dst` are
/// `(data, row stride, offset in a row)`;
/// `dst[r * d_stride + d_off + j] = src[r * s_stride + s_off + j]` for `r < rows`, `j < len`.
pub trait CatHostKernels {
    /// Copies `rows` rows of `len` elements.
    fn copy_rows(
        &self,
        rows: usize,
        len: usize,
        src: (&[f32], usize, usize),
        dst: (&mut [f32], usize, usize),
    );
}

impl<K: CatHostKernels> CatKernels for K {
    fn cat(&self, g: &CatGeometry, inputs: &[&DeviceTensor]) -> Result<DeviceTensor> {
        let (shape, mut y) = DeviceTensor::host_output(&g.output_dims)?;
        let stride = g.output_inner();
        for (i, x) in inputs.iter().enumerate() {
            let src = (x.host("cat")?, g.inner[i], 0);
            self.copy_rows(g.outer, g.inner[i], src, (&mut y, stride, g.offset(i)));
        }
        Ok(DeviceTensor::from_host(shape, y))
    }

    fn cat_backward(&self, g: &CatGeometry, grad_y: &DeviceTensor) -> Result<Vec<DeviceTensor>> {
        let gy = grad_y.host("cat_backward")?;
        let stride = g.output_inner();
        (0..g.inner.len())
            .map(|i| {
                let (shape, mut gx) = DeviceTensor::host_output(&g.input_dims[i])?;
                let dst = (&mut gx[..], g.inner[i], 0);
                self.copy_rows(g.outer, g.inner[i], (gy, stride, g.offset(i)), dst);
                Ok(DeviceTensor::from_host(shape, gx))
            })
            .collect()
    }
}

impl Device {
    /// The tensors joined along `spec.dim` (same shapes on every other axis).
    pub fn cat(&self, inputs: &[&DeviceTensor], spec: &CatSpec) -> Result<DeviceTensor> {
        let shapes: Vec<&Shape> = inputs.iter().map(|t| t.shape()).collect();
        let g = spec.check(&shapes)?;
        self.backend().cat(&g, inputs)
    }

    /// The gradients of the inputs of shapes `input_dims` from the output's gradient.
    pub fn cat_backward(
        &self,
        input_dims: &[&[usize]],
        grad_y: &DeviceTensor,
        spec: &CatSpec,
    ) -> Result<Vec<DeviceTensor>> {
        let shapes = input_dims
            .iter()
            .map(|d| Shape::new(d))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let g = spec.check(&shapes.iter().collect::<Vec<_>>())?;
        same_shape(
            "cat_backward",
            "grad_y",
            &Shape::new(&g.output_dims)?,
            grad_y.shape(),
        )?;
        self.backend().cat_backward(&g, grad_y)
    }
}
