//! The naive reference backend: straight loops written to be obviously right.
//!
//! It is the oracle every other backend is tested against, so it favours clarity over speed:
//! one output element at a time, sums in f64 where order could matter.

mod conv2d;
mod loss;
mod matmul;
mod optim;
mod pool2d;

/// The naive reference kernels (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reference;

use crate::host::{CrossEntropyStats, HostKernels};
use crate::spec::{
    Activation, AdamConfig, Conv2dGeometry, CrossEntropyGeometry, MatmulGeometry, Pool2dGeometry,
    SgdConfig,
};

impl HostKernels for Reference {
    fn conv2d(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
    ) {
        conv2d::conv2d(g, x, w, bias, y)
    }
    fn conv2d_backward_input(
        &self,
        g: &Conv2dGeometry,
        grad_y: &[f32],
        w: &[f32],
        grad_x: &mut [f32],
    ) {
        conv2d::backward_input(g, grad_y, w, grad_x)
    }
    fn conv2d_backward_weight(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        grad_w: &mut [f32],
    ) {
        conv2d::backward_weight(g, x, grad_y, grad_w)
    }
    fn channel_sum(&self, n: usize, c: usize, hw: usize, x: &[f32], out: &mut [f32]) {
        for (ch, o) in out.iter_mut().enumerate().take(c) {
            let mut s = 0f64;
            for b in 0..n {
                let base = (b * c + ch) * hw;
                s += x[base..base + hw].iter().map(|&v| v as f64).sum::<f64>();
            }
            *o = s as f32;
        }
    }
    fn pool2d(&self, g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
        pool2d::pool2d(g, x, y, argmax)
    }
    fn pool2d_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &[f32],
        argmax: &[u32],
        grad_x: &mut [f32],
    ) {
        pool2d::pool2d_backward(g, grad_y, argmax, grad_x)
    }
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        c: &mut [f32],
    ) {
        matmul::matmul(g, a, b, bias, c)
    }
    fn activation(&self, act: Activation, x: &[f32], y: &mut [f32]) {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = act.apply(v);
        }
    }
    fn activation_backward(&self, act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
        for ((o, &yv), &gy) in grad_x.iter_mut().zip(y).zip(grad_y) {
            *o = gy * act.derivative_from_output(yv);
        }
    }
    fn softmax_cross_entropy(
        &self,
        g: &CrossEntropyGeometry,
        logits: &[f32],
        labels: &[u32],
        grad_logits: &mut [f32],
    ) -> CrossEntropyStats {
        loss::softmax_cross_entropy(g, logits, labels, grad_logits)
    }
    fn sgd_step(&self, cfg: &SgdConfig, param: &mut [f32], grad: &[f32], momentum: &mut [f32]) {
        optim::sgd_step(cfg, param, grad, momentum)
    }
    fn adam_step(
        &self,
        cfg: &AdamConfig,
        step: u32,
        param: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) {
        optim::adam_step(cfg, step, param, grad, m, v)
    }
    fn axpy(&self, alpha: f32, x: &[f32], y: &mut [f32]) {
        for (o, &v) in y.iter_mut().zip(x) {
            *o += alpha * v;
        }
    }
    fn scale(&self, alpha: f32, x: &mut [f32]) {
        for v in x {
            *v *= alpha;
        }
    }
    fn sum(&self, x: &[f32]) -> f32 {
        x.iter().map(|&v| v as f64).sum::<f64>() as f32
    }
}
