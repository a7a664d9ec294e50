//! Direct convolution (no im2col) for groups of one input channel at stride 1, such as LeNet's
//! first layer (1→6, 5×5, pad 2): the forward pass and the weight gradient.
//!
//! With one input channel a group's GEMM has K = kh·kw (25): too short for a GEMM to pay for
//! lowering every image into a 25× larger column matrix. Instead each output row is 32 SIMD
//! lanes accumulated from shifted rows of a small zero-padded copy of the input plane that
//! stays in L1. Forward: a block of output channels at once, auto-vectorised (0.63–0.70 ms
//! against 0.90–1.0 ms for im2col + GEMM, batch 256), and on AVX-512 and AVX2 CPUs register
//! tiles (`tiles.rs`) of up to 6 channels × 2–4 rows (LeNet's conv1: 7.3 % → 5.5–6.5 % of a
//! seed step; AVX2: 3 channels × 1 row of 28). Weight
//! gradient: AVX-512 intrinsics with the kw accumulators of a block of channels in registers,
//! so each shifted input row is loaded once for the block (0.75–0.78 ms against 0.97–1.17 ms
//! with one channel per pass; 9–10 % → 6 % of a seed step with blocks of 2); without AVX-512
//! the implicit GEMM (AVX2) or im2col + GEMM computes it. The input gradient (not needed for a first layer) always uses
//! im2col.

use crate::cpu::f32x16::Isa;
use crate::cpu::reduce::add_in_order;
use crate::cpu::scratch::ScratchPool;
use crate::cpu::short_runs::copy_run;
use crate::ops::activation::cpu::epilogue;
use crate::{Activation, Conv2dGeometry};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod tiles;

/// Output columns computed at once: one output row must fit.
const LANES: usize = 32;

/// Widest kernel handled (wider kernels have enough K for im2col + GEMM to pay).
const MAX_KW: usize = 8;

/// Whether this kernel handles the convolution: one input channel per group, stride 1,
/// dilation 1, output rows of at most [`LANES`] and kernels at most [`MAX_KW`] wide.
pub(crate) fn applies(g: &Conv2dGeometry) -> bool {
    let s = g.spec;
    g.c_in_per_group() == 1
        && s.stride == [1, 1]
        && s.dilation == [1, 1]
        && (1..=LANES).contains(&g.ow)
        && g.oh > 0
        && g.kh > 0
        && (1..=MAX_KW).contains(&g.kw)
}

/// Row length of the padded planes: every lane of every tap reads inside its row.
fn padded_width(g: &Conv2dGeometry) -> usize {
    LANES + g.kw - 1
}

/// Rows of a padded plane (`h + 2·pad`, which at stride 1 is `oh + kh - 1`).
fn padded_rows(g: &Conv2dGeometry) -> usize {
    g.oh + g.kh - 1
}

/// Copies one image's planes into `xpad` (`c_in` planes of `padded_rows × padded_width`), with
/// zeros in the padding and beyond the right edge.
fn pad_image(g: &Conv2dGeometry, x_img: &[f32], xpad: &mut [f32]) {
    let (pw, rows) = (padded_width(g), padded_rows(g));
    let [py, px] = g.spec.padding;
    xpad.fill(0.0);
    for (plane, src) in xpad
        .chunks_exact_mut(rows * pw)
        .zip(x_img.chunks_exact(g.h * g.w))
    {
        for (iy, src_row) in src.chunks_exact(g.w).enumerate() {
            copy_run(&mut plane[(iy + py) * pw + px..][..g.w], src_row);
        }
    }
}

/// The weights and biases regrouped per block of `cb` output channels of a group, zero-padded
/// where a group's last block is short: `taps` is `[block, kh·kw, cb]`, `bias` is `[block, cb]`.
/// Built once per call; every image reads it.
struct BlockedWeights {
    cb: usize,
    taps: Vec<f32>,
    bias: Vec<f32>,
}

impl BlockedWeights {
    /// Blocks of output channels share each input load and give the adds independent chains.
    /// The auto-vectorised kernel takes 3 when that divides a group's channels and 4 does not,
    /// else 4; the register tiles up to their widest (`tiles::max_channels`) in balanced
    /// blocks.
    fn new(g: &Conv2dGeometry, w: &[f32], bias: Option<&[f32]>) -> Self {
        let cog = g.c_out_per_group();
        let cb = if let Some(widest) = tile_channels(g) {
            cog.div_ceil(cog.div_ceil(widest)).max(1)
        } else if !cog.is_multiple_of(4) && cog.is_multiple_of(3) {
            3
        } else {
            4
        };
        let taps = g.kh * g.kw;
        let blocks = g.spec.groups * cog.div_ceil(cb);
        let (mut wt, mut bt) = (vec![0.0f32; blocks * taps * cb], vec![0.0f32; blocks * cb]);
        let mut blk = 0;
        for grp in 0..g.spec.groups {
            for c0 in (0..cog).step_by(cb) {
                for c in 0..cb.min(cog - c0) {
                    let co = grp * cog + c0 + c;
                    for t in 0..taps {
                        wt[(blk * taps + t) * cb + c] = w[co * taps + t];
                    }
                    bt[blk * cb + c] = bias.map_or(0.0, |b| b[co]);
                }
                blk += 1;
            }
        }
        Self {
            cb,
            taps: wt,
            bias: bt,
        }
    }
}

/// The most output channels a register tile of this CPU takes for `g`'s rows, or `None` where
/// the auto-vectorised kernel runs.
fn tile_channels(g: &Conv2dGeometry) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        Isa::detected().map(|isa| tiles::max_channels(isa, g.ow.div_ceil(16)))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        None
    }
}

simd_dispatch!(
    /// One image's output (`[c_out, oh, ow]`) from its padded planes.
    fn forward_image(
        g: &Conv2dGeometry, xpad: &[f32], wb: &BlockedWeights, y_img: &mut [f32]
    ) => forward_image_generic
);

#[inline(always)]
fn forward_image_generic(g: &Conv2dGeometry, xpad: &[f32], wb: &BlockedWeights, y_img: &mut [f32]) {
    if wb.cb == 3 {
        forward_image_blocked::<3>(g, xpad, wb, y_img)
    } else {
        forward_image_blocked::<4>(g, xpad, wb, y_img)
    }
}

/// [`forward_image`] computing `CB` output channels of a group at a time (the zero-padded rows
/// of a group's short last block are dropped).
#[inline(always)]
fn forward_image_blocked<const CB: usize>(
    g: &Conv2dGeometry,
    xpad: &[f32],
    wb: &BlockedWeights,
    y_img: &mut [f32],
) {
    let (oh, ow, kh, kw) = (g.oh, g.ow, g.kh, g.kw);
    let (pw, rows, cog) = (padded_width(g), padded_rows(g), g.c_out_per_group());
    let taps = kh * kw;
    let mut blocks = wb
        .taps
        .chunks_exact(taps * CB)
        .zip(wb.bias.chunks_exact(CB));
    for grp in 0..g.spec.groups {
        let plane = &xpad[grp * rows * pw..][..rows * pw];
        for c0 in (0..cog).step_by(CB) {
            let Some((wt, b)) = blocks.next() else {
                return; // BlockedWeights::new made one block per (group, c0)
            };
            let (cb, co0) = (CB.min(cog - c0), grp * cog + c0);
            for oy in 0..oh {
                let mut acc = [[0.0f32; LANES]; CB];
                for ky in 0..kh {
                    let row = &plane[(oy + ky) * pw..][..pw];
                    let tap_row = &wt[ky * kw * CB..(ky + 1) * kw * CB];
                    for (kx, wt_t) in tap_row.chunks_exact(CB).enumerate() {
                        let src: &[f32; LANES] = row[kx..kx + LANES]
                            .try_into()
                            .expect("a padded row holds LANES + kw - 1 values");
                        for (a, &wv) in acc.iter_mut().zip(wt_t) {
                            for (a, s) in a.iter_mut().zip(src) {
                                *a += wv * s;
                            }
                        }
                    }
                }
                // The bias after the sum, as the AVX-512 tiles and the implicit GEMM add it:
                // batch norm over a nearly constant channel amplifies the low bits a
                // bias-scaled accumulator would round away.
                for ((c, a), &bv) in acc.iter().enumerate().take(cb).zip(b) {
                    let out = &mut y_img[((co0 + c) * oh + oy) * ow..][..ow];
                    for (o, &v) in out.iter_mut().zip(a) {
                        *o = v + bv;
                    }
                }
            }
        }
    }
}

/// `y = act(conv(x, w) + bias)`, one rayon task per image (the activation runs over the image's
/// output while it is in L1).
pub(crate) fn forward(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    y: &mut [f32],
) {
    let (img_in, img_out) = (g.c_in * g.h * g.w, g.c_out * g.oh * g.ow);
    let pad_len = g.c_in * padded_rows(g) * padded_width(g);
    let wb = BlockedWeights::new(g, w, bias);
    let isa = Isa::detected();
    y.par_chunks_mut(img_out)
        .zip(x.par_chunks(img_in))
        .for_each(|(y_img, x_img)| {
            let mut xpad = pool.take(pad_len);
            pad_image(g, x_img, &mut xpad);
            match isa {
                // SAFETY: `Isa::detected` found the extension; `xpad` holds the padded planes.
                #[cfg(target_arch = "x86_64")]
                Some(isa) => unsafe { tiles::forward_image(isa, g, &xpad, &wb, y_img) },
                _ => forward_image(g, &xpad, &wb, y_img),
            }
            epilogue(act, y_img);
        });
}

/// Output positions per weight-gradient chunk (a function of the shape only, never of the
/// thread count, so the order of the final sum is fixed).
const WEIGHT_GRAD_POSITIONS: usize = 4096;

/// Whether [`backward_weight`] can run here: the shape qualifies and the CPU has AVX-512 (the
/// kernel is written with its intrinsics; elsewhere the implicit GEMM or im2col + GEMM computes
/// the weight gradient).
pub(crate) fn weight_grad_applies(g: &Conv2dGeometry) -> bool {
    applies(g) && Isa::detected().is_some_and(Isa::is_avx512)
}

/// `grad_w` from the input and `grad_y` when [`weight_grad_applies`]: per-lane partial sums per
/// fixed chunk of images, each reduced by a fixed tree, then the chunks summed in order.
pub(crate) fn backward_weight(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    x: &[f32],
    grad_y: &[f32],
    grad_w: &mut [f32],
) {
    let (img_in, img_out) = (g.c_in * g.h * g.w, g.c_out * g.oh * g.ow);
    let pad_len = g.c_in * padded_rows(g) * padded_width(g);
    grad_w.fill(0.0);
    if g.n == 0 || !weight_grad_applies(g) {
        return;
    }
    let b = (WEIGHT_GRAD_POSITIONS / (g.oh * g.ow)).clamp(1, g.n);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(b * img_in)
        .zip(grad_y.par_chunks(b * img_out))
        .map(|(xc, gyc)| {
            let mut lanes = vec![0.0f32; grad_w.len() * LANES];
            let mut xpad = pool.take(pad_len);
            for (x_img, gy_img) in xc.chunks_exact(img_in).zip(gyc.chunks_exact(img_out)) {
                pad_image(g, x_img, &mut xpad);
                #[cfg(target_arch = "x86_64")]
                // SAFETY: weight_grad_applies checked that the CPU has AVX-512F.
                unsafe {
                    avx512::weight_grad_image(g, &xpad, gy_img, &mut lanes)
                };
            }
            lanes.chunks_exact_mut(LANES).map(sum_lanes).collect()
        })
        .collect();
    add_in_order(grad_w, &partials);
}

/// The sum of one tap's lanes as a fixed pairwise tree (the same order on every run).
fn sum_lanes(v: &mut [f32]) -> f32 {
    let mut width = v.len();
    while width > 1 {
        let half = width / 2;
        let (lo, hi) = v[..width].split_at_mut(half);
        for (a, b) in lo.iter_mut().zip(&hi[..half]) {
            *a += b;
        }
        if width % 2 == 1 {
            lo[0] += hi[half];
        }
        width = half;
    }
    v.first().copied().unwrap_or(0.0)
}

/// The weight-gradient kernel in AVX-512 intrinsics: for one (channel, kernel row), the kw
/// accumulators of 32 lanes stay in registers while the output rows stream past, so each
/// gradient row is loaded once for all kw taps (auto-vectorisation kept them in memory, or
/// vectorised across taps instead of lanes, and measured slower than im2col + GEMM).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{LANES, padded_rows, padded_width};
    use crate::Conv2dGeometry;
    use std::arch::x86_64::{
        __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
        _mm512_setzero_ps, _mm512_storeu_ps,
    };

    /// The lane masks of a row of `ow` (≤ 32) values in two vectors.
    fn row_masks(ow: usize) -> [__mmask16; 2] {
        let m = |n: usize| ((1u32 << n.min(16)) - 1) as u16;
        [m(ow), m(ow.saturating_sub(16))]
    }

    /// Adds one image's weight gradient to `lanes` (`[c_out, kh, kw, LANES]` per-lane sums).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weight_grad_image(
        g: &Conv2dGeometry,
        xpad: &[f32],
        gy_img: &[f32],
        lanes: &mut [f32],
    ) {
        // Channels per block: `2 · kw · CB` accumulators, at most 24.
        macro_rules! by_width {
            ($($kw:literal: $cb:literal)*) => {
                match g.kw {
                    $($kw => by_kw::<$kw, $cb>(g, xpad, gy_img, lanes),)*
                    _ => {} // applies() admits kernels up to MAX_KW = 8 wide
                }
            };
        }
        by_width!(1: 4 2: 4 3: 4 4: 3 5: 2 6: 2 7: 1 8: 1)
    }

    /// [`weight_grad_image`] for kernels `KW` wide, in blocks of `CB` output channels of a
    /// group (then single channels for a group's remainder).
    #[target_feature(enable = "avx512f")]
    fn by_kw<const KW: usize, const CB: usize>(
        g: &Conv2dGeometry,
        xpad: &[f32],
        gy_img: &[f32],
        lanes: &mut [f32],
    ) {
        let (rows, pw, cog) = (padded_rows(g), padded_width(g), g.c_out_per_group());
        for grp in 0..g.spec.groups {
            let plane = &xpad[grp * rows * pw..][..rows * pw];
            let mut c0 = 0;
            while c0 < cog {
                let co0 = grp * cog + c0;
                if cog - c0 >= CB {
                    block::<KW, CB>(g, plane, gy_img, co0, lanes);
                    c0 += CB;
                } else {
                    block::<KW, 1>(g, plane, gy_img, co0, lanes);
                    c0 += 1;
                }
            }
        }
    }

    /// Output channels `co0..co0 + CB` (one group's, reading its padded `plane`): for each
    /// kernel row the `CB · KW` accumulators of 32 lanes stay in registers while the output
    /// rows stream past, so each shifted input row is loaded once for all the block's
    /// channels and each gradient row once for all `KW` taps.
    #[target_feature(enable = "avx512f")]
    fn block<const KW: usize, const CB: usize>(
        g: &Conv2dGeometry,
        plane: &[f32],
        gy_img: &[f32],
        co0: usize,
        lanes: &mut [f32],
    ) {
        let (oh, ow, kh, pw) = (g.oh, g.ow, g.kh, padded_width(g));
        // Lanes at or past `ow` load as zeros (masked loads neither read nor fault there).
        let [mask0, mask1] = row_masks(ow);
        let gy_planes = &gy_img[co0 * oh * ow..][..CB * oh * ow];
        for ky in 0..kh {
            let mut acc: [[[__m512; 2]; KW]; CB] = [[[_mm512_setzero_ps(); 2]; KW]; CB];
            for oy in 0..oh {
                let row = &plane[(oy + ky) * pw..][..pw];
                let mut gv = [[_mm512_setzero_ps(); 2]; CB];
                for (c, v) in gv.iter_mut().enumerate() {
                    let gr = &gy_planes[(c * oh + oy) * ow..][..ow];
                    // SAFETY (all loads here): every enabled lane lies inside a bounds-checked
                    // slice: `gr` holds ow floats, `src` holds LANES.
                    v[0] = unsafe { _mm512_maskz_loadu_ps(mask0, gr.as_ptr()) };
                    v[1] = unsafe { _mm512_maskz_loadu_ps(mask1, gr[ow.min(16)..].as_ptr()) };
                }
                for kx in 0..KW {
                    let src = &row[kx..kx + LANES];
                    let s0 = unsafe { _mm512_loadu_ps(src[..16].as_ptr()) };
                    let s1 = unsafe { _mm512_loadu_ps(src[16..].as_ptr()) };
                    for (a, v) in acc.iter_mut().zip(&gv) {
                        a[kx][0] = _mm512_fmadd_ps(v[0], s0, a[kx][0]);
                        a[kx][1] = _mm512_fmadd_ps(v[1], s1, a[kx][1]);
                    }
                }
            }
            for (c, ac) in acc.iter().enumerate() {
                let out = &mut lanes[((co0 + c) * kh + ky) * KW * LANES..][..KW * LANES];
                for (dst, a) in out.chunks_exact_mut(LANES).zip(ac) {
                    let (d0, d1) = dst.split_at_mut(16);
                    // SAFETY: d0 and d1 hold 16 floats each.
                    unsafe {
                        _mm512_storeu_ps(
                            d0.as_mut_ptr(),
                            _mm512_add_ps(_mm512_loadu_ps(d0.as_ptr()), a[0]),
                        );
                        _mm512_storeu_ps(
                            d1.as_mut_ptr(),
                            _mm512_add_ps(_mm512_loadu_ps(d1.as_ptr()), a[1]),
                        );
                    }
                }
            }
        }
    }
}
