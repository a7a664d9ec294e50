//! The row input gradient's register tiles, written once over [`F32x16`] and compiled for
//! AVX-512 and AVX2 + FMA, one instance per tile size (accumulators indexed by constants stay
//! in registers).

use super::Tile;
use crate::cpu::f32x16::{F32x16, Isa, YmmPair, Zmm};

/// `out[c·plane + (iy0 + r)·w + ix]` for `c < cb`, `r < rows`, `ix < w` (`[cb, rows]` =
/// `size`): the tile's sum over its output channels, each block of `co_block` channels summed
/// from zero in registers and then added to the total.
///
/// # Safety
/// The CPU has `isa`; the size is one `isa` instantiates; `t` and `out` as
/// [`super::image`] checks and lays them out.
pub(super) unsafe fn tile(isa: Isa, size: [usize; 2], t: &Tile<'_>, out: &mut [f32], plane: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match isa {
            Isa::Avx512 => avx512::tile(size, t, out, plane),
            Isa::Avx2 => avx2::tile(size, t, out, plane),
        }
    }
}

/// Generates one extension's dispatcher, compiled with its `#[target_feature]`s, and the
/// instances of its tile sizes `(channels: rows...)`.
macro_rules! row_tiles {
    (
        $(#[$doc:meta])*
        mod $isa:ident: $vector:ident, $features:literal;
        $(($c:literal: $($r:literal)*))*
    ) => {
        $(#[$doc])*
        mod $isa {
            use super::Tile;

            #[target_feature(enable = $features)]
            pub(super) unsafe fn tile(size: [usize; 2], t: &Tile<'_>, out: &mut [f32], plane: usize) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    match size {
                        $($([$c, $r] => sized::<$c, $r>(t, out, plane),)*)*
                        _ => unreachable!("row tile {size:?} not instantiated"),
                    }
                }
            }

            #[target_feature(enable = $features)]
            #[inline(never)]
            unsafe fn sized<const CB: usize, const R: usize>(
                t: &Tile<'_>,
                out: &mut [f32],
                plane: usize,
            ) {
                // SAFETY: this function has the extension; the rest is the caller's contract.
                unsafe { super::sized::<super::$vector, CB, R>(t, out, plane) }
            }
        }
    };
}

row_tiles! {
    /// The tiles in AVX-512: 24 accumulators.
    mod avx512: Zmm, "avx512f";
    (1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14) (2: 1 2 3 4 5 6 7 8 9 10 11 12)
    (3: 1 2 3 4 5 6 7 8) (4: 1 2 3 4 5 6) (5: 1 2 3 4) (6: 1 2 3 4)
}

row_tiles! {
    /// The tiles in AVX2 + FMA: 5 accumulators in register pairs.
    mod avx2: YmmPair, "avx2,fma";
    (1: 1 2 3 4 5) (2: 1 2) (3: 1) (4: 1)
}

// `for r in 0..R` with a test inside, not `r_lo..r_hi`: the loop unrolls over constants,
// so the accumulators stay in registers.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn sized<V: F32x16, const CB: usize, const R: usize>(
    t: &Tile<'_>,
    out: &mut [f32],
    plane: usize,
) {
    let g = t.g;
    let (kh, kw, oh, py) = (g.kh, g.kw, g.oh, g.spec.padding[0]);
    let (cig, wb) = (g.c_in_per_group(), super::staged_width(g));
    debug_assert!(t.staged.len() >= t.channels * oh * wb);
    debug_assert!(t.weight.len() > ((t.channels - 1) * kh * kw + kh * kw - 1) * cig + CB - 1);
    debug_assert!(out.len() >= (CB - 1) * plane + (t.iy0 + R) * g.w);
    let (sp, wp) = (t.staged.as_ptr(), t.weight.as_ptr());
    // SAFETY: in bounds by the caller's contract (checked in debug builds); the extension by
    // the caller.
    unsafe {
        let mut total = [[V::zero(); R]; CB];
        for b0 in (0..t.channels).step_by(t.co_block) {
            let mut acc = [[V::zero(); R]; CB];
            for co in b0..(b0 + t.co_block).min(t.channels) {
                for ky in 0..kh {
                    // Row r of the tile reads grad_y row oy = first + r, when it exists.
                    let first = (t.iy0 + py) as isize - ky as isize;
                    let r_lo = (-first).max(0) as usize;
                    let r_hi = (oh as isize - first).clamp(0, R as isize) as usize;
                    if r_lo >= r_hi {
                        continue;
                    }
                    for kx in 0..kw {
                        let wt = wp.add(((co * kh + ky) * kw + kx) * cig);
                        let mut wv = [V::zero(); CB];
                        for (c, v) in wv.iter_mut().enumerate() {
                            *v = V::splat(*wt.add(c));
                        }
                        let col = sp.add(co * oh * wb + kw - 1 - kx);
                        for r in 0..R {
                            if r >= r_lo && r < r_hi {
                                let oy = (first + r as isize) as usize;
                                let v = V::load(col.add(oy * wb));
                                for c in 0..CB {
                                    acc[c][r] = wv[c].mul_add(v, acc[c][r]);
                                }
                            }
                        }
                    }
                }
            }
            for (tc, ac) in total.iter_mut().zip(&acc) {
                for (t, a) in tc.iter_mut().zip(ac) {
                    *t = t.add(*a);
                }
            }
        }
        let lanes = V::first_lanes(g.w);
        let op = out.as_mut_ptr();
        for (c, a) in total.iter().enumerate() {
            for (r, v) in a.iter().enumerate() {
                // The lanes keep the `w` columns.
                v.store_first(op.add(c * plane + (t.iy0 + r) * g.w), lanes);
            }
        }
    }
}
