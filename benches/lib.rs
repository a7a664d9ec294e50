//! Criterion benchmarks for Fovea's kernels and training steps.
//!
//! The benchmarks live in `benches/` of this package; run them with `cargo bench -p fovea-benches`.
