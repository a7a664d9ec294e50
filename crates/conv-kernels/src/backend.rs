//! The one backend abstraction: [`Backend`] is every op's kernel trait at once, implemented by
//! the [`crate::reference::Reference`] oracle, the fast [`crate::cpu::CpuBackend`] and the
//! wgpu [`crate::GpuContext`]. [`crate::Device`] dispatches each op with one call on
//! `self.backend()`.
//!
//! Each op folder (`ops/<op>/`) defines its kernel trait (`Conv2dKernels`, ...) over device
//! tensors and geometries already checked by its spec. Host backends implement a slice-level
//! trait per op (`Conv2dHostKernels`, ...) and get the tensor-level one from a blanket impl in
//! the op's folder; the GPU implements the tensor-level trait directly. Registering an op is
//! one line in the list below.

use crate::ops;

macro_rules! backend_of {
    ($($kernels:path),+ $(,)?) => {
        /// Everything a device can run: the union of every op's kernel trait.
        pub trait Backend: Send + Sync $(+ $kernels)+ {}
        impl<B: Send + Sync $(+ $kernels)+> Backend for B {}
    };
}

backend_of!(
    ops::conv2d::Conv2dKernels,
    ops::pool2d::Pool2dKernels,
    ops::matmul::MatmulKernels,
    ops::activation::ActivationKernels,
    ops::cross_entropy::CrossEntropyKernels,
    ops::sgd::SgdKernels,
    ops::adam::AdamKernels,
    ops::elementwise::ElementwiseKernels,
    ops::reduce::ReduceKernels,
    ops::adaptive_avg_pool2d::AdaptiveAvgPool2dKernels,
    ops::batch_norm2d::BatchNorm2dKernels,
    ops::cat::CatKernels,
    ops::gather_rows::GatherRowsKernels,
    ops::dropout::DropoutKernels,
);
