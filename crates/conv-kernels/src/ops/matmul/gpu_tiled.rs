//! Matrix product with optional transposes and bias on hardware GPUs
//! (`shaders/matmul_tiled.wgsl`): a workgroup-memory tiled GEMM, 64 × 64 of C per 256-invocation
//! workgroup (4 × 4 per invocation) over K-tiles of 16. Chosen by `gpu.rs` when the context runs
//! [`crate::GpuKernels::Tiled`]; computes exactly what the flat kernel does.

use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::{BM, BN, WG, consts, tile_consts, w};
use crate::ops::activation::gpu::{act_const, with_activation_fns};
use crate::{Activation, MatmulGeometry};

static SHADER: Shader = Shader {
    name: "matmul_tiled.wgsl",
    source: with_activation_fns!("../../../shaders/matmul_tiled.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// `c = act(op(a) · op(b) (+ bias))`.
pub(crate) fn matmul(
    ctx: &GpuContext,
    g: &MatmulGeometry,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    act: Option<Activation>,
) -> Result<GpuBuffer> {
    let c = ctx.alloc("matmul", g.m * g.n)?;
    let ntiles = g.n.div_ceil(BN);
    let tiles = g.m.div_ceil(BM) * ntiles;
    let mut c_consts = consts(&[
        ("TA", usize::from(g.spec.trans_a)),
        ("TB", usize::from(g.spec.trans_b)),
        act_const(act),
    ]);
    c_consts.extend(tile_consts());
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "matmul",
        consts: c_consts,
        params: &[
            w(g.m),
            w(g.n),
            w(g.k),
            u32::from(bias.is_some()),
            w(ntiles),
            w(tiles),
        ],
        bindings: &[(1, a), (2, b), (3, bias.unwrap_or(a)), (4, &c)],
        invocations: (tiles * WG) as u64,
        workgroup: WG as u32,
    })?;
    Ok(c)
}
