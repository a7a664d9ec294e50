//! Building the chosen network and choosing the device it runs on.

use crate::cli::{DeviceKind, ModelKind};
use anyhow::Context;
use conv_kernels::Device;
use nn_layers::Sequential;
use nn_layers::lenet::{self, Variant};
use tensor::SeededRng;

/// Builds the seed or modern LeNet on `device`, initialised from `rng`.
pub fn build_model(
    kind: ModelKind,
    device: &Device,
    rng: &mut SeededRng,
) -> anyhow::Result<Sequential> {
    let variant = match kind {
        ModelKind::Seed => Variant::Seed,
        ModelKind::Modern => Variant::Modern,
    };
    Ok(lenet::build(variant, device, rng)?)
}

/// The model name stored in checkpoints and config files.
pub fn model_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Seed => "seed",
        ModelKind::Modern => "modern",
    }
}

/// Parses a stored model name.
pub fn parse_model_name(name: &str) -> anyhow::Result<ModelKind> {
    match name {
        "seed" => Ok(ModelKind::Seed),
        "modern" => Ok(ModelKind::Modern),
        other => anyhow::bail!("unknown model `{other}` (expected seed or modern)"),
    }
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
