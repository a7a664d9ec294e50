//! Reference pooling: every window visited directly.

use super::Pool2dHostKernels;
use crate::reference::{Reference, input_coord};
use crate::{Pool2dGeometry, PoolKind};

/// Calls `f(plane, out_index, taps)` per output element with the in-bounds input offsets of its
/// window (offsets within the plane) and the window's full size including padding.
fn for_each_window(g: &Pool2dGeometry, mut f: impl FnMut(usize, usize, &[usize], usize)) {
    let s = g.spec;
    let mut taps = Vec::with_capacity(s.kernel[0] * s.kernel[1]);
    for plane in 0..g.n * g.c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                taps.clear();
                for ky in 0..s.kernel[0] {
                    let Some(iy) = input_coord(oy, ky, s.stride[0], s.padding[0], 1, g.h) else {
                        continue;
                    };
                    for kx in 0..s.kernel[1] {
                        if let Some(ix) = input_coord(ox, kx, s.stride[1], s.padding[1], 1, g.w) {
                            taps.push(iy * g.w + ix);
                        }
                    }
                }
                let out = (plane * g.oh + oy) * g.ow + ox;
                f(plane, out, &taps, s.kernel[0] * s.kernel[1]);
            }
        }
    }
}

fn pool2d(g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let plane_len = g.h * g.w;
    for_each_window(g, |plane, out, taps, window| {
        let xs = &x[plane * plane_len..(plane + 1) * plane_len];
        match g.spec.kind {
            PoolKind::Max => {
                // First maximum in scan order wins; NaN propagates as in PyTorch.
                let mut best = taps[0];
                for &t in &taps[1..] {
                    if xs[t] > xs[best] || xs[t].is_nan() && !xs[best].is_nan() {
                        best = t;
                    }
                }
                y[out] = xs[best];
                argmax[out] = best as u32;
            }
            PoolKind::Avg => {
                let sum: f64 = taps.iter().map(|&t| xs[t] as f64).sum();
                y[out] = (sum / window as f64) as f32;
            }
        }
    });
}

fn pool2d_backward(g: &Pool2dGeometry, grad_y: &[f32], argmax: &[u32], grad_x: &mut [f32]) {
    grad_x.fill(0.0);
    let plane_len = g.h * g.w;
    for_each_window(g, |plane, out, taps, window| {
        let gx = &mut grad_x[plane * plane_len..(plane + 1) * plane_len];
        match g.spec.kind {
            PoolKind::Max => gx[argmax[out] as usize] += grad_y[out],
            PoolKind::Avg => {
                for &t in taps {
                    gx[t] += grad_y[out] / window as f32;
                }
            }
        }
    });
}

impl Pool2dHostKernels for Reference {
    fn forward(&self, g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
        pool2d(g, x, y, argmax)
    }
    fn backward(&self, g: &Pool2dGeometry, grad_y: &[f32], argmax: &[u32], grad_x: &mut [f32]) {
        pool2d_backward(g, grad_y, argmax, grad_x)
    }
}
