//! Reference batch norm: every per-channel sum in f64, two passes for the variance.

use super::spec::BatchNorm2dGeometry;
use super::{BatchNorm2dHostKernels, ReluGate};
use crate::reference::Reference;

/// The values of channel `ch`, batch by batch.
fn channel<'a>(g: &BatchNorm2dGeometry, x: &'a [f32], ch: usize) -> impl Iterator<Item = f64> + 'a {
    let (c, hw) = (g.c, g.hw);
    (0..g.n).flat_map(move |b| x[(b * c + ch) * hw..][..hw].iter().map(|&v| f64::from(v)))
}

impl BatchNorm2dHostKernels for Reference {
    fn channel_stats(&self, g: &BatchNorm2dGeometry, x: &[f32], mean: &mut [f32], var: &mut [f32]) {
        let m = g.per_channel() as f64;
        for ch in 0..g.c {
            let mu = channel(g, x, ch).sum::<f64>() / m;
            let v = channel(g, x, ch).map(|v| (v - mu) * (v - mu)).sum::<f64>() / m;
            mean[ch] = mu as f32;
            var[ch] = v as f32;
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
        for (i, (o, &v)) in y.iter_mut().zip(x).enumerate() {
            let ch = (i / g.hw) % g.c;
            let mut z = (v - mean[ch]) * scale[ch] + bias[ch];
            if let Some(r) = residual {
                z += r[i];
            }
            *o = g.spec.activation.map_or(z, |a| a.apply(z));
        }
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
        for ch in 0..g.c {
            let (mu, is) = (f64::from(mean[ch]), f64::from(invstd[ch]));
            let (mut s, mut sx) = (0f64, 0f64);
            for (v, d) in channel(g, x, ch).zip(channel(g, grad_y, ch)) {
                let passed = gate.is_none_or(|gt| gt.passes(ch, v as f32, mean[ch]));
                let d = if passed { d } else { 0.0 };
                s += d;
                sx += d * (v - mu) * is;
            }
            sum_gy[ch] = s as f32;
            sum_gy_xhat[ch] = sx as f32;
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
        for (i, o) in grad_x.iter_mut().enumerate() {
            let ch = (i / g.hw) % c;
            let passed = gate.is_none_or(|gt| gt.passes(ch, x[i], mean[ch]));
            let d = if passed { grad_y[i] } else { 0.0 };
            *o = coef[ch] * d + coef[c + ch] * (x[i] - mean[ch]) + coef[2 * c + ch];
        }
    }
}
