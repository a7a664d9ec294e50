//! Implicit-GEMM convolution for any channel count (LeNet's conv2, ResNet's 3×3 and 1×1 convs,
//! strided ones included): forward, input gradient (stride 1) and weight gradient in AVX-512,
//! without im2col.
//!
//! Each image's planes are copied once into zero-padded planes of row width `P = w + 2·pad_x`.
//! Read flat, output position `p = oy·P + ox` takes tap `(ci, ky, kx)` from
//! `plane[ci][p + ky·P + kx]`: every row of the im2col matrix is a window of the padded planes
//! at a fixed offset, so the GEMM reads it in place instead of copying it (im2col, col2im and
//! the GEMM's packing were 38 % of a resnet-small step). Positions with `ox ≥ ow` are computed
//! and dropped: `kw − 1` extra columns per row (10 of 14 kept for LeNet's conv2, 28 of 30 for a
//! padded 28×28 3×3 conv).
//!
//! At stride `s > 1` the padded image is split into phase planes, plane `(a, b)` holding
//! `padded[s·i + a][s·j + b]`: tap `(ky, kx)` of output `(oy, ox)` is then
//! `phase(ky mod s, kx mod s)[oy + ky / s][ox + kx / s]`, a window at a fixed offset again, so
//! strided convolutions run the same tiles (only the phases some tap reads are stored: one for
//! a 1×1 kernel). Their input gradient stays on im2col + GEMM.
//! - Forward: register tiles of up to 8 output channels × 3–4 vectors of 16 positions, one
//!   broadcast weight per channel and one load per vector for each tap.
//! - Input gradient: at stride 1 it is the same correlation run on the output gradient padded
//!   by `k − 1 − pad`, with the kernel flipped and its channel axes swapped.
//! - Weight gradient: tiles of 4 output channels × 6 taps with 16 lane partial sums each,
//!   accumulated over a fixed chunk of images and reduced by a fixed instruction sequence, the
//!   chunks summed in order: the same result whatever the thread count.
//!
//! Without AVX-512 (or with `FOVEA_CPU_CONV=im2col`, for benchmarking) the callers keep
//! im2col + GEMM.

use crate::cpu::reduce::add_in_order;
use crate::cpu::scratch::ScratchPool;
use crate::cpu::short_runs::copy_run;
use crate::ops::activation::cpu::epilogue;
use crate::{Activation, Conv2dGeometry};
use rayon::prelude::*;

/// f32 lanes of one AVX-512 vector.
const LANES: usize = 16;

/// Output channels of a forward register tile.
const MAX_CB: usize = 8;

/// Accumulator vectors of a forward tile (channels × position vectors), leaving registers for
/// the loaded input vectors and the broadcast weight.
const FORWARD_ACCUMULATORS: usize = 24;

/// Taps summed in one chain at most before the partial sum is added to the output: f32 rounding
/// grows with the chain, and batch norm amplifies it (resnet-small's two-step PyTorch replay
/// misses its tolerance with chains of 160 or 576, and with equal blocks of at most 64). At
/// resnet-small's 64-channel 3×3 conv, the forward's RMS error against the f64 reference is
/// 1.1e-6 with blocks of 64, 2.9e-6 with one chain, 2.6e-6 for im2col + GEMM.
pub(super) const TAP_BLOCK: usize = 64;

/// Position vectors of a forward tile at most.
const MAX_NV: usize = 4;

/// Output channels × taps of a weight-gradient tile.
const WG_CHANNELS: usize = 4;
const WG_TAPS: usize = 6;

/// Flat output positions per channel above which the planes of one image stop fitting in L2.
const MAX_FLAT: usize = 1 << 14;

/// Output positions per weight-gradient chunk, and the padded bytes one chunk may hold; both
/// functions of the shape only, never of the thread count, so the order of the sums is fixed.
const WG_POSITIONS: usize = 4096;
const WG_CHUNK_BYTES: usize = 512 << 10;

/// Whether the kernels are allowed: the CPU has AVX-512F and `FOVEA_CPU_CONV` is not `im2col`.
fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| {
        let forced_off = std::env::var("FOVEA_CPU_CONV").is_ok_and(|v| v == "im2col");
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        avx512 && !forced_off
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
        && enabled()
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
                for (i, dst) in plane[..rows * row].chunks_exact_mut(row).enumerate() {
                    pad_row(c, src, i * c.stride[0] + a, b, dst);
                }
            }
        }
    }
}

/// The values of row `i` of the padded image, columns `b, b + s_x, ...`, into `dst` (already
/// zero, so the padding is left alone).
#[inline(always)]
fn pad_row(c: &Correlation, src: &[f32], i: usize, b: usize, dst: &mut [f32]) {
    let (pad_y, pad_x, sx) = (c.pad[0], c.pad[1], c.stride[1]);
    let Some(iy) = i.checked_sub(pad_y).filter(|&iy| iy < c.h) else {
        return;
    };
    let src_row = &src[iy * c.w..][..c.w];
    // Column `j` reads image column `j·s_x + b − pad_x`: inside the image for `lo ≤ j < hi`.
    let lo = pad_x.saturating_sub(b).div_ceil(sx).min(dst.len());
    let hi = (c.w + pad_x)
        .saturating_sub(b)
        .div_ceil(sx)
        .clamp(lo, dst.len());
    if lo == hi {
        // Every column of this phase falls in the padding (a row narrower than the padding).
        return;
    }
    let body = &mut dst[lo..hi];
    let src = &src_row[lo * sx + b - pad_x..];
    match sx {
        1 => copy_run(body, src),
        2 => every_nth::<2>(body, src),
        _ => {
            for (d, s) in body.iter_mut().zip(src.iter().step_by(sx)) {
                *d = *s;
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

/// A correlation's kernel regrouped per block of [`MAX_CB`] output channels of a group:
/// `taps` is `[groups, blocks, taps, MAX_CB]`, zero where a group's last block is short.
struct PackedKernel {
    blocks: usize,
    taps: Vec<f32>,
}

impl PackedKernel {
    /// Packs `tap(co, t)`: output channel `co` (of all groups), tap `t` of its group.
    fn new(c: &Correlation, tap: impl Fn(usize, usize) -> f32) -> Self {
        let (cog, taps) = (c.cog(), c.taps());
        let blocks = cog.div_ceil(MAX_CB);
        let mut packed = vec![0.0f32; c.groups * blocks * taps * MAX_CB];
        for grp in 0..c.groups {
            for cl in 0..cog {
                let (blk, lane) = (grp * blocks + cl / MAX_CB, cl % MAX_CB);
                let co = grp * cog + cl;
                for t in 0..taps {
                    packed[(blk * taps + t) * MAX_CB + lane] = tap(co, t);
                }
            }
        }
        Self {
            blocks,
            taps: packed,
        }
    }

    /// The forward kernel: `w` is `[c_out, cig, kh, kw]`.
    fn forward(c: &Correlation, w: &[f32]) -> Self {
        let taps = c.taps();
        Self::new(c, |co, t| w[co * taps + t])
    }

    /// The input gradient's kernel: output channel `ci` of group `grp` takes, at tap
    /// `(co, ky, kx)`, the forward weight `w[grp·cog + co, ci, kh − 1 − ky, kw − 1 − kx]`.
    fn input_grad(g: &Conv2dGeometry, c: &Correlation, w: &[f32]) -> Self {
        let (fwd_cig, fwd_cog, kk) = (g.c_in_per_group(), g.c_out_per_group(), g.kh * g.kw);
        Self::new(c, |ci_all, t| {
            let (grp, ci) = (ci_all / fwd_cig, ci_all % fwd_cig);
            let (co, k) = (t / kk, t % kk);
            let (ky, kx) = (k / g.kw, k % g.kw);
            let fwd_co = grp * fwd_cog + co;
            w[((fwd_co * fwd_cig + ci) * g.kh + g.kh - 1 - ky) * g.kw + g.kw - 1 - kx]
        })
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
    for grp in 0..c.groups {
        let group_len = cig * c.planes_per_channel() * stride;
        let planes = &xpad[grp * group_len..(grp + 1) * group_len];
        for blk in 0..k.blocks {
            let cb = MAX_CB.min(cog - blk * MAX_CB);
            let kb = grp * k.blocks + blk;
            let w = &k.taps[kb * taps * MAX_CB..(kb + 1) * taps * MAX_CB];
            let out = &mut flat[(grp * cog + blk * MAX_CB) * nflat..][..cb * nflat];
            let nv_max = (FORWARD_ACCUMULATORS / cb).min(MAX_NV);
            let mut v0 = 0;
            while v0 < vectors {
                let nv = nv_max.min(vectors - v0);
                // Blocks of taps each summed from zero, then added: shorter f32 chains (as a
                // GEMM's K blocks), whose rounding batch norm would amplify.
                #[cfg(target_arch = "x86_64")]
                for t0 in (0..taps).step_by(TAP_BLOCK) {
                    let t1 = (t0 + TAP_BLOCK).min(taps);
                    // SAFETY: `applies` checked AVX-512F; the tile reads `planes` at
                    // `v0·16 + offs[t] + j·16 + 15 < cig · stride` (plane_stride leaves room
                    // for the widest tap after the last vector) and writes `cb` rows of
                    // `nflat` floats from `v0·16`, inside `out`.
                    unsafe {
                        avx512::forward_tile(
                            cb,
                            nv,
                            &planes[v0 * LANES..],
                            &offs[t0..t1],
                            &w[t0 * MAX_CB..],
                            &mut out[v0 * LANES..],
                            nflat,
                            t0 > 0,
                        )
                    };
                }
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
    let offs = c.tap_offsets();
    y.par_chunks_mut(img_out)
        .zip(x.par_chunks(img_in))
        .for_each(|(y_img, x_img)| {
            let mut xpad = pool.take(c.padded_len());
            let mut flat = pool.take(c.c_out * c.flat());
            pad_image(c, x_img, &mut xpad);
            correlate_image(c, &xpad, &offs, k, &mut flat);
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

/// `grad_w` from the input and `grad_y` when [`applies`]: lane partial sums per fixed chunk of
/// images, the chunks summed in order.
pub(crate) fn backward_weight(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    x: &[f32],
    grad_y: &[f32],
    grad_w: &mut [f32],
) {
    let c = Correlation::forward_of(g);
    let (img_in, img_out) = (g.c_in * g.h * g.w, g.c_out * g.oh * g.ow);
    grad_w.fill(0.0);
    if g.n == 0 || img_in == 0 {
        return;
    }
    let (padded, gy_len) = (c.padded_len(), c.c_out * c.flat());
    let by_bytes = WG_CHUNK_BYTES / ((padded + gy_len) * size_of::<f32>());
    let b = (WG_POSITIONS / c.flat()).min(by_bytes).clamp(1, g.n);
    let offs = c.tap_offsets();
    let partials: Vec<Vec<f32>> = x
        .par_chunks(b * img_in)
        .zip(grad_y.par_chunks(b * img_out))
        .map(|(xc, gyc)| {
            let nb = xc.len() / img_in;
            let mut xpads = pool.take(nb * padded);
            let mut gys = pool.take(nb * gy_len);
            for ((x_img, xpad), (gy_img, gy)) in xc
                .chunks_exact(img_in)
                .zip(xpads.chunks_exact_mut(padded))
                .zip(gyc.chunks_exact(img_out).zip(gys.chunks_exact_mut(gy_len)))
            {
                pad_image(&c, x_img, xpad);
                flatten_grad(&c, gy_img, gy);
            }
            let mut partial = vec![0.0f32; grad_w.len()];
            weight_grad_chunk(&c, nb, &xpads, &gys, &offs, &mut partial);
            partial
        })
        .collect();
    add_in_order(grad_w, &partials);
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

/// The weight gradient of `nb` images (`xpads`: their padded planes, `gys`: their flat
/// gradients) into `partial` (`[c_out, taps]`).
fn weight_grad_chunk(
    c: &Correlation,
    nb: usize,
    xpads: &[f32],
    gys: &[f32],
    offs: &[usize],
    partial: &mut [f32],
) {
    let (cig, cog, taps) = (c.cig(), c.cog(), c.taps());
    let (padded, nflat) = (c.padded_len(), c.flat());
    assert!(
        xpads.len() >= nb * padded
            && gys.len() >= nb * c.c_out * nflat
            && partial.len() >= c.c_out * taps
            && offs.len() == taps,
        "implicit GEMM: buffers smaller than the weight gradient"
    );
    let chunk = ChunkPlanes {
        images: nb,
        xpads,
        padded,
        gys,
        gy_len: c.c_out * nflat,
        flat: nflat,
    };
    for grp in 0..c.groups {
        let plane0 = grp * cig * c.planes_per_channel() * c.plane_stride();
        for co0 in (0..cog).step_by(WG_CHANNELS) {
            let cb = WG_CHANNELS.min(cog - co0);
            let co = grp * cog + co0;
            for t0 in (0..taps).step_by(WG_TAPS) {
                let nt = WG_TAPS.min(taps - t0);
                let out = &mut partial[co * taps + t0..];
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `applies` checked AVX-512F; every read lies in an image's padded
                // planes (`plane0 + offs[t] + v·16 + 15 < padded`, as in the forward tile) or in
                // rows `co..co + cb` of its flat gradient; the writes are `out[c·taps + t]`
                // for `c < cb`, `t < nt`, inside `partial`.
                unsafe {
                    avx512::weight_grad_tile(
                        cb,
                        nt,
                        &chunk,
                        plane0,
                        &offs[t0..t0 + nt],
                        co * nflat,
                        out,
                        taps,
                    )
                };
            }
        }
    }
}

/// The padded planes and flat gradients of one weight-gradient chunk.
struct ChunkPlanes<'a> {
    images: usize,
    xpads: &'a [f32],
    padded: usize,
    gys: &'a [f32],
    gy_len: usize,
    flat: usize,
}

/// The tiles in AVX-512 intrinsics, one instance per tile size (accumulators indexed by
/// constants stay in registers).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{ChunkPlanes, LANES, MAX_CB};
    use std::arch::x86_64::{
        _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_reduce_add_ps, _mm512_set1_ps,
        _mm512_setzero_ps, _mm512_storeu_ps,
    };

    /// `out[c][j·16..]` (rows `out_stride` apart) = `Σ_t w[t][c] · x[offs[t] + j·16..]`, added
    /// to what `out` holds when `accumulate`
    /// for `c < cb`, `j < nv`.
    ///
    /// # Safety
    /// AVX-512F; `x` holds `offs[t] + nv·16` floats for every `t`, `w` holds `offs.len()` rows
    /// of [`MAX_CB`], `out` holds `(cb − 1)·out_stride + nv·16`.
    #[allow(clippy::too_many_arguments)] // a GEMM tile: operands and their strides
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn forward_tile(
        cb: usize,
        nv: usize,
        x: &[f32],
        offs: &[usize],
        w: &[f32],
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    ) {
        macro_rules! by_size {
            ($(($c:literal: $($v:literal)*))*) => {
                match (cb, nv) {
                    $($(($c, $v) => tile::<$c, $v>(x, offs, w, out, out_stride, accumulate),)*)*
                    _ => unreachable!("forward tile {cb}×{nv} outside 1..=8 × 1..=4"),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            by_size!((1: 1 2 3 4) (2: 1 2 3 4) (3: 1 2 3 4) (4: 1 2 3 4) (5: 1 2 3 4)
                (6: 1 2 3 4) (7: 1 2 3) (8: 1 2 3))
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const CB: usize, const NV: usize>(
        x: &[f32],
        offs: &[usize],
        w: &[f32],
        out: &mut [f32],
        out_stride: usize,
        accumulate: bool,
    ) {
        debug_assert!(offs.iter().all(|&o| o + NV * LANES <= x.len()));
        debug_assert!(w.len() >= offs.len() * MAX_CB);
        debug_assert!(out.len() >= (CB - 1) * out_stride + NV * LANES);
        let mut acc = [[_mm512_setzero_ps(); NV]; CB];
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        for (t, &off) in offs.iter().enumerate() {
            // SAFETY: in bounds by the caller's contract (checked in debug builds above).
            unsafe {
                let src = xp.add(off);
                let mut xv = [_mm512_setzero_ps(); NV];
                for (j, v) in xv.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(src.add(j * LANES));
                }
                let wt = wp.add(t * MAX_CB);
                for (c, a) in acc.iter_mut().enumerate() {
                    let wv = _mm512_set1_ps(*wt.add(c));
                    for (a, &v) in a.iter_mut().zip(&xv) {
                        *a = _mm512_fmadd_ps(wv, v, *a);
                    }
                }
            }
        }
        let op = out.as_mut_ptr();
        for (c, a) in acc.iter().enumerate() {
            for (j, v) in a.iter().enumerate() {
                // SAFETY: in bounds by the caller's contract.
                unsafe {
                    let at = op.add(c * out_stride + j * LANES);
                    let v = if accumulate {
                        _mm512_add_ps(_mm512_loadu_ps(at), *v)
                    } else {
                        *v
                    };
                    _mm512_storeu_ps(at, v)
                };
            }
        }
    }

    /// `out[c·taps + t] = Σ_images Σ_p gy[co_row + c·flat + p] · x[plane0 + offs[t] + p]` for
    /// `c < cb`, `t < nt`, the 16 lanes of each sum reduced at the end.
    ///
    /// # Safety
    /// AVX-512F; for every image, `plane0 + offs[t] + flat ≤ padded` and
    /// `co_row + cb·flat ≤ gy_len`; `out` holds `(cb − 1)·taps + nt` floats.
    #[allow(clippy::too_many_arguments)] // a GEMM tile: operands and their strides
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weight_grad_tile(
        cb: usize,
        nt: usize,
        chunk: &ChunkPlanes<'_>,
        plane0: usize,
        offs: &[usize],
        co_row: usize,
        out: &mut [f32],
        taps: usize,
    ) {
        macro_rules! by_size {
            ($(($c:literal: $($t:literal)*))*) => {
                match (cb, nt) {
                    $($(($c, $t) => wg_tile::<$c, $t>(chunk, plane0, offs, co_row, out, taps),)*)*
                    _ => unreachable!("weight-gradient tile {cb}×{nt} outside 1..=4 × 1..=6"),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe { by_size!((1: 1 2 3 4 5 6) (2: 1 2 3 4 5 6) (3: 1 2 3 4 5 6) (4: 1 2 3 4 5 6)) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn wg_tile<const CB: usize, const NT: usize>(
        chunk: &ChunkPlanes<'_>,
        plane0: usize,
        offs: &[usize],
        co_row: usize,
        out: &mut [f32],
        taps: usize,
    ) {
        let flat = chunk.flat;
        debug_assert!(offs.len() == NT);
        debug_assert!(chunk.xpads.len() >= chunk.images * chunk.padded);
        debug_assert!(chunk.gys.len() >= chunk.images * chunk.gy_len);
        debug_assert!(offs.iter().all(|&o| plane0 + o + flat <= chunk.padded));
        debug_assert!(co_row + CB * flat <= chunk.gy_len);
        debug_assert!(out.len() >= (CB - 1) * taps + NT);
        let mut acc = [[_mm512_setzero_ps(); NT]; CB];
        let mut offs_t = [0usize; NT];
        offs_t.copy_from_slice(offs);
        for img in 0..chunk.images {
            // SAFETY: in bounds by the caller's contract (checked in debug builds above).
            unsafe {
                let xp = chunk.xpads.as_ptr().add(img * chunk.padded + plane0);
                let gp = chunk.gys.as_ptr().add(img * chunk.gy_len + co_row);
                for p in (0..flat).step_by(LANES) {
                    let mut gv = [_mm512_setzero_ps(); CB];
                    for (c, v) in gv.iter_mut().enumerate() {
                        *v = _mm512_loadu_ps(gp.add(c * flat + p));
                    }
                    for (t, &off) in offs_t.iter().enumerate() {
                        let xv = _mm512_loadu_ps(xp.add(off + p));
                        for (a, &g) in acc.iter_mut().zip(&gv) {
                            a[t] = _mm512_fmadd_ps(g, xv, a[t]);
                        }
                    }
                }
            }
        }
        for (c, a) in acc.iter().enumerate() {
            for (t, v) in a.iter().enumerate() {
                out[c * taps + t] = _mm512_reduce_add_ps(*v);
            }
        }
    }
}
