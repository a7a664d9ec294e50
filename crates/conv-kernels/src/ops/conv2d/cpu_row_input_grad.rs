//! The input gradient of stride-1 convolutions over narrow planes (at most 16 columns, as
//! LeNet's conv2) in AVX-512: one vector per row of the input gradient.
//!
//! `grad_x[ci][iy][ix] = Σ_{co, ky, kx} w[co][ci][ky][kx] · grad_y[co][iy + py − ky][ix + px − kx]`:
//! each term is a row of `grad_y` shifted by `px − kx` (a load at an offset into a zero-edged
//! copy of the row) times a broadcast weight, and rows `iy + py − ky` outside `0..oh` are
//! skipped instead of multiplied as padding. For LeNet's conv2 (5×5, no padding, 10×10 outputs
//! from 14×14 inputs) the implicit GEMM's adjoint correlation, padded by 4 on every side,
//! computes 2.6 products per useful one; this kernel 1.6 (only the zero columns of a shifted
//! row remain). [`applies`] picks it by counting both kernels' products, so wider planes and
//! small paddings keep the implicit GEMM.
//!
//! Register tiles hold up to 6 input-gradient channels × 4 rows (24 accumulators; taller tiles
//! of fewer channels): each loaded row feeds every channel of the tile, since shifted loads
//! cross cache lines and cost two. The taps are summed in
//! blocks of output channels of at most [`TAP_BLOCK`] products per chain, each block added to
//! the output: the same short chains as the implicit GEMM, in a fixed order.

use super::cpu_implicit_gemm::{self as implicit_gemm, TAP_BLOCK};
use crate::Conv2dGeometry;
use crate::cpu::scratch::ScratchPool;
use crate::cpu::short_runs::copy_run;
use rayon::prelude::*;

/// f32 lanes of one AVX-512 vector: the widest plane this kernel takes.
const LANES: usize = 16;

/// Input-gradient channels of a register tile at most.
const TILE_CHANNELS: usize = 6;

/// Accumulators of a register tile (channels × rows), leaving registers for the broadcast
/// weights and the loaded row.
const TILE_ACCUMULATORS: usize = 24;

/// Rows of a register tile at most.
const TILE_ROWS: usize = 14;

/// Whether the input gradient of `g` runs here: where the implicit GEMM's would in AVX-512, on
/// planes of at most 16 columns, and with at most 4/5 of the implicit GEMM's products.
pub(crate) fn applies(g: &Conv2dGeometry) -> bool {
    g.w <= LANES
        && implicit_gemm::input_grad_applies(g)
        && implicit_gemm::Isa::detected().is_some_and(implicit_gemm::Isa::is_avx512)
        && 5 * products(g) < 4 * implicit_gemm::input_grad_products(g)
}

/// Lane products this kernel computes per image: every valid `(iy, ky)` row pair times `kw`
/// shifts, 16 lanes, every `(ci, co)` channel pair of a group.
fn products(g: &Conv2dGeometry) -> usize {
    let py = g.spec.padding[0];
    let rows: usize = (0..g.h)
        .map(|iy| {
            (0..g.kh)
                .filter(|&ky| (iy + py).checked_sub(ky).is_some_and(|oy| oy < g.oh))
                .count()
        })
        .sum();
    rows * g.kw * LANES * g.c_in * g.c_out_per_group()
}

/// Width of a staged `grad_y` row: every shifted 16-lane load of it stays inside.
fn staged_width(g: &Conv2dGeometry) -> usize {
    g.kw + LANES - 1
}

/// Copies one image's `grad_y` (`[c_out, oh, ow]`) into rows of [`staged_width`], each starting
/// with `kw − 1 − px` zeros and zero after its `ow` values, so that the load for shift `kx`
/// starts at column `kw − 1 − kx`.
fn stage_rows(g: &Conv2dGeometry, gy: &[f32], staged: &mut [f32]) {
    let (wb, lead) = (staged_width(g), g.kw - 1 - g.spec.padding[1]);
    staged.fill(0.0);
    for (dst, src) in staged.chunks_exact_mut(wb).zip(gy.chunks_exact(g.ow)) {
        copy_run(&mut dst[lead..][..g.ow], src);
    }
}

/// The forward weight `[c_out, cig, kh, kw]` regrouped as `[c_out, kh, kw, cig]`, so that a
/// tile's channels at one tap are adjacent.
fn regroup_weight(g: &Conv2dGeometry, w: &[f32]) -> Vec<f32> {
    let (cig, kk) = (g.c_in_per_group(), g.kh * g.kw);
    let mut out = vec![0.0f32; w.len()];
    for co in 0..g.c_out {
        for ci in 0..cig {
            for k in 0..kk {
                out[(co * kk + k) * cig + ci] = w[(co * cig + ci) * kk + k];
            }
        }
    }
    out
}

/// `grad_x` from `grad_y` and the weight when [`applies`], one rayon task per image.
pub(crate) fn backward_input(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    grad_y: &[f32],
    w: &[f32],
    grad_x: &mut [f32],
) {
    let (img_in, img_out) = (g.c_in * g.h * g.w, g.c_out * g.oh * g.ow);
    let wt = regroup_weight(g, w);
    let staged_len = g.c_out * g.oh * staged_width(g);
    grad_x
        .par_chunks_mut(img_in)
        .zip(grad_y.par_chunks(img_out))
        .for_each(|(gx, gy)| {
            let mut staged = pool.take(staged_len);
            stage_rows(g, gy, &mut staged);
            image(g, &staged, &wt, gx);
        });
}

/// What one register tile reads and where it writes.
struct Tile<'a> {
    /// Staged rows of the tile's first output channel, planes of `oh · wb` floats.
    staged: &'a [f32],
    /// Regrouped weights from the tile's first output channel and first input channel.
    weight: &'a [f32],
    /// Output channels summed by this tile.
    channels: usize,
    /// Output channels summed in one chain before the chain is added to the tile's total.
    co_block: usize,
    /// First input-gradient row of the tile.
    iy0: usize,
    /// The geometry.
    g: &'a Conv2dGeometry,
}

/// One image's input gradient (`staged`: its staged `grad_y` rows) into `gx` (`[c_in, h, w]`).
fn image(g: &Conv2dGeometry, staged: &[f32], wt: &[f32], gx: &mut [f32]) {
    let (cig, cog, kk) = (g.c_in_per_group(), g.c_out_per_group(), g.kh * g.kw);
    let (hw, plane) = (g.h * g.w, g.oh * staged_width(g));
    let co_block = (TAP_BLOCK / kk).max(1);
    assert!(
        staged.len() >= g.c_out * plane
            && wt.len() >= g.c_out * kk * cig
            && gx.len() >= g.c_in * hw,
        "row input gradient: buffers smaller than the image"
    );
    for grp in 0..g.spec.groups {
        for c0 in (0..cig).step_by(TILE_CHANNELS) {
            let cb = TILE_CHANNELS.min(cig - c0);
            let out = &mut gx[(grp * cig + c0) * hw..];
            let co = grp * cog;
            // Balanced row tiles, as tall as the accumulators allow.
            let row_tiles = g.h.div_ceil(TILE_ROWS.min(TILE_ACCUMULATORS / cb));
            let tile_rows = g.h.div_ceil(row_tiles);
            for iy0 in (0..g.h).step_by(tile_rows) {
                let rows = tile_rows.min(g.h - iy0);
                let tile = Tile {
                    staged: &staged[co * plane..],
                    weight: &wt[co * kk * cig + c0..],
                    channels: cog,
                    co_block,
                    iy0,
                    g,
                };
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `applies` checked AVX-512F (through the implicit GEMM's check). The
                // tile reads staged rows `oy < oh` of its `channels` planes at columns below
                // `kw − 1 + 16 = staged_width`, weights `(co·kk + k)·cig + c` for
                // `co < channels`, `c < cb`, and writes rows `iy0..iy0 + rows` (< h) of `w`
                // columns (masked) of `cb` planes `hw` apart, all inside the slices above.
                unsafe {
                    avx512::tile(cb, rows, &tile, out, hw)
                };
            }
        }
    }
}

/// The tile in AVX-512 intrinsics, one instance per tile size (accumulators indexed by
/// constants stay in registers).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Tile;
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps,
        _mm512_set1_ps, _mm512_setzero_ps,
    };

    /// `out[c·plane + (iy0 + r)·w + ix]` for `c < cb`, `r < rows`, `ix < w`: the tile's sum
    /// over its output channels, each block of `co_block` channels summed from zero in
    /// registers and then added to the total.
    ///
    /// # Safety
    /// AVX-512F; `t` and `out` as [`super::image`] checks and lays them out.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(cb: usize, rows: usize, t: &Tile<'_>, out: &mut [f32], plane: usize) {
        macro_rules! by_size {
            ($(($c:literal: $($r:literal)*))*) => {
                match (cb, rows) {
                    $($(($c, $r) => sized::<$c, $r>(t, out, plane),)*)*
                    _ => unreachable!("row tile {cb}×{rows} outside the 24 accumulators"),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            by_size!((1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14) (2: 1 2 3 4 5 6 7 8 9 10 11 12)
                (3: 1 2 3 4 5 6 7 8) (4: 1 2 3 4 5 6) (5: 1 2 3 4) (6: 1 2 3 4))
        }
    }

    // `for r in 0..R` with a test inside, not `r_lo..r_hi`: the loop unrolls over constants,
    // so the accumulators stay in registers.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f")]
    unsafe fn sized<const CB: usize, const R: usize>(t: &Tile<'_>, out: &mut [f32], plane: usize) {
        let g = t.g;
        let (kh, kw, oh, py) = (g.kh, g.kw, g.oh, g.spec.padding[0]);
        let (cig, wb) = (g.c_in_per_group(), super::staged_width(g));
        debug_assert!(t.staged.len() >= t.channels * oh * wb);
        debug_assert!(t.weight.len() > ((t.channels - 1) * kh * kw + kh * kw - 1) * cig + CB - 1);
        debug_assert!(out.len() >= (CB - 1) * plane + (t.iy0 + R) * g.w);
        let (sp, wp) = (t.staged.as_ptr(), t.weight.as_ptr());
        let mut total = [[_mm512_setzero_ps(); R]; CB];
        for b0 in (0..t.channels).step_by(t.co_block) {
            let mut acc = [[_mm512_setzero_ps(); R]; CB];
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
                        // SAFETY: in bounds by the caller's contract (checked in debug builds).
                        unsafe {
                            let wt = wp.add(((co * kh + ky) * kw + kx) * cig);
                            let mut wv = [_mm512_setzero_ps(); CB];
                            for (c, v) in wv.iter_mut().enumerate() {
                                *v = _mm512_set1_ps(*wt.add(c));
                            }
                            let col = sp.add(co * oh * wb + kw - 1 - kx);
                            for r in 0..R {
                                if r >= r_lo && r < r_hi {
                                    let oy = (first + r as isize) as usize;
                                    let v: __m512 = _mm512_loadu_ps(col.add(oy * wb));
                                    for c in 0..CB {
                                        acc[c][r] = _mm512_fmadd_ps(wv[c], v, acc[c][r]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for (tc, ac) in total.iter_mut().zip(&acc) {
                for (t, a) in tc.iter_mut().zip(ac) {
                    *t = _mm512_add_ps(*t, *a);
                }
            }
        }
        let mask = (1u32 << g.w).wrapping_sub(1) as u16;
        let op = out.as_mut_ptr();
        for (c, a) in total.iter().enumerate() {
            for (r, v) in a.iter().enumerate() {
                // SAFETY: in bounds by the caller's contract; the mask keeps the `w` columns.
                unsafe { _mm512_mask_storeu_ps(op.add(c * plane + (t.iy0 + r) * g.w), mask, *v) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conv2dSpec;
    use tensor::Shape;

    fn geometry(x: &[usize], w: &[usize], padding: usize) -> Conv2dGeometry {
        let spec = Conv2dSpec {
            padding: [padding, padding],
            ..Conv2dSpec::default()
        };
        spec.check(&Shape::new(x).unwrap(), &Shape::new(w).unwrap(), None)
            .unwrap()
    }

    #[test]
    fn counts_fewer_products_than_the_implicit_gemm_for_lenets_conv2_only() {
        let conv2 = geometry(&[2, 6, 14, 14], &[16, 6, 5, 5], 0);
        // 14 rows × 5 row pairs less the 20 missing at the edges, 5 shifts, 16 lanes.
        assert_eq!(products(&conv2), 50 * 5 * 16 * 6 * 16);
        let wide = geometry(&[2, 16, 28, 28], &[16, 16, 3, 3], 1);
        let deep = geometry(&[2, 64, 7, 7], &[64, 64, 3, 3], 1);
        if implicit_gemm::input_grad_applies(&conv2)
            && implicit_gemm::Isa::detected().is_some_and(implicit_gemm::Isa::is_avx512)
        {
            assert!(applies(&conv2));
        }
        assert!(!applies(&wide) && !applies(&deep));
    }
}
