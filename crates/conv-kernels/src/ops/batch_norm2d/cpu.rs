//! Batch norm on the CPU: per-channel statistics in parallel over channels (lane sums per
//! plane, added in order in f64; two passes for the variance, so nearly constant channels stay
//! exact), and the element-wise passes in parallel over runs of planes. The loops over a plane
//! are compiled for the widest vector extension the CPU has (`simd_dispatch`); the same
//! operations in the same order on every CPU.

use super::BatchNorm2dHostKernels;
use super::spec::BatchNorm2dGeometry;
use crate::cpu::reduce::lane_sum;
use crate::cpu::{CpuBackend, ELEMENTWISE_CHUNK};
use rayon::prelude::*;

/// The `n` planes of channel `ch`.
fn planes<'a>(g: &BatchNorm2dGeometry, x: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> {
    let (c, hw) = (g.c, g.hw);
    (0..g.n).map(move |b| &x[(b * c + ch) * hw..][..hw])
}

/// `f(channel, offset, plane)` over every plane of `out`, in parallel over runs of planes of
/// about [`ELEMENTWISE_CHUNK`] elements (a task per 7×7 plane cost more than its work).
fn per_plane(
    g: &BatchNorm2dGeometry,
    out: &mut [f32],
    f: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    if g.hw == 0 {
        return;
    }
    let run = (ELEMENTWISE_CHUNK / g.hw).max(1);
    out.par_chunks_mut(run * g.hw)
        .enumerate()
        .for_each(|(r, planes)| {
            for (i, o) in planes.chunks_mut(g.hw).enumerate() {
                let plane = r * run + i;
                f(plane % g.c, plane * g.hw, o);
            }
        });
}

simd_dispatch!(
    /// `Σ (v − mu)²` over one plane: 8 f32 lanes, then the tail, summed in f64.
    fn squared_deviation_sum(p: &[f32], mu: f32) -> f64 => squared_deviation_sum_generic
);

#[inline(always)]
fn squared_deviation_sum_generic(p: &[f32], mu: f32) -> f64 {
    let mut acc = [0f32; 8];
    let mut it = p.chunks_exact(8);
    for c in &mut it {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += (v - mu) * (v - mu);
        }
    }
    let tail: f64 = it
        .remainder()
        .iter()
        .map(|&v| f64::from((v - mu) * (v - mu)))
        .sum();
    acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail
}

simd_dispatch!(
    /// `(Σ gy, Σ gy · (x − mu))` over one plane: 8 f32 lanes each, the tail in f64.
    fn gradient_sums(xp: &[f32], gp: &[f32], mu: f32) -> (f64, f64) => gradient_sums_generic
);

#[inline(always)]
fn gradient_sums_generic(xp: &[f32], gp: &[f32], mu: f32) -> (f64, f64) {
    let (mut s, mut sx) = (0f64, 0f64);
    let (mut a, mut ax) = ([0f32; 8], [0f32; 8]);
    let (mut xi, mut gi) = (xp.chunks_exact(8), gp.chunks_exact(8));
    for (xc, gc) in (&mut xi).zip(&mut gi) {
        for k in 0..8 {
            a[k] += gc[k];
            ax[k] += gc[k] * (xc[k] - mu);
        }
    }
    for (&v, &d) in xi.remainder().iter().zip(gi.remainder()) {
        s += f64::from(d);
        sx += f64::from(d * (v - mu));
    }
    s += a.iter().map(|&v| f64::from(v)).sum::<f64>();
    sx += ax.iter().map(|&v| f64::from(v)).sum::<f64>();
    (s, sx)
}

simd_dispatch!(
    /// `o = (x − m) · a + b` over one plane.
    fn normalize_plane(x: &[f32], m: f32, a: f32, b: f32, o: &mut [f32]) => normalize_plane_generic
);

#[inline(always)]
fn normalize_plane_generic(x: &[f32], m: f32, a: f32, b: f32, o: &mut [f32]) {
    for (o, &v) in o.iter_mut().zip(x) {
        *o = (v - m) * a + b;
    }
}

simd_dispatch!(
    /// `o = a · gy + b · (x − m) + k` over one plane.
    fn input_grad_plane(gy: &[f32], x: &[f32], m: f32, coef: [f32; 3], o: &mut [f32]) => input_grad_plane_generic
);

#[inline(always)]
fn input_grad_plane_generic(gy: &[f32], x: &[f32], m: f32, coef: [f32; 3], o: &mut [f32]) {
    let [a, b, k] = coef;
    for ((o, &d), &v) in o.iter_mut().zip(gy).zip(x) {
        *o = a * d + b * (v - m) + k;
    }
}

impl BatchNorm2dHostKernels for CpuBackend {
    fn channel_stats(&self, g: &BatchNorm2dGeometry, x: &[f32], mean: &mut [f32], var: &mut [f32]) {
        let m = g.per_channel() as f64;
        mean.par_iter_mut()
            .zip(var.par_iter_mut())
            .enumerate()
            .for_each(|(ch, (mo, vo))| {
                let mu = planes(g, x, ch).map(lane_sum).sum::<f64>() / m;
                let mu32 = mu as f32;
                let v: f64 = planes(g, x, ch)
                    .map(|p| squared_deviation_sum(p, mu32))
                    .sum();
                *mo = mu32;
                *vo = (v / m) as f32;
            });
    }

    fn normalize(
        &self,
        g: &BatchNorm2dGeometry,
        x: &[f32],
        mean: &[f32],
        scale: &[f32],
        bias: &[f32],
        y: &mut [f32],
    ) {
        per_plane(g, y, |ch, start, o| {
            normalize_plane(&x[start..][..o.len()], mean[ch], scale[ch], bias[ch], o);
        });
    }

    fn backward_sums(
        &self,
        g: &BatchNorm2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        mean: &[f32],
        invstd: &[f32],
        sum_gy: &mut [f32],
        sum_gy_xhat: &mut [f32],
    ) {
        sum_gy
            .par_iter_mut()
            .zip(sum_gy_xhat.par_iter_mut())
            .enumerate()
            .for_each(|(ch, (so, sxo))| {
                let mu = mean[ch];
                let (mut s, mut sx) = (0f64, 0f64);
                for (xp, gp) in planes(g, x, ch).zip(planes(g, grad_y, ch)) {
                    let (ps, psx) = gradient_sums(xp, gp, mu);
                    s += ps;
                    sx += psx;
                }
                *so = s as f32;
                *sxo = (sx * f64::from(invstd[ch])) as f32;
            });
    }

    fn backward_input(
        &self,
        g: &BatchNorm2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        mean: &[f32],
        coef: &[f32],
        grad_x: &mut [f32],
    ) {
        let c = g.c;
        per_plane(g, grad_x, |ch, start, o| {
            let k = [coef[ch], coef[c + ch], coef[2 * c + ch]];
            let n = o.len();
            input_grad_plane(&grad_y[start..][..n], &x[start..][..n], mean[ch], k, o);
        });
    }
}
