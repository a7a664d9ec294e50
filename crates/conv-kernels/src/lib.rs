//! The compute layer of Fovea: every op described once as a spec, then implemented by a naive
//! reference (the oracle), a fast CPU backend and a wgpu backend behind one [`Backend`] trait.
//!
//! Layout: `ops/<op>/` holds everything that names an op (spec, result structs, the `Device`
//! method, the kernel trait and its reference, CPU and GPU implementations); `cpu/` and `gpu/`
//! hold shared machinery only; `device/` holds devices, selection and tensors.
//!
//! ```
//! use conv_kernels::{Conv2dSpec, Device};
//! use tensor::{SeededRng, Tensor};
//!
//! let dev = Device::cpu();
//! let mut rng = SeededRng::new(0);
//! let x = dev.upload(&Tensor::randn(&[2, 1, 28, 28], &mut rng)?)?;
//! let w = dev.upload(&Tensor::randn(&[6, 1, 5, 5], &mut rng)?)?;
//! let y = dev.conv2d(&x, &w, None, &Conv2dSpec::new(1, 2))?;
//! assert_eq!(y.dims(), &[2, 6, 28, 28]);
//! assert_eq!(y.to_host()?.dims(), &[2, 6, 28, 28]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
#[macro_use]
pub mod cpu;
mod device;
mod error;
pub mod gpu;
mod host_buffer;
mod named_choice;
pub mod ops;
pub mod reference;
mod window;

pub use backend::Backend;
pub use device::{Device, DeviceChoice, DeviceKind, DeviceTensor, IndexTensor};
pub use error::{KernelError, Result};
pub use gpu::{
    CommandStats, GpuContext, GpuInfo, GpuKernels, GpuOperands, GpuOptions, KernelTimes, PoolStats,
    StepKernelTimes, TransferStats,
};
pub use ops::GradsWanted;
pub use ops::activation::{Activation, ActivationHostKernels, ActivationKernels};
pub use ops::adam::{AdamConfig, AdamHostKernels, AdamKernels, AdamTensors};
pub use ops::adaptive_avg_pool2d::{
    AdaptiveAvgPool2dGeometry, AdaptiveAvgPool2dHostKernels, AdaptiveAvgPool2dKernels,
    AdaptiveAvgPool2dSpec,
};
pub use ops::batch_norm2d::{
    BatchNorm2dGeometry, BatchNorm2dHostKernels, BatchNorm2dKernels, BatchNorm2dSpec,
    BatchNormGrads, BatchNormOutput, BatchNormSaved, ReluGate,
};
pub use ops::cat::{CatGeometry, CatHostKernels, CatKernels, CatSpec};
pub use ops::conv2d::{Conv2dGeometry, Conv2dGrads, Conv2dHostKernels, Conv2dKernels, Conv2dSpec};
pub use ops::cross_entropy::{
    CrossEntropyGeometry, CrossEntropyHostKernels, CrossEntropyKernels, CrossEntropyOutput,
    CrossEntropyStats,
};
pub use ops::dropout::{DropoutHostKernels, DropoutKernels, DropoutSpec};
pub use ops::elementwise::{ElementwiseHostKernels, ElementwiseKernels};
pub use ops::gather_rows::{
    ByteRows, GatherGeometry, GatherRowsHostKernels, GatherRowsKernels, pack_bytes,
};
pub use ops::linear::LinearGrads;
pub use ops::matmul::{
    MatmulGeometry, MatmulHostKernels, MatmulKernels, MatmulOperands, MatmulSpec,
};
pub use ops::pool2d::{
    Pool2dGeometry, Pool2dHostKernels, Pool2dKernels, Pool2dSpec, PoolKind, PoolOutput,
};
pub use ops::reduce::{ReduceHostKernels, ReduceKernels};
pub use ops::sgd::{SgdConfig, SgdHostKernels, SgdKernels, SgdTensors};
