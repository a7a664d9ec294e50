//! The input gradient of stride-1 convolutions over narrow planes (at most 16 columns, as
//! LeNet's conv2) in AVX-512 or AVX2 + FMA: one 16-lane vector per row of the input gradient.
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
//! of fewer channels; on AVX2 4 × 1 or 2 × 2, 5 accumulators in register pairs): each loaded row feeds every channel of the tile, since shifted loads
//! cross cache lines and cost two. The taps are summed in
//! blocks of output channels of at most [`TAP_BLOCK`] products per chain, each block added to
//! the output: the same short chains as the implicit GEMM, in a fixed order.

use super::cpu_implicit_gemm::{self as implicit_gemm, TAP_BLOCK};
use crate::Conv2dGeometry;
use crate::cpu::f32x16::Isa;
use crate::cpu::scratch::ScratchPool;
use crate::cpu::short_runs::copy_run;
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod tiles;

/// f32 lanes of one vector: the widest plane this kernel takes.
const LANES: usize = crate::cpu::f32x16::LANES;

/// Rows of a register tile at most.
const TILE_ROWS: usize = 14;

/// Input-gradient channels of a register tile at most, on `isa`.
fn tile_channels(isa: Isa) -> usize {
    if isa.is_avx512() { 6 } else { 4 }
}

/// Accumulators of a register tile (channels × rows) on `isa`, leaving registers for the
/// broadcast weights and the loaded row.
fn tile_accumulators(isa: Isa) -> usize {
    if isa.is_avx512() { 24 } else { 5 }
}

/// Whether the input gradient of `g` runs here: where the implicit GEMM's would, on planes of
/// at most 16 columns, and with at most 4/5 of the implicit GEMM's products.
pub(crate) fn applies(g: &Conv2dGeometry) -> bool {
    g.w <= LANES
        && implicit_gemm::input_grad_applies(g)
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
    let isa = Isa::detected().expect("row input gradient: called where `applies` is false");
    let (most, accumulators) = (tile_channels(isa), tile_accumulators(isa));
    for grp in 0..g.spec.groups {
        for c0 in (0..cig).step_by(most) {
            let cb = most.min(cig - c0);
            let out = &mut gx[(grp * cig + c0) * hw..];
            let co = grp * cog;
            // Balanced row tiles, as tall as the accumulators allow.
            let row_tiles = g.h.div_ceil(TILE_ROWS.min(accumulators / cb));
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
                // SAFETY: `applies` found the extension (through the implicit GEMM's check).
                // The tile reads staged rows `oy < oh` of its `channels` planes at columns below
                // `kw − 1 + 16 = staged_width`, weights `(co·kk + k)·cig + c` for
                // `co < channels`, `c < cb`, and writes rows `iy0..iy0 + rows` (< h) of `w`
                // columns (masked) of `cb` planes `hw` apart, all inside the slices above; its
                // size is within the extension's accumulators, which are instantiated.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    tiles::tile(isa, [cb, rows], &tile, out, hw)
                };
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
        if implicit_gemm::input_grad_applies(&conv2) {
            assert!(applies(&conv2));
        }
        assert!(!applies(&wide) && !applies(&deep));
    }
}
