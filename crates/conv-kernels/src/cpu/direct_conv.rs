//! Direct convolution forward (no im2col) for groups of one input channel at stride 1, such as
//! LeNet's first layer (1→6, 5×5, pad 2).
//!
//! With one input channel a group's GEMM has K = kh·kw (25): too short for a GEMM to pay for
//! lowering every image into a 25× larger column matrix. Instead each output row is 32 SIMD
//! lanes accumulated from shifted rows of a small zero-padded copy of the input plane that
//! stays in L1, for a block of output channels at once (conv1 forward: 0.63–0.70 ms against
//! 0.90–1.0 ms for im2col + GEMM at batch 256). The same loop shape for the weight gradient
//! measured slower than im2col + GEMM (1.9 ms against 1.05 ms: two loads per multiply-add), so
//! the weight gradient stays on im2col.

use super::scratch::ScratchPool;
use crate::spec::Conv2dGeometry;
use rayon::prelude::*;

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
            plane[(iy + py) * pw + px..][..g.w].copy_from_slice(src_row);
        }
    }
}

simd_dispatch!(
    /// One image's output (`[c_out, oh, ow]`) from its padded planes.
    fn forward_image(
        g: &Conv2dGeometry, xpad: &[f32], w: &[f32], bias: Option<&[f32]>, y_img: &mut [f32]
    ) => forward_image_generic
);

#[inline(always)]
fn forward_image_generic(
    g: &Conv2dGeometry,
    xpad: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y_img: &mut [f32],
) {
    // Blocks of output channels share each input load and give the adds independent chains.
    let cog = g.c_out_per_group();
    if !cog.is_multiple_of(4) && cog.is_multiple_of(3) {
        forward_image_blocked::<3>(g, xpad, w, bias, y_img)
    } else {
        forward_image_blocked::<4>(g, xpad, w, bias, y_img)
    }
}

/// [`forward_image`] computing `CB` output channels of a group at a time (the last block of a
/// group is padded with zero weights and its extra rows are dropped).
#[inline(always)]
fn forward_image_blocked<const CB: usize>(
    g: &Conv2dGeometry,
    xpad: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y_img: &mut [f32],
) {
    let (oh, ow, kh, kw) = (g.oh, g.ow, g.kh, g.kw);
    let (pw, rows, cog) = (padded_width(g), padded_rows(g), g.c_out_per_group());
    let taps = kh * kw;
    let mut wt = vec![[0.0f32; CB]; taps];
    for grp in 0..g.spec.groups {
        let plane = &xpad[grp * rows * pw..][..rows * pw];
        for c0 in (0..cog).step_by(CB) {
            let cb = CB.min(cog - c0);
            let co0 = grp * cog + c0;
            // Weights of the block, tap-major: one contiguous group of CB per tap.
            let mut b = [0.0f32; CB];
            for (t, wt_t) in wt.iter_mut().enumerate() {
                for (c, v) in wt_t.iter_mut().enumerate() {
                    *v = if c < cb { w[(co0 + c) * taps + t] } else { 0.0 };
                }
            }
            for (c, bv) in b.iter_mut().enumerate().take(cb) {
                *bv = bias.map_or(0.0, |b| b[co0 + c]);
            }
            for oy in 0..oh {
                let mut acc = [[0.0f32; LANES]; CB];
                for (a, bv) in acc.iter_mut().zip(b) {
                    *a = [bv; LANES];
                }
                for ky in 0..kh {
                    let row = &plane[(oy + ky) * pw..][..pw];
                    for (kx, wt_t) in wt[ky * kw..(ky + 1) * kw].iter().enumerate() {
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
                for (c, a) in acc.iter().enumerate().take(cb) {
                    y_img[((co0 + c) * oh + oy) * ow..][..ow].copy_from_slice(&a[..ow]);
                }
            }
        }
    }
}

/// `y = conv(x, w) + bias`, one rayon task per image.
pub(crate) fn forward(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    let (img_in, img_out) = (g.c_in * g.h * g.w, g.c_out * g.oh * g.ow);
    let pad_len = g.c_in * padded_rows(g) * padded_width(g);
    y.par_chunks_mut(img_out)
        .zip(x.par_chunks(img_in))
        .for_each(|(y_img, x_img)| {
            let mut xpad = pool.take(pad_len);
            pad_image(g, x_img, &mut xpad);
            forward_image(g, &xpad, w, bias, y_img);
        });
}
