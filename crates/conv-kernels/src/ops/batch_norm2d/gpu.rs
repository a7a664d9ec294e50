//! Batch norm on the GPU (`shaders/batch_norm2d.wgsl`): forward is a per-channel statistics
//! dispatch (one workgroup per channel) and an element-wise one; backward the same pair. The
//! running statistics are updated on the device; nothing is read back.

use super::spec::BatchNorm2dGeometry;
use super::{BatchNorm2dKernels, BatchNormGrads, BatchNormOutput, BatchNormSaved};
use crate::GradsWanted;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::{Consts, consts, w};
use crate::ops::activation::gpu::{act_const, with_activation_fns};
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "batch_norm2d.wgsl",
    source: with_activation_fns!("../../../shaders/batch_norm2d.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// The shader's constants; `residual`: `normalize` adds the residual (binding 14).
fn spec_consts(g: &BatchNorm2dGeometry, residual: bool) -> Consts {
    consts(&[
        ("C", g.c),
        ("HW", g.hw),
        ("TRAINING", usize::from(g.spec.training)),
        ("RESIDUAL", usize::from(residual)),
        act_const(g.spec.activation),
    ])
}

fn params(g: &BatchNorm2dGeometry) -> [u32; 8] {
    let m = g.per_channel();
    let unbias = m as f32 / (m.max(2) - 1) as f32;
    [
        w(g.n * g.c * g.hw),
        w(m),
        g.spec.eps.to_bits(),
        g.spec.momentum.to_bits(),
        unbias.to_bits(),
        0,
        0,
        0,
    ]
}

/// One dispatch of `entry`: per channel (one workgroup of 64 each) or per element; `residual`
/// as in [`spec_consts`].
fn run(
    ctx: &GpuContext,
    g: &BatchNorm2dGeometry,
    entry: &'static str,
    per_channel: bool,
    residual: bool,
    bindings: &[(u32, &GpuBuffer)],
) -> Result<()> {
    let (invocations, workgroup) = if per_channel {
        (g.c as u64 * 64, 64)
    } else {
        ((g.n * g.c * g.hw) as u64, 256)
    };
    if invocations == 0 {
        return Ok(());
    }
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry,
        consts: spec_consts(g, residual),
        params: &params(g),
        bindings,
        invocations,
        workgroup,
    })
}

impl BatchNorm2dKernels for Arc<GpuContext> {
    fn batch_norm2d(
        &self,
        g: &BatchNorm2dGeometry,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: &DeviceTensor,
        running_mean: &mut DeviceTensor,
        running_var: &mut DeviceTensor,
        residual: Option<&DeviceTensor>,
    ) -> Result<BatchNormOutput> {
        const OP: &str = "batch_norm2d";
        let xb = x.gpu(self, OP)?;
        let (mean, invstd, scale) = (
            self.alloc(OP, g.c)?,
            self.alloc(OP, g.c)?,
            self.alloc(OP, g.c)?,
        );
        {
            // Bound read-write in both modes (eval only reads them): a running statistic that
            // shares its buffer with another operand is copied first, as a write would need.
            let rm = running_mean.gpu_mut(self, OP)?;
            let rv = running_var.gpu_mut(self, OP)?;
            let wb = weight.gpu(self, OP)?;
            let b = [
                (1, xb),
                (2, wb),
                (3, rm),
                (4, rv),
                (5, &mean),
                (6, &invstd),
                (7, &scale),
            ];
            run(self, g, "stats", true, false, &b)?;
        }
        let y = self.alloc(OP, x.numel())?;
        let bb = bias.gpu(self, OP)?;
        let mut bindings = vec![(1, xb), (5, &mean), (7, &scale), (8, bb), (9, &y)];
        if let Some(r) = residual {
            bindings.push((14, r.gpu(self, OP)?));
        }
        run(self, g, "normalize", false, residual.is_some(), &bindings)?;
        let vec = |b: GpuBuffer| -> Result<DeviceTensor> {
            Ok(DeviceTensor::from_gpu(self, Shape::new(&[g.c])?, b))
        };
        Ok(BatchNormOutput {
            output: DeviceTensor::from_gpu(self, x.shape().clone(), y),
            saved: BatchNormSaved {
                mean: vec(mean)?,
                invstd: vec(invstd)?,
                output: None,
                shift: None,
            },
        })
    }

    fn batch_norm2d_backward(
        &self,
        g: &BatchNorm2dGeometry,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        saved: &BatchNormSaved,
        wanted: GradsWanted,
    ) -> Result<BatchNormGrads> {
        const OP: &str = "batch_norm2d_backward";
        let (xb, gyb, wb) = (
            x.gpu(self, OP)?,
            grad_y.gpu(self, OP)?,
            weight.gpu(self, OP)?,
        );
        let (mb, ib) = (saved.mean.gpu(self, OP)?, saved.invstd.gpu(self, OP)?);
        let (gb, gw, coef) = (
            self.alloc(OP, g.c)?,
            self.alloc(OP, g.c)?,
            self.alloc(OP, 3 * g.c)?,
        );
        let sums = [
            (1, xb),
            (10, gyb),
            (5, mb),
            (6, ib),
            (2, wb),
            (11, &gb),
            (12, &gw),
            (13, &coef),
        ];
        run(self, g, "backward_sums", true, false, &sums)?;
        let input = if wanted.input {
            let gx = self.alloc(OP, x.numel())?;
            let b = [(1, xb), (10, gyb), (5, mb), (13, &coef), (9, &gx)];
            run(self, g, "backward_input", false, false, &b)?;
            Some(DeviceTensor::from_gpu(self, x.shape().clone(), gx))
        } else {
            None
        };
        let vec = |b: GpuBuffer| -> Result<DeviceTensor> {
            Ok(DeviceTensor::from_gpu(self, Shape::new(&[g.c])?, b))
        };
        Ok(BatchNormGrads {
            input,
            weight: wanted.weight.then(|| vec(gw)).transpose()?,
            bias: wanted.bias.then(|| vec(gb)).transpose()?,
        })
    }
}
