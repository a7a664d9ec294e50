//! The input gradient of a strided convolution as stride-1 correlations, one per phase of the
//! input (ResNet's stride-2 3×3 and 1×1 convs), instead of im2col + GEMM + col2im.
//!
//! At stride `s`, input row `iy = s·i + a` (phase `a < s`) receives output row `oy` through
//! kernel row `ky` exactly when `s·oy = iy + pad − ky`: only the rows `ky ≡ a + pad (mod s)`,
//! `ky = ky₀ + s·t`, and then `oy = i + d − t` with `d = (a + pad − ky₀) / s`. So the phase's
//! rows are a stride-1 correlation of the output gradient with the `T` kernel rows
//! `ky₀, ky₀ + s, ...` read backwards, at padding `T − 1 − d`; the same holds for columns.
//! Each phase `(a, b)` runs the forward tiles on that correlation (its own packed kernel and
//! tap offsets, built once per call), and the image's phases are interleaved into `grad_x`.
//! A phase no kernel row reaches (`T = 0`: a 1×1 kernel at stride 2 reaches only even rows)
//! gets zeros. For 3×3 at stride 2 the four phases run 1×1, 1×2, 2×1 and 2×2 kernels: the
//! nine taps, none wasted.

use super::{Correlation, KernelTaps, MAX_FLAT, PackedKernel, applies, correlate_image, pad_image};
use crate::Conv2dGeometry;
use crate::cpu::scratch::ScratchPool;
use rayon::prelude::*;

/// One axis of a phase: the kernel rows (or columns) that reach it and where they read.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PhaseAxis {
    /// First kernel row reaching the phase, `(a + pad) mod s`.
    first_tap: usize,
    /// Kernel rows reaching it, `ky₀, ky₀ + s, ...` below `k` (0 when none does).
    taps: usize,
    /// Padding of the stride-1 correlation over the output gradient, `taps − 1 − d`; `None`
    /// where it would be negative: the correlation would have to crop the output gradient,
    /// which these tiles do not (such convolutions keep im2col + GEMM).
    pad: Option<usize>,
    /// Input rows of the phase, `⌈(h − a) / s⌉`.
    len: usize,
}

impl PhaseAxis {
    fn of(k: usize, s: usize, pad: usize, a: usize, size: usize) -> Self {
        let first_tap = (a + pad) % s;
        let taps = if first_tap < k {
            (k - 1 - first_tap) / s + 1
        } else {
            0
        };
        let d = (a + pad - first_tap) / s;
        Self {
            first_tap,
            taps,
            pad: (taps.max(1) - 1).checked_sub(d),
            len: size.saturating_sub(a).div_ceil(s),
        }
    }
}

/// One phase `(a, b)` of the input: its correlation (`None` when no tap reaches it, or it
/// holds no input position) and kernel.
struct Phase {
    a: usize,
    b: usize,
    run: Option<(Correlation, PackedKernel, Vec<usize>)>,
}

/// The phases' axes, row phases then column phases.
fn axes(g: &Conv2dGeometry) -> (Vec<PhaseAxis>, Vec<PhaseAxis>) {
    let [sy, sx] = g.spec.stride;
    let [py, px] = g.spec.padding;
    let rows = (0..sy)
        .map(|a| PhaseAxis::of(g.kh, sy, py, a, g.h))
        .collect();
    let cols = (0..sx)
        .map(|b| PhaseAxis::of(g.kw, sx, px, b, g.w))
        .collect();
    (rows, cols)
}

/// The stride-1 correlation producing phase `(rows, cols)`, when some tap reaches it.
fn phase_correlation(
    g: &Conv2dGeometry,
    rows: &PhaseAxis,
    cols: &PhaseAxis,
) -> Option<Correlation> {
    if rows.taps == 0 || cols.taps == 0 || rows.len == 0 || cols.len == 0 {
        return None;
    }
    Some(Correlation {
        groups: g.spec.groups,
        c_in: g.c_out,
        c_out: g.c_in,
        h: g.oh,
        w: g.ow,
        kh: rows.taps,
        kw: cols.taps,
        pad: [rows.pad?, cols.pad?],
        stride: [1, 1],
        oh: rows.len,
        ow: cols.len,
    })
}

/// Whether the strided input gradient runs here: [`applies`] at a stride above 1, every
/// phase's padding non-negative and its planes small enough.
pub(crate) fn strided_input_grad_applies(g: &Conv2dGeometry) -> bool {
    if !applies(g) || g.spec.stride == [1, 1] || g.h == 0 || g.w == 0 {
        return false;
    }
    let (rows, cols) = axes(g);
    let reached = |a: &PhaseAxis| a.taps == 0 || a.pad.is_some();
    rows.iter().all(reached)
        && cols.iter().all(reached)
        && rows.iter().all(|r| {
            cols.iter()
                .all(|c| phase_correlation(g, r, c).is_none_or(|corr| corr.flat() <= MAX_FLAT))
        })
}

/// The kernel of a phase's correlation: the kernel rows and columns that reach it, read
/// backwards (tap `(co, u, v)` takes kernel row `ky₀ + s_y·(T_y − 1 − u)` and column
/// `kx₀ + s_x·(T_x − 1 − v)`).
fn phase_kernel(
    g: &Conv2dGeometry,
    c: &Correlation,
    rows: &PhaseAxis,
    cols: &PhaseAxis,
    w: &[f32],
) -> PackedKernel {
    let [sy, sx] = g.spec.stride;
    let taps = |a: &PhaseAxis, step| KernelTaps {
        first: a.first_tap,
        count: a.taps,
        step,
    };
    PackedKernel::flipped(g, c, taps(rows, sy), taps(cols, sx), w)
}

/// `grad_x` from `grad_y` and the weight when [`strided_input_grad_applies`].
pub(crate) fn backward_input_strided(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    grad_y: &[f32],
    w: &[f32],
    grad_x: &mut [f32],
) {
    let (rows, cols) = axes(g);
    let phases: Vec<Phase> = rows
        .iter()
        .enumerate()
        .flat_map(|(a, r)| cols.iter().enumerate().map(move |(b, c)| (a, b, r, c)))
        .map(|(a, b, r, c)| Phase {
            a,
            b,
            run: phase_correlation(g, r, c).map(|corr| {
                let kernel = phase_kernel(g, &corr, r, c, w);
                let offs = corr.tap_offsets();
                (corr, kernel, offs)
            }),
        })
        .collect();
    let runs = || phases.iter().filter_map(|p| p.run.as_ref());
    let padded = runs().map(|(c, _, _)| c.padded_len()).max().unwrap_or(0);
    let flat = runs()
        .map(|(c, _, _)| c.c_out * c.flat())
        .max()
        .unwrap_or(0);
    let (img_in, img_out) = (g.c_in * g.h * g.w, g.c_out * g.oh * g.ow);
    grad_x
        .par_chunks_mut(img_in)
        .zip(grad_y.par_chunks(img_out))
        .for_each(|(gx_img, gy_img)| {
            let mut xpad = pool.take(padded);
            let mut out = pool.take(flat);
            for phase in &phases {
                match &phase.run {
                    Some((c, kernel, offs)) => {
                        pad_image(c, gy_img, &mut xpad);
                        correlate_image(c, &xpad, offs, kernel, &mut out);
                        scatter_phase(g, c, [phase.a, phase.b], &out, gx_img);
                    }
                    None => zero_phase(g, [phase.a, phase.b], gx_img),
                }
            }
        });
}

/// Writes a phase's flat result (`[c_in, flat]`, rows of `c.row()`) into the image's input
/// gradient at rows `a, a + s_y, ...` and columns `b, b + s_x, ...`.
fn scatter_phase(
    g: &Conv2dGeometry,
    c: &Correlation,
    [a, b]: [usize; 2],
    flat: &[f32],
    gx: &mut [f32],
) {
    let [sy, sx] = g.spec.stride;
    let (row, nflat) = (c.row(), c.flat());
    for (plane, src) in gx.chunks_exact_mut(g.h * g.w).zip(flat.chunks_exact(nflat)) {
        for i in 0..c.oh {
            let dst = &mut plane[(a + sy * i) * g.w..][..g.w];
            let src = &src[i * row..][..c.ow];
            match sx {
                2 => every_second_from(&mut dst[b..], src),
                _ => {
                    for (d, &v) in dst[b..].iter_mut().step_by(sx).zip(src) {
                        *d = v;
                    }
                }
            }
        }
    }
}

/// `dst[2j] = src[j]` (a constant step, which the compiler vectorises).
#[inline(always)]
fn every_second_from(dst: &mut [f32], src: &[f32]) {
    let whole = src.len().min(dst.len() / 2);
    for (d, &v) in dst.chunks_exact_mut(2).zip(&src[..whole]) {
        d[0] = v;
    }
    if whole < src.len() {
        dst[2 * whole] = src[whole];
    }
}

/// Zeros phase `(a, b)` of the image's input gradient: positions no kernel tap reaches.
fn zero_phase(g: &Conv2dGeometry, [a, b]: [usize; 2], gx: &mut [f32]) {
    let [sy, sx] = g.spec.stride;
    for plane in gx.chunks_exact_mut(g.h * g.w) {
        for iy in (a..g.h).step_by(sy) {
            for v in plane[iy * g.w..][..g.w].iter_mut().skip(b).step_by(sx) {
                *v = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The phases of a 3×3 stride-2 pad-1 conv: even rows take kernel row 1 alone, odd rows
    /// kernel rows 0 and 2 (read backwards from one row further down); a 1×1 stride-2 conv
    /// reaches the even rows only.
    #[test]
    fn phase_axes_of_resnet_downsampling() {
        let even = PhaseAxis::of(3, 2, 1, 0, 28);
        assert_eq!(
            even,
            PhaseAxis {
                first_tap: 1,
                taps: 1,
                pad: Some(0),
                len: 14
            }
        );
        let odd = PhaseAxis::of(3, 2, 1, 1, 28);
        assert_eq!(
            odd,
            PhaseAxis {
                first_tap: 0,
                taps: 2,
                pad: Some(0),
                len: 14
            }
        );
        assert_eq!(PhaseAxis::of(1, 2, 0, 1, 28).taps, 0);
        assert_eq!(PhaseAxis::of(1, 2, 0, 0, 7).len, 4);
        // Padding beyond what a phase's rows reach: a crop, left to im2col.
        assert_eq!(PhaseAxis::of(3, 2, 2, 1, 9).pad, None);
    }
}
