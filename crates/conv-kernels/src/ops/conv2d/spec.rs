//! Conv2d settings, validation and the resolved geometry every backend receives.

use crate::error::{Result, shape_err, spec_err};
use crate::window::{expect_rank, out_size};
use tensor::Shape;

/// 2-D convolution settings (PyTorch `nn.Conv2d` semantics), each pair as `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    /// Step between output positions.
    pub stride: [usize; 2],
    /// Zeros added on each side.
    pub padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
    /// Channel groups; input and output channels must both divide by it.
    pub groups: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Every size a conv2d kernel needs, resolved from checked input shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// The settings.
    pub spec: Conv2dSpec,
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Conv2dGeometry {
    /// Input channels per group.
    pub fn c_in_per_group(&self) -> usize {
        self.c_in / self.spec.groups
    }
    /// Output channels per group.
    pub fn c_out_per_group(&self) -> usize {
        self.c_out / self.spec.groups
    }
    /// Shape of the input `[n, c_in, h, w]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.n, self.c_in, self.h, self.w]
    }
    /// Shape of the weight `[c_out, c_in / groups, kh, kw]`.
    pub fn weight_dims(&self) -> [usize; 4] {
        [self.c_out, self.c_in_per_group(), self.kh, self.kw]
    }
    /// Shape of the output `[n, c_out, oh, ow]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.n, self.c_out, self.oh, self.ow]
    }
    /// Multiply-adds of the forward pass, times two (FLOPs).
    pub fn forward_flops(&self) -> u64 {
        2 * (self.n * self.c_out * self.oh * self.ow * self.c_in_per_group() * self.kh * self.kw)
            as u64
    }
}

impl Conv2dSpec {
    /// Settings with the same stride and padding on both axes, no dilation, one group.
    pub fn new(stride: usize, padding: usize) -> Self {
        Self {
            stride: [stride; 2],
            padding: [padding; 2],
            ..Self::default()
        }
    }

    /// Output height and width for an input of `[h, w]` and a kernel of `[kh, kw]`:
    /// `(in + 2p − d(k−1) − 1) / s + 1` per axis.
    pub fn out_hw(&self, input: [usize; 2], kernel: [usize; 2]) -> Result<[usize; 2]> {
        self.check_settings()?;
        if kernel.contains(&0) {
            return Err(spec_err("conv2d", "kernel size must be positive"));
        }
        let oh = out_size(
            "conv2d",
            "height",
            input[0],
            kernel[0],
            self.stride[0],
            self.padding[0],
            self.dilation[0],
        )?;
        let ow = out_size(
            "conv2d",
            "width",
            input[1],
            kernel[1],
            self.stride[1],
            self.padding[1],
            self.dilation[1],
        )?;
        Ok([oh, ow])
    }

    fn check_settings(&self) -> Result<()> {
        if self.stride.contains(&0) {
            return Err(spec_err("conv2d", "stride must be positive"));
        }
        if self.dilation.contains(&0) {
            return Err(spec_err("conv2d", "dilation must be positive"));
        }
        if self.groups == 0 {
            return Err(spec_err("conv2d", "groups must be positive"));
        }
        Ok(())
    }

    /// Validates input `[n, c_in, h, w]`, weight `[c_out, c_in/groups, kh, kw]` and bias `[c_out]`.
    pub fn check(&self, x: &Shape, weight: &Shape, bias: Option<&Shape>) -> Result<Conv2dGeometry> {
        const OP: &str = "conv2d";
        self.check_settings()?;
        expect_rank(OP, "input", x, 4)?;
        expect_rank(OP, "weight", weight, 4)?;
        let [n, c_in, h, w] = [x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]];
        let wd = weight.dims();
        let (c_out, kh, kw) = (wd[0], wd[2], wd[3]);
        let g = self.groups;
        if c_in % g != 0 {
            return Err(spec_err(
                OP,
                format!("input channels {c_in} are not divisible by groups {g}"),
            ));
        }
        if c_out % g != 0 {
            return Err(spec_err(
                OP,
                format!("output channels {c_out} are not divisible by groups {g}"),
            ));
        }
        if wd[1] != c_in / g {
            return Err(shape_err(
                OP,
                "weight",
                format!(
                    "[{c_out}, {}, {kh}, {kw}] (input has {c_in} channels, groups {g})",
                    c_in / g
                ),
                weight,
            ));
        }
        if let Some(b) = bias
            && b.dims() != [c_out]
        {
            return Err(shape_err(OP, "bias", format!("[{c_out}]"), b));
        }
        let [oh, ow] = self.out_hw([h, w], [kh, kw])?;
        Ok(Conv2dGeometry {
            spec: *self,
            n,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            oh,
            ow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[usize]) -> Shape {
        Shape::new(d).unwrap()
    }

    #[test]
    fn conv_output_formula() {
        let spec = Conv2dSpec::new(1, 2);
        let g = spec
            .check(&s(&[256, 1, 28, 28]), &s(&[6, 1, 5, 5]), Some(&s(&[6])))
            .unwrap();
        assert_eq!(g.output_dims(), [256, 6, 28, 28]);
        let spec = Conv2dSpec {
            stride: [2, 1],
            padding: [1, 0],
            dilation: [2, 1],
            groups: 1,
        };
        assert_eq!(spec.out_hw([9, 7], [3, 3]).unwrap(), [4, 5]);
    }

    #[test]
    fn conv_rejects_bad_inputs() {
        let x = s(&[1, 4, 8, 8]);
        let bad_groups = Conv2dSpec {
            groups: 3,
            ..Default::default()
        };
        assert!(bad_groups.check(&x, &s(&[3, 1, 3, 3]), None).is_err());
        assert!(
            Conv2dSpec::new(0, 0)
                .check(&x, &s(&[2, 4, 3, 3]), None)
                .is_err()
        );
        assert!(
            Conv2dSpec::new(1, 0)
                .check(&x, &s(&[2, 3, 3, 3]), None)
                .is_err()
        );
        assert!(
            Conv2dSpec::new(1, 0)
                .check(&x, &s(&[2, 4, 9, 9]), None)
                .is_err()
        );
        let e = Conv2dSpec::new(1, 0)
            .check(&x, &s(&[2, 4, 3, 3]), Some(&s(&[3])))
            .unwrap_err();
        assert!(e.to_string().contains("bias"), "{e}");
        assert!(
            Conv2dSpec::new(1, 0)
                .check(&s(&[4, 8, 8]), &s(&[2, 4, 3, 3]), None)
                .is_err()
        );
    }
}
