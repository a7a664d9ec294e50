//! The compute layer of Fovea: every op described once as a spec, then implemented by a naive
//! reference (the oracle), a fast CPU backend and a wgpu backend.
