//! Devices: where tensors live and ops run. Split by concern:
//! - this file: the [`Device`] enum, its [`Backend`] for dispatch, uploads, synchronisation
//!   and counters;
//! - [`selection`]: `auto`/`select`, the one parser of `--device` values and `FOVEA_DEVICE`;
//! - [`tensor`]: [`DeviceTensor`] / [`IndexTensor`] and their storage.
//!
//! Ops are methods on `Device` defined in each op's folder (`ops/<op>/mod.rs`): they validate
//! their inputs through the op's spec, then make one call on [`Device::backend`]. On the GPU
//! nothing crosses back to the host until a tensor is read back. Combining tensors from
//! different devices is a [`KernelError::DeviceMismatch`], never a panic.

pub mod selection;
pub mod tensor;

pub use selection::{DeviceChoice, DeviceKind};
use tensor::first_word;
pub(crate) use tensor::same_shape;
pub use tensor::{DeviceTensor, IndexTensor};

use crate::backend::Backend;
use crate::cpu::CpuBackend;
use crate::error::{KernelError, Result};
use crate::gpu::{CommandStats, GpuContext, KernelTimes, PoolStats, TransferStats};
use crate::host_buffer::HostBuffer;
use crate::reference::Reference;
use ::tensor::Tensor;
use std::sync::Arc;

/// Where tensors live and ops run.
#[derive(Clone)]
pub enum Device {
    /// The naive reference kernels on the host: slow, obviously right; the test oracle.
    Reference,
    /// The fast CPU backend (im2col + GEMM, rayon).
    Cpu(Arc<CpuBackend>),
    /// WGSL compute shaders through wgpu; tensors live in GPU buffers.
    Gpu(Arc<GpuContext>),
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.name())
    }
}

impl Device {
    /// The fast CPU backend with default settings.
    pub fn cpu() -> Device {
        Device::Cpu(Arc::new(CpuBackend::new()))
    }

    /// The process-wide GPU context on the best adapter, software adapters (llvmpipe) included;
    /// [`KernelError::NoAdapter`] with the reason when there is none.
    pub fn gpu() -> Result<Device> {
        Ok(Device::Gpu(GpuContext::shared(true)?))
    }

    /// The kernels of this device: every op dispatches through it.
    pub fn backend(&self) -> &dyn Backend {
        match self {
            Device::Reference => &Reference,
            Device::Cpu(c) => c.as_ref(),
            Device::Gpu(ctx) => ctx,
        }
    }

    /// A human-readable name (e.g. `cpu`, or the GPU adapter's name).
    pub fn name(&self) -> String {
        match self {
            Device::Reference => "reference (naive CPU)".to_string(),
            Device::Cpu(_) => "cpu".to_string(),
            Device::Gpu(ctx) => format!("gpu: {}", ctx.info()),
        }
    }

    /// Whether this is a GPU device.
    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    /// The GPU context, for GPU devices.
    pub fn gpu_context(&self) -> Option<&Arc<GpuContext>> {
        match self {
            Device::Gpu(ctx) => Some(ctx),
            _ => None,
        }
    }

    /// Runs `work` (a training step, an evaluation batch) where this device's ops start
    /// cheapest. On the CPU backend that is a worker of the rayon pool its kernels fork from
    /// (the current pool, or the global one when called from outside every pool): each op's
    /// fork-join then starts on a worker, where called from a plain thread it wakes a worker
    /// and puts the caller to sleep until the op ends, hundreds of times per training step
    /// (resnet-small and seed LeNet steps 2–4 % faster on a 2-core machine). On the other
    /// devices, and inside a pool already, `work` runs here. The results do not change: the
    /// CPU kernels' sums are fixed per shape, whatever thread runs them.
    pub fn run_on_workers<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match self {
            Device::Cpu(_) => rayon::scope(|_| work()),
            _ => work(),
        }
    }

    /// Host↔device transfer counters (all zero on host devices, where nothing is transferred).
    pub fn transfer_stats(&self) -> TransferStats {
        self.gpu_context()
            .map(|c| c.transfer_stats())
            .unwrap_or_default()
    }

    /// Kernel-launch and submission counters (all zero on host devices, which submit nothing).
    pub fn command_stats(&self) -> CommandStats {
        self.gpu_context()
            .map(|c| c.command_stats())
            .unwrap_or_default()
    }

    /// Kernel launches per GPU entry point, sorted by name (empty on host devices).
    pub fn dispatches_by_kernel(&self) -> Vec<(&'static str, u64)> {
        self.gpu_context()
            .map(|c| c.dispatches_by_kernel())
            .unwrap_or_default()
    }

    /// Wall time per GPU entry point so far: empty on host devices and on a GPU that does not
    /// profile (`FOVEA_GPU_PROFILE=1`, [`crate::GpuOptions::profile`]). Two snapshots give
    /// where the steps between them spent their time ([`KernelTimes::per_step_since`]).
    pub fn kernel_times(&self) -> KernelTimes {
        KernelTimes {
            times: self
                .gpu_context()
                .map(|c| c.kernel_times())
                .unwrap_or_default(),
        }
    }

    /// GPU buffer-pool counters (`None` on host devices).
    pub fn pool_stats(&self) -> Option<PoolStats> {
        self.gpu_context().map(|c| c.pool_stats())
    }

    /// Waits until every op issued so far has finished (a no-op on host devices).
    pub fn synchronize(&self) -> Result<()> {
        match self {
            Device::Gpu(ctx) => ctx.synchronize(),
            _ => Ok(()),
        }
    }

    /// Copies a host tensor onto the device.
    pub fn upload(&self, t: &Tensor) -> Result<DeviceTensor> {
        match self {
            Device::Gpu(ctx) => {
                let buf = ctx.upload("upload", bytemuck::cast_slice(t.data()), t.numel())?;
                Ok(DeviceTensor::from_gpu(ctx, t.shape().clone(), buf))
            }
            _ => {
                let mut data = HostBuffer::scratch(t.numel());
                data.copy_from_slice(t.data());
                Ok(DeviceTensor::from_host(t.shape().clone(), data))
            }
        }
    }

    /// Moves a host tensor onto the device (no copy on host devices).
    pub fn upload_owned(&self, t: Tensor) -> Result<DeviceTensor> {
        if self.is_gpu() {
            return self.upload(&t);
        }
        let shape = t.shape().clone();
        Ok(DeviceTensor::from_host(shape, t.into_vec()))
    }

    /// Copies labels (or any u32 indices) onto the device.
    pub fn upload_indices(&self, values: &[u32]) -> Result<IndexTensor> {
        match self {
            Device::Gpu(ctx) => {
                let bytes = bytemuck::cast_slice(values);
                let buf = ctx.upload("upload_indices", bytes, values.len())?;
                let max = values.iter().copied().max();
                Ok(IndexTensor::from_gpu(ctx, values.len(), max, buf))
            }
            _ => Ok(IndexTensor::from_host(values.to_vec())),
        }
    }

    /// Copies a tensor of this device back to the host ([`DeviceTensor::to_host`] with the
    /// check that `t` lives here: a tensor of another device is a
    /// [`KernelError::DeviceMismatch`]).
    pub fn to_host(&self, t: &DeviceTensor) -> Result<Tensor> {
        self.expect_here("to_host", t)?;
        t.to_host()
    }

    /// Reads back a one-element tensor of this device ([`DeviceTensor::read_scalar`] with the
    /// same check as [`Device::to_host`]).
    pub fn read_scalar(&self, t: &DeviceTensor) -> Result<f32> {
        self.expect_here("read_scalar", t)?;
        t.read_scalar()
    }

    /// Reads back several one-element tensors in one round trip (on the GPU, one submission
    /// and one wait): a training step's loss and correct count together.
    pub fn read_scalars(&self, tensors: &[&DeviceTensor]) -> Result<Vec<f32>> {
        for t in tensors {
            self.expect_here("read_scalars", t)?;
            t.expect_scalar()?;
        }
        match self {
            Device::Gpu(ctx) => {
                let buffers = tensors
                    .iter()
                    .map(|t| t.gpu(ctx, "read_scalars"))
                    .collect::<Result<Vec<_>>>()?;
                ctx.read_many(&buffers)?
                    .iter()
                    .map(|bytes| first_word(ctx, bytes))
                    .collect()
            }
            _ => tensors.iter().map(|t| t.read_scalar()).collect(),
        }
    }

    fn expect_here(&self, op: &'static str, t: &DeviceTensor) -> Result<()> {
        if t.is_on(self) {
            return Ok(());
        }
        Err(KernelError::DeviceMismatch {
            op,
            left: self.name(),
            right: t.location(),
        })
    }

    /// Copies indices back to the host (the same as [`IndexTensor::to_host`]).
    pub fn indices_to_host(&self, t: &IndexTensor) -> Result<Vec<u32>> {
        t.to_host()
    }

    /// Checks that `other` is this same device (host devices are one memory), else a
    /// [`KernelError::DeviceMismatch`] naming `op`.
    pub fn check_same(&self, op: &'static str, other: &Device) -> Result<()> {
        let same = match (self, other) {
            (Device::Gpu(a), Device::Gpu(b)) => a.id() == b.id(),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        };
        if !same {
            return Err(KernelError::DeviceMismatch {
                op,
                left: self.name(),
                right: other.name(),
            });
        }
        Ok(())
    }
}
