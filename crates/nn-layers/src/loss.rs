//! Losses.

use crate::error::Result;
pub use autograd::CrossEntropy;
use autograd::Var;
use conv_kernels::IndexTensor;

/// Mean softmax cross-entropy of `[n, classes]` logits against `labels` (PyTorch
/// `nn.CrossEntropyLoss()`), with the correct-prediction count, both on the device.
pub fn cross_entropy(logits: &Var, labels: &IndexTensor) -> Result<CrossEntropy> {
    Ok(logits.cross_entropy(labels)?)
}
