use crate::error::Result;
use crate::layers::{Conv2d, ReLU, Sequential};
use conv_kernels::{Conv2dSpec, Device};
use tensor::SeededRng;

/// d2l's `nin_block`: a `kernel_size` conv followed by two 1×1 convs mixing channels, each
/// followed by ReLU (children `0` to `5`, as `nn.Sequential` names them), with PyTorch's
/// default initialisation.
pub fn nin_block(
    device: &Device,
    rng: &mut SeededRng,
    in_channels: usize,
    out_channels: usize,
    kernel_size: usize,
    stride: usize,
    padding: usize,
) -> Result<Sequential> {
    let spec = Conv2dSpec::new(stride, padding);
    let one = Conv2dSpec::new(1, 0);
    Ok(Sequential::new()
        .with(Conv2d::new(
            device,
            rng,
            in_channels,
            out_channels,
            kernel_size,
            spec,
        )?)
        .with(ReLU)
        .with(Conv2d::new(
            device,
            rng,
            out_channels,
            out_channels,
            1,
            one,
        )?)
        .with(ReLU)
        .with(Conv2d::new(
            device,
            rng,
            out_channels,
            out_channels,
            1,
            one,
        )?)
        .with(ReLU))
}
