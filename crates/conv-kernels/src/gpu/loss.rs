//! Fused softmax cross-entropy (`shaders/loss.wgsl`): per-row losses, correct flags and the
//! logits gradient, then fixed-order sums into two device scalars.

use super::context::{Dispatch, GpuContext};
use super::pipeline::Shader;
use super::pool::GpuBuffer;
use super::reduce::sum_inner;
use super::w;
use crate::error::Result;
use crate::spec::CrossEntropyGeometry;

static SHADER: Shader = Shader {
    name: "loss.wgsl",
    source: include_str!("../../../../shaders/loss.wgsl"),
};

/// `(mean loss, correct count, grad_logits)`, all on the device.
pub(crate) fn softmax_cross_entropy(
    ctx: &GpuContext,
    g: &CrossEntropyGeometry,
    logits: &GpuBuffer,
    labels: &GpuBuffer,
) -> Result<(GpuBuffer, GpuBuffer, GpuBuffer)> {
    const OP: &str = "softmax_cross_entropy";
    let grad = ctx.alloc(OP, g.n * g.classes)?;
    let rows = ctx.alloc(OP, 2 * g.n)?;
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "ce_rows",
        consts: Vec::new(),
        params: &[w(g.n), w(g.classes), (1.0 / g.n as f32).to_bits()],
        bindings: &[(1, logits), (2, labels), (3, &grad), (4, &rows)],
        invocations: g.n as u64,
        workgroup: 64,
    })?;
    let loss = sum_inner(ctx, &rows, 0, g.n, g.n, 1.0 / g.n as f32)?;
    let correct = sum_inner(ctx, &rows, g.n, g.n, g.n, 1.0)?;
    Ok((loss, correct, grad))
}
