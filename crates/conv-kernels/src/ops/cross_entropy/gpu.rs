//! Fused softmax cross-entropy (`shaders/cross_entropy.wgsl`): per-row losses, correct flags and the
//! logits gradient, then one fixed-order sum of each into two device scalars.

use super::{CrossEntropyKernels, CrossEntropyOutput};
use crate::CrossEntropyGeometry;
use crate::device::{DeviceTensor, IndexTensor};
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::w;
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "cross_entropy.wgsl",
    source: include_str!("../../../shaders/cross_entropy.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// `(mean loss, correct count, grad_logits)`, all on the device; the gradient only when
/// `want_grad` (otherwise the shader writes none and a one-element placeholder is bound).
fn softmax_cross_entropy(
    ctx: &GpuContext,
    g: &CrossEntropyGeometry,
    logits: &GpuBuffer,
    labels: &GpuBuffer,
    want_grad: bool,
) -> Result<(GpuBuffer, GpuBuffer, Option<GpuBuffer>)> {
    const OP: &str = "softmax_cross_entropy";
    let grad = ctx.alloc(OP, if want_grad { g.n * g.classes } else { 1 })?;
    let rows = ctx.alloc(OP, 2 * g.n)?;
    let params = [
        w(g.n),
        w(g.classes),
        (1.0 / g.n as f32).to_bits(),
        u32::from(want_grad),
    ];
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "ce_rows",
        consts: Vec::new(),
        params: &params,
        bindings: &[(1, logits), (2, labels), (3, &grad), (4, &rows)],
        invocations: g.n as u64,
        workgroup: 64,
    })?;
    let (loss, correct) = (ctx.alloc(OP, 1)?, ctx.alloc(OP, 1)?);
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "ce_sums",
        consts: Vec::new(),
        params: &params,
        bindings: &[(4, &rows), (5, &loss), (6, &correct)],
        invocations: 2,
        workgroup: 2,
    })?;
    Ok((loss, correct, want_grad.then_some(grad)))
}

impl CrossEntropyKernels for Arc<GpuContext> {
    fn softmax_cross_entropy(
        &self,
        g: &CrossEntropyGeometry,
        logits: &DeviceTensor,
        labels: &IndexTensor,
        want_grad: bool,
    ) -> Result<CrossEntropyOutput> {
        const OP: &str = "softmax_cross_entropy";
        let (loss, correct, grad) = softmax_cross_entropy(
            self,
            g,
            logits.gpu(self, OP)?,
            labels.gpu(self, OP)?,
            want_grad,
        )?;
        Ok(CrossEntropyOutput {
            loss: DeviceTensor::from_gpu(self, Shape::scalar(), loss),
            correct: DeviceTensor::from_gpu(self, Shape::scalar(), correct),
            grad_logits: grad.map(|gr| DeviceTensor::from_gpu(self, logits.shape().clone(), gr)),
        })
    }
}
