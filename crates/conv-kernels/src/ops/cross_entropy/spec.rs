//! Softmax cross-entropy validation and sizes.

use crate::error::{Result, shape_err};
use crate::window::expect_rank;
use tensor::Shape;

/// Sizes of a checked softmax cross-entropy: logits `[n, classes]`, `n` labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CrossEntropyGeometry {
    /// Batch size.
    pub n: usize,
    /// Number of classes.
    pub classes: usize,
}

impl CrossEntropyGeometry {
    /// Validates logits `[n, classes]` against `labels` of length n (values checked by backends).
    pub fn check(logits: &Shape, labels: usize) -> Result<Self> {
        const OP: &str = "softmax_cross_entropy";
        expect_rank(OP, "logits", logits, 2)?;
        let (n, classes) = (logits.dims()[0], logits.dims()[1]);
        if labels != n {
            return Err(shape_err(
                OP,
                "labels",
                format!("{n} (one per logits row)"),
                labels,
            ));
        }
        if n == 0 || classes == 0 {
            return Err(shape_err(OP, "logits", "[n >= 1, classes >= 1]", logits));
        }
        Ok(Self { n, classes })
    }
}
