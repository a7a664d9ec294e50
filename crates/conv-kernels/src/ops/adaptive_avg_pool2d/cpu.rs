//! Adaptive average pooling on the CPU, parallel over planes; global pooling is one in-order
//! lane sum per plane, and backward gathers (each input element reads the outputs covering it).

use super::AdaptiveAvgPool2dHostKernels;
use super::spec::{AdaptiveAvgPool2dGeometry, adaptive_window, adaptive_window_outputs};
use crate::cpu::CpuBackend;
use crate::cpu::reduce::lane_sum;
use rayon::prelude::*;

/// Planes per rayon task: about 16k input elements.
fn planes_per_task(g: &AdaptiveAvgPool2dGeometry) -> usize {
    (16384 / (g.h * g.w)).max(1)
}

fn forward_plane(g: &AdaptiveAvgPool2dGeometry, x: &[f32], y: &mut [f32]) {
    if g.is_global() {
        y[0] = (lane_sum(x) / x.len() as f64) as f32;
        return;
    }
    for oy in 0..g.oh {
        let (y0, y1) = adaptive_window(oy, g.h, g.oh);
        for ox in 0..g.ow {
            let (x0, x1) = adaptive_window(ox, g.w, g.ow);
            let s: f32 = (y0..y1)
                .map(|iy| x[iy * g.w + x0..iy * g.w + x1].iter().sum::<f32>())
                .sum();
            y[oy * g.ow + ox] = s / ((y1 - y0) * (x1 - x0)) as f32;
        }
    }
}

fn backward_plane(g: &AdaptiveAvgPool2dGeometry, gy: &[f32], gx: &mut [f32]) {
    if g.is_global() {
        gx.fill(gy[0] / gx.len() as f32);
        return;
    }
    let count = |oy: usize, ox: usize| {
        let (y0, y1) = adaptive_window(oy, g.h, g.oh);
        let (x0, x1) = adaptive_window(ox, g.w, g.ow);
        ((y1 - y0) * (x1 - x0)) as f32
    };
    for iy in 0..g.h {
        let (o0, o1) = adaptive_window_outputs(iy, g.h, g.oh);
        for ix in 0..g.w {
            let (p0, p1) = adaptive_window_outputs(ix, g.w, g.ow);
            let mut s = 0f32;
            for oy in o0..o1 {
                for ox in p0..p1 {
                    s += gy[oy * g.ow + ox] / count(oy, ox);
                }
            }
            gx[iy * g.w + ix] = s;
        }
    }
}

impl AdaptiveAvgPool2dHostKernels for CpuBackend {
    fn forward(&self, g: &AdaptiveAvgPool2dGeometry, x: &[f32], y: &mut [f32]) {
        let (pin, pout, p) = (g.h * g.w, g.oh * g.ow, planes_per_task(g));
        y.par_chunks_mut(p * pout)
            .zip(x.par_chunks(p * pin))
            .for_each(|(yc, xc)| {
                for (yp, xp) in yc.chunks_mut(pout).zip(xc.chunks(pin)) {
                    forward_plane(g, xp, yp);
                }
            });
    }

    fn backward(&self, g: &AdaptiveAvgPool2dGeometry, grad_y: &[f32], grad_x: &mut [f32]) {
        let (pin, pout, p) = (g.h * g.w, g.oh * g.ow, planes_per_task(g));
        grad_x
            .par_chunks_mut(p * pin)
            .zip(grad_y.par_chunks(p * pout))
            .for_each(|(xc, yc)| {
                for (xp, yp) in xc.chunks_mut(pin).zip(yc.chunks(pout)) {
                    backward_plane(g, yp, xp);
                }
            });
    }
}
