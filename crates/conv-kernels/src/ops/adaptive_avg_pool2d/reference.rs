//! Reference adaptive average pooling: every window summed directly in f64.

use super::AdaptiveAvgPool2dHostKernels;
use super::spec::{AdaptiveAvgPool2dGeometry, adaptive_window};
use crate::reference::Reference;

impl AdaptiveAvgPool2dHostKernels for Reference {
    fn forward(&self, g: &AdaptiveAvgPool2dGeometry, x: &[f32], y: &mut [f32]) {
        for plane in 0..g.n * g.c {
            let xs = &x[plane * g.h * g.w..][..g.h * g.w];
            for oy in 0..g.oh {
                let (y0, y1) = adaptive_window(oy, g.h, g.oh);
                for ox in 0..g.ow {
                    let (x0, x1) = adaptive_window(ox, g.w, g.ow);
                    let mut s = 0f64;
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            s += xs[iy * g.w + ix] as f64;
                        }
                    }
                    let count = ((y1 - y0) * (x1 - x0)) as f64;
                    y[(plane * g.oh + oy) * g.ow + ox] = (s / count) as f32;
                }
            }
        }
    }

    fn backward(&self, g: &AdaptiveAvgPool2dGeometry, grad_y: &[f32], grad_x: &mut [f32]) {
        grad_x.fill(0.0);
        for plane in 0..g.n * g.c {
            let gx = &mut grad_x[plane * g.h * g.w..][..g.h * g.w];
            for oy in 0..g.oh {
                let (y0, y1) = adaptive_window(oy, g.h, g.oh);
                for ox in 0..g.ow {
                    let (x0, x1) = adaptive_window(ox, g.w, g.ow);
                    let count = ((y1 - y0) * (x1 - x0)) as f32;
                    let share = grad_y[(plane * g.oh + oy) * g.ow + ox] / count;
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            gx[iy * g.w + ix] += share;
                        }
                    }
                }
            }
        }
    }
}
