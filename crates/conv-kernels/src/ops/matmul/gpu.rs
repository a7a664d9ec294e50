//! Matrix product with optional transposes and bias (`shaders/matmul.wgsl`): barrier-free
//! register blocking, 8 × 8 or 8 × 16 per invocation, loading whole vec4s where the shapes
//! allow.

use super::{MatmulKernels, MatmulOperands, gpu_tiled};
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::texture_operands::read_consts;
use crate::gpu::{subgroup_consts, w};
use crate::ops::activation::gpu::{act_const, with_activation_fns};
use crate::{Activation, GpuKernels, MatmulGeometry};
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "matmul.wgsl",
    source: with_activation_fns!("../../../shaders/matmul.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[12, 13, 14, 15],
};

/// Each invocation's block of C, rows × columns: 8 × 16 for products of at least 4M
/// multiply-adds, 8 × 8 below. On llvmpipe every storage load is made lane by lane, so the
/// multiply-adds per loaded value are what counts, and accumulators spilled to the stack cost
/// less than the loads they save: seed LeNet's fc1 backward pair 6.2-6.7 -> 4.7-5.4 ms; 16 × 16
/// measured no faster and took 0.65 s to compile instead of 0.2 s (8 × 8: 0.07 s); smaller
/// products measured slower with the larger blocks.
/// `work` is the launch's largest product's multiply-adds.
fn pick_block(work: usize) -> (usize, usize) {
    if work >= 1 << 22 { (8, 16) } else { (8, 8) }
}

/// Whether a product can stream k in whole vec4s: k a multiple of 4, and so the stored rows of
/// A (`[k, m]` when transposed) and of B (`[k, n]` when not), every vec4 then lying inside one
/// row of both operands.
fn whole_vec4s(g: &MatmulGeometry) -> bool {
    g.k.is_multiple_of(4)
        && (!g.spec.trans_a || g.m.is_multiple_of(4))
        && (g.spec.trans_b || g.n.is_multiple_of(4))
}

/// One product of a launch: its checked geometry, operands and output.
struct Product<'a> {
    g: &'a MatmulGeometry,
    a: &'a GpuBuffer,
    b: &'a GpuBuffer,
    c: &'a GpuBuffer,
}

/// The words of one product's slot in the `Params` block: `m, n, k, nblk`, then `mblk` (its row
/// blocks, rounded up to whole subgroups of `lanes`, 1 when they share nothing) and its
/// invocations (`mblk · nblk`: whole subgroups).
fn slot_words(
    g: &MatmulGeometry,
    (rm, rn): (usize, usize),
    lanes: usize,
) -> ([u32; 4], usize, usize) {
    let nblk = g.n.div_ceil(rn);
    let mblk = g.m.div_ceil(rm).next_multiple_of(lanes);
    ([w(g.m), w(g.n), w(g.k), w(nblk)], mblk, mblk * nblk)
}

/// The lanes across which the vec4 path shares B's loads (`SGW` in matmul.wgsl), or `None`. It
/// needs a subgroup to be consecutive invocations (each shares one column block), which holds
/// on llvmpipe, the software adapter the flat kernels are made for.
fn shared_lanes(ctx: &GpuContext, vec4: bool) -> Option<usize> {
    let lanes = ctx.subgroup_size()? as usize;
    (vec4 && ctx.is_software()).then_some(lanes)
}

/// One launch computing `first.c = act(op(a) · op(b) (+ bias))` and, when given,
/// `second.c = op(a) · op(b)`.
fn launch(
    ctx: &GpuContext,
    first: &Product<'_>,
    second: Option<&Product<'_>>,
    bias: Option<&GpuBuffer>,
    act: Option<Activation>,
) -> Result<()> {
    let work = |g: &MatmulGeometry| g.m * g.n * g.k;
    let block = pick_block(work(first.g).max(second.map_or(0, |s| work(s.g))));
    let vec4 = whole_vec4s(first.g) && second.is_none_or(|s| whole_vec4s(s.g));
    let lanes = shared_lanes(ctx, vec4);
    let (words0, mblk0, total0) = slot_words(first.g, block, lanes.unwrap_or(1));
    let (words1, mblk1, total1) = second.map_or(([0; 4], 0, 0), |s| {
        slot_words(s.g, block, lanes.unwrap_or(1))
    });
    let flags = |g: &MatmulGeometry| u32::from(g.spec.trans_a) | (u32::from(g.spec.trans_b) << 1);
    let trans = flags(first.g) | second.map_or(0, |s| flags(s.g) << 2);
    let params = [
        words0[0],
        words0[1],
        words0[2],
        words0[3],
        w(total0),
        u32::from(bias.is_some()),
        trans,
        w(mblk0),
        words1[0],
        words1[1],
        words1[2],
        words1[3],
        w(total1),
        w(mblk1),
    ];
    // The vec4 loads take the transposes as a constant; the scalar ones as a parameter.
    let trans_const = if vec4 { trans as usize } else { 0 };
    let s = second.unwrap_or(first);
    let textures = vec4 && ctx.reads_through_textures(&[first.a, first.b, s.a, s.b]);
    let (a_at, b_at) = match (vec4, textures) {
        (true, true) => ([12, 14], [13, 15]),
        (true, false) => ([8, 10], [9, 11]),
        (false, _) => ([1, 5], [2, 6]),
    };
    let bindings = [
        (a_at[0], first.a),
        (b_at[0], first.b),
        (3, bias.unwrap_or(first.a)),
        (4, first.c),
        (a_at[1], s.a),
        (b_at[1], s.b),
        (7, s.c),
    ];
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "matmul",
        consts: [
            ("RM", block.0),
            ("RN", block.1),
            ("RM4", block.0 / 4),
            ("RN4", block.1 / 4),
            ("V4", usize::from(vec4)),
            ("S1", usize::from(!vec4)),
            ("TRANS", trans_const),
            ("PRODUCTS", 1 + usize::from(second.is_some())),
            act_const(act),
        ]
        .into_iter()
        // B's texels of one k step: RN.
        .chain(subgroup_consts(lanes, block.1))
        .chain(read_consts(textures))
        .collect(),
        params: &params,
        // A single-product pipeline has no second slot to bind.
        bindings: &bindings[..if second.is_some() { 7 } else { 4 }],
        invocations: (total0 + total1) as u64,
        workgroup: 64,
    })
}

/// `c = act(op(a) · op(b) (+ bias))`.
fn matmul(
    ctx: &GpuContext,
    g: &MatmulGeometry,
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    act: Option<Activation>,
) -> Result<GpuBuffer> {
    let c = ctx.alloc("matmul", g.m * g.n)?;
    launch(ctx, &Product { g, a, b, c: &c }, None, bias, act)?;
    Ok(c)
}

impl MatmulKernels for Arc<GpuContext> {
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        act: Option<Activation>,
    ) -> Result<DeviceTensor> {
        const OP: &str = "matmul";
        let bb = bias.map(|t| t.gpu(self, OP)).transpose()?;
        let (a, b) = (a.gpu(self, OP)?, b.gpu(self, OP)?);
        let c = match self.kernels() {
            GpuKernels::Tiled => gpu_tiled::matmul(self, g, a, b, bb, act)?,
            _ => matmul(self, g, a, b, bb, act)?,
        };
        Ok(DeviceTensor::from_gpu(self, Shape::new(&[g.m, g.n])?, c))
    }

    fn matmul_pair(
        &self,
        first: MatmulOperands<'_>,
        second: MatmulOperands<'_>,
    ) -> Result<[DeviceTensor; 2]> {
        const OP: &str = "matmul";
        if self.kernels() == GpuKernels::Tiled {
            let [c0, c1] = [first, second].map(|o| self.matmul(o.g, o.a, o.b, None, None));
            return Ok([c0?, c1?]);
        }
        let (g0, g1) = (first.g, second.g);
        let (c0, c1) = (self.alloc(OP, g0.m * g0.n)?, self.alloc(OP, g1.m * g1.n)?);
        let p0 = Product {
            g: g0,
            a: first.a.gpu(self, OP)?,
            b: first.b.gpu(self, OP)?,
            c: &c0,
        };
        let p1 = Product {
            g: g1,
            a: second.a.gpu(self, OP)?,
            b: second.b.gpu(self, OP)?,
            c: &c1,
        };
        launch(self, &p0, Some(&p1), None, None)?;
        Ok([
            DeviceTensor::from_gpu(self, Shape::new(&[g0.m, g0.n])?, c0),
            DeviceTensor::from_gpu(self, Shape::new(&[g1.m, g1.n])?, c1),
        ])
    }
}
