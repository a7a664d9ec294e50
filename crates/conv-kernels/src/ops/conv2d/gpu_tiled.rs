//! Convolution forward, input gradient and weight gradient on hardware GPUs
//! (`shaders/conv2d_tiled.wgsl`): workgroup-memory tiled implicit GEMMs, one per channel group,
//! whose tile loaders do the im2col indexing (64 × 64 of the output per 256-invocation
//! workgroup, K-tiles of 16). Chosen by `gpu.rs` when the context runs
//! [`crate::GpuKernels::Tiled`]; computes exactly what the flat kernels do, for every stride,
//! padding, dilation and group count. The weight gradient is computed per chunk of the output
//! positions and the chunks summed in a fixed order (no atomics).

use super::gpu::params_block;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::{BK, BM, BN, Consts, WG, consts, tile_consts, w};
use crate::ops::activation::gpu::{act_const, with_activation_fns};
use crate::ops::reduce::gpu::sum_outer;
use crate::{Activation, Conv2dGeometry};

static SHADER: Shader = Shader {
    name: "conv2d_tiled.wgsl",
    source: with_activation_fns!("../../../shaders/conv2d_tiled.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

/// Workgroups the weight gradient aims for when splitting the positions into chunks.
const TARGET_WORKGROUPS: usize = 512;
/// Fewest positions in one weight-gradient chunk (16 K-tiles).
const MIN_CHUNK: usize = 16 * BK;

/// The geometry's specialisation constants, the tile sizes and the forward's fused activation.
fn spec(g: &Conv2dGeometry, act: Option<Activation>) -> Consts {
    let s = g.spec;
    let mut c = consts(&[
        ("KH", g.kh),
        ("KW", g.kw),
        ("SH", s.stride[0]),
        ("SW", s.stride[1]),
        ("PH", s.padding[0]),
        ("PW", s.padding[1]),
        ("DH", s.dilation[0]),
        ("DW", s.dilation[1]),
        act_const(act),
    ]);
    c.extend(tile_consts());
    c
}

/// The tiling of one GEMM per group: rows × columns of its output, split into chunks.
struct Grid {
    mtiles: usize,
    ntiles: usize,
    chunks: usize,
    kchunk: usize,
    has_bias: bool,
}

impl Grid {
    fn new(rows: usize, cols: usize) -> Grid {
        Grid {
            mtiles: rows.div_ceil(BM),
            ntiles: cols.div_ceil(BN),
            chunks: 1,
            kchunk: 0,
            has_bias: false,
        }
    }

    fn tiles(&self, g: &Conv2dGeometry) -> usize {
        g.spec.groups * self.mtiles * self.ntiles * self.chunks
    }

    fn params(&self, g: &Conv2dGeometry) -> [u32; 16] {
        let own = [
            self.mtiles,
            self.ntiles,
            self.tiles(g),
            usize::from(self.has_bias),
            self.kchunk,
            g.spec.groups,
            0,
        ];
        params_block(g, own.map(w))
    }
}

/// One dispatch of `entry` over the grid's tiles.
fn run(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    entry: &'static str,
    grid: &Grid,
    act: Option<Activation>,
    bindings: &[(u32, &GpuBuffer)],
) -> Result<()> {
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry,
        consts: spec(g, act),
        params: &grid.params(g),
        bindings,
        invocations: (grid.tiles(g) * WG) as u64,
        workgroup: WG as u32,
    })
}

/// `y = act(conv(x, weight) + bias)`.
pub(crate) fn forward(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    x: &GpuBuffer,
    weight: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    act: Option<Activation>,
) -> Result<GpuBuffer> {
    let [n, c_out, oh, ow] = g.output_dims();
    let y = ctx.alloc("conv2d", n * c_out * oh * ow)?;
    let grid = Grid {
        has_bias: bias.is_some(),
        ..Grid::new(g.c_out_per_group(), n * oh * ow)
    };
    run(
        ctx,
        g,
        "conv_fwd",
        &grid,
        act,
        &[(1, x), (2, weight), (3, bias.unwrap_or(weight)), (4, &y)],
    )?;
    Ok(y)
}

/// Gradient of the input.
pub(crate) fn backward_input(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    grad_y: &GpuBuffer,
    weight: &GpuBuffer,
) -> Result<GpuBuffer> {
    let gx = ctx.alloc("conv2d_backward_input", g.n * g.c_in * g.h * g.w)?;
    let grid = Grid::new(g.c_in_per_group(), g.n * g.h * g.w);
    run(
        ctx,
        g,
        "conv_bwd_input",
        &grid,
        None,
        &[(1, grad_y), (2, weight), (4, &gx)],
    )?;
    Ok(gx)
}

/// Gradient of the weight: per-chunk partial sums over the output positions, then a
/// fixed-order sum over the chunks (none when one chunk covers them all).
pub(crate) fn backward_weight(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    x: &GpuBuffer,
    grad_y: &GpuBuffer,
) -> Result<GpuBuffer> {
    let cols = g.c_in_per_group() * g.kh * g.kw;
    let mut grid = Grid::new(g.c_out_per_group(), cols);
    let positions = g.n * g.oh * g.ow;
    let base = grid.tiles(g).max(1);
    let chunks = TARGET_WORKGROUPS
        .div_ceil(base)
        .min(positions.div_ceil(MIN_CHUNK))
        .max(1);
    grid.kchunk = positions.div_ceil(chunks).div_ceil(BK).max(1) * BK;
    grid.chunks = positions.div_ceil(grid.kchunk).max(1);
    let wsize = g.c_out * cols;
    let partial = ctx.alloc("conv2d_backward_weight", grid.chunks * wsize)?;
    run(
        ctx,
        g,
        "conv_bwd_weight",
        &grid,
        None,
        &[(1, x), (2, grad_y), (4, &partial)],
    )?;
    if grid.chunks == 1 {
        return Ok(partial);
    }
    sum_outer(ctx, &partial, grid.chunks, wsize, 1.0)
}
