//! Batch norm on the CPU: per-channel statistics from lane sums per plane, added in f64 in
//! image order (two passes for the variance, so nearly constant channels stay exact), and the
//! element-wise passes, all in parallel over runs of planes in memory order (a channel's
//! planes one by one, a 7×7 plane every 12 KiB, left the prefetchers idle). The per-plane sums run
//! in AVX vectors where the CPU has them, the element-wise loops are compiled for the widest
//! vector extension it has (`simd_dispatch`); the same operations in the same order on every
//! CPU.

use super::spec::BatchNorm2dGeometry;
use super::{BatchNorm2dHostKernels, ChannelGate, ReluGate};
use crate::cpu::reduce::{channel_plane_sums, lane_sum};
use crate::cpu::{CpuBackend, ELEMENTWISE_CHUNK};
use crate::ops::activation::cpu::epilogue;
use rayon::prelude::*;

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

/// `Σ (v − mu)²` over one plane: 8 f32 lanes, then the tail, summed in f64.
fn squared_deviation_sum(p: &[f32], mu: f32) -> f64 {
    let acc = lane_squared_deviations(p, mu);
    let tail: f64 = p[p.len() / 8 * 8..]
        .iter()
        .map(|&v| f64::from((v - mu) * (v - mu)))
        .sum();
    acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail
}

/// The eight f32 lanes of `Σ (v − mu)²` over the whole groups of eight of a plane (AVX where
/// the CPU has it, as [`lane_gradient_sums`]).
fn lane_squared_deviations(p: &[f32], mu: f32) -> [f32; 8] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: AVX was detected at run time.
        return unsafe { avx::lane_squared_deviations(p, mu) };
    }
    lane_squared_deviations_portable(p, mu)
}

fn lane_squared_deviations_portable(p: &[f32], mu: f32) -> [f32; 8] {
    let mut acc = [0f32; 8];
    for c in p.chunks_exact(8) {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += (v - mu) * (v - mu);
        }
    }
    acc
}

/// `(Σ gy, Σ gy · (x − mu))` over one plane, `gy` through `gate`: 8 f32 lanes each, the tail in
/// f64.
fn gradient_sums(xp: &[f32], gp: &[f32], mu: f32, gate: Option<ChannelGate>) -> (f64, f64) {
    let (a, ax) = lane_gradient_sums(xp, gp, mu, gate);
    let whole = xp.len().min(gp.len()) / 8 * 8;
    let (mut s, mut sx) = (0f64, 0f64);
    for (&v, &d) in xp[whole..].iter().zip(&gp[whole..]) {
        let d = ChannelGate::apply(gate, v, mu, d);
        s += f64::from(d);
        sx += f64::from(d * (v - mu));
    }
    s += a.iter().map(|&v| f64::from(v)).sum::<f64>();
    sx += ax.iter().map(|&v| f64::from(v)).sum::<f64>();
    (s, sx)
}

/// The eight f32 lanes of `Σ gy` and `Σ gy · (x − mu)` over the whole groups of eight of a
/// plane, `gy` through `gate`: AVX where the CPU has it (the compiler left the portable loop
/// scalar, three times the cost of a normalising pass), the same operations per lane either
/// way.
fn lane_gradient_sums(
    xp: &[f32],
    gp: &[f32],
    mu: f32,
    gate: Option<ChannelGate>,
) -> ([f32; 8], [f32; 8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: AVX was detected at run time.
        return unsafe {
            match gate {
                None => avx::lane_gradient_sums::<false>(xp, gp, mu, [0.0; 2]),
                Some(g) => avx::lane_gradient_sums::<true>(xp, gp, mu, g.scale_shift()),
            }
        };
    }
    lane_gradient_sums_portable(xp, gp, mu, gate)
}

fn lane_gradient_sums_portable(
    xp: &[f32],
    gp: &[f32],
    mu: f32,
    gate: Option<ChannelGate>,
) -> ([f32; 8], [f32; 8]) {
    let (mut a, mut ax) = ([0f32; 8], [0f32; 8]);
    for (xc, gc) in xp.chunks_exact(8).zip(gp.chunks_exact(8)) {
        for k in 0..8 {
            let d = ChannelGate::apply(gate, xc[k], mu, gc[k]);
            a[k] += d;
            ax[k] += d * (xc[k] - mu);
        }
    }
    (a, ax)
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::{
        __m256, _CMP_GT_OQ, _mm256_add_ps, _mm256_and_ps, _mm256_cmp_ps, _mm256_loadu_ps,
        _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps, _mm256_sub_ps,
    };

    /// See [`super::lane_squared_deviations`]: a multiply then an add, as the portable loop.
    #[target_feature(enable = "avx")]
    pub(super) fn lane_squared_deviations(p: &[f32], mu: f32) -> [f32; 8] {
        let (mut acc, m) = (_mm256_setzero_ps(), _mm256_set1_ps(mu));
        for c in p.chunks_exact(8) {
            // SAFETY: the chunk holds eight floats.
            let d = _mm256_sub_ps(unsafe { _mm256_loadu_ps(c.as_ptr()) }, m);
            acc = _mm256_add_ps(acc, _mm256_mul_ps(d, d));
        }
        to_array(acc)
    }

    /// See [`super::lane_gradient_sums`]: a multiply then an add, no fused multiply-add, as
    /// the portable loop; `GATED` keeps `gy` only where `(x − mu) · scale + shift > 0`
    /// (`gate = [scale, shift]`, ignored otherwise).
    #[target_feature(enable = "avx")]
    pub(super) fn lane_gradient_sums<const GATED: bool>(
        xp: &[f32],
        gp: &[f32],
        mu: f32,
        gate: [f32; 2],
    ) -> ([f32; 8], [f32; 8]) {
        let (mut a, mut ax) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let m = _mm256_set1_ps(mu);
        let (scale, shift) = (_mm256_set1_ps(gate[0]), _mm256_set1_ps(gate[1]));
        for (xc, gc) in xp.chunks_exact(8).zip(gp.chunks_exact(8)) {
            // SAFETY: both chunks hold eight floats.
            let (x, mut g) =
                unsafe { (_mm256_loadu_ps(xc.as_ptr()), _mm256_loadu_ps(gc.as_ptr())) };
            let centred = _mm256_sub_ps(x, m);
            if GATED {
                let z = _mm256_add_ps(_mm256_mul_ps(centred, scale), shift);
                g = _mm256_and_ps(g, _mm256_cmp_ps::<_CMP_GT_OQ>(z, _mm256_setzero_ps()));
            }
            a = _mm256_add_ps(a, g);
            ax = _mm256_add_ps(ax, _mm256_mul_ps(g, centred));
        }
        (to_array(a), to_array(ax))
    }

    /// The eight lanes of `v`.
    #[target_feature(enable = "avx")]
    fn to_array(v: __m256) -> [f32; 8] {
        let mut out = [0f32; 8];
        // SAFETY: `out` holds eight floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    }
}

simd_dispatch!(
    /// `o = (x − m) · a + b (+ r)` over one plane.
    fn normalize_plane(x: &[f32], m: f32, a: f32, b: f32, r: Option<&[f32]>, o: &mut [f32]) => normalize_plane_generic
);

#[inline(always)]
fn normalize_plane_generic(x: &[f32], m: f32, a: f32, b: f32, r: Option<&[f32]>, o: &mut [f32]) {
    // One loop per case, each vectorised.
    match r {
        None => {
            for (o, &v) in o.iter_mut().zip(x) {
                *o = (v - m) * a + b;
            }
        }
        Some(r) => {
            for ((o, &v), &rv) in o.iter_mut().zip(x).zip(r) {
                *o = (v - m) * a + b + rv;
            }
        }
    }
}

simd_dispatch!(
    /// `o = a · gy + b · (x − m) + k` over one plane, `gy` through `gate`.
    fn input_grad_plane(gy: &[f32], x: &[f32], m: f32, gate: Option<ChannelGate>, coef: [f32; 3], o: &mut [f32]) => input_grad_plane_generic
);

#[inline(always)]
fn input_grad_plane_generic(
    gy: &[f32],
    x: &[f32],
    m: f32,
    gate: Option<ChannelGate>,
    coef: [f32; 3],
    o: &mut [f32],
) {
    let [a, b, k] = coef;
    // One loop per case, each vectorised.
    match gate {
        None => {
            for ((o, &d), &v) in o.iter_mut().zip(gy).zip(x) {
                *o = a * d + b * (v - m) + k;
            }
        }
        Some(gt) => {
            for ((o, &d), &v) in o.iter_mut().zip(gy).zip(x) {
                let d = if gt.passes(v, m) { d } else { 0.0 };
                *o = a * d + b * (v - m) + k;
            }
        }
    }
}

impl BatchNorm2dHostKernels for CpuBackend {
    fn channel_stats(&self, g: &BatchNorm2dGeometry, x: &[f32], mean: &mut [f32], var: &mut [f32]) {
        let (m, hw) = (g.per_channel() as f64, g.hw);
        let sums = channel_plane_sums([g.n, g.c, g.hw], |_, start| [lane_sum(&x[start..][..hw])]);
        for (mo, [s]) in mean.iter_mut().zip(sums) {
            *mo = (s / m) as f32;
        }
        let mean = &*mean;
        let deviations = channel_plane_sums([g.n, g.c, g.hw], |ch, start| {
            [squared_deviation_sum(&x[start..][..hw], mean[ch])]
        });
        for (vo, [v]) in var.iter_mut().zip(deviations) {
            *vo = (v / m) as f32;
        }
    }

    fn normalize(
        &self,
        g: &BatchNorm2dGeometry,
        x: &[f32],
        mean: &[f32],
        scale: &[f32],
        bias: &[f32],
        residual: Option<&[f32]>,
        y: &mut [f32],
    ) {
        per_plane(g, y, |ch, start, o| {
            let (n, r) = (o.len(), residual.map(|r| &r[start..][..o.len()]));
            normalize_plane(&x[start..][..n], mean[ch], scale[ch], bias[ch], r, o);
            epilogue(g.spec.activation, o);
        });
    }

    fn backward_sums(
        &self,
        g: &BatchNorm2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        mean: &[f32],
        invstd: &[f32],
        gate: Option<ReluGate<'_>>,
        sum_gy: &mut [f32],
        sum_gy_xhat: &mut [f32],
    ) {
        let hw = g.hw;
        let sums = channel_plane_sums([g.n, g.c, g.hw], |ch, start| {
            let (xp, gp) = (&x[start..][..hw], &grad_y[start..][..hw]);
            let (s, sx) = gradient_sums(xp, gp, mean[ch], gate.map(|g| g.channel(ch)));
            [s, sx]
        });
        for (ch, [s, sx]) in sums.into_iter().enumerate() {
            sum_gy[ch] = s as f32;
            sum_gy_xhat[ch] = (sx * f64::from(invstd[ch])) as f32;
        }
    }

    fn backward_input(
        &self,
        g: &BatchNorm2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        mean: &[f32],
        gate: Option<ReluGate<'_>>,
        coef: &[f32],
        grad_x: &mut [f32],
    ) {
        let c = g.c;
        per_plane(g, grad_x, |ch, start, o| {
            let k = [coef[ch], coef[c + ch], coef[2 * c + ch]];
            let (n, gate) = (o.len(), gate.map(|g| g.channel(ch)));
            input_grad_plane(
                &grad_y[start..][..n],
                &x[start..][..n],
                mean[ch],
                gate,
                k,
                o,
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX lanes are the portable loops' lanes bit for bit (same operations per lane), over
    /// lengths with and without a tail and values of very different scales.
    #[test]
    fn avx_lanes_equal_portable_lanes() {
        let x: Vec<f32> = (0..203)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 10f32.powi(i % 7 - 3))
            .collect();
        let g: Vec<f32> = (0..203)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) / 7.0)
            .collect();
        for len in [0, 7, 8, 9, 64, 100, 203] {
            let (xp, gp, mu) = (&x[..len], &g[..len], 0.37);
            let lanes = |v: [f32; 8]| v.map(f32::to_bits);
            let gate = ReluGate {
                scale: &[0.8],
                shift: &[-0.1],
            }
            .channel(0);
            for gate in [None, Some(gate)] {
                let (a, ax) = lane_gradient_sums(xp, gp, mu, gate);
                let (pa, pax) = lane_gradient_sums_portable(xp, gp, mu, gate);
                assert_eq!(
                    (lanes(a), lanes(ax)),
                    (lanes(pa), lanes(pax)),
                    "length {len}, gated {}",
                    gate.is_some()
                );
            }
            assert_eq!(
                lanes(lane_squared_deviations(xp, mu)),
                lanes(lane_squared_deviations_portable(xp, mu)),
                "length {len}"
            );
        }
    }
}
