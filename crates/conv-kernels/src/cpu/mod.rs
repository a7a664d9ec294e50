//! The fast CPU backend: im2col + a maintained GEMM crate, rayon across images, channels and
//! element chunks, scratch buffers reused across calls.
//!
//! One file per op family. Results are deterministic for a given thread count: no reduction
//! is racy (partial sums are taken per fixed chunk and added in order).

#[macro_use]
mod simd_dispatch;

mod activation;
mod conv2d;
mod direct_conv;
mod gemm;
mod im2col;
mod loss;
mod optim;
mod pool2d;
mod reduce;
mod scratch;

use crate::host::{CrossEntropyStats, HostKernels};
use crate::spec::{
    Activation, AdamConfig, Conv2dGeometry, CrossEntropyGeometry, MatmulGeometry, Pool2dGeometry,
    SgdConfig,
};
use scratch::ScratchPool;

/// The fast CPU backend (runs on rayon's global thread pool).
#[derive(Debug, Default)]
pub struct CpuBackend {
    scratch: ScratchPool,
}

impl CpuBackend {
    /// A backend using rayon's global thread pool.
    pub fn new() -> Self {
        Self::default()
    }
}

impl HostKernels for CpuBackend {
    fn conv2d(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
    ) {
        conv2d::forward(&self.scratch, g, x, w, bias, y)
    }
    fn conv2d_backward_input(
        &self,
        g: &Conv2dGeometry,
        grad_y: &[f32],
        w: &[f32],
        grad_x: &mut [f32],
    ) {
        conv2d::backward_input(&self.scratch, g, grad_y, w, grad_x)
    }
    fn conv2d_backward_weight(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        grad_w: &mut [f32],
    ) {
        conv2d::backward_weight(&self.scratch, g, x, grad_y, grad_w)
    }
    fn channel_sum(&self, n: usize, c: usize, hw: usize, x: &[f32], out: &mut [f32]) {
        reduce::channel_sum(n, c, hw, x, out)
    }
    fn pool2d(&self, g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
        pool2d::forward(g, x, y, argmax)
    }
    fn pool2d_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &[f32],
        argmax: &[u32],
        grad_x: &mut [f32],
    ) {
        pool2d::backward(g, grad_y, argmax, grad_x)
    }
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        c: &mut [f32],
    ) {
        gemm::matmul(g, a, b, bias, c)
    }
    fn activation(&self, act: Activation, x: &[f32], y: &mut [f32]) {
        activation::forward(act, x, y)
    }
    fn activation_backward(&self, act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
        activation::backward(act, y, grad_y, grad_x)
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
        reduce::axpy(alpha, x, y)
    }
    fn scale(&self, alpha: f32, x: &mut [f32]) {
        reduce::scale(alpha, x)
    }
    fn sum(&self, x: &[f32]) -> f32 {
        reduce::sum(x)
    }
}
