//! Convolution forward, input gradient and weight gradient (`shaders/conv2d.wgsl`).
//!
//! Kernel choice: a direct register-blocked convolution ("implicit GEMM" without materialising
//! the im2col matrix). Each invocation owns `COB` channels × `PX` consecutive positions of one
//! row and reuses every loaded input-row segment for all kernel columns, so LeNet's 5×5 layers do
//! ~3-5 multiply-adds per load without workgroup memory or barriers. The weight gradient is
//! computed per batch chunk and the chunks summed in a fixed order (no atomics).

use super::{Conv2dKernels, gpu_tiled};
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::Dispatch;
use crate::gpu::pipeline::Shader;
use crate::gpu::pool::GpuBuffer;
use crate::gpu::texture_operands::read_consts;
use crate::gpu::{consts, subgroup_consts, w};
use crate::ops::activation::gpu::{act_const, with_activation_fns};
use crate::ops::reduce::gpu::{sum_outer, sum_outer_split};
use crate::{Activation, Conv2dGeometry, GpuContext, GpuKernels};
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "conv2d.wgsl",
    source: with_activation_fns!("../../../shaders/conv2d.wgsl"),
    uniform_bindings: &[5],
    texture_bindings: &[9, 10, 11],
};

/// Positions per invocation of the weight gradient for a row of `width`: 4 or 5, whichever
/// wastes fewer columns (larger blocks measured slower on llvmpipe: register spills).
pub(crate) fn pick_px(width: usize) -> usize {
    if width <= 4 {
        return width.max(1);
    }
    (4..=5)
        .min_by_key(|&p| (width.div_ceil(p) * p - width, std::cmp::Reverse(p)))
        .unwrap_or(4)
}

/// Positions per invocation for the forward and the input gradient over rows of `width`: when
/// they read the weight from a uniform or a texture ([`WeightReads::vectorised`]; measured with
/// the uniform), the row in as few blocks of at most 14 as it
/// takes, evenly split (long blocks pay there although their accumulators spill; llvmpipe,
/// batch 256: conv2's forward 11.6 -> 6.6 ms, its input gradient 18.8 -> 11.3 ms); otherwise
/// [`pick_px`].
fn pick_row_px(width: usize, vectorised_weight: bool) -> usize {
    const MOST: usize = 14;
    if !vectorised_weight {
        return pick_px(width);
    }
    let blocks = width.div_ceil(MOST).max(1);
    width.div_ceil(blocks).max(1)
}

/// The forward's channels and positions per invocation: with the weight from a uniform or a
/// texture and rows of whole vec4s ([`vec4_rows`]), the row in as few blocks of at most 28 as
/// it takes, each a multiple of 4 (llvmpipe, seed LeNet's conv1,
/// alternating: 14 positions 4.5-4.7 ms, 28 in vec4s 3.8 ms; vec4 blocks of 8 or 4 measured
/// slower than 14 scalar ones); otherwise [`pick_row_px`]'s blocks.
fn forward_blocks(g: &Conv2dGeometry, vectorised_weight: bool) -> (usize, usize) {
    const MOST: usize = 28;
    let cob = pick_cob(g.c_out_per_group());
    if vectorised_weight {
        let blocks = g.ow.div_ceil(MOST).max(1);
        let px = g.ow.div_ceil(blocks).next_multiple_of(4);
        if vec4_rows(g, px) {
            return (cob, px);
        }
    }
    (cob, pick_row_px(g.ow, vectorised_weight))
}

/// Channels per invocation: all of them up to 8.
pub(crate) fn pick_cob(channels: usize) -> usize {
    channels.clamp(1, 8)
}

/// Where the forward and the input gradient read the weight (`WUNI`, `WVEC` and `WTEX` in
/// conv2d.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WeightReads {
    /// One `f32` per storage load (`in1`).
    Storage,
    /// From the uniform copy of this many vec4s (`wu`): the weight fits a uniform binding.
    Uniform(usize),
    /// Through a texture copy (`wt`): too large for a uniform binding (nin-small's and
    /// resnet-small's wider layers), on a context that reads operands through textures (on
    /// llvmpipe a storage load costs per lane several times a texel fetch).
    Texture,
}

impl WeightReads {
    /// The cheapest way this context can read `weight` of geometry `g`.
    fn of(ctx: &GpuContext, g: &Conv2dGeometry, weight: &GpuBuffer) -> Self {
        let vec4s = (g.c_out * g.c_in_per_group() * g.kh * g.kw).div_ceil(4);
        if vec4s * 16 <= ctx.max_uniform_bytes() {
            Self::Uniform(vec4s)
        } else if ctx.reads_through_textures(&[weight]) {
            Self::Texture
        } else {
            Self::Storage
        }
    }

    /// Whether the weight comes from a uniform or a texture rather than a storage load per
    /// value (the longer blocks for cheap weight loads apply).
    fn vectorised(self) -> bool {
        self != Self::Storage
    }

    /// The shader constants `WUNI`, `WVEC` and `WTEX`.
    fn consts(self) -> [(&'static str, usize); 3] {
        let (uniform, vec4s) = match self {
            Self::Uniform(vec4s) => (1, vec4s),
            _ => (0, 1),
        };
        [
            ("WUNI", uniform),
            ("WVEC", vec4s),
            ("WTEX", usize::from(self == Self::Texture)),
        ]
    }

    /// The texture binding of the weight, where it is read through one.
    fn texture_binding(self, weight: &GpuBuffer) -> Option<(u32, &GpuBuffer)> {
        (self == Self::Texture).then_some((11, weight))
    }
}

/// Kernel rows per invocation of the weight gradient (`KYB` in conv2d.wgsl): all of a
/// kernel's rows up to 25 taps (a 5 × 5 kernel whole, 7 × 7 in blocks of three rows).
fn pick_weight_grad_rows(g: &Conv2dGeometry) -> usize {
    (25 / g.kw.max(1)).clamp(1, g.kh.max(1))
}

/// Whether a kernel over blocks of `px` outputs can read (and the forward write) its rows in
/// vec4s (conv2d.wgsl's "vec4 rows"): the rows of x and y whole vec4s, stride and dilation 1
/// along them, `px` a multiple of 4 (llvmpipe, seed LeNet's conv1 weight gradient, blocks of 4:
/// 6.4 -> 4.5-4.7 ms).
fn vec4_rows(g: &Conv2dGeometry, px: usize) -> bool {
    let s = g.spec;
    s.stride[1] == 1
        && s.dilation[1] == 1
        && px.is_multiple_of(4)
        && g.ow.is_multiple_of(4)
        && g.w.is_multiple_of(4)
}

/// How a kernel reads (and the forward writes) runs of a row (conv2d.wgsl's "vec4 rows" and
/// "unaligned vec4 rows").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowReads {
    /// One f32 per access.
    Scalar,
    /// Whole vec4s of rows that are whole vec4s ([`vec4_rows`]), stores too.
    AlignedVec4s,
    /// The whole vec4s covering each run, shifted into place; scalar stores.
    CoveringVec4s,
}

impl RowReads {
    /// Aligned vec4s where [`vec4_rows`] allows, covering vec4s where every buffer read in runs
    /// binds whole vec4s (all but the largest do), scalars otherwise.
    fn vec4s(g: &Conv2dGeometry, px: usize, runs_of: &[&GpuBuffer]) -> Self {
        if vec4_rows(g, px) {
            Self::AlignedVec4s
        } else if runs_of.iter().all(|b| b.binds_whole_vec4s()) {
            Self::CoveringVec4s
        } else {
            Self::Scalar
        }
    }
}

/// How a kernel reads its operands' rows: [`RowReads`], and for vec4 reads whether through
/// textures (where the context reads operands so and they fit).
#[derive(Clone, Copy, Debug)]
struct Reads {
    rows: RowReads,
    textures: bool,
}

impl Reads {
    fn of(ctx: &GpuContext, rows: RowReads, operands: &[&GpuBuffer]) -> Self {
        let textures = rows != RowReads::Scalar && ctx.reads_through_textures(operands);
        Self { rows, textures }
    }

    /// The bindings of in0's and in1's vec4 reads: `in0v` and `in1v` (6 and 7), or through
    /// textures `in0t` and `in1t` (9 and 10).
    fn vec4_bindings(self) -> [u32; 2] {
        if self.textures { [9, 10] } else { [6, 7] }
    }
}

/// The constants of the forward's and the input gradient's weight loads (`block_taps` in
/// conv2d.wgsl): `COBKW` taps per kernel row of a block of `cob` channels, shared across the
/// context's subgroups where it has them ([`subgroup_consts`]).
fn tap_consts(
    ctx: &GpuContext,
    cob: usize,
    kw: usize,
) -> impl Iterator<Item = (&'static str, usize)> {
    let lanes = ctx.subgroup_size().map(|l| l as usize);
    std::iter::once(("COBKW", cob * kw)).chain(subgroup_consts(lanes, cob * kw))
}

/// Whole vec4s covering a run of `len` values starting anywhere in a vec4.
fn covering_vec4s(len: usize) -> usize {
    (len + 3).div_ceil(4)
}

fn spec(
    g: &Conv2dGeometry,
    cob: usize,
    px: usize,
    act: Option<Activation>,
    weight: WeightReads,
    weight_grad_rows: usize,
    reads: Reads,
) -> crate::gpu::Consts {
    let s = g.spec;
    let seg = (px - 1) * s.stride[1] + (g.kw - 1) * s.dilation[1] + 1;
    let segb = px + (g.kw - 1) * s.dilation[1];
    let names = [
        "PXS", "PXV", "SEGS", "SEGV", "SEGN", "SEGOFF", "PWA", "ROWU", "GS", "SEGBS",
    ];
    let textures = reads.textures;
    let reads = match reads.rows {
        RowReads::Scalar => [px, 0, seg, 0, seg, 0, 0, 0, px, segb],
        RowReads::AlignedVec4s => {
            let pwa = s.padding[1].next_multiple_of(4);
            let segv = (pwa - s.padding[1] + seg - 1) / 4 + 1;
            [
                0,
                px / 4,
                0,
                segv,
                4 * segv,
                pwa - s.padding[1],
                pwa,
                0,
                0,
                segb,
            ]
        }
        RowReads::CoveringVec4s => [px, 0, 0, 0, seg, 0, 0, 1, 0, 0],
    };
    let mut c = consts(&[
        ("SEG", seg),
        ("SEGB", segb),
        ("KH", g.kh),
        ("KW", g.kw),
        ("SH", s.stride[0]),
        ("SW", s.stride[1]),
        ("PH", s.padding[0]),
        ("PW", s.padding[1]),
        ("DH", s.dilation[0]),
        ("DW", s.dilation[1]),
        ("COB", cob),
        ("PX", px),
        ("KYB", weight_grad_rows),
        ("KYBLOCKS", g.kh.div_ceil(weight_grad_rows)),
        ("COBKYBKW", cob * weight_grad_rows * g.kw),
        ("SEGUV", covering_vec4s(seg)),
        ("PXUV", covering_vec4s(px)),
        ("KWUV", covering_vec4s(g.kw)),
        act_const(act),
    ]);
    c.extend(names.into_iter().zip(reads));
    c.extend(weight.consts());
    c.extend(read_consts(textures));
    c
}

/// A shader's `Params` block: the geometry's nine words (`n` … `cog`, laid out alike in
/// `conv2d.wgsl` and `conv2d_tiled.wgsl`), then the kernel's own seven.
pub(super) fn params_block(g: &Conv2dGeometry, own: [u32; 7]) -> [u32; 16] {
    let geometry = [
        w(g.n),
        w(g.c_in),
        w(g.h),
        w(g.w),
        w(g.c_out),
        w(g.oh),
        w(g.ow),
        w(g.c_in_per_group()),
        w(g.c_out_per_group()),
    ];
    let mut block = [0; 16];
    block[..9].copy_from_slice(&geometry);
    block[9..].copy_from_slice(&own);
    block
}

#[allow(clippy::too_many_arguments)]
fn params(
    g: &Conv2dGeometry,
    xblocks: usize,
    cblocks: usize,
    total: usize,
    has_bias: bool,
    per_chunk: usize,
    wsize: usize,
) -> [u32; 16] {
    let own = [
        xblocks,
        cblocks,
        total,
        usize::from(has_bias),
        per_chunk,
        wsize,
        0,
    ];
    params_block(g, own.map(w))
}

/// Invocations of a kernel laid out by `block_id` (conv2d.wgsl): whole 64-wide workgroups
/// per channel block, `cblocks` blocks of `total` spatial blocks each.
fn block_invocations(cblocks: usize, total: usize) -> u64 {
    (cblocks * total.div_ceil(64) * 64) as u64
}

/// `y = act(conv(x, weight) + bias)`.
fn forward(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    x: &GpuBuffer,
    weight: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    act: Option<Activation>,
) -> Result<GpuBuffer> {
    let [n, c_out, oh, ow] = g.output_dims();
    let y = ctx.alloc("conv2d", n * c_out * oh * ow)?;
    let weight_reads = WeightReads::of(ctx, g, weight);
    let (cob, px) = forward_blocks(g, weight_reads.vectorised());
    let reads = RowReads::vec4s(g, px, &[x]);
    let xblocks = ow.div_ceil(px);
    let cblocks = g.spec.groups * g.c_out_per_group().div_ceil(cob);
    let total = n * oh * xblocks;
    let b = bias.unwrap_or(weight);
    let reads = Reads::of(ctx, reads, &[x]);
    let x_vec4s = reads.vec4_bindings()[0];
    let (x_at, y_at) = match reads.rows {
        RowReads::AlignedVec4s => (x_vec4s, 8),
        RowReads::CoveringVec4s => (x_vec4s, 4),
        RowReads::Scalar => (1, 4),
    };
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "conv_fwd",
        consts: spec(g, cob, px, act, weight_reads, 1, reads)
            .into_iter()
            .chain(tap_consts(ctx, cob, g.kw))
            .collect(),
        params: &params(g, xblocks, cblocks, total, bias.is_some(), 0, 0),
        bindings: &[(x_at, x), (2, weight), (3, b), (y_at, &y), (5, weight)]
            .into_iter()
            .chain(weight_reads.texture_binding(weight))
            .collect::<Vec<_>>(),
        invocations: block_invocations(cblocks, total),
        workgroup: 64,
    })?;
    Ok(y)
}

/// Gradient of the input.
fn backward_input(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    grad_y: &GpuBuffer,
    weight: &GpuBuffer,
) -> Result<GpuBuffer> {
    let gx = ctx.alloc("conv2d_backward_input", g.n * g.c_in * g.h * g.w)?;
    let weight_reads = WeightReads::of(ctx, g, weight);
    let (cob, px) = (
        pick_cob(g.c_in_per_group()),
        pick_row_px(g.w, weight_reads.vectorised()),
    );
    let xblocks = g.w.div_ceil(px);
    let cblocks = g.spec.groups * g.c_in_per_group().div_ceil(cob);
    let total = g.n * g.h * xblocks;
    // One block per row at stride 1: which products read padding is known (`ROWOW`).
    let whole_row_width = if xblocks == 1 && g.spec.stride[1] == 1 {
        g.ow
    } else {
        0
    };
    // Only the stride-1 path reads grad_y's rows as runs.
    let covering = g.spec.stride[1] == 1 && grad_y.binds_whole_vec4s();
    let reads = if covering {
        RowReads::CoveringVec4s
    } else {
        RowReads::Scalar
    };
    let reads = Reads::of(ctx, reads, &[grad_y]);
    let gy_vec4s = reads.vec4_bindings()[0];
    let covering_reads = [
        (1, grad_y),
        (2, weight),
        (4, &gx),
        (5, weight),
        (gy_vec4s, grad_y),
    ];
    let scalar_reads = [(1, grad_y), (2, weight), (4, &gx), (5, weight)];
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "conv_bwd_input",
        consts: spec(g, cob, px, None, weight_reads, 1, reads)
            .into_iter()
            .chain([("ROWOW", whole_row_width)])
            .chain(tap_consts(ctx, cob, g.kw))
            .collect(),
        params: &params(g, xblocks, cblocks, total, false, 0, 0),
        bindings: &if covering {
            &covering_reads[..]
        } else {
            &scalar_reads[..]
        }
        .iter()
        .copied()
        .chain(weight_reads.texture_binding(weight))
        .collect::<Vec<_>>(),
        invocations: block_invocations(cblocks, total),
        workgroup: 64,
    })?;
    Ok(gx)
}

/// Per-chunk partial sums of the weight gradient (and, when `with_bias`, of the bias gradient
/// after each chunk's weight taps), to be summed over the chunks in a fixed order.
struct WeightGradPartials {
    buffer: GpuBuffer,
    chunks: usize,
    /// The weight's taps in each chunk's slice.
    wsize: usize,
    /// One chunk's slice: the weight's taps, then the bias's channels when summed.
    len: usize,
}

fn backward_weight_partials(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    x: &GpuBuffer,
    grad_y: &GpuBuffer,
    with_bias: bool,
) -> Result<WeightGradPartials> {
    let (cob, px, rows) = (
        pick_cob(g.c_out_per_group()),
        pick_px(g.ow),
        pick_weight_grad_rows(g),
    );
    let reads = RowReads::vec4s(g, px, &[x, grad_y]);
    let xblocks = g.ow.div_ceil(px);
    let cblocks = g.spec.groups * g.c_out_per_group().div_ceil(cob);
    let per = cblocks * g.c_in_per_group() * g.kh.div_ceil(rows);
    // Enough chunks over the batch for ~2k invocations (seed LeNet's conv2 on llvmpipe: 8k
    // measured slower, the chunks' sum costing more than the extra parallelism gains).
    let chunks = g.n.min(2048usize.div_ceil(per.max(1))).max(1);
    let per_chunk = g.n.div_ceil(chunks);
    let chunks = if per_chunk == 0 {
        1
    } else {
        g.n.div_ceil(per_chunk)
    };
    let wsize = g.c_out * g.c_in_per_group() * g.kh * g.kw;
    let len = wsize + if with_bias { g.c_out } else { 0 };
    let buffer = ctx.alloc("conv2d_backward_weight", chunks * len)?;
    let total = chunks * per;
    let bias_end = total + if with_bias { chunks * cblocks } else { 0 };
    let mut params = params(g, xblocks, cblocks, total, with_bias, per_chunk, wsize);
    params[15] = w(bias_end);
    let reads = Reads::of(ctx, reads, &[x, grad_y]);
    let [x_vec4s, gy_vec4s] = reads.vec4_bindings();
    // From storage, grad_y stays bound as f32s for the bias's partials; through textures they
    // read its texture too.
    let vec4_reads = [(x_vec4s, x), (gy_vec4s, grad_y), (4, &buffer), (2, grad_y)];
    let f32_reads = [(1, x), (2, grad_y), (4, &buffer)];
    ctx.dispatch(Dispatch {
        shader: &SHADER,
        entry: "conv_bwd_weight",
        consts: spec(g, cob, px, None, WeightReads::Storage, rows, reads),
        params: &params,
        bindings: match (reads.rows, reads.textures) {
            (RowReads::Scalar, _) => &f32_reads,
            (_, true) => &vec4_reads[..3],
            _ => &vec4_reads,
        },
        invocations: bias_end as u64,
        workgroup: 64,
    })?;
    Ok(WeightGradPartials {
        buffer,
        chunks,
        wsize,
        len,
    })
}

/// Gradient of the weight: per-chunk partial sums, then a fixed-order sum over the chunks.
fn backward_weight(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    x: &GpuBuffer,
    grad_y: &GpuBuffer,
) -> Result<GpuBuffer> {
    let p = backward_weight_partials(ctx, g, x, grad_y, false)?;
    sum_outer(ctx, &p.buffer, p.chunks, p.wsize, 1.0)
}

/// Gradients of the weight and the bias from one pass over `grad_y`, summed over the chunks by
/// one launch.
fn backward_weight_and_bias(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    x: &GpuBuffer,
    grad_y: &GpuBuffer,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let p = backward_weight_partials(ctx, g, x, grad_y, true)?;
    sum_outer_split(ctx, &p.buffer, p.chunks, p.len, p.wsize)
}

impl Conv2dKernels for Arc<GpuContext> {
    fn conv2d(
        &self,
        g: &Conv2dGeometry,
        x: &DeviceTensor,
        w: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        act: Option<Activation>,
    ) -> Result<DeviceTensor> {
        const OP: &str = "conv2d";
        let b = bias.map(|b| b.gpu(self, OP)).transpose()?;
        let (x, w) = (x.gpu(self, OP)?, w.gpu(self, OP)?);
        let y = match self.kernels() {
            GpuKernels::Tiled => gpu_tiled::forward(self, g, x, w, b, act)?,
            _ => forward(self, g, x, w, b, act)?,
        };
        Ok(DeviceTensor::from_gpu(
            self,
            Shape::new(&g.output_dims())?,
            y,
        ))
    }

    fn conv2d_backward_input(
        &self,
        g: &Conv2dGeometry,
        grad_y: &DeviceTensor,
        w: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        const OP: &str = "conv2d_backward_input";
        let (grad_y, w) = (grad_y.gpu(self, OP)?, w.gpu(self, OP)?);
        let gx = match self.kernels() {
            GpuKernels::Tiled => gpu_tiled::backward_input(self, g, grad_y, w)?,
            _ => backward_input(self, g, grad_y, w)?,
        };
        Ok(DeviceTensor::from_gpu(
            self,
            Shape::new(&g.input_dims())?,
            gx,
        ))
    }

    fn conv2d_backward_weight(
        &self,
        g: &Conv2dGeometry,
        x: &DeviceTensor,
        grad_y: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        const OP: &str = "conv2d_backward_weight";
        let (x, grad_y) = (x.gpu(self, OP)?, grad_y.gpu(self, OP)?);
        let gw = match self.kernels() {
            GpuKernels::Tiled => gpu_tiled::backward_weight(self, g, x, grad_y)?,
            _ => backward_weight(self, g, x, grad_y)?,
        };
        Ok(DeviceTensor::from_gpu(
            self,
            Shape::new(&g.weight_dims())?,
            gw,
        ))
    }

    fn sums_bias_with_weight_grad(&self) -> bool {
        self.kernels() != GpuKernels::Tiled
    }

    fn conv2d_backward_weight_and_bias(
        &self,
        g: &Conv2dGeometry,
        x: &DeviceTensor,
        grad_y: &DeviceTensor,
    ) -> Option<Result<(DeviceTensor, DeviceTensor)>> {
        if !self.sums_bias_with_weight_grad() {
            return None;
        }
        const OP: &str = "conv2d_backward_weight";
        let both = || {
            let (x, grad_y) = (x.gpu(self, OP)?, grad_y.gpu(self, OP)?);
            let (gw, gb) = backward_weight_and_bias(self, g, x, grad_y)?;
            Ok((
                DeviceTensor::from_gpu(self, Shape::new(&g.weight_dims())?, gw),
                DeviceTensor::from_gpu(self, Shape::new(&[g.c_out])?, gb),
            ))
        };
        Some(both())
    }
}
