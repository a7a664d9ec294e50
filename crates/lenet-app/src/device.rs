//! Choosing the device a command computes on (`--device`).

use anyhow::Context;
use clap::ValueEnum;
use conv_kernels::Device;

/// Where to compute: the value of `--device`. Not part of a run's config: a run may be resumed
/// on another device.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// A hardware GPU when one answers, else the fast CPU backend.
    Auto,
    /// The fast CPU backend.
    Cpu,
    /// Any GPU adapter, software ones (llvmpipe) included.
    Gpu,
}

/// Opens the requested device; returns it with a one-line reason for the choice.
pub fn choose_device(kind: DeviceKind) -> anyhow::Result<(Device, String)> {
    match kind {
        DeviceKind::Cpu => Ok((Device::cpu(), "the CPU backend was asked for".into())),
        DeviceKind::Gpu => {
            let dev = Device::gpu().context("--device gpu was asked for")?;
            Ok((dev, "a GPU was asked for".into()))
        }
        DeviceKind::Auto => {
            let choice = Device::auto();
            Ok((choice.device, choice.reason))
        }
    }
}
