//! The op set over host memory, implemented twice: by the naive [`crate::reference`] oracle
//! and by the fast [`crate::cpu`] backend.
//!
//! Every method receives a geometry already checked by its spec (see [`crate::spec`]) and
//! buffers whose lengths match it, so implementations index without further checks. Output
//! buffers are fully overwritten (never accumulated into) unless the method says otherwise.

use crate::spec::{
    Activation, AdamConfig, Conv2dGeometry, CrossEntropyGeometry, MatmulGeometry, Pool2dGeometry,
    SgdConfig,
};

/// Loss and accuracy of one fused softmax-cross-entropy call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropyStats {
    /// Mean negative log-likelihood over the batch.
    pub loss: f32,
    /// Rows whose arg-max equals the label (first maximum wins ties).
    pub correct: u32,
}

/// Kernels over host slices; see the module docs for the buffer contract.
pub trait HostKernels: Send + Sync {
    /// `y[n, c_out, oh, ow] = x ⋆ w (+ bias)`.
    fn conv2d(&self, g: &Conv2dGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]);
    /// Gradient of the conv input from the output gradient and the weight.
    fn conv2d_backward_input(
        &self,
        g: &Conv2dGeometry,
        grad_y: &[f32],
        w: &[f32],
        grad_x: &mut [f32],
    );
    /// Gradient of the conv weight from the input and the output gradient.
    fn conv2d_backward_weight(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        grad_w: &mut [f32],
    );
    /// Sums `x[n, c, hw]` over the batch and spatial axes into `out[c]` (conv and linear bias grads).
    fn channel_sum(&self, n: usize, c: usize, hw: usize, x: &[f32], out: &mut [f32]);
    /// Pooling forward; for max pooling `argmax[i]` receives the flat `h * w + w` offset within
    /// the input plane of the element that won output `i` (for avg pooling `argmax` is empty).
    fn pool2d(&self, g: &Pool2dGeometry, x: &[f32], y: &mut [f32], argmax: &mut [u32]);
    /// Pooling backward into `grad_x` (overwritten); max pooling routes through `argmax`.
    fn pool2d_backward(
        &self,
        g: &Pool2dGeometry,
        grad_y: &[f32],
        argmax: &[u32],
        grad_x: &mut [f32],
    );
    /// `c[m, n] = op(a) · op(b) (+ bias[n] on every row)`.
    fn matmul(&self, g: &MatmulGeometry, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32]);
    /// `y = act(x)` element-wise.
    fn activation(&self, act: Activation, x: &[f32], y: &mut [f32]);
    /// `grad_x = grad_y * act'(x)`, the derivative taken from the forward *output* `y`.
    fn activation_backward(&self, act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]);
    /// Mean cross-entropy of `softmax(logits)` against `labels` (all `< classes`), writing the
    /// gradient of that mean with respect to the logits.
    fn softmax_cross_entropy(
        &self,
        g: &CrossEntropyGeometry,
        logits: &[f32],
        labels: &[u32],
        grad_logits: &mut [f32],
    ) -> CrossEntropyStats;
    /// One in-place SGD update; `momentum` is empty when `cfg.momentum == 0`, else the zero-started buffer.
    fn sgd_step(&self, cfg: &SgdConfig, param: &mut [f32], grad: &[f32], momentum: &mut [f32]);
    /// One in-place Adam update; `step` counts from 1 (for bias correction).
    fn adam_step(
        &self,
        cfg: &AdamConfig,
        step: u32,
        param: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    );
    /// `y += alpha * x` element-wise.
    fn axpy(&self, alpha: f32, x: &[f32], y: &mut [f32]);
    /// `x *= alpha` element-wise.
    fn scale(&self, alpha: f32, x: &mut [f32]);
    /// Sum of all elements.
    fn sum(&self, x: &[f32]) -> f32;
}
