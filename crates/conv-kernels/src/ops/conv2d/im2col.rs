//! im2col and its adjoint col2im for one image and one channel group.
//!
//! The column matrix has one row per (input channel of the group, ky, kx) — the order of the
//! flattened weight `[c_out, c_in/groups, kh, kw]` — and one column per output position. Several
//! images can share one column matrix side by side: image `b` starts at column `b * oh * ow`
//! and rows are `ld` elements apart.

use crate::Conv2dGeometry;
use crate::cpu::short_runs::{add_run, copy_run, zero_run};

/// The output positions `o` in `0..out` whose input coordinate `o * stride + tap - pad` lies in
/// `0..size`, as a half-open range (empty when none).
fn valid_range(out: usize, stride: usize, tap: usize, pad: usize, size: usize) -> (usize, usize) {
    if stride == 1 {
        // The common case, without the divisions.
        let hi = (size + pad).saturating_sub(tap).min(out);
        return (pad.saturating_sub(tap).min(hi), hi);
    }
    // o * stride + tap >= pad  <=>  o >= ceil((pad - tap) / stride)
    let lo = if tap >= pad {
        0
    } else {
        (pad - tap).div_ceil(stride)
    };
    // o * stride + tap - pad < size  <=>  o * stride < size + pad - tap
    let limit = size + pad;
    let hi = if limit <= tap {
        0
    } else {
        (limit - tap).div_ceil(stride)
    };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}

simd_dispatch!(
    /// Writes the columns of one image's channel group `c0..c0 + c_in/groups` into `col` (every
    /// element of the `K × oh·ow` block at column `col_off`, zeros where the window is in padding).
    pub(crate) fn im2col(
    g: &Conv2dGeometry, x_img: &[f32], c0: usize, col: &mut [f32], ld: usize, col_off: usize
) => im2col_generic);

#[inline(always)]
fn im2col_generic(
    g: &Conv2dGeometry,
    x_img: &[f32],
    c0: usize,
    col: &mut [f32],
    ld: usize,
    col_off: usize,
) {
    let s = g.spec;
    let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow);
    let (sy, sx) = (s.stride[0], s.stride[1]);
    let (py, px) = (s.padding[0], s.padding[1]);
    let (dy, dx) = (s.dilation[0], s.dilation[1]);
    let mut r = 0;
    for cl in 0..g.c_in_per_group() {
        let plane = &x_img[(c0 + cl) * h * w..(c0 + cl + 1) * h * w];
        for ky in 0..g.kh {
            let (oy_lo, oy_hi) = valid_range(oh, sy, ky * dy, py, h);
            for kx in 0..g.kw {
                let (ox_lo, ox_hi) = valid_range(ow, sx, kx * dx, px, w);
                let row = &mut col[r * ld + col_off..r * ld + col_off + oh * ow];
                r += 1;
                if oy_lo >= oy_hi || ox_lo >= ox_hi {
                    zero_run(row);
                    continue;
                }
                // Output rows whose window row lies in the padding are zero; the others copy
                // one (strided) run of the input row, with zeros either side in the padding.
                let (head, rest) = row.split_at_mut(oy_lo * ow);
                let (body, tail) = rest.split_at_mut((oy_hi - oy_lo) * ow);
                zero_run(head);
                zero_run(tail);
                let iy0 = oy_lo * sy + ky * dy - py;
                let ix0 = ox_lo * sx + kx * dx - px;
                let width = ox_hi - ox_lo;
                let src_rows = plane[iy0 * w..].chunks(w * sy);
                let dst_rows = body.chunks_exact_mut(ow);
                match (sx, ox_lo == 0 && ox_hi == ow) {
                    (1, true) => {
                        for (out, src) in dst_rows.zip(src_rows) {
                            copy_run(out, &src[ix0..ix0 + width]);
                        }
                    }
                    (1, false) => {
                        for (out, src) in dst_rows.zip(src_rows) {
                            zero_run(&mut out[..ox_lo]);
                            copy_run(&mut out[ox_lo..ox_hi], &src[ix0..ix0 + width]);
                            zero_run(&mut out[ox_hi..]);
                        }
                    }
                    _ => {
                        for (out, src) in dst_rows.zip(src_rows) {
                            zero_run(&mut out[..ox_lo]);
                            for (o, v) in out[ox_lo..ox_hi]
                                .iter_mut()
                                .zip(src[ix0..].iter().step_by(sx))
                            {
                                *o = *v;
                            }
                            zero_run(&mut out[ox_hi..]);
                        }
                    }
                }
            }
        }
    }
}

simd_dispatch!(
    /// Adds the columns of one image's channel group back onto `gx_img` (the adjoint of
    /// [`im2col`]); `gx_img` is accumulated into, not overwritten.
    pub(crate) fn col2im(
    g: &Conv2dGeometry, col: &[f32], ld: usize, col_off: usize, c0: usize, gx_img: &mut [f32]
) => col2im_generic);

#[inline(always)]
fn col2im_generic(
    g: &Conv2dGeometry,
    col: &[f32],
    ld: usize,
    col_off: usize,
    c0: usize,
    gx_img: &mut [f32],
) {
    let s = g.spec;
    let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow);
    let (sy, sx) = (s.stride[0], s.stride[1]);
    let (py, px) = (s.padding[0], s.padding[1]);
    let (dy, dx) = (s.dilation[0], s.dilation[1]);
    let mut r = 0;
    for cl in 0..g.c_in_per_group() {
        let plane = &mut gx_img[(c0 + cl) * h * w..(c0 + cl + 1) * h * w];
        for ky in 0..g.kh {
            let (oy_lo, oy_hi) = valid_range(oh, sy, ky * dy, py, h);
            for kx in 0..g.kw {
                let (ox_lo, ox_hi) = valid_range(ow, sx, kx * dx, px, w);
                let row = &col[r * ld + col_off..r * ld + col_off + oh * ow];
                r += 1;
                if oy_lo >= oy_hi || ox_lo >= ox_hi {
                    continue;
                }
                let iy0 = oy_lo * sy + ky * dy - py;
                let ix0 = ox_lo * sx + kx * dx - px;
                let width = ox_hi - ox_lo;
                let src_rows = row[oy_lo * ow..oy_hi * ow].chunks_exact(ow);
                let dst_rows = plane[iy0 * w..].chunks_mut(w * sy);
                if sx == 1 {
                    for (src, dst) in src_rows.zip(dst_rows) {
                        add_run(&mut dst[ix0..ix0 + width], &src[ox_lo..ox_hi]);
                    }
                } else {
                    for (src, dst) in src_rows.zip(dst_rows) {
                        for (d, v) in dst[ix0..].iter_mut().step_by(sx).zip(&src[ox_lo..ox_hi]) {
                            *d += *v;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_range;

    #[test]
    fn valid_range_matches_brute_force() {
        for out in 0..6 {
            for stride in 1..4 {
                for tap in 0..7 {
                    for pad in 0..3 {
                        for size in 1..8 {
                            let want: Vec<usize> = (0..out)
                                .filter(|&o| {
                                    let i = (o * stride + tap) as isize - pad as isize;
                                    i >= 0 && (i as usize) < size
                                })
                                .collect();
                            let (lo, hi) = valid_range(out, stride, tap, pad, size);
                            let got: Vec<usize> = (lo..hi).collect();
                            assert_eq!(got, want, "{out} {stride} {tap} {pad} {size}");
                        }
                    }
                }
            }
        }
    }
}
