//! The wgpu backend's shared machinery: the [`GpuContext`] (adapter, device, queue), the
//! pipeline cache with specialisation constants, the buffer pool and the recorder that batches
//! dispatches. The op kernels live in each op's folder (`ops/<op>/gpu.rs`, with the shader
//! `shaders/<op>.wgsl` loaded through `include_str!`) as implementations of the op's kernel
//! trait for `Arc<GpuContext>`.
//!
//! Tensors stay in pooled GPU buffers between ops; dispatches are recorded into one pending
//! compute pass and submitted only when something is read back (or after many dispatches).
//! Kernels never use float atomics, so results are deterministic on a given adapter.
//!
//! Two kernel families for matmul and conv2d, chosen once per context ([`GpuKernels`]):
//! - flat (software adapters such as llvmpipe, and on request): no workgroup memory and no
//!   barriers (barriers are coroutines on llvmpipe), register blocking instead: conv2d is a
//!   direct "implicit GEMM" that keeps a channels × positions block per invocation and reuses
//!   each loaded input row segment for every kernel column; matmul keeps an 8 × 8 block.
//! - tiled (hardware GPUs): classic workgroup-memory GEMM, a 64 × 64 output tile per
//!   256-invocation workgroup (4 × 4 per invocation) over K-tiles of 16; conv2d forward and both
//!   gradients are implicit GEMMs whose tile loaders do the im2col indexing.

pub(crate) mod context;
pub(crate) mod kernel_profile;
pub(crate) mod multi_tensor;
pub(crate) mod pipeline;
pub(crate) mod pool;
pub(crate) mod shader_source;
pub(crate) mod texture_operands;

pub use context::{CommandStats, GpuContext, GpuInfo, GpuKernels, GpuOptions, TransferStats};
pub use kernel_profile::{KernelTimes, StepKernelTimes};
pub use pool::PoolStats;
pub use texture_operands::GpuOperands;

/// A pipeline specialisation: named `u32` constants, prepended to the shader as WGSL `const`
/// declarations and usable as `//#unroll` counts.
pub(crate) type Consts = Vec<(&'static str, usize)>;

/// Builds a specialisation from name/value pairs.
pub(crate) fn consts(pairs: &[(&'static str, usize)]) -> Consts {
    pairs.to_vec()
}

/// The constants of a flat kernel that shares `loads` loads across subgroups of `lanes`
/// (`None`: each invocation makes them all): `SGW` (the lanes, or 0), `SGR` (loads per lane),
/// `SGON` and `SGOFF` (the 0/1 unroll flags of the two ways, exactly one of them 1).
pub(crate) fn subgroup_consts(lanes: Option<usize>, loads: usize) -> [(&'static str, usize); 4] {
    let lanes = lanes.unwrap_or(0);
    [
        ("SGW", lanes),
        ("SGR", if lanes > 0 { loads.div_ceil(lanes) } else { 0 }),
        ("SGON", usize::from(lanes > 0)),
        ("SGOFF", usize::from(lanes == 0)),
    ]
}

/// Tiled kernels: rows of the output tile per workgroup.
pub(crate) const BM: usize = 64;
/// Tiled kernels: columns of the output tile per workgroup.
pub(crate) const BN: usize = 64;
/// Tiled kernels: depth of one K-tile.
pub(crate) const BK: usize = 16;
/// Tiled kernels: invocations per workgroup (16 × 16, each owning a (BM/16) × (BN/16) block).
pub(crate) const WG: usize = 256;

/// The tile constants shared by `matmul_tiled.wgsl` and `conv2d_tiled.wgsl`.
pub(crate) fn tile_consts() -> Consts {
    consts(&[
        ("BM", BM),
        ("BN", BN),
        ("BK", BK),
        ("TM", BM / 16),
        ("TN", BN / 16),
        ("LA", BM * BK / WG),
        ("LB", BK * BN / WG),
    ])
}

/// `usize` → shader word; every size is below the binding limit, so it fits.
pub(crate) fn w(v: usize) -> u32 {
    v as u32
}
