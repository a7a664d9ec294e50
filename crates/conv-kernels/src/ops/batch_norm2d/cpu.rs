//! Batch norm on the CPU: per-channel statistics in parallel over channels (lane sums per
//! plane, added in order in f64; two passes for the variance, so nearly constant channels stay
//! exact), and the element-wise passes in parallel over planes.

use super::BatchNorm2dHostKernels;
use super::spec::BatchNorm2dGeometry;
use crate::cpu::CpuBackend;
use crate::cpu::reduce::lane_sum;
use rayon::prelude::*;

/// The `n` planes of channel `ch`.
fn planes<'a>(g: &BatchNorm2dGeometry, x: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> {
    let (c, hw) = (g.c, g.hw);
    (0..g.n).map(move |b| &x[(b * c + ch) * hw..][..hw])
}

/// `y[i] = f(plane channel, x[i], ...)` over planes in parallel.
fn per_plane(
    g: &BatchNorm2dGeometry,
    out: &mut [f32],
    f: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    if g.hw == 0 {
        return;
    }
    out.par_chunks_mut(g.hw)
        .enumerate()
        .for_each(|(plane, o)| f(plane % g.c, plane * g.hw, o));
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
                    .map(|p| {
                        let mut acc = [0f32; 8];
                        let mut it = p.chunks_exact(8);
                        for c in &mut it {
                            for (a, &v) in acc.iter_mut().zip(c) {
                                *a += (v - mu32) * (v - mu32);
                            }
                        }
                        let tail: f64 = it
                            .remainder()
                            .iter()
                            .map(|&v| f64::from((v - mu32) * (v - mu32)))
                            .sum();
                        acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail
                    })
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
            let (m, a, b) = (mean[ch], scale[ch], bias[ch]);
            for (o, &v) in o.iter_mut().zip(&x[start..]) {
                *o = (v - m) * a + b;
            }
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
            let (m, a, b, k) = (mean[ch], coef[ch], coef[c + ch], coef[2 * c + ch]);
            for ((o, &d), &v) in o.iter_mut().zip(&grad_y[start..]).zip(&x[start..]) {
                *o = a * d + b * (v - m) + k;
            }
        });
    }
}
