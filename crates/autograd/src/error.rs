//! Errors raised while recording ops or running backward.

use conv_kernels::KernelError;
use tensor::TensorError;

/// Everything that can go wrong in the `autograd` crate.
#[derive(Debug, thiserror::Error)]
pub enum AutogradError {
    /// An op rejected its operands; `operands` lists every operand's shape.
    #[error("{op} ({operands}): {source}")]
    Op {
        /// The differentiable op (`conv2d`, `linear`, ...).
        op: &'static str,
        /// Every operand with its shape, e.g. `input [2, 3, 8, 8], weight [6, 1, 5, 5]`.
        operands: String,
        /// The kernel's own error.
        source: Box<KernelError>,
    },
    /// Two operands whose shapes do not fit together.
    #[error("{op}: {what}: {left_name} {left} does not fit {right_name} {right}")]
    ShapeMismatch {
        /// The op.
        op: &'static str,
        /// What had to agree.
        what: String,
        /// First operand's role.
        left_name: &'static str,
        /// First operand's shape.
        left: String,
        /// Second operand's role.
        right_name: &'static str,
        /// Second operand's shape.
        right: String,
    },
    /// `backward` called on a value with more than one element.
    #[error(
        "backward needs a scalar (one-element) loss, found shape {shape}; use backward_with to seed a non-scalar"
    )]
    NotScalar {
        /// The value's shape.
        shape: String,
    },
    /// `backward` called a second time on the same tape.
    #[error(
        "backward was already run on this tape (its saved tensors are freed); record a new tape"
    )]
    BackwardTwice,
    /// `backward` from a value that no tensor requiring grad flows into.
    #[error("backward from a value that does not depend on any tensor requiring grad")]
    NoGradPath,
    /// Operands recorded on different tapes were combined.
    #[error("{op}: operands were recorded on different tapes")]
    DifferentTapes {
        /// The op.
        op: &'static str,
    },
    /// Invalid arguments (a negative probability, an empty input list, ...).
    #[error("{op}: {reason}")]
    Invalid {
        /// The op or helper.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A gradient check found an analytic gradient that disagrees with finite differences.
    #[error(
        "gradcheck: input {input} element {index}: analytic {analytic}, numeric {numeric} (rtol {rtol}, atol {atol})"
    )]
    GradcheckFailed {
        /// Which input.
        input: usize,
        /// Flat element index in that input.
        index: usize,
        /// Gradient from backward.
        analytic: f32,
        /// Central finite difference.
        numeric: f32,
        /// Relative tolerance used.
        rtol: f32,
        /// Absolute tolerance used.
        atol: f32,
    },
    /// A kernel failed outside of an op's forward (backward kernels, accumulation, seeding).
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// A host tensor could not be built.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// Result alias for the autograd crate.
pub type Result<T, E = AutogradError> = std::result::Result<T, E>;
