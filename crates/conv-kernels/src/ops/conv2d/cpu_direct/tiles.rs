//! The direct convolution's forward register tiles, written once over [`F32x16`] and compiled
//! for AVX-512 (24 accumulators of 16 lanes) and AVX2 + FMA (6, in register pairs): a block of
//! output channels × a few output rows × the row's one or two vectors, one broadcast weight per
//! channel and one load per row vector for each tap (the taps in the auto-vectorised kernel's
//! order, the bias added after them).

use super::{BlockedWeights, padded_rows, padded_width};
use crate::Conv2dGeometry;
use crate::cpu::f32x16::{F32x16, Isa, YmmPair, Zmm};

/// Accumulators of a forward tile (channels × rows × vectors of a row) on `isa`.
fn accumulators(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 24,
        Isa::Avx2 => 6,
    }
}

/// Output channels of a tile at most on `isa`, for rows of `nv` vectors: the widest block
/// [`BlockedWeights`] may make.
pub(super) fn max_channels(isa: Isa, nv: usize) -> usize {
    match isa {
        Isa::Avx512 => 6,
        // Rows of two vectors: 3 channels would need 12 accumulator registers, 4 for the row's
        // inputs and more for the weights and products, past AVX2's 16: they spilled to the
        // stack. 2 channels fit.
        Isa::Avx2 if nv >= 2 => 2,
        Isa::Avx2 => accumulators(isa),
    }
}

/// One image's output (`[c_out, oh, ow]`) from its padded planes, in `isa`'s tiles.
///
/// # Safety
/// The CPU has `isa`; `wb` was built for `g` (on this CPU).
pub(super) unsafe fn forward_image(
    isa: Isa,
    g: &Conv2dGeometry,
    xpad: &[f32],
    wb: &BlockedWeights,
    y_img: &mut [f32],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match isa {
            Isa::Avx512 => avx512::forward_image(g, xpad, wb, y_img),
            Isa::Avx2 => avx2::forward_image(g, xpad, wb, y_img),
        }
    }
}

/// Generates one extension's entry point, compiled with its `#[target_feature]`s, and the
/// instances of its tile sizes `(channels, vectors: rows...)`.
macro_rules! direct_tiles {
    (
        $(#[$doc:meta])*
        mod $isa:ident: $vector:ident = $variant:ident, $features:literal;
        $(($c:literal, $v:literal: $($r:literal)*))*
    ) => {
        $(#[$doc])*
        mod $isa {
            use super::{BlockedWeights, ForwardTile};
            use crate::Conv2dGeometry;

            #[target_feature(enable = $features)]
            pub(super) unsafe fn forward_image(
                g: &Conv2dGeometry,
                xpad: &[f32],
                wb: &BlockedWeights,
                y_img: &mut [f32],
            ) {
                let isa = crate::cpu::f32x16::Isa::$variant;
                // SAFETY: this function has the extension; the rest is the caller's contract.
                unsafe { super::forward_image_in::<super::$vector>(isa, g, xpad, wb, y_img, tile) }
            }

            /// Dispatches a tile to the instance of its size.
            #[target_feature(enable = $features)]
            unsafe fn tile(size: [usize; 3], t: &ForwardTile<'_>, out: &mut [f32]) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    match size {
                        $($([$c, $v, $r] => sized::<$c, $v, $r>(t, out),)*)*
                        _ => unreachable!("direct conv tile {size:?} not instantiated"),
                    }
                }
            }

            #[target_feature(enable = $features)]
            #[inline(never)]
            unsafe fn sized<const CB: usize, const NV: usize, const R: usize>(
                t: &ForwardTile<'_>,
                out: &mut [f32],
            ) {
                // SAFETY: this function has the extension; the rest is the caller's contract.
                unsafe { super::forward_tile::<super::$vector, CB, NV, R>(t, out) }
            }
        }
    };
}

direct_tiles! {
    /// The tiles in AVX-512.
    mod avx512: Zmm = Avx512, "avx512f";
    (1, 1: 1 2 3 4) (2, 1: 1 2 3 4) (3, 1: 1 2 3 4) (4, 1: 1 2 3 4) (5, 1: 1 2 3 4)
    (6, 1: 1 2 3 4) (1, 2: 1 2 3 4) (2, 2: 1 2 3 4) (3, 2: 1 2 3 4) (4, 2: 1 2 3) (5, 2: 1 2)
    (6, 2: 1 2)
}

direct_tiles! {
    /// The tiles in AVX2 + FMA.
    mod avx2: YmmPair = Avx2, "avx2,fma";
    (1, 1: 1 2 3 4) (2, 1: 1 2 3) (3, 1: 1 2) (4, 1: 1) (5, 1: 1) (6, 1: 1) (1, 2: 1 2 3)
    (2, 2: 1) (3, 2: 1)
}

/// An extension's tile dispatcher: `[channels, vectors, rows]`, the tile, its output.
type TileFn = unsafe fn([usize; 3], &ForwardTile<'_>, &mut [f32]);

/// [`forward_image`] over `V`'s tiles, `tile` running each.
///
/// # Safety
/// The CPU has `V`'s extension (this is inlined into a function compiled with it); `wb` was
/// built for `g`.
#[inline(always)]
unsafe fn forward_image_in<V: F32x16>(
    isa: Isa,
    g: &Conv2dGeometry,
    xpad: &[f32],
    wb: &BlockedWeights,
    y_img: &mut [f32],
    tile: TileFn,
) {
    let (oh, ow, taps) = (g.oh, g.ow, g.kh * g.kw);
    let (pw, rows, cog) = (padded_width(g), padded_rows(g), g.c_out_per_group());
    let cbk = wb.cb;
    let nv = ow.div_ceil(16);
    let max_rows = (accumulators(isa) / (cbk * nv)).clamp(1, 4);
    assert!(
        (1..=max_channels(isa, nv)).contains(&cbk)
            && (1..=2).contains(&nv)
            && xpad.len() >= g.spec.groups * rows * pw
            && y_img.len() >= g.c_out * oh * ow,
        "direct conv: tile or buffers outside the kernel's sizes"
    );
    let mut blocks = wb
        .taps
        .chunks_exact(taps * cbk)
        .zip(wb.bias.chunks_exact(cbk));
    for grp in 0..g.spec.groups {
        let plane = &xpad[grp * rows * pw..][..rows * pw];
        for c0 in (0..cog).step_by(cbk) {
            let Some((wt, b)) = blocks.next() else {
                return; // BlockedWeights::new made one block per (group, c0)
            };
            let (cb, co0) = (cbk.min(cog - c0), grp * cog + c0);
            let out = &mut y_img[co0 * oh * ow..][..cb * oh * ow];
            for oy0 in (0..oh).step_by(max_rows) {
                let t = ForwardTile {
                    plane,
                    weights: wt,
                    bias: b,
                    oy0,
                    channels: cb,
                    g,
                };
                // SAFETY: the extension by the caller; the tile reads rows `oy0 + r + ky` of
                // `plane` (< oh + kh − 1 = rows) at columns `kx + j < pw`, and writes rows of
                // `out` below `oh`, `ow` columns each, masked; its size is within the
                // extension's accumulators (`max_rows`, `max_channels`), which are
                // instantiated.
                unsafe { tile([cbk, nv, max_rows.min(oh - oy0)], &t, out) };
            }
        }
    }
}

/// What a forward tile reads: the group's padded plane, its block's weights (`[taps, cb]`)
/// and biases, its first output row and the channels of the block that exist.
struct ForwardTile<'a> {
    plane: &'a [f32],
    weights: &'a [f32],
    bias: &'a [f32],
    oy0: usize,
    channels: usize,
    g: &'a Conv2dGeometry,
}

/// Rows `oy0..oy0 + R` of `CB` channels, `NV` vectors per row, into `out` (`[cb, oh, ow]`).
///
/// # Safety
/// The CPU has `V`'s extension (this is inlined into a function compiled with it); the tile
/// lies inside `t.plane` and `out` (checked in debug builds).
#[inline(always)]
unsafe fn forward_tile<V: F32x16, const CB: usize, const NV: usize, const R: usize>(
    t: &ForwardTile<'_>,
    out: &mut [f32],
) {
    let g = t.g;
    let (oh, ow, kh, kw, pw) = (g.oh, g.ow, g.kh, g.kw, padded_width(g));
    debug_assert!(t.plane.len() >= (t.oy0 + R + kh - 1) * pw && pw >= kw - 1 + NV * 16);
    debug_assert!(t.weights.len() >= kh * kw * CB && t.bias.len() >= CB);
    debug_assert!(out.len() >= (t.channels - 1) * oh * ow + (t.oy0 + R) * ow);
    let (xp, wp) = (t.plane.as_ptr(), t.weights.as_ptr());
    // SAFETY: in bounds by the caller's contract (checked in debug builds); the extension by
    // the caller.
    unsafe {
        let mut acc = [[[V::zero(); NV]; R]; CB];
        for ky in 0..kh {
            for kx in 0..kw {
                let wt = wp.add((ky * kw + kx) * CB);
                let mut wv = [V::zero(); CB];
                for (c, v) in wv.iter_mut().enumerate() {
                    *v = V::splat(*wt.add(c));
                }
                for r in 0..R {
                    let src = xp.add((t.oy0 + r + ky) * pw + kx);
                    let mut xv = [V::zero(); NV];
                    for (j, v) in xv.iter_mut().enumerate() {
                        *v = V::load(src.add(j * 16));
                    }
                    for (a, &w) in acc.iter_mut().zip(&wv) {
                        // Multiply, then add: rounded as the auto-vectorised kernel rounds.
                        // With fused multiply-adds, resnet-small's two-step PyTorch replay
                        // misses its tolerance on the stem's weight gradient (batch norm after
                        // the stem amplifies the last bits).
                        for (a, &x) in a[r].iter_mut().zip(&xv) {
                            *a = a.add(w.mul(x));
                        }
                    }
                }
            }
        }
        let lanes = [V::first_lanes(ow), V::first_lanes(ow.saturating_sub(16))];
        let op = out.as_mut_ptr();
        for (c, a) in acc.iter().enumerate().take(t.channels) {
            // The bias after the sum, as the implicit GEMM adds it (see its `unpad_output`):
            // batch norm over a nearly constant channel amplifies the low bits a bias-scaled
            // accumulator would round away.
            let bias = V::splat(t.bias[c]);
            for (r, a) in a.iter().enumerate() {
                for (j, v) in a.iter().enumerate() {
                    let v = v.add(bias);
                    // A vector's lanes past `ow` may spill onto the plane's next rows, which
                    // this tile or a later one writes after; a vector that would pass the
                    // plane's end stores masked (masked stores are slow on some CPUs).
                    let at = (t.oy0 + r) * ow + j * 16;
                    let dst = op.add(c * oh * ow + at);
                    if at + 16 <= oh * ow {
                        v.store(dst)
                    } else {
                        v.store_first(dst, lanes[j])
                    }
                }
            }
        }
    }
}
