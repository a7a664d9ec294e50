//! Matrix product with optional transposes and bias (`shaders/matmul.wgsl`): barrier-free
//! 8 × 8 register blocking.

use super::context::{Dispatch, GpuContext};
use super::pipeline::Shader;
use super::pool::GpuBuffer;
use super::{consts, w};
use crate::error::Result;
use crate::spec::MatmulGeometry;

static SHADER: Shader = Shader {
    name: "matmul.wgsl",
    source: include_str!("../../../../shaders/matmul.wgsl"),
};

const RM: usize = 8;
const RN: usize = 8;

/// `c = op(a) · op(b) (+ bias)`.
pub(crate) fn matmul(
    ctx: &GpuContext,
    g: &MatmulGeometry,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
) -> Result<GpuBuffer> {
    let c = ctx.alloc("matmul", g.m * g.n)?;
    let nblk = g.n.div_ceil(RN);
    let total = g.m.div_ceil(RM) * nblk;
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "matmul",
        consts: consts(&[
            ("TA", usize::from(g.spec.trans_a)),
            ("TB", usize::from(g.spec.trans_b)),
            ("RM", RM),
            ("RN", RN),
        ]),
        params: &[
            w(g.m),
            w(g.n),
            w(g.k),
            u32::from(bias.is_some()),
            w(nblk),
            w(total),
        ],
        bindings: &[(1, a), (2, b), (3, bias.unwrap_or(a)), (4, &c)],
        invocations: total as u64,
        workgroup: 64,
    })?;
    Ok(c)
}
