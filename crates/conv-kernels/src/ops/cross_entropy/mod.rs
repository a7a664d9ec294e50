//! Fused mean softmax cross-entropy over logits `[n, classes]` and `n` labels (PyTorch
//! `F.cross_entropy`), with the correct-prediction count and, when asked, the logits gradient.
//!
//! - [`spec`]: validation into a [`CrossEntropyGeometry`].
//! - `reference` (log-sum-exp in f64), `cpu`, `gpu` (host code of
//!   `shaders/cross_entropy.wgsl`, row results summed by [`crate::ops::reduce`]).
//! - Tests: `tests/fast_vs_reference.rs`, `tests/finite_differences.rs`, `tests/golden.rs`.

mod cpu;
mod gpu;
mod reference;
pub mod spec;

pub use spec::CrossEntropyGeometry;

use crate::Device;
use crate::device::{DeviceTensor, IndexTensor};
use crate::error::{Result, shape_err};
use tensor::Shape;

/// Loss and accuracy of one host cross-entropy call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropyStats {
    /// Mean negative log-likelihood over the batch.
    pub loss: f32,
    /// Rows whose arg-max equals the label (first maximum wins ties).
    pub correct: u32,
}

/// Result of the fused softmax cross-entropy.
#[derive(Clone, Debug)]
pub struct CrossEntropyOutput {
    /// Mean loss, a rank-0 tensor on the device.
    pub loss: DeviceTensor,
    /// Count of correct predictions, a rank-0 tensor on the device.
    pub correct: DeviceTensor,
    /// Gradient of the mean loss with respect to the logits (`None` unless asked for).
    pub grad_logits: Option<DeviceTensor>,
}

/// Cross-entropy on one backend's tensors (labels all `< classes`).
pub trait CrossEntropyKernels {
    /// Loss, correct count and, when `want_grad`, the logits gradient.
    fn softmax_cross_entropy(
        &self,
        g: &CrossEntropyGeometry,
        logits: &DeviceTensor,
        labels: &IndexTensor,
        want_grad: bool,
    ) -> Result<CrossEntropyOutput>;
}

/// Cross-entropy over host slices whose lengths match the geometry.
pub trait CrossEntropyHostKernels {
    /// Mean cross-entropy of `softmax(logits)` against `labels`, writing the gradient of that
    /// mean with respect to the logits into `grad_logits` when it is given.
    fn softmax_cross_entropy(
        &self,
        g: &CrossEntropyGeometry,
        logits: &[f32],
        labels: &[u32],
        grad_logits: Option<&mut [f32]>,
    ) -> CrossEntropyStats;
}

impl<K: CrossEntropyHostKernels> CrossEntropyKernels for K {
    fn softmax_cross_entropy(
        &self,
        g: &CrossEntropyGeometry,
        logits: &DeviceTensor,
        labels: &IndexTensor,
        want_grad: bool,
    ) -> Result<CrossEntropyOutput> {
        const OP: &str = "softmax_cross_entropy";
        let (ls, lab) = (logits.host(OP)?, labels.host(OP)?);
        let mut grad = want_grad
            .then(|| DeviceTensor::host_output(logits.dims()))
            .transpose()?;
        let stats = CrossEntropyHostKernels::softmax_cross_entropy(
            self,
            g,
            ls,
            lab,
            grad.as_mut().map(|(_, b)| &mut b[..]),
        );
        Ok(CrossEntropyOutput {
            loss: DeviceTensor::from_host(Shape::scalar(), vec![stats.loss]),
            correct: DeviceTensor::from_host(Shape::scalar(), vec![stats.correct as f32]),
            grad_logits: grad.map(|(s, b)| DeviceTensor::from_host(s, b)),
        })
    }
}

impl Device {
    /// Fused mean softmax cross-entropy and the correct-prediction count, plus the logits
    /// gradient when `want_grad` (evaluation asks for none, and none is computed).
    pub fn softmax_cross_entropy(
        &self,
        logits: &DeviceTensor,
        labels: &IndexTensor,
        want_grad: bool,
    ) -> Result<CrossEntropyOutput> {
        let g = CrossEntropyGeometry::check(logits.shape(), labels.len())?;
        if let Some(max) = labels.max_value()
            && max as usize >= g.classes
        {
            return Err(shape_err(
                "softmax_cross_entropy",
                "label value",
                format!("< {} (the number of classes)", g.classes),
                max,
            ));
        }
        self.backend()
            .softmax_cross_entropy(&g, logits, labels, want_grad)
    }
}
