//! Errors raised by shape logic, tensor construction and tensor files.

use std::path::PathBuf;

/// Everything that can go wrong in the `tensor` crate.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// A shape whose element count overflows `usize`.
    #[error("shape {dims:?} has more elements than fit in memory")]
    ShapeOverflow {
        /// The offending dimensions.
        dims: Vec<usize>,
    },
    /// The data length does not match the element count of the shape.
    #[error("data length {found} does not match shape {shape} ({expected} elements)")]
    LengthMismatch {
        /// The shape, as displayed.
        shape: String,
        /// Elements the shape holds.
        expected: usize,
        /// Elements supplied.
        found: usize,
    },
    /// A reshape to a shape with a different element count.
    #[error("cannot reshape {from} ({from_numel} elements) into {to} ({to_numel} elements)")]
    BadReshape {
        /// Source shape.
        from: String,
        /// Source element count.
        from_numel: usize,
        /// Target shape.
        to: String,
        /// Target element count.
        to_numel: usize,
    },
    /// A multi-index with the wrong rank or an out-of-range coordinate.
    #[error("index {index:?} is out of bounds for shape {shape}")]
    IndexOutOfBounds {
        /// The index used.
        index: Vec<usize>,
        /// The shape indexed.
        shape: String,
    },
    /// An axis at or beyond the tensor's rank.
    #[error("axis {axis} is out of range for a rank-{rank} tensor")]
    BadAxis {
        /// The axis asked for.
        axis: usize,
        /// The tensor's rank.
        rank: usize,
    },
    /// Two tensors that must share a shape do not.
    #[error("{op}: shapes differ: {left} vs {right}")]
    ShapeMismatch {
        /// The operation that needed equal shapes.
        op: &'static str,
        /// Left operand shape.
        left: String,
        /// Right operand shape.
        right: String,
    },
    /// A reduction over an empty axis (max/argmax of nothing).
    #[error("{op} over an empty axis of shape {shape}")]
    EmptyReduction {
        /// The reduction.
        op: &'static str,
        /// The shape reduced.
        shape: String,
    },
    /// Reading or writing a tensor file failed at the OS level.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A file that is not a valid safetensors file (truncated, bad header, ...).
    #[error("{path}: not a valid safetensors file: {reason}")]
    InvalidFile {
        /// File involved.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor stored with a dtype that the caller did not ask for.
    #[error("{path}: tensor `{name}` has dtype {found}, expected {expected}")]
    WrongDtype {
        /// File involved.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Dtype(s) accepted.
        expected: String,
        /// Dtype found.
        found: String,
    },
    /// A tensor that was asked for but is not in the file.
    #[error("{path}: no tensor named `{name}`")]
    MissingTensor {
        /// File involved.
        path: PathBuf,
        /// Tensor name.
        name: String,
    },
    /// A file that ends before the data its header describes.
    #[error("{path}: truncated file: {reason}")]
    Truncated {
        /// File involved.
        path: PathBuf,
        /// What is missing (naming the tensor when one is cut off).
        reason: String,
    },
    /// A tensor whose byte length disagrees with its dtype and shape.
    #[error(
        "{path}: tensor `{name}` ({dtype} {shape}) needs {expected} bytes of data, found {found}"
    )]
    DataLength {
        /// File involved.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Stored dtype.
        dtype: String,
        /// Stored shape, as displayed.
        shape: String,
        /// Bytes the dtype and shape call for.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// A label tensor holding a negative class index.
    #[error("{path}: tensor `{name}` holds label {value} at element {index}, expected >= 0")]
    BadLabel {
        /// File involved.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Flat element index.
        index: usize,
        /// The offending value.
        value: i64,
    },
    /// The same tensor name added twice to a set of named tensors.
    #[error("tensor `{name}` was already added")]
    DuplicateTensor {
        /// Tensor name.
        name: String,
    },
    /// A golden-case manifest problem (unknown op, shape disagreement, bad JSON...).
    #[error("golden case `{case}`: {reason}")]
    Golden {
        /// Case name (or the manifest path for file-level problems).
        case: String,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias for the `tensor` crate.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;
