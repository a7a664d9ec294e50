use crate::error::Result;
use crate::layers::{BatchNorm2d, Conv2d};
use crate::module::{Module, ModuleVisitor};
use crate::summary::LayerInfo;
use autograd::Var;
use conv_kernels::{Activation, Conv2dSpec, Device};
use tensor::SeededRng;

/// d2l's residual block (ResNet): `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, both
/// convs 3×3 with bias (PyTorch's default, as in d2l), the shortcut the identity or, when the
/// shape changes, a 1×1 conv `conv3` with the block's stride. Children are named as d2l's
/// `Residual` (`conv1`, `conv2`, `conv3`, `bn1`, `bn2`), so `state_dict` names match PyTorch's.
pub struct Residual {
    /// First 3×3 conv (carries the block's stride).
    pub conv1: Conv2d,
    /// Second 3×3 conv.
    pub conv2: Conv2d,
    /// The 1×1 shortcut conv, when the block changes shape.
    pub conv3: Option<Conv2d>,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm2d,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm2d,
}

impl Residual {
    /// `Residual(input_channels, num_channels, use_1x1conv, strides)` with PyTorch's default
    /// initialisation.
    pub fn new(
        device: &Device,
        rng: &mut SeededRng,
        input_channels: usize,
        num_channels: usize,
        use_1x1conv: bool,
        stride: usize,
    ) -> Result<Self> {
        let conv3x3 = |rng: &mut SeededRng, cin, s| {
            Conv2d::new(device, rng, cin, num_channels, 3, Conv2dSpec::new(s, 1))
        };
        let conv1 = conv3x3(rng, input_channels, stride)?;
        let conv2 = conv3x3(rng, num_channels, 1)?;
        let conv3 = use_1x1conv
            .then(|| {
                let spec = Conv2dSpec::new(stride, 0);
                Conv2d::new(device, rng, input_channels, num_channels, 1, spec)
            })
            .transpose()?;
        Ok(Self {
            conv1,
            conv2,
            conv3,
            bn1: BatchNorm2d::new(device, num_channels)?,
            bn2: BatchNorm2d::new(device, num_channels)?,
        })
    }
}

impl Module for Residual {
    fn kind(&self) -> &'static str {
        "Residual"
    }

    fn forward(&self, x: &Var) -> Result<Var> {
        let y = self
            .bn1
            .forward_with(&self.conv1.forward(x)?, Some(Activation::Relu))?;
        let shortcut = match &self.conv3 {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        // `relu(bn2(conv2(y)) + shortcut)`, the sum and the ReLU fused into bn2's output.
        self.bn2
            .forward_residual(&self.conv2.forward(&y)?, &shortcut, Some(Activation::Relu))
    }

    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.child("conv1", &self.conv1);
        v.child("conv2", &self.conv2);
        if let Some(c) = &self.conv3 {
            v.child("conv3", c);
        }
        v.child("bn1", &self.bn1);
        v.child("bn2", &self.bn2);
    }

    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for Residual {
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        let y = self.conv1.output_dims(input)?;
        self.conv2.output_dims(&y)
    }

    fn flops(&self, input: &[usize]) -> Result<u64> {
        let y = self.conv1.output_dims(input)?;
        let mut f = self.conv1.flops(input)? + self.conv2.flops(&y)?;
        f += self.bn1.flops(&y)? + self.bn2.flops(&y)?;
        if let Some(c) = &self.conv3 {
            f += c.flops(input)?;
        }
        // The addition and two ReLUs.
        Ok(f + 3 * y.iter().product::<usize>() as u64)
    }
}
