//! Every op, one folder each: its spec (settings, shape rule, validation), result structs, the
//! public [`crate::Device`] method, its kernel trait, and its reference, CPU and GPU
//! implementations. The WGSL of `ops/<op>/` is `shaders/<op>.wgsl` at the workspace top.
//! `docs/architecture.md` lists the steps for adding one.

pub mod activation;
pub mod adam;
pub mod adaptive_avg_pool2d;
pub mod batch_norm2d;
pub mod cat;
pub mod conv2d;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod gather_rows;
pub mod linear;
pub mod matmul;
pub mod pool2d;
pub mod reduce;
pub mod sgd;

/// Which gradients a backward call should compute (burn's "only tracked parents"): anything
/// not asked for is neither computed nor allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GradsWanted {
    /// The gradient of the op's input.
    pub input: bool,
    /// The gradient of its weight.
    pub weight: bool,
    /// The gradient of its bias (ignored when it has none).
    pub bias: bool,
}

impl GradsWanted {
    /// Every gradient.
    pub const ALL: GradsWanted = GradsWanted {
        input: true,
        weight: true,
        bias: true,
    };
}
