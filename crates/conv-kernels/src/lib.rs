//! The compute layer of Fovea: every op described once as a spec, then implemented by a naive
//! reference (the oracle), a fast CPU backend and a wgpu backend.
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
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cpu;
mod device;
mod error;
pub mod gpu;
pub mod host;
mod host_buffer;
pub mod reference;
pub mod spec;
#[cfg(feature = "testing")]
pub mod testing;

pub use device::{
    Conv2dGrads, CrossEntropyOutput, Device, DeviceChoice, DeviceTensor, IndexTensor, LinearGrads,
    PoolOutput,
};
pub use error::{KernelError, Result};
pub use gpu::{GpuContext, GpuInfo, GpuOptions, PoolStats, TransferStats};
pub use spec::{
    Activation, AdamConfig, Conv2dGeometry, Conv2dSpec, CrossEntropyGeometry, MatmulGeometry,
    MatmulSpec, Pool2dGeometry, Pool2dSpec, PoolKind, SgdConfig,
};
