//! Implicit-GEMM convolution for any channel count (LeNet's conv2, ResNet's 3×3 and 1×1 convs,
//! strided ones included): forward, input gradient (stride 1) and weight gradient in AVX-512
//! or AVX2 + FMA, without im2col. The register tiles (`tiles.rs`) are written once over 16-lane
//! vectors and compiled for both extensions; AVX2, with half the registers of half the width,
//! runs smaller tiles over the same layouts.
//!
//! Each image's planes are copied once into zero-padded planes of row width `P = w + 2·pad_x`.
//! Read flat, output position `p = oy·P + ox` takes tap `(ci, ky, kx)` from
//! `plane[ci][p + ky·P + kx]`: every row of the im2col matrix is a window of the padded planes
//! at a fixed offset, so the GEMM reads it in place instead of copying it (im2col, col2im and
//! the GEMM's packing were 38 % of a resnet-small step). Positions with `ox ≥ ow` are computed
//! and dropped: `kw − 1` extra columns per row (10 of 14 kept for LeNet's conv2, 28 of 30 for a
//! padded 28×28 3×3 conv). Where the padded planes would be the image unchanged (no padding,
//! stride 1, planes of whole vectors: NiN's 1×1 convs at 28×28) the kernels read the image in
//! place.
//!
//! At stride `s > 1` the padded image is split into phase planes, plane `(a, b)` holding
//! `padded[s·i + a][s·j + b]`: tap `(ky, kx)` of output `(oy, ox)` is then
//! `phase(ky mod s, kx mod s)[oy + ky / s][ox + kx / s]`, a window at a fixed offset again, so
//! strided convolutions run the same tiles (only the phases some tap reads are stored: one for
//! a 1×1 kernel). Their input gradient runs as one stride-1 correlation per phase of the input
//! (`strided_input_grad.rs`).
//! - Forward: register tiles of up to 8 output channels (6 on AVX2) × 1–4 vectors of 16
//!   positions, one broadcast weight per channel and one load per vector for each tap.
//! - Input gradient: at stride 1 it is the same correlation run on the output gradient padded
//!   by `k − 1 − pad`, with the kernel flipped and its channel axes swapped.
//! - Weight gradient, kernels 3 or 5 wide with at least 8 output channels per group (every
//!   3×3 and 5×5 conv of the shipped models): the output gradient is transposed to channels
//!   innermost (one 16-channel gather per position), and tiles of one or two 16-channel vectors
//!   × up to 24 taps (one vector × 6 on AVX2) (whole kernel rows, one pointer per row) take
//!   one broadcast input value per tap and position: 24 independent sums in registers, no
//!   horizontal sums. On AVX-512 at stride 1 they take positions in pairs, each of a kernel
//!   row's `kw + 1` input values broadcast once for both positions.
//! - Other weight gradients (1×1 kernels, narrow groups): tiles of 4 output channels × 6 taps
//!   (3 × 2 on AVX2) with 16 lane partial sums each, reduced by a fixed instruction sequence.
//! - Both sum over a fixed chunk of images, the chunks summed in order: the same result
//!   whatever the thread count.
//!
//! Without AVX2 + FMA (or with `FOVEA_CPU_CONV=im2col`, for benchmarking) the callers keep
//! im2col + GEMM; `FOVEA_CPU_ISA=avx2` keeps an AVX-512 CPU on the AVX2 tiles.

use crate::cpu::f32x16::Isa;
use crate::cpu::f32x16::LANES;
use crate::cpu::reduce::{add_channel_sums, add_in_order, sum_partials_in_order};
use crate::cpu::scratch::{Scratch, ScratchPool};
use crate::cpu::short_runs::copy_run;
use crate::ops::activation::cpu::epilogue;
use crate::{Activation, Conv2dGeometry};
use rayon::prelude::*;

mod strided_input_grad;
mod tiles;

pub(crate) use strided_input_grad::{backward_input_strided, strided_input_grad_applies};

use tiles::{ChannelVectorTile, ForwardTile, LaneSumTile};

/// Taps summed in one chain at most before the partial sum is added to the output: f32 rounding
/// grows with the chain, and batch norm amplifies it (resnet-small's two-step PyTorch replay
/// misses its tolerance with chains of 160 or 576, and with equal blocks of at most 64). At
/// resnet-small's 64-channel 3×3 conv, the forward's RMS error against the f64 reference is
/// 1.1e-6 with blocks of 64, 2.9e-6 with one chain, 2.6e-6 for im2col + GEMM.
pub(super) const TAP_BLOCK: usize = 64;

/// Position vectors of a forward tile at most.
const MAX_NV: usize = 4;

/// Flat output positions per channel above which the planes of one image stop fitting in L2.
const MAX_FLAT: usize = 1 << 14;

/// Output positions per weight-gradient chunk, and the padded bytes one chunk may hold; both
/// functions of the shape only, never of the thread count, so the order of the sums is fixed.
const WG_POSITIONS: usize = 4096;
const WG_CHUNK_BYTES: usize = 512 << 10;

/// Output positions per channel-vector weight-gradient chunk: each sum is one f32 chain over
/// them (then the chunks are added in order), so this bounds its rounding.
const WG_CHAIN: usize = 2048;

/// Output channels per group from which the weight gradient runs in channel vectors (a group
/// of 8 fills half of each vector).
const MIN_CHANNEL_VECTOR: usize = 8;

/// The vector extension the tiles run in, once [`applies`] said they do.
fn isa() -> Isa {
    Isa::detected().expect("implicit GEMM: called where `applies` is false")
}

/// Whether the tiles may run: the CPU has an extension they are written for and
/// `FOVEA_CPU_CONV` is not `im2col` (read once per process).
fn tiles_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| {
        Isa::detected().is_some() && !std::env::var("FOVEA_CPU_CONV").is_ok_and(|v| v == "im2col")
    })
}

/// Whether the forward pass and the weight gradient run here: dilation 1, a non-empty output
/// and planes small enough for one image to stay in cache (any stride).
pub(crate) fn applies(g: &Conv2dGeometry) -> bool {
    let s = g.spec;
    s.dilation == [1, 1]
        && s.stride[0] > 0
        && s.stride[1] > 0
        && g.oh > 0
        && g.ow > 0
        && g.kh > 0
        && g.kw > 0
        && g.c_in_per_group() > 0
        && g.c_out_per_group() > 0
        && Correlation::forward_of(g).flat() <= MAX_FLAT
        && tiles_allowed()
}

/// Whether the input gradient runs here: [`applies`] at stride 1, and padding of at most
/// `k − 1` (so the adjoint correlation's padding `k − 1 − pad` exists).
pub(crate) fn input_grad_applies(g: &Conv2dGeometry) -> bool {
    applies(g)
        && g.spec.stride == [1, 1]
        && g.spec.padding[0] < g.kh
        && g.spec.padding[1] < g.kw
        && g.h > 0
        && g.w > 0
        && Correlation::input_grad_of(g).flat() <= MAX_FLAT
}

/// Lane products the input gradient computes per image: flat positions (dropped columns and
/// padding included) × output channels × taps of the adjoint correlation.
pub(crate) fn input_grad_products(g: &Conv2dGeometry) -> usize {
    let c = Correlation::input_grad_of(g);
    c.flat() * c.c_out * c.taps()
}

/// One image's correlation: what the forward pass, the input gradient (at stride 1, where it is
/// a correlation too) and the weight gradient run.
#[derive(Clone, Copy, Debug)]
struct Correlation {
    groups: usize,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    pad: [usize; 2],
    stride: [usize; 2],
    oh: usize,
    ow: usize,
}

impl Correlation {
    /// The forward convolution.
    fn forward_of(g: &Conv2dGeometry) -> Self {
        Self {
            groups: g.spec.groups,
            c_in: g.c_in,
            c_out: g.c_out,
            h: g.h,
            w: g.w,
            kh: g.kh,
            kw: g.kw,
            pad: g.spec.padding,
            stride: g.spec.stride,
            oh: g.oh,
            ow: g.ow,
        }
    }

    /// The input gradient: the output gradient correlated with the flipped, channel-swapped
    /// kernel at padding `k − 1 − pad` (callers check [`input_grad_applies`]).
    fn input_grad_of(g: &Conv2dGeometry) -> Self {
        Self {
            groups: g.spec.groups,
            c_in: g.c_out,
            c_out: g.c_in,
            h: g.oh,
            w: g.ow,
            kh: g.kh,
            kw: g.kw,
            pad: [g.kh - 1 - g.spec.padding[0], g.kw - 1 - g.spec.padding[1]],
            stride: [1, 1],
            oh: g.h,
            ow: g.w,
        }
    }

    fn cig(&self) -> usize {
        self.c_in / self.groups
    }

    fn cog(&self) -> usize {
        self.c_out / self.groups
    }

    /// A group's output channels rounded up to whole vectors (the transposed gradient's row).
    fn cop(&self) -> usize {
        self.cog().next_multiple_of(LANES)
    }

    /// Taps of one output channel: `cig · kh · kw`.
    fn taps(&self) -> usize {
        self.cig() * self.kh * self.kw
    }

    /// Phase planes per input channel, rows × columns: `min(s, k)` each way (the phases some
    /// tap reads); one plane at stride 1.
    fn phases(&self) -> [usize; 2] {
        [self.stride[0].min(self.kh), self.stride[1].min(self.kw)]
    }

    /// Row width of a (phase) plane, `ow + (kw − 1) / s_x`: `w + 2·pad_x` at stride 1.
    fn row(&self) -> usize {
        self.ow + (self.kw - 1) / self.stride[1]
    }

    /// Rows of a (phase) plane that taps read, `oh + (kh − 1) / s_y`.
    fn rows(&self) -> usize {
        self.oh + (self.kh - 1) / self.stride[0]
    }

    /// Flat output positions computed per channel (`oh` rows of [`Self::row`]), in vectors.
    fn flat(&self) -> usize {
        (self.oh * self.row()).next_multiple_of(LANES)
    }

    /// Distance between planes: every vector of every tap reads inside its plane.
    fn plane_stride(&self) -> usize {
        let reach = (self.kh - 1) / self.stride[0] * self.row() + (self.kw - 1) / self.stride[1];
        (self.flat() + reach).next_multiple_of(LANES)
    }

    /// Planes per input channel: its phases.
    fn planes_per_channel(&self) -> usize {
        let [py, px] = self.phases();
        py * px
    }

    /// Length of one image's planes.
    fn padded_len(&self) -> usize {
        self.c_in * self.planes_per_channel() * self.plane_stride()
    }

    /// Whether an image laid out as `[c_in, h, w]` already is its padded planes: no padding,
    /// stride 1 and planes of whole vectors with no reach past them (a 1×1 conv over planes of
    /// 16·k positions, such as NiN's 1×1 convs at 28×28). The kernels then read the image in
    /// place instead of copying it.
    fn reads_image_in_place(&self) -> bool {
        self.stride == [1, 1]
            && self.pad == [0, 0]
            && self.plane_stride() == self.h * self.w
            && self.padded_len() == self.c_in * self.h * self.w
    }

    /// Offsets of a group's taps `(ci, ky, kx)` from its first plane, in the order of the
    /// weight's flattened `[cig, kh, kw]`: phase plane `(ky mod s_y, kx mod s_x)` of channel
    /// `ci`, row `ky / s_y`, column `kx / s_x`.
    fn tap_offsets(&self) -> Vec<usize> {
        let (row, stride) = (self.row(), self.plane_stride());
        let ([sy, sx], [py, px]) = (self.stride, self.phases());
        let mut offs = Vec::with_capacity(self.taps());
        for ci in 0..self.cig() {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let plane = (ci * py + ky % sy) * px + kx % sx;
                    offs.push(plane * stride + ky / sy * row + kx / sx);
                }
            }
        }
        offs
    }
}

simd_dispatch!(
    /// Copies one image (`[c_in, h, w]`) into its zero-padded (phase) planes: one fill, then the
    /// image's values (compiled for the widest vector extension the CPU has).
    fn pad_image(c: &Correlation, img: &[f32], xpad: &mut [f32]) => pad_image_generic
);

#[inline(always)]
fn pad_image_generic(c: &Correlation, img: &[f32], xpad: &mut [f32]) {
    let (row, rows, stride) = (c.row(), c.rows(), c.plane_stride());
    let [py, px] = c.phases();
    let xpad = &mut xpad[..c.padded_len()];
    // One fill, then the image's values: measured faster than writing each row's padding
    // with its values (the fill writes whole cache lines without reading them first).
    xpad.fill(0.0);
    if c.h * c.w == 0 {
        return;
    }
    // No padding (1×1 kernels at stride 1): each plane is one contiguous copy.
    let contiguous = c.stride == [1, 1] && c.pad == [0, 0] && row == c.w;
    let mut planes = xpad.chunks_exact_mut(stride);
    for src in img.chunks_exact(c.h * c.w) {
        if contiguous {
            let plane = planes.next().expect("padded_len holds every plane");
            plane[..src.len()].copy_from_slice(src);
            continue;
        }
        for a in 0..py {
            for b in 0..px {
                let plane = planes.next().expect("padded_len holds every phase plane");
                let span = ColumnSpan::of(c, b, row);
                for (i, dst) in plane[..rows * row].chunks_exact_mut(row).enumerate() {
                    // Row `i` of the phase plane is row `i·s_y + a` of the padded image.
                    let Some(iy) = (i * c.stride[0] + a)
                        .checked_sub(c.pad[0])
                        .filter(|&iy| iy < c.h)
                    else {
                        continue;
                    };
                    span.copy(c, &src[iy * c.w..][..c.w], dst);
                }
            }
        }
    }
}

/// The columns of a phase plane's rows that hold image values: `lo..hi`, column `j` reading
/// image column `first + (j − lo)·s_x`. The same for every row of the plane, so computed once
/// per plane (its divisions per row were a third of the padding's time).
#[derive(Clone, Copy)]
struct ColumnSpan {
    lo: usize,
    hi: usize,
    first: usize,
}

impl ColumnSpan {
    /// The span of phase column `b` in rows of `row` columns.
    #[inline(always)]
    fn of(c: &Correlation, b: usize, row: usize) -> Self {
        let (pad_x, sx) = (c.pad[1], c.stride[1]);
        // Column `j` reads image column `j·s_x + b − pad_x`: inside the image for `lo ≤ j < hi`.
        let lo = pad_x.saturating_sub(b).div_ceil(sx).min(row);
        let hi = (c.w + pad_x).saturating_sub(b).div_ceil(sx).clamp(lo, row);
        // Empty when every column of this phase falls in the padding (a row narrower than the
        // padding); `first` is then never read.
        let first = (lo * sx + b).saturating_sub(pad_x);
        Self { lo, hi, first }
    }

    /// Copies the span's values of one image row into `dst` (already zero, so the padding is
    /// left alone).
    #[inline(always)]
    fn copy(&self, c: &Correlation, src_row: &[f32], dst: &mut [f32]) {
        if self.lo == self.hi {
            return;
        }
        let body = &mut dst[self.lo..self.hi];
        let src = &src_row[self.first..];
        match c.stride[1] {
            1 => copy_run(body, src),
            2 => every_nth::<2>(body, src),
            sx => {
                for (d, s) in body.iter_mut().zip(src.iter().step_by(sx)) {
                    *d = *s;
                }
            }
        }
    }
}

/// `dst[j] = src[j·N]`: with `N` a constant, the compiler vectorises the strided reads.
#[inline(always)]
fn every_nth<const N: usize>(dst: &mut [f32], src: &[f32]) {
    let whole = dst.len().min(src.len() / N);
    let (head, rest) = dst.split_at_mut(whole);
    for (d, s) in head.iter_mut().zip(src.chunks_exact(N)) {
        *d = s[0];
    }
    for (j, d) in rest.iter_mut().enumerate() {
        *d = src[(whole + j) * N];
    }
}

simd_dispatch!(
    /// Copies the flat result (`[c_out, flat]`) into the image's output (`[c_out, oh, ow]`),
    /// dropping the columns past `ow` and adding the bias. The bias comes after the sum, as in
    /// im2col + GEMM: started from the bias, the accumulators would round every product to the
    /// bias's scale, and batch norm over a nearly constant channel amplifies exactly those
    /// low bits (PyTorch's two-step resnet-small replay missed its tolerance that way).
    fn unpad_output(c: &Correlation, flat: &[f32], bias: Option<&[f32]>, out: &mut [f32]) => unpad_output_generic
);

#[inline(always)]
fn unpad_output_generic(c: &Correlation, flat: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let (row, plane) = (c.row(), c.oh * c.ow);
    for (co, (dst, src)) in out
        .chunks_exact_mut(plane)
        .zip(flat.chunks_exact(c.flat()))
        .enumerate()
    {
        if row == c.ow {
            // No dropped columns (1×1 kernels without padding): one contiguous copy.
            dst.copy_from_slice(&src[..plane]);
        } else {
            // Rows of 7–28 values: fixed-width copies, then the bias over the whole plane
            // (measured faster than adding it row by row).
            for (oy, d) in dst.chunks_exact_mut(c.ow).enumerate() {
                copy_run(d, &src[oy * row..][..c.ow]);
            }
        }
        if let Some(b) = bias {
            let bv = b[co];
            for d in dst.iter_mut() {
                *d += bv;
            }
        }
    }
}

/// A correlation's kernel regrouped per block of `block` output channels of a group (the
/// extension's forward tile width, [`Isa::forward_channels`]): `taps` is
/// `[groups, blocks, taps, block]`, zero where a group's last block is short.
struct PackedKernel {
    block: usize,
    blocks: usize,
    taps: Vec<f32>,
}

impl PackedKernel {
    /// Packs `dense` (`[c_out, taps]`: every output channel's taps, in its group's order).
    fn new(c: &Correlation, dense: &[f32]) -> Self {
        let (cog, taps, block) = (c.cog(), c.taps(), isa().forward_channels());
        let blocks = cog.div_ceil(block);
        let mut packed = vec![0.0f32; c.groups * blocks * taps * block];
        for (co, row) in dense.chunks_exact(taps).enumerate() {
            let (grp, cl) = (co / cog, co % cog);
            let (blk, lane) = (grp * blocks + cl / block, cl % block);
            let dst = &mut packed[blk * taps * block + lane..];
            for (t, &v) in row.iter().enumerate() {
                dst[t * block] = v;
            }
        }
        Self {
            block,
            blocks,
            taps: packed,
        }
    }

    /// The forward kernel: `w` is `[c_out, cig, kh, kw]`, already `[c_out, taps]`.
    fn forward(c: &Correlation, w: &[f32]) -> Self {
        Self::new(c, &w[..c.c_out * c.taps()])
    }

    /// The input gradient's kernel: output channel `ci` of group `grp` takes, at tap
    /// `(co, ky, kx)`, the forward weight `w[grp·cog + co, ci, kh − 1 − ky, kw − 1 − kx]`.
    fn input_grad(g: &Conv2dGeometry, c: &Correlation, w: &[f32]) -> Self {
        let all = |k| KernelTaps {
            first: 0,
            count: k,
            step: 1,
        };
        Self::flipped(g, c, all(g.kh), all(g.kw), w)
    }

    /// A kernel of the forward weight's rows and columns `rows`, `cols` read backwards, its
    /// channel axes swapped: output channel `ci` of group `grp` takes, at tap `(co, u, v)`, the
    /// weight `w[grp·cog + co, ci, rows.at(count − 1 − u), cols.at(count − 1 − v)]` (the
    /// input gradient's, and at stride `s` one input phase's). Built by loops over the weight,
    /// not an index computed per tap (its divisions cost a 64-channel 3×3 conv's input
    /// gradient a fifth of its time).
    fn flipped(
        g: &Conv2dGeometry,
        c: &Correlation,
        rows: KernelTaps,
        cols: KernelTaps,
        w: &[f32],
    ) -> Self {
        let (fwd_cig, fwd_cog, kk) = (g.c_in_per_group(), g.c_out_per_group(), g.kh * g.kw);
        let taps = c.taps();
        let per_channel = rows.count * cols.count;
        let mut dense = vec![0.0f32; c.c_out * taps];
        for (fwd_co, filter) in w.chunks_exact(fwd_cig * kk).enumerate() {
            let (grp, co) = (fwd_co / fwd_cog, fwd_co % fwd_cog);
            for (ci, window) in filter.chunks_exact(kk).enumerate() {
                let row = &mut dense[(grp * fwd_cig + ci) * taps + co * per_channel..];
                for u in 0..rows.count {
                    let ky = rows.at(rows.count - 1 - u);
                    for v in 0..cols.count {
                        row[u * cols.count + v] = window[ky * g.kw + cols.at(cols.count - 1 - v)];
                    }
                }
            }
        }
        Self::new(c, &dense)
    }
}

/// Kernel rows (or columns) `first, first + step, ...`, `count` of them.
#[derive(Clone, Copy, Debug)]
struct KernelTaps {
    first: usize,
    count: usize,
    step: usize,
}

impl KernelTaps {
    /// The `i`-th of them.
    fn at(&self, i: usize) -> usize {
        self.first + self.step * i
    }
}

/// Runs one image's correlation (`xpad`: its padded planes) into `flat` (`[c_out, flat]`).
fn correlate_image(
    c: &Correlation,
    xpad: &[f32],
    offs: &[usize],
    k: &PackedKernel,
    flat: &mut [f32],
) {
    let (cig, cog, taps) = (c.cig(), c.cog(), c.taps());
    let (stride, nflat) = (c.plane_stride(), c.flat());
    let vectors = nflat / LANES;
    assert!(
        xpad.len() >= c.padded_len() && flat.len() >= c.c_out * nflat && offs.len() == taps,
        "implicit GEMM: buffers smaller than the correlation"
    );
    let isa = isa();
    for grp in 0..c.groups {
        let group_len = cig * c.planes_per_channel() * stride;
        let planes = &xpad[grp * group_len..(grp + 1) * group_len];
        for blk in 0..k.blocks {
            let cb = k.block.min(cog - blk * k.block);
            let kb = grp * k.blocks + blk;
            let w = &k.taps[kb * taps * k.block..(kb + 1) * taps * k.block];
            let out = &mut flat[(grp * cog + blk * k.block) * nflat..][..cb * nflat];
            let nv_max = (isa.forward_accumulators() / cb).min(MAX_NV);
            let mut v0 = 0;
            while v0 < vectors {
                let nv = nv_max.min(vectors - v0);
                // Blocks of taps each summed from zero, then added: shorter f32 chains (as a
                // GEMM's K blocks), whose rounding batch norm would amplify. The tile runs
                // them all (one call per tile, not per block).
                let tile = ForwardTile {
                    x: &planes[v0 * LANES..],
                    offs,
                    w,
                    w_stride: k.block,
                    out_stride: nflat,
                    tap_block: TAP_BLOCK,
                };
                // SAFETY: `applies` found the extension; the tile reads `planes` at
                // `v0·16 + offs[t] + j·16 + 15 < cig · stride` (plane_stride leaves room for
                // the widest tap after the last vector), the block's weights at
                // `t·block + c < taps·block`, and writes `cb` rows of `nflat` floats from
                // `v0·16`, inside `out`.
                unsafe { isa.forward_tile([cb, nv], &tile, &mut out[v0 * LANES..]) };
                v0 += nv;
            }
        }
    }
}

/// Runs a correlation over every image, one rayon task per image, `finish` turning its output
/// (hot in L1/L2) into the final values.
fn correlate(
    pool: &ScratchPool,
    c: &Correlation,
    k: &PackedKernel,
    x: &[f32],
    y: &mut [f32],
    bias: Option<&[f32]>,
    finish: impl Fn(&mut [f32]) + Sync,
) {
    let (img_in, img_out) = (c.c_in * c.h * c.w, c.c_out * c.oh * c.ow);
    let (offs, in_place) = (c.tap_offsets(), c.reads_image_in_place());
    y.par_chunks_mut(img_out)
        .zip(x.par_chunks(img_in))
        .for_each(|(y_img, x_img)| {
            let mut flat = pool.take(c.c_out * c.flat());
            let xpad = laid_out(pool, in_place, x_img, img_in, c.padded_len(), |s, d| {
                pad_image(c, s, d)
            });
            correlate_image(c, xpad.as_deref().unwrap_or(x_img), &offs, k, &mut flat);
            unpad_output(c, &flat, bias, y_img);
            finish(y_img);
        });
}

/// `y = act(conv(x, w) + bias)` when [`applies`].
pub(crate) fn forward(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    y: &mut [f32],
) {
    let c = Correlation::forward_of(g);
    let k = PackedKernel::forward(&c, w);
    correlate(pool, &c, &k, x, y, bias, |y_img| epilogue(act, y_img));
}

/// `grad_x` from `grad_y` and the weight when [`input_grad_applies`].
pub(crate) fn backward_input(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    grad_y: &[f32],
    w: &[f32],
    grad_x: &mut [f32],
) {
    let c = Correlation::input_grad_of(g);
    let k = PackedKernel::input_grad(g, &c, w);
    correlate(pool, &c, &k, grad_y, grad_x, None, |_| {});
}

/// `grad_w` (and `grad_b`, the bias gradient, when given) from the input and `grad_y` when
/// [`applies`]: partial sums per fixed chunk of images, the chunks summed in order. Groups of
/// at least [`MIN_CHANNEL_VECTOR`] output channels and kernels 3 or 5 wide run the
/// channel-vector tiles, the others the lane-sum tiles.
pub(crate) fn backward_weight(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    x: &[f32],
    grad_y: &[f32],
    grad_w: &mut [f32],
    mut grad_b: Option<&mut [f32]>,
) {
    let c = Correlation::forward_of(g);
    grad_w.fill(0.0);
    if let Some(b) = grad_b.as_deref_mut() {
        b.fill(0.0);
    }
    if g.n == 0 || g.c_in * g.h * g.w == 0 {
        return;
    }
    let grads = WeightGrads { grad_w, grad_b };
    if c.cog() >= MIN_CHANNEL_VECTOR && matches!(c.kw, 3 | 5) {
        backward_weight_by_channel_vectors(pool, &c, x, grad_y, grads)
    } else {
        backward_weight_by_lane_sums(pool, &c, x, grad_y, grads)
    }
}

/// What a weight-gradient pass writes: the weight's gradient, and the bias's when asked for
/// (summed from each chunk's output gradient while the chunk is in cache).
struct WeightGrads<'a> {
    grad_w: &'a mut [f32],
    grad_b: Option<&'a mut [f32]>,
}

/// The weight gradient with the output channels in vectors: each image's `grad_y` transposed
/// to `[groups, oh·row, cop]` (channels innermost, `cop` = the group's channels rounded up to
/// 16), then tiles of 1–2 channel vectors × up to 24 taps accumulate
/// `grad_y[p][co..co + 16] · x[p + offs[t]]` (one broadcast input value per tap) in registers,
/// with no horizontal sums. Chunks of about [`WG_CHAIN`] positions.
fn backward_weight_by_channel_vectors(
    pool: &ScratchPool,
    c: &Correlation,
    x: &[f32],
    grad_y: &[f32],
    grads: WeightGrads<'_>,
) {
    let gyt_len = c.groups * c.oh * c.row() * c.cop();
    let rows = KernelRows::of(c);
    let plan = ChunkPlan {
        gy_len: gyt_len,
        positions: WG_CHAIN,
        per_image: c.oh * c.row(),
        gy_in_place: false,
    };
    weight_grad_by_chunks(
        pool,
        c,
        x,
        grad_y,
        grads,
        &plan,
        transpose_grad,
        |chunk, out| channel_vector_chunk(c, chunk, &rows, out),
    );
}

/// A correlation's taps as kernel rows, for the channel-vector tiles: the offset of each row's
/// first tap (`(ci, ky, 0)`, in the order of the weight's flattened `[cig, kh, kw]`) and the
/// distances of a row's taps from it, the same for every row (`kx mod s_x` phase planes and
/// `kx / s_x` columns on). Derived and checked once per call, not per chunk.
struct KernelRows {
    starts: Vec<usize>,
    kx_steps: Vec<usize>,
}

impl KernelRows {
    fn of(c: &Correlation) -> Self {
        let (offs, kw) = (c.tap_offsets(), c.kw);
        let kx_steps: Vec<usize> = offs[..kw].iter().map(|&o| o - offs[0]).collect();
        let starts: Vec<usize> = offs.iter().step_by(kw).copied().collect();
        let group_span = c.cig() * c.planes_per_channel() * c.plane_stride() * (c.groups - 1);
        assert!(
            offs.chunks_exact(kw)
                .all(|r| r.iter().zip(&kx_steps).all(|(&o, &d)| o == r[0] + d))
                && offs
                    .iter()
                    .all(|&o| { group_span + o + (c.oh - 1) * c.row() + c.ow <= c.padded_len() }),
            "implicit GEMM: kernel rows outside the padded planes"
        );
        Self { starts, kx_steps }
    }
}

/// The weight gradient with lane partial sums: tiles of a few output channels × a few taps
/// ([`Isa::lane_sum_tile`]), each sum spread over 16 lanes and reduced at the end of a chunk of about
/// [`WG_POSITIONS`] flat positions.
fn backward_weight_by_lane_sums(
    pool: &ScratchPool,
    c: &Correlation,
    x: &[f32],
    grad_y: &[f32],
    grads: WeightGrads<'_>,
) {
    let offs = c.tap_offsets();
    let plan = ChunkPlan {
        gy_len: c.c_out * c.flat(),
        positions: WG_POSITIONS,
        per_image: c.flat(),
        // Rows without dropped columns in planes of whole vectors: the flat layout is the
        // gradient's own.
        gy_in_place: c.row() == c.ow && c.flat() == c.oh * c.ow,
    };
    weight_grad_by_chunks(
        pool,
        c,
        x,
        grad_y,
        grads,
        &plan,
        flatten_grad,
        |chunk, out| weight_grad_chunk(c, chunk, &offs, out),
    );
}

/// How a weight-gradient kernel cuts the batch into chunks: the length of one image's laid-out
/// gradient, the positions a chunk aims for (`per_image` each), and whether the gradient is
/// already laid out (`lay_out` would copy it unchanged, so the kernel reads it in place).
struct ChunkPlan {
    gy_len: usize,
    positions: usize,
    per_image: usize,
    gy_in_place: bool,
}

/// Runs a weight-gradient kernel over fixed chunks of images in parallel: each chunk's images
/// padded (`pad_image`) and their gradients laid out by `lay_out`, each read in place where
/// that layout is its own ([`laid_out`]), `sum_chunk` writing the
/// chunk's sums into a zeroed partial, the partials added in order; the bias's, when asked
/// for, are the chunk's planes' lane sums (as `channel_sum`'s) added in f64 in image order.
/// The chunk size depends on the shape only, never on the thread count, so the result does not
/// either.
#[allow(clippy::too_many_arguments)] // the two operands, the results, and the kernel's parts
fn weight_grad_by_chunks(
    pool: &ScratchPool,
    c: &Correlation,
    x: &[f32],
    grad_y: &[f32],
    grads: WeightGrads<'_>,
    plan: &ChunkPlan,
    lay_out: fn(&Correlation, &[f32], &mut [f32]),
    sum_chunk: impl Fn(&ChunkPlanes<'_>, &mut [f32]) + Sync,
) {
    let (img_in, img_out) = (c.c_in * c.h * c.w, c.c_out * c.oh * c.ow);
    let (padded, gy_len) = (c.padded_len(), plan.gy_len);
    let by_bytes = WG_CHUNK_BYTES / ((padded + gy_len) * size_of::<f32>());
    let b = (plan.positions / plan.per_image.max(1))
        .min(by_bytes)
        .clamp(1, x.len() / img_in);
    let x_in_place = c.reads_image_in_place();
    let WeightGrads { grad_w, grad_b } = grads;
    let with_bias = grad_b.is_some();
    let (partials, bias_partials): (Vec<Vec<f32>>, Vec<Vec<f64>>) = x
        .par_chunks(b * img_in)
        .zip(grad_y.par_chunks(b * img_out))
        .map(|(xc, gyc)| {
            let nb = xc.len() / img_in;
            let xpads = laid_out(pool, x_in_place, xc, img_in, padded, |s, d| {
                pad_image(c, s, d)
            });
            let gys = laid_out(pool, plan.gy_in_place, gyc, img_out, gy_len, |s, d| {
                lay_out(c, s, d)
            });
            // The gradient was just read to lay it out: its planes are in cache.
            let mut bias = vec![0f64; if with_bias { c.c_out } else { 0 }];
            add_channel_sums(&mut bias, gyc, c.oh * c.ow);
            let mut partial = vec![0.0f32; grad_w.len()];
            let chunk = ChunkPlanes {
                images: nb,
                xpads: xpads.as_deref().unwrap_or(xc),
                padded,
                gys: gys.as_deref().unwrap_or(gyc),
                gy_len,
            };
            sum_chunk(&chunk, &mut partial);
            (partial, bias)
        })
        .unzip();
    add_in_order(grad_w, &partials);
    if let Some(grad_b) = grad_b {
        sum_partials_in_order(grad_b, &bias_partials);
    }
}

/// The images of `src` (`src_len` each) laid out by `lay` into a scratch buffer (`dst_len`
/// each), or `None` when `in_place`: the layout would be `src` unchanged, so the kernel reads
/// `src` itself.
fn laid_out<'p>(
    pool: &'p ScratchPool,
    in_place: bool,
    src: &[f32],
    src_len: usize,
    dst_len: usize,
    lay: impl Fn(&[f32], &mut [f32]),
) -> Option<Scratch<'p>> {
    (!in_place).then(|| {
        let mut buf = pool.take(src.len() / src_len * dst_len);
        for (s, d) in src.chunks_exact(src_len).zip(buf.chunks_exact_mut(dst_len)) {
            lay(s, d);
        }
        buf
    })
}

/// Lays one image's output gradient (`[c_out, oh, ow]`) out channels-innermost per group,
/// over the flat positions of the padded planes (`[groups, oh·row, cop]`, position
/// `oy·row + ox`): zero in the dropped columns (`ox ≥ ow`) and in the channels past the
/// group's last, so a tile runs over every flat position without a per-row start.
fn transpose_grad(c: &Correlation, gy_img: &[f32], gyt: &mut [f32]) {
    let (cog, cop, ohw, row) = (c.cog(), c.cop(), c.oh * c.ow, c.row());
    assert!(
        gy_img.len() >= c.groups * cog * ohw && gyt.len() >= c.groups * c.oh * row * cop,
        "implicit GEMM: buffers smaller than the transposed gradient"
    );
    let isa = isa();
    for (src, dst) in gy_img
        .chunks_exact(cog * ohw)
        .zip(gyt.chunks_exact_mut(c.oh * row * cop))
    {
        // SAFETY: `applies` found the extension; `src` holds the group's `cog` planes of `ohw`
        // values and `dst` its `oh·row` rows of `cop` (asserted above).
        unsafe { isa.transpose_group(src, [c.oh, c.ow, row], cog, cop, dst) };
    }
}

/// Kernel rows of a channel-vector tile at most, by channel vectors (1 or 2) and kernel width
/// (3 or 5): the extension's accumulators or fewer (on AVX-512, 24: one vector × 8 rows of 3
/// taps, two vectors × 4 rows of 3, ...), each row one pointer and each tap one broadcast per
/// position.
fn max_rows(isa: Isa, cv: usize, kw: usize) -> usize {
    isa.channel_vector_accumulators() / (cv * kw)
}

/// The weight gradient of one chunk (`chunk`) into `partial` (`[c_out, taps]`), tile by tile:
/// blocks of one or two channel vectors × blocks of whole kernel rows.
fn channel_vector_chunk(
    c: &Correlation,
    chunk: &ChunkPlanes<'_>,
    rows: &KernelRows,
    partial: &mut [f32],
) {
    let (cig, cog, cop, taps, kw) = (c.cig(), c.cog(), c.cop(), c.taps(), c.kw);
    let vectors = cop / LANES;
    let grid = PositionGrid {
        positions: (c.oh - 1) * c.row() + c.ow,
        cop,
    };
    let (row_offs, kx_steps) = (&rows.starts, &rows.kx_steps);
    assert!(
        chunk.xpads.len() >= chunk.images * chunk.padded
            && chunk.padded >= c.padded_len()
            && chunk.gys.len() >= chunk.images * chunk.gy_len
            && chunk.gy_len >= c.groups * c.oh * c.row() * cop
            && partial.len() >= c.c_out * taps
            && row_offs.len() * kw == taps
            && kx_steps.len() == kw,
        "implicit GEMM: buffers smaller than the weight gradient"
    );
    let isa = isa();
    let mut v0 = 0;
    while v0 < vectors {
        let cv = isa.channel_vectors_per_tile().min(vectors - v0);
        let rows_max = max_rows(isa, cv, kw);
        for grp in 0..c.groups {
            let plane0 = grp * cig * c.planes_per_channel() * c.plane_stride();
            let gyt0 = grp * c.oh * c.row() * cop + v0 * LANES;
            for r0 in (0..row_offs.len()).step_by(rows_max) {
                let nr = rows_max.min(row_offs.len() - r0);
                let mut acc = [[0f32; LANES]; 24];
                let tile = ChannelVectorTile {
                    chunk,
                    grid: &grid,
                    plane0,
                    gyt0,
                    rows: &row_offs[r0..r0 + nr],
                    kx_steps,
                };
                // SAFETY: `applies` found the extension; the reads lie in each image's padded
                // planes (`plane0 + offs[t] + (oh − 1)·row + ow ≤ padded` for every tap,
                // checked by `KernelRows::of`, every tap a row's start plus a column step) and in
                // its transposed gradient (`gyt0 + (positions − 1)·cop + cv·16 ≤ gyt_len`); the
                // writes are the first `cv·nr·kw` rows of `acc`, within the extension's
                // accumulators (`max_rows`), at most 24.
                unsafe { isa.channel_vector_tile([cv, kw, nr], &tile, &mut acc) };
                let (t0, nt) = (r0 * kw, nr * kw);
                for v in 0..cv {
                    for (t, lanes) in acc[v * nt..(v + 1) * nt].iter().enumerate() {
                        for (l, &value) in lanes.iter().enumerate() {
                            let cl = (v0 + v) * LANES + l;
                            if cl < cog {
                                partial[(grp * cog + cl) * taps + t0 + t] = value;
                            }
                        }
                    }
                }
            }
        }
        v0 += cv;
    }
}

/// The flat positions a channel-vector tile runs over, `(oh − 1)·row + ow` (the last row's
/// dropped columns left out): position `p` is at `p` in the padded planes and at `p·cop` in
/// the transposed gradient.
struct PositionGrid {
    positions: usize,
    cop: usize,
}

simd_dispatch!(
    /// Lays one image's output gradient (`[c_out, oh, ow]`) out flat (`[c_out, flat]`, rows of
    /// [`Correlation::row`]), zero at the positions the forward pass drops.
    fn flatten_grad(c: &Correlation, gy_img: &[f32], gy: &mut [f32]) => flatten_grad_generic
);

#[inline(always)]
fn flatten_grad_generic(c: &Correlation, gy_img: &[f32], gy: &mut [f32]) {
    let row = c.row();
    // One fill, then the rows (measured faster than zeroing the dropped columns row by row).
    gy.fill(0.0);
    for (dst, src) in gy
        .chunks_exact_mut(c.flat())
        .zip(gy_img.chunks_exact(c.oh * c.ow))
    {
        for (oy, s) in src.chunks_exact(c.ow).enumerate() {
            copy_run(&mut dst[oy * row..][..c.ow], s);
        }
    }
}

/// The weight gradient of one chunk (`chunk.gys`: the images' flat gradients) into `partial`
/// (`[c_out, taps]`).
fn weight_grad_chunk(
    c: &Correlation,
    chunk: &ChunkPlanes<'_>,
    offs: &[usize],
    partial: &mut [f32],
) {
    let (cig, cog, taps) = (c.cig(), c.cog(), c.taps());
    let nflat = c.flat();
    assert!(
        chunk.xpads.len() >= chunk.images * chunk.padded
            && chunk.padded >= c.padded_len()
            && chunk.gys.len() >= chunk.images * chunk.gy_len
            && chunk.gy_len >= c.c_out * nflat
            && partial.len() >= c.c_out * taps
            && offs.len() == taps,
        "implicit GEMM: buffers smaller than the weight gradient"
    );
    let isa = isa();
    let (wg_channels, wg_taps) = isa.lane_sum_tile();
    for grp in 0..c.groups {
        let plane0 = grp * cig * c.planes_per_channel() * c.plane_stride();
        for co0 in (0..cog).step_by(wg_channels) {
            let cb = wg_channels.min(cog - co0);
            let co = grp * cog + co0;
            for t0 in (0..taps).step_by(wg_taps) {
                let nt = wg_taps.min(taps - t0);
                let out = &mut partial[co * taps + t0..];
                let tile = LaneSumTile {
                    chunk,
                    flat: nflat,
                    plane0,
                    offs: &offs[t0..t0 + nt],
                    co_row: co * nflat,
                    taps,
                };
                // SAFETY: `applies` found the extension; every read lies in an image's padded
                // planes (`plane0 + offs[t] + v·16 + 15 < padded`, as in the forward tile) or in
                // rows `co..co + cb` of its flat gradient; the writes are `out[c·taps + t]`
                // for `c < cb`, `t < nt`, inside `partial`.
                unsafe { isa.lane_sum_tile_run([cb, nt], &tile, out) };
            }
        }
    }
}

/// The padded planes and laid-out gradients (flat or transposed, `gy_len` per image) of one
/// weight-gradient chunk.
struct ChunkPlanes<'a> {
    images: usize,
    xpads: &'a [f32],
    padded: usize,
    gys: &'a [f32],
    gy_len: usize,
}
