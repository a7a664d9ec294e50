//! `resnet_small`: a ResNet for 1×28×28 inputs built from d2l's [`Residual`] block
//! (`../shared/golden-cnn/models.py`): a stem, three stages of two blocks (16, 32, 64 channels;
//! 28 → 14 → 7), global average pooling and one linear layer.
//!
//! Children: `0` Sequential(Conv2d(1, 16, 3, pad 1), BatchNorm2d(16), ReLU), `1`–`3` the stages
//! (`1.0.conv1.weight`, `2.0.conv3.weight`, `3.1.bn2.running_mean`, ...), `4`
//! AdaptiveAvgPool2d(1, 1), `5` Flatten, `6` Linear(64, 10); 175,338 parameters.

use crate::error::Result;
use crate::layers::{
    AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Residual, Sequential,
};
use conv_kernels::{Conv2dSpec, Device};
use tensor::SeededRng;

/// Parameters of [`resnet_small`].
pub const NUM_PARAMETERS: usize = 175_338;

/// A stage of two residual blocks; the first changes the width (and halves the size when
/// `stride` is 2) through a 1×1 shortcut conv when `downsample`.
fn stage(
    device: &Device,
    rng: &mut SeededRng,
    cin: usize,
    cout: usize,
    downsample: bool,
) -> Result<Sequential> {
    let stride = if downsample { 2 } else { 1 };
    Ok(Sequential::new()
        .with(Residual::new(device, rng, cin, cout, downsample, stride)?)
        .with(Residual::new(device, rng, cout, cout, false, 1)?))
}

/// The model with PyTorch's default initialisation.
pub fn resnet_small(device: &Device, rng: &mut SeededRng) -> Result<Sequential> {
    let stem = Sequential::new()
        .with(Conv2d::new(device, rng, 1, 16, 3, Conv2dSpec::new(1, 1))?)
        .with(BatchNorm2d::new(device, 16)?)
        .with(ReLU);
    Ok(Sequential::new()
        .with(stem)
        .with(stage(device, rng, 16, 16, false)?)
        .with(stage(device, rng, 16, 32, true)?)
        .with(stage(device, rng, 32, 64, true)?)
        .with(AdaptiveAvgPool2d::global())
        .with(Flatten)
        .with(Linear::new(device, rng, 64, 10)?))
}
