//! The fast CPU backend's shared machinery: GEMM (delegated to the `gemm` crate), scratch
//! buffers, SIMD dispatch, in-order reductions and short-run copies. The op kernels themselves live in each op's
//! folder (`ops/<op>/cpu.rs`) as implementations of the op's host-kernel trait for
//! [`CpuBackend`].
//!
//! Results are deterministic for a given thread count: no reduction is racy (partial sums are
//! taken per fixed chunk and added in order).

#[macro_use]
pub(crate) mod simd_dispatch;

pub(crate) mod f32x16;
pub(crate) mod gemm;
pub(crate) mod reduce;
pub(crate) mod scratch;
pub(crate) mod short_runs;

use scratch::ScratchPool;

/// Elements per rayon task for element-wise work.
pub(crate) const ELEMENTWISE_CHUNK: usize = 1 << 15;

/// The fast CPU backend (runs on rayon's global thread pool).
#[derive(Debug, Default)]
pub struct CpuBackend {
    scratch: ScratchPool,
}

impl CpuBackend {
    /// A backend using rayon's global thread pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// The scratch buffers the kernels borrow from.
    pub(crate) fn scratch(&self) -> &ScratchPool {
        &self.scratch
    }
}
