use crate::error::Result;
use crate::init;
use crate::module::{Module, ModuleVisitor};
use crate::summary::{LayerInfo, Window};
use autograd::{Param, Var};
use conv_kernels::{Activation, Conv2dSpec, Device, Pool2dSpec};
use tensor::{SeededRng, Shape};

/// 2-D convolution (`nn.Conv2d`): parameters `weight` `[out, in/groups, kh, kw]` and `bias` `[out]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// The kernel.
    pub weight: Param,
    /// The per-channel bias, if any.
    pub bias: Option<Param>,
    /// Stride, padding, dilation, groups.
    pub spec: Conv2dSpec,
}

impl Conv2d {
    /// A square-kernel convolution with bias and PyTorch's default init (weights and bias
    /// `U(±1/√fan_in)`), e.g. `Conv2d::new(dev, rng, 1, 6, 5, Conv2dSpec::new(1, 2))`.
    pub fn new(
        device: &Device,
        rng: &mut SeededRng,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        spec: Conv2dSpec,
    ) -> Result<Self> {
        Self::with_options(
            device,
            rng,
            in_channels,
            out_channels,
            [kernel; 2],
            spec,
            true,
        )
    }

    /// Any kernel shape, with or without bias, PyTorch's default init.
    pub fn with_options(
        device: &Device,
        rng: &mut SeededRng,
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        spec: Conv2dSpec,
        bias: bool,
    ) -> Result<Self> {
        let groups = spec.groups.max(1);
        if !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
            return Err(crate::error::invalid(
                "Conv2d",
                format!(
                    "channels {in_channels} -> {out_channels} are not divisible by groups {groups}"
                ),
            ));
        }
        let dims = [out_channels, in_channels / groups, kernel[0], kernel[1]];
        let weight = Param::new(device.upload_owned(init::default_weight(&dims, rng)?)?);
        let (fan_in, _) = init::fans(&dims)?;
        let bias = if bias {
            Some(Param::new(device.upload_owned(init::default_bias(
                out_channels,
                fan_in,
                rng,
            )?)?))
        } else {
            None
        };
        Ok(Self { weight, bias, spec })
    }
}

impl Module for Conv2d {
    fn kind(&self) -> &'static str {
        "Conv2d"
    }

    fn forward(&self, x: &Var) -> Result<Var> {
        let tape = x.tape();
        let w = tape.param(&self.weight);
        let b = self.bias.as_ref().map(|b| tape.param(b));
        Ok(x.conv2d(&w, b.as_ref(), &self.spec)?)
    }

    fn forward_activation(&self, x: &Var, act: Activation) -> Option<Result<Var>> {
        let tape = x.tape();
        let w = tape.param(&self.weight);
        let b = self.bias.as_ref().map(|b| tape.param(b));
        Some(
            x.conv2d_activation(&w, b.as_ref(), &self.spec, Some(act))
                .map_err(Into::into),
        )
    }

    fn forward_activation_pool(
        &self,
        x: &Var,
        act: Activation,
        pool: &Pool2dSpec,
    ) -> Option<Result<Var>> {
        let tape = x.tape();
        let w = tape.param(&self.weight);
        let b = self.bias.as_ref().map(|b| tape.param(b));
        Some(
            x.conv2d_activation_pool2d(&w, b.as_ref(), &self.spec, act, pool)
                .map_err(Into::into),
        )
    }

    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.param("weight", &self.weight);
        if let Some(b) = &self.bias {
            v.param("bias", b);
        }
    }

    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for Conv2d {
    fn window(&self) -> Option<Window> {
        let d = self.weight.dims();
        Some(Window {
            kernel: [d[2], d[3]],
            stride: self.spec.stride,
            padding: self.spec.padding,
            dilation: self.spec.dilation,
        })
    }

    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        let g = self
            .spec
            .check(&Shape::new(input)?, &Shape::new(&self.weight.dims())?, None)?;
        Ok(g.output_dims().to_vec())
    }

    fn flops(&self, input: &[usize]) -> Result<u64> {
        let g = self
            .spec
            .check(&Shape::new(input)?, &Shape::new(&self.weight.dims())?, None)?;
        let bias = if self.bias.is_some() {
            g.output_dims().iter().product::<usize>() as u64
        } else {
            0
        };
        Ok(g.forward_flops() + bias)
    }
}
