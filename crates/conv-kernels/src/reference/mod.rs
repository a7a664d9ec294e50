//! The naive reference backend: straight loops written to be obviously right.
//!
//! It is the oracle every other backend is tested against, so it favours clarity over speed:
//! one output element at a time, sums in f64 where order could matter. The kernels live in each
//! op's folder (`ops/<op>/reference.rs`); this module holds the backend type and the window
//! arithmetic they share.

/// The naive reference kernels (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reference;

/// Input coordinate touched by output position `o` and kernel tap `k` on one axis, if inside.
pub(crate) fn input_coord(
    o: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    size: usize,
) -> Option<usize> {
    (o * stride + k * dil)
        .checked_sub(pad)
        .filter(|&i| i < size)
}
