//! Reference convolution: forward, input gradient and weight gradient as direct loops.

use super::Conv2dHostKernels;
use crate::reference::{Reference, input_coord};
use crate::{Activation, Conv2dGeometry};

/// Calls `f(n, co, oy, ox, ci, ky, kx, iy, ix)` for every in-bounds (output, tap) pair.
fn for_each_tap(g: &Conv2dGeometry, mut f: impl FnMut([usize; 9])) {
    let s = g.spec;
    let (cig, cog) = (g.c_in_per_group(), g.c_out_per_group());
    for n in 0..g.n {
        for co in 0..g.c_out {
            let group = co / cog;
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for cl in 0..cig {
                        let ci = group * cig + cl;
                        for ky in 0..g.kh {
                            let Some(iy) =
                                input_coord(oy, ky, s.stride[0], s.padding[0], s.dilation[0], g.h)
                            else {
                                continue;
                            };
                            for kx in 0..g.kw {
                                let Some(ix) = input_coord(
                                    ox,
                                    kx,
                                    s.stride[1],
                                    s.padding[1],
                                    s.dilation[1],
                                    g.w,
                                ) else {
                                    continue;
                                };
                                f([n, co, oy, ox, ci, ky, kx, iy, ix]);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn conv2d(
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    y: &mut [f32],
) {
    let mut acc = vec![0f64; y.len()];
    let cig = g.c_in_per_group();
    for_each_tap(g, |[n, co, oy, ox, ci, ky, kx, iy, ix]| {
        let cl = ci % cig;
        let xv = x[((n * g.c_in + ci) * g.h + iy) * g.w + ix] as f64;
        let wv = w[((co * cig + cl) * g.kh + ky) * g.kw + kx] as f64;
        acc[((n * g.c_out + co) * g.oh + oy) * g.ow + ox] += xv * wv;
    });
    for (i, (out, a)) in y.iter_mut().zip(acc).enumerate() {
        let co = (i / (g.oh * g.ow)) % g.c_out;
        let v = (a + bias.map_or(0.0, |b| b[co] as f64)) as f32;
        *out = act.map_or(v, |act| act.apply(v));
    }
}

fn backward_input(g: &Conv2dGeometry, grad_y: &[f32], w: &[f32], grad_x: &mut [f32]) {
    let mut acc = vec![0f64; grad_x.len()];
    let cig = g.c_in_per_group();
    for_each_tap(g, |[n, co, oy, ox, ci, ky, kx, iy, ix]| {
        let cl = ci % cig;
        let gy = grad_y[((n * g.c_out + co) * g.oh + oy) * g.ow + ox] as f64;
        let wv = w[((co * cig + cl) * g.kh + ky) * g.kw + kx] as f64;
        acc[((n * g.c_in + ci) * g.h + iy) * g.w + ix] += gy * wv;
    });
    for (o, a) in grad_x.iter_mut().zip(acc) {
        *o = a as f32;
    }
}

fn backward_weight(g: &Conv2dGeometry, x: &[f32], grad_y: &[f32], grad_w: &mut [f32]) {
    let mut acc = vec![0f64; grad_w.len()];
    let cig = g.c_in_per_group();
    for_each_tap(g, |[n, co, oy, ox, ci, ky, kx, iy, ix]| {
        let cl = ci % cig;
        let gy = grad_y[((n * g.c_out + co) * g.oh + oy) * g.ow + ox] as f64;
        let xv = x[((n * g.c_in + ci) * g.h + iy) * g.w + ix] as f64;
        acc[((co * cig + cl) * g.kh + ky) * g.kw + kx] += gy * xv;
    });
    for (o, a) in grad_w.iter_mut().zip(acc) {
        *o = a as f32;
    }
}

impl Conv2dHostKernels for Reference {
    fn forward(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        act: Option<Activation>,
        y: &mut [f32],
    ) {
        conv2d(g, x, w, bias, act, y)
    }
    fn backward_input(&self, g: &Conv2dGeometry, grad_y: &[f32], w: &[f32], grad_x: &mut [f32]) {
        backward_input(g, grad_y, w, grad_x)
    }
    fn backward_weight(&self, g: &Conv2dGeometry, x: &[f32], grad_y: &[f32], grad_w: &mut [f32]) {
        backward_weight(g, x, grad_y, grad_w)
    }
}
