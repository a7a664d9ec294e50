//! Errors raised by op specs and backends.

/// Everything that can go wrong when running a kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// An input whose shape does not fit the op.
    #[error("{op}: {what}: expected {expected}, found {found}")]
    Shape {
        /// The op that rejected the input.
        op: &'static str,
        /// Which input or dimension.
        what: String,
        /// What the op needed.
        expected: String,
        /// What it was given.
        found: String,
    },
    /// Op settings that make no sense (zero stride, groups not dividing channels, ...).
    #[error("{op}: invalid settings: {reason}")]
    InvalidSpec {
        /// The op.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Tensors from different devices were combined.
    #[error("{op}: operands live on different devices ({left} and {right})")]
    DeviceMismatch {
        /// The op.
        op: &'static str,
        /// First device.
        left: String,
        /// Second device.
        right: String,
    },
    /// No GPU adapter could be found or opened.
    #[error("no GPU available: {0}")]
    NoAdapter(String),
    /// The GPU failed: an allocation it cannot hold, a shader that does not compile, a
    /// validation error, a read-back that never completes, the device lost.
    #[error("GPU error on {adapter} in {op}: {reason}")]
    Gpu {
        /// The adapter's name (`llvmpipe (LLVM 15.0.6, 256 bits)`).
        adapter: String,
        /// The op or kernel that was running, or the last one recorded before the failure.
        op: String,
        /// What the GPU reported.
        reason: String,
    },
    /// A tensor too large for the device's buffer limits.
    #[error("{op}: tensor of {bytes} bytes exceeds {adapter}'s buffer limit of {limit} bytes")]
    TooLarge {
        /// The op.
        op: &'static str,
        /// Bytes needed.
        bytes: u64,
        /// The limit.
        limit: u64,
        /// The adapter's name.
        adapter: String,
    },
    /// A host tensor could not be built (length or shape problem).
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
}

impl KernelError {
    /// Whether the error is the GPU's (its limits, memory, compiler or driver), not the input's:
    /// the same work may succeed on the CPU.
    pub fn is_device_fault(&self) -> bool {
        matches!(self, KernelError::Gpu { .. } | KernelError::TooLarge { .. })
    }
}

/// Result alias for the conv-kernels crate.
pub type Result<T, E = KernelError> = std::result::Result<T, E>;

/// Shorthand for a shape error.
pub(crate) fn shape_err(
    op: &'static str,
    what: impl Into<String>,
    expected: impl ToString,
    found: impl ToString,
) -> KernelError {
    KernelError::Shape {
        op,
        what: what.into(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

/// Shorthand for an invalid-settings error.
pub(crate) fn spec_err(op: &'static str, reason: impl Into<String>) -> KernelError {
    KernelError::InvalidSpec {
        op,
        reason: reason.into(),
    }
}
