//! Pooling forward and backward, parallel over planes, with a fast path for the 2×2 / stride 2
//! / no-padding window LeNet uses (its forward rows in `cpu_2x2`: max in AVX-512 or AVX2,
//! average in AVX-512), and max pooling over other unpadded windows a row at a time with
//! branch-free selects.

use super::Pool2dHostKernels;
use super::cpu_2x2;
use crate::cpu::CpuBackend;
use crate::ops::activation::cpu::backward_in_place_chunk;
use crate::{Activation, Pool2dGeometry, PoolKind};
use rayon::prelude::*;

/// Planes handled by one rayon task: about 16k input elements.
fn planes_per_task(g: &Pool2dGeometry) -> usize {
    (16384 / (g.h * g.w).max(1)).max(1)
}

fn is_2x2_s2(g: &Pool2dGeometry) -> bool {
    let s = g.spec;
    s.kernel == [2, 2] && s.stride == [2, 2] && s.padding == [0, 0]
}

/// Half-open range of input coordinates of window `o` on one axis, clipped to the input.
fn window(o: usize, stride: usize, pad: usize, kernel: usize, size: usize) -> (usize, usize) {
    let start = o * stride;
    let lo = start.saturating_sub(pad).min(size);
    let hi = (start + kernel).saturating_sub(pad).min(size);
    (lo, hi)
}

/// Pooling forward; `argmax` is filled for max pooling (empty for average pooling).
fn forward(g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let (pin, pout) = (g.h * g.w, g.oh * g.ow);
    if y.is_empty() || pin == 0 {
        return;
    }
    let p = planes_per_task(g);
    match g.spec.kind {
        PoolKind::Avg => y
            .par_chunks_mut(p * pout)
            .zip(x.par_chunks(p * pin))
            .for_each(|(yc, xc)| {
                for (yp, xp) in yc.chunks_mut(pout).zip(xc.chunks(pin)) {
                    avg_plane(g, xp, yp);
                }
            }),
        PoolKind::Max => y
            .par_chunks_mut(p * pout)
            .zip(argmax.par_chunks_mut(p * pout))
            .zip(x.par_chunks(p * pin))
            .for_each(|((yc, ac), xc)| {
                for ((yp, ap), xp) in yc
                    .chunks_mut(pout)
                    .zip(ac.chunks_mut(pout))
                    .zip(xc.chunks(pin))
                {
                    max_plane(g, xp, yp, ap);
                }
            }),
    }
}

simd_dispatch!(
    /// Average pooling of one plane.
    fn avg_plane(g: &Pool2dGeometry, x: &[f32], y: &mut [f32]) => avg_plane_generic
);

#[inline(always)]
fn avg_plane_generic(g: &Pool2dGeometry, x: &[f32], y: &mut [f32]) {
    let s = g.spec;
    if is_2x2_s2(g) {
        let wide = cpu_2x2::avg_available();
        for (oy, ys) in y.chunks_exact_mut(g.ow).enumerate().take(g.oh) {
            let r0 = &x[2 * oy * g.w..][..2 * g.ow];
            let r1 = &x[(2 * oy + 1) * g.w..][..2 * g.ow];
            if wide {
                cpu_2x2::avg_row(r0, r1, ys);
                continue;
            }
            for ((o, a), b) in ys
                .iter_mut()
                .zip(r0.chunks_exact(2))
                .zip(r1.chunks_exact(2))
            {
                *o = (a[0] + a[1] + b[0] + b[1]) * 0.25;
            }
        }
        return;
    }
    let inv = 1.0 / (s.kernel[0] * s.kernel[1]) as f32;
    for oy in 0..g.oh {
        let (y0, y1) = window(oy, s.stride[0], s.padding[0], s.kernel[0], g.h);
        for ox in 0..g.ow {
            let (x0, x1) = window(ox, s.stride[1], s.padding[1], s.kernel[1], g.w);
            let mut sum = 0.0f32;
            for iy in y0..y1 {
                for v in &x[iy * g.w + x0..iy * g.w + x1] {
                    sum += v;
                }
            }
            y[oy * g.ow + ox] = sum * inv;
        }
    }
}

/// Whether `v` replaces `best` as a window's maximum: larger, or the first NaN (NaN propagates,
/// and the first maximum in scan order wins, as in the reference and PyTorch).
#[inline(always)]
fn beats(v: f32, best: f32) -> bool {
    v > best || v.is_nan() && !best.is_nan()
}

simd_dispatch!(
    /// [`max_plane`] for 2×2 windows at stride 2 without padding (LeNet's and most CNNs'): the
    /// four candidates of each window read from two row slices, no per-window clipping.
    fn max_plane_2x2_s2(g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) => max_plane_2x2_s2_generic
);

#[inline(always)]
fn max_plane_2x2_s2_generic(g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    // Branch-free selects in scan order (the first maximum wins, NaN propagates), so the loop
    // vectorises: the branchy version was a fifth of a modern LeNet step.
    let w = g.w as u32;
    let wide = cpu_2x2::max_available();
    for (oy, (ys, am)) in y
        .chunks_exact_mut(g.ow)
        .zip(argmax.chunks_exact_mut(g.ow))
        .enumerate()
        .take(g.oh)
    {
        let top = 2 * oy * g.w;
        let (r0, r1) = (&x[top..][..2 * g.ow], &x[top + g.w..][..2 * g.ow]);
        if wide {
            cpu_2x2::max_row(r0, r1, [top as u32, w], ys, am);
            continue;
        }
        for (ox, ((o, a), (p, q))) in ys
            .iter_mut()
            .zip(am.iter_mut())
            .zip(r0.chunks_exact(2).zip(r1.chunks_exact(2)))
            .enumerate()
        {
            let c = (top + 2 * ox) as u32;
            let (mut best, mut at) = (p[0], c);
            for (v, t) in [(p[1], c + 1), (q[0], c + w), (q[1], c + w + 1)] {
                let wins = beats(v, best);
                best = if wins { v } else { best };
                at = if wins { t } else { at };
            }
            *o = best;
            *a = at;
        }
    }
}

simd_dispatch!(
    /// [`max_plane`] for windows that never leave the input (no padding, as nin-small's 3×3 at
    /// stride 2): each output row takes its windows' taps in scan order one tap at a time for
    /// the whole row, with branch-free selects, so the loop over the row vectorises (the
    /// per-window scan with a branch per tap was a tenth of a nin-small step).
    fn max_plane_unpadded(g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) => max_plane_unpadded_generic
);

#[inline(always)]
fn max_plane_unpadded_generic(g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    // A constant column stride lets the compiler turn the strided reads into shuffles.
    match g.spec.stride[1] {
        1 => max_rows_unpadded::<1>(g, x, y, argmax),
        2 => max_rows_unpadded::<2>(g, x, y, argmax),
        _ => max_rows_unpadded::<0>(g, x, y, argmax),
    }
}

/// [`max_plane_unpadded`] with the column stride `SX` (0: read from the geometry).
#[inline(always)]
fn max_rows_unpadded<const SX: usize>(
    g: &Pool2dGeometry,
    x: &[f32],
    y: &mut [f32],
    argmax: &mut [u32],
) {
    let s = g.spec;
    let sx = if SX == 0 { s.stride[1] } else { SX };
    let ow = g.ow;
    let rows = y.chunks_exact_mut(ow).zip(argmax.chunks_exact_mut(ow));
    for (oy, (ys, am)) in rows.enumerate().take(g.oh) {
        for ky in 0..s.kernel[0] {
            for kx in 0..s.kernel[1] {
                // Tap (ky, kx) of window ox is x[base + ox·sx]: inside the plane for every ox.
                let base = (oy * s.stride[0] + ky) * g.w + kx;
                let taps = x[base..=base + (ow - 1) * sx].chunks(sx).map(|c| c[0]);
                let at = (base as u32..).step_by(sx);
                let outs = ys.iter_mut().zip(am.iter_mut());
                if ky == 0 && kx == 0 {
                    for (((o, a), v), t) in outs.zip(taps).zip(at) {
                        (*o, *a) = (v, t);
                    }
                    continue;
                }
                for (((o, a), v), t) in outs.zip(taps).zip(at) {
                    // `beats` without branches: larger, or the first NaN.
                    let wins = (v > *o) | (v.is_nan() & !o.is_nan());
                    *o = if wins { v } else { *o };
                    *a = if wins { t } else { *a };
                }
            }
        }
    }
}

fn max_plane(g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    if is_2x2_s2(g) {
        return max_plane_2x2_s2(g, x, y, argmax);
    }
    if g.spec.padding == [0, 0] && g.ow > 0 {
        return max_plane_unpadded(g, x, y, argmax);
    }
    let s = g.spec;
    for oy in 0..g.oh {
        let (y0, y1) = window(oy, s.stride[0], s.padding[0], s.kernel[0], g.h);
        for ox in 0..g.ow {
            let (x0, x1) = window(ox, s.stride[1], s.padding[1], s.kernel[1], g.w);
            // First maximum in scan order wins; NaN propagates (as the reference and PyTorch).
            let mut best = y0 * g.w + x0;
            for iy in y0..y1 {
                for ix in x0..x1 {
                    let t = iy * g.w + ix;
                    if beats(x[t], x[best]) {
                        best = t;
                    }
                }
            }
            y[oy * g.ow + ox] = x[best];
            argmax[oy * g.ow + ox] = best as u32;
        }
    }
}

/// Pooling backward into `grad_x` (overwritten), then `finish(plane index, plane)` on each
/// plane while it is in L1.
fn backward(
    g: &Pool2dGeometry,
    grad_y: &[f32],
    argmax: &[u32],
    grad_x: &mut [f32],
    finish: impl Fn(usize, &mut [f32]) + Sync,
) {
    let (pin, pout) = (g.h * g.w, g.oh * g.ow);
    if grad_x.is_empty() {
        return;
    }
    if pout == 0 {
        grad_x.fill(0.0);
        return;
    }
    let p = planes_per_task(g);
    grad_x
        .par_chunks_mut(p * pin)
        .zip(grad_y.par_chunks(p * pout))
        .enumerate()
        .for_each(|(task, (gxc, gyc))| {
            for (i, (gx, gy)) in gxc.chunks_mut(pin).zip(gyc.chunks(pout)).enumerate() {
                let plane = task * p + i;
                match g.spec.kind {
                    PoolKind::Avg => avg_plane_backward(g, gy, gx),
                    PoolKind::Max => {
                        gx.fill(0.0);
                        let a = &argmax[plane * pout..][..pout];
                        for (&v, &i) in gy.iter().zip(a) {
                            // Offsets come from the forward pass; one out of range is skipped.
                            if let Some(d) = gx.get_mut(i as usize) {
                                *d += v;
                            }
                        }
                    }
                }
                finish(plane, gx);
            }
        });
}

simd_dispatch!(
    /// Average pooling's gradient for one plane (`gx` overwritten).
    fn avg_plane_backward(g: &Pool2dGeometry, gy: &[f32], gx: &mut [f32]) => avg_plane_backward_generic
);

#[inline(always)]
fn avg_plane_backward_generic(g: &Pool2dGeometry, gy: &[f32], gx: &mut [f32]) {
    let s = g.spec;
    if is_2x2_s2(g) {
        // Windows tile the input; rows/columns past the last window get no gradient.
        if 2 * g.oh != g.h || 2 * g.ow != g.w {
            gx.fill(0.0);
        }
        for (oy, row) in gy.chunks_exact(g.ow).enumerate().take(g.oh) {
            for r in 0..2 {
                let dst = &mut gx[(2 * oy + r) * g.w..][..2 * g.ow];
                for (d, &v) in dst.chunks_exact_mut(2).zip(row) {
                    let q = v * 0.25;
                    d[0] = q;
                    d[1] = q;
                }
            }
        }
        return;
    }
    gx.fill(0.0);
    let inv = 1.0 / (s.kernel[0] * s.kernel[1]) as f32;
    for oy in 0..g.oh {
        let (y0, y1) = window(oy, s.stride[0], s.padding[0], s.kernel[0], g.h);
        for ox in 0..g.ow {
            let (x0, x1) = window(ox, s.stride[1], s.padding[1], s.kernel[1], g.w);
            let q = gy[oy * g.ow + ox] * inv;
            for iy in y0..y1 {
                for d in &mut gx[iy * g.w + x0..iy * g.w + x1] {
                    *d += q;
                }
            }
        }
    }
}

impl Pool2dHostKernels for CpuBackend {
    fn forward(&self, g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
        forward(g, x, y, argmax)
    }
    fn backward(&self, g: &Pool2dGeometry, grad_y: &[f32], argmax: &[u32], grad_x: &mut [f32]) {
        backward(g, grad_y, argmax, grad_x, |_, _| {})
    }

    /// One pass: each plane's pooling gradient is multiplied by the derivative while in L1.
    fn backward_activation(
        &self,
        g: &Pool2dGeometry,
        grad_y: &[f32],
        argmax: &[u32],
        (act, y): (Activation, &[f32]),
        grad_z: &mut [f32],
    ) {
        let pin = g.h * g.w;
        backward(g, grad_y, argmax, grad_z, |plane, gz| {
            backward_in_place_chunk(act, &y[plane * pin..][..pin], gz)
        })
    }
}
