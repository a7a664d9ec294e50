//! Launches that update several tensors at once (the optimizers' `*_multi` entries): slot `k`
//! of a shader binds tensor `k`'s buffers from binding `1 + k * stride` and covers the flat
//! indices `end(k-1)..end(k)`.

use super::pool::GpuBuffer;
use super::w;

/// What one multi-tensor launch over `N` slots binds and covers.
pub(crate) struct GroupLaunch<'a, const N: usize> {
    /// Storage buffers by binding number.
    pub(crate) bindings: Vec<(u32, &'a GpuBuffer)>,
    /// Where each slot's index range ends (the shader's `end0u`, `end1u`, …).
    pub(crate) ends: [u32; N],
    /// Units of all tensors: the launch's invocations.
    pub(crate) total: usize,
}

/// The launch over `tensors` (at most `N`, the shader's slots, each its buffers in binding
/// order, the first of them sized as the tensor), its ranges counted in units of `unit`
/// elements (1, or 4 for kernels reading vec4s: each tensor's count rounded up). Slots past the
/// last repeat the first tensor's buffers with empty ranges. `None` when `tensors` is empty.
pub(crate) fn group_bindings<'a, const N: usize>(
    tensors: &[Vec<&'a GpuBuffer>],
    stride: u32,
    unit: usize,
) -> Option<GroupLaunch<'a, N>> {
    let first = tensors.first()?;
    let mut ends = [0u32; N];
    let mut end = 0usize;
    let mut bindings = Vec::with_capacity(N * first.len());
    for (k, slot) in ends.iter_mut().enumerate() {
        let buffers = tensors.get(k).unwrap_or(first);
        if k < tensors.len() {
            end += buffers.first().map_or(0, |b| b.len.div_ceil(unit));
        }
        *slot = w(end);
        let base = 1 + stride * k as u32;
        bindings.extend((base..).zip(buffers.iter().copied()));
    }
    Some(GroupLaunch {
        bindings,
        ends,
        total: end,
    })
}
