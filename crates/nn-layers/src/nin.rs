//! `nin_small`: d2l's Network in Network for 1×28×28 inputs (`../shared/golden-cnn/models.py`):
//! three [`nin_block`]s (a conv and two 1×1 convs mixing channels), max pooling between them,
//! dropout, and global average pooling over 10 channels instead of fully connected layers.
//!
//! Children: `0` nin_block(1, 32, 5, 1, 2), `1` MaxPool2d(3, 2), `2` nin_block(32, 64, 3, 1, 1),
//! `3` MaxPool2d(3, 2), `4` Dropout, `5` nin_block(64, 10, 3, 1, 1), `6` AdaptiveAvgPool2d(1, 1),
//! `7` Flatten; 28 → 13 → 6 → 1, 35,750 parameters.

use crate::error::Result;
use crate::layers::{AdaptiveAvgPool2d, Dropout, Flatten, MaxPool2d, Sequential, nin_block};
use conv_kernels::Device;
use tensor::SeededRng;

/// Parameters of [`nin_small`].
pub const NUM_PARAMETERS: usize = 35_750;

/// NiN with dropout probability `dropout` (d2l: 0.5), PyTorch's default initialisation; the
/// dropout mask generator is seeded from `rng`.
pub fn nin_small(device: &Device, rng: &mut SeededRng, dropout: f32) -> Result<Sequential> {
    let b1 = nin_block(device, rng, 1, 32, 5, 1, 2)?;
    let b2 = nin_block(device, rng, 32, 64, 3, 1, 1)?;
    let b3 = nin_block(device, rng, 64, 10, 3, 1, 1)?;
    Ok(Sequential::new()
        .with(b1)
        .with(MaxPool2d::new(3, 2, 0))
        .with(b2)
        .with(MaxPool2d::new(3, 2, 0))
        .with(Dropout::new(dropout, rng.next_u64())?)
        .with(b3)
        .with(AdaptiveAvgPool2d::global())
        .with(Flatten))
}
