//! Errors raised by layers, optimizers and checkpoints.

use std::fmt;
use std::path::PathBuf;

/// What is wrong with a checkpoint's tensors, all problems at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mismatches {
    /// Tensors the model (or optimizer) needs that the file lacks.
    pub missing: Vec<String>,
    /// Tensors in the file that nothing expects.
    pub unexpected: Vec<String>,
    /// Tensors present with the wrong shape: name, expected dims, found dims.
    pub misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Tensors stored with the wrong dtype: name, dtype found, dtype expected (`F32 or F16`
    /// for parameters and float buffers, `I64` for `num_batches_tracked`-style counters).
    pub wrong_dtype: Vec<(String, String, String)>,
}

impl Mismatches {
    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.misshaped.is_empty()
            && self.wrong_dtype.is_empty()
    }
}

impl fmt::Display for Mismatches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing: {}", self.missing.join(", ")));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected: {}", self.unexpected.join(", ")));
        }
        if !self.misshaped.is_empty() {
            let items: Vec<_> = self
                .misshaped
                .iter()
                .map(|(n, want, got)| format!("{n} (expected {want:?}, found {got:?})"))
                .collect();
            parts.push(format!("wrong shape: {}", items.join(", ")));
        }
        if !self.wrong_dtype.is_empty() {
            let items: Vec<_> = self
                .wrong_dtype
                .iter()
                .map(|(n, found, want)| format!("{n} (dtype {found}, expected {want})"))
                .collect();
            parts.push(format!("wrong dtype: {}", items.join(", ")));
        }
        write!(f, "{}", parts.join("; "))
    }
}

/// Everything that can go wrong in the `nn-layers` crate.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A layer of a [`Sequential`](crate::Sequential) failed; names the child and its kind.
    #[error("layer {name} ({kind}): {source}")]
    Layer {
        /// The child's name (`"1"`, `"8"`, ...).
        name: String,
        /// Its kind (`Conv2d`, ...).
        kind: &'static str,
        /// What went wrong.
        source: Box<NnError>,
    },
    /// Tensors that do not match the model's parameters and buffers: every missing,
    /// unexpected, mis-shaped and wrongly-typed tensor, listed together.
    #[error("{source_name}: tensors do not match the model: {mismatches}")]
    StateMismatch {
        /// The file (or `state dict`) loaded from.
        source_name: String,
        /// The problems (boxed, to keep `Result`s small).
        mismatches: Box<Mismatches>,
    },
    /// Two parameters or buffers of a module were given the same full name.
    #[error(
        "the name `{name}` is used by two parameters or buffers: each child and each tensor of a module needs its own name"
    )]
    DuplicateName {
        /// The full name (`block.conv1.weight`).
        name: String,
    },
    /// A checkpoint metadata entry that cannot be parsed.
    #[error("{path}: metadata `{key}` = {value:?} is not valid: {reason}")]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// Settings that make no sense (dropout probability outside [0, 1], two `-1` in a reshape...).
    #[error("{what}: {reason}")]
    Invalid {
        /// The layer, initialiser or optimizer.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An autograd op failed.
    #[error(transparent)]
    Autograd(#[from] autograd::AutogradError),
    /// A kernel failed.
    #[error(transparent)]
    Kernel(#[from] conv_kernels::KernelError),
    /// A host tensor or tensor file problem (I/O, truncated file, ...).
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
}

/// Result alias for the nn-layers crate.
pub type Result<T, E = NnError> = std::result::Result<T, E>;

pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> NnError {
    NnError::Invalid {
        what,
        reason: reason.into(),
    }
}
