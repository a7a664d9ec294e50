//! LeNet-5 as in d2l.ai ("seed") and its modern variant (ReLU and max pooling).
//!
//! Children, as d2l's `nn.Sequential`: `0` Reshape(-1, 1, 28, 28), `1` Conv2d(1, 6, 5, pad 2),
//! `2` activation, `3` pool(2, 2), `4` Conv2d(6, 16, 5), `5` activation, `6` pool(2, 2),
//! `7` Flatten, `8` Linear(400, 120), `9` activation, `10` Linear(120, 84), `11` activation,
//! `12` Linear(84, 10). Parameter names: `1.weight 1.bias 4.weight 4.bias 8.weight 8.bias
//! 10.weight 10.bias 12.weight 12.bias`.

use crate::error::{Result, invalid};
use crate::init;
use crate::layers::{
    AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Reshape, Sequential, Sigmoid,
};
use conv_kernels::{Conv2dSpec, Device};
use std::str::FromStr;
use tensor::SeededRng;

/// The parameter names of both variants, in model order.
pub const PARAM_NAMES: [&str; 10] = [
    "1.weight",
    "1.bias",
    "4.weight",
    "4.bias",
    "8.weight",
    "8.bias",
    "10.weight",
    "10.bias",
    "12.weight",
    "12.bias",
];

/// Which LeNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// d2l's original: Sigmoid and average pooling.
    Seed,
    /// ReLU and max pooling, same sizes.
    Modern,
}

impl FromStr for Variant {
    type Err = crate::error::NnError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "seed" => Ok(Variant::Seed),
            "modern" => Ok(Variant::Modern),
            other => Err(invalid(
                "lenet",
                format!("unknown model `{other}` (expected `seed` or `modern`)"),
            )),
        }
    }
}

/// Builds `variant` on `device`: layers with PyTorch's default init, then Xavier-uniform on every
/// Conv2d and Linear weight (d2l's `init_cnn`); biases keep the default `U(±1/√fan_in)`.
pub fn build(variant: Variant, device: &Device, rng: &mut SeededRng) -> Result<Sequential> {
    let c1 = Conv2d::new(device, rng, 1, 6, 5, Conv2dSpec::new(1, 2))?;
    let c2 = Conv2d::new(device, rng, 6, 16, 5, Conv2dSpec::default())?;
    let f1 = Linear::new(device, rng, 400, 120)?;
    let f2 = Linear::new(device, rng, 120, 84)?;
    let f3 = Linear::new(device, rng, 84, 10)?;
    for w in [&c1.weight, &c2.weight, &f1.weight, &f2.weight, &f3.weight] {
        let init = match variant {
            Variant::Seed => init::xavier_uniform(&w.dims(), 1.0, rng)?,
            // He initialisation suits ReLU: it keeps activations' variance through the layers.
            Variant::Modern => init::kaiming_uniform(&w.dims(), 0.0, rng)?,
        };
        w.set(device.upload_owned(init)?)?;
    }
    let net = Sequential::new().with(Reshape::new(&[-1, 1, 28, 28]));
    Ok(match variant {
        Variant::Seed => net
            .with(c1)
            .with(Sigmoid)
            .with(AvgPool2d::new(2, 2, 0))
            .with(c2)
            .with(Sigmoid)
            .with(AvgPool2d::new(2, 2, 0))
            .with(Flatten)
            .with(f1)
            .with(Sigmoid)
            .with(f2)
            .with(Sigmoid)
            .with(f3),
        Variant::Modern => net
            .with(c1)
            .with(ReLU)
            .with(MaxPool2d::new(2, 2, 0))
            .with(c2)
            .with(ReLU)
            .with(MaxPool2d::new(2, 2, 0))
            .with(Flatten)
            .with(f1)
            .with(ReLU)
            .with(f2)
            .with(ReLU)
            .with(f3),
    })
}

/// d2l's LeNet exactly: Sigmoid and average pooling.
pub fn seed(device: &Device, rng: &mut SeededRng) -> Result<Sequential> {
    build(Variant::Seed, device, rng)
}

/// The modern variant: ReLU and max pooling, same sizes and names.
pub fn modern(device: &Device, rng: &mut SeededRng) -> Result<Sequential> {
    build(Variant::Modern, device, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::Module;

    #[test]
    fn names_shapes_and_summary_match_d2l() {
        let dev = Device::Reference;
        let net = seed(&dev, &mut SeededRng::new(0)).unwrap();
        let names: Vec<_> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, PARAM_NAMES);
        assert_eq!(net.num_parameters(), 61_706);
        let rows = net.layer_summaries(&dev, &[1, 1, 28, 28]).unwrap();
        let shapes: Vec<_> = rows.iter().map(|r| r.output_dims.clone()).collect();
        assert_eq!(
            shapes,
            vec![
                vec![1, 1, 28, 28],
                vec![1, 6, 28, 28],
                vec![1, 6, 28, 28],
                vec![1, 6, 14, 14],
                vec![1, 16, 10, 10],
                vec![1, 16, 10, 10],
                vec![1, 16, 5, 5],
                vec![1, 400],
                vec![1, 120],
                vec![1, 120],
                vec![1, 84],
                vec![1, 84],
                vec![1, 10],
            ]
        );
        let kinds: Vec<_> = rows.iter().map(|r| r.kind).collect();
        assert_eq!(kinds[..4], ["Reshape", "Conv2d", "Sigmoid", "AvgPool2d"]);
        // conv1: 2·6·28·28·25 MACs + 6·28·28 bias adds.
        assert_eq!(rows[1].flops, Some(2 * 6 * 784 * 25 + 6 * 784));
        assert_eq!(rows[1].params, 156);
        let modern = modern(&dev, &mut SeededRng::new(0)).unwrap();
        let kinds: Vec<_> = modern.children().iter().map(|c| c.kind()).collect();
        assert_eq!(kinds[2..4], ["ReLU", "MaxPool2d"]);
        assert!("vintage".parse::<Variant>().is_err());
    }
}
